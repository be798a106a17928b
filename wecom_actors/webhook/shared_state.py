"""State that webhook replicas share: the msgid dedupe and the stream exchange snapshots.

Behind a load balancer, WeCom's stream-refresh poll for a stream, or a redelivered callback, can
land on any replica. With ``redis_url`` set, both live in Redis, so every replica answers a
poll with the one stream's latest content and the handler runs once per msgid:

* ``first_delivery(msgid)``: ``SET NX EX``: True for exactly one caller within the dedupe
  window (:data:`DEDUPE_SECONDS`); the replica that gets True runs the handler.
* ``publish(stream_id, snapshot)``: stores the stream's latest snapshot (content, finish flag and
  the plaintext answer a poll gets), only if its version is newer than the stored one, with a
  TTL a little over WeCom's six-minute polling window (:data:`STREAM_SECONDS`).
* ``snapshot(stream_id)``: the latest snapshot, or None.
* ``claim(msgid, value)``: ``first_delivery`` that stores ``value`` (the owner's stream id) and
  returns None to the first caller, the first caller's value to every later one.
* ``mark_served(stream_id, version)`` / ``served_version(stream_id)``: the highest snapshot
  version a replica has answered a poll with (so the owner can count its frames as served);
  ``serve(stream_id)`` is ``snapshot`` and ``mark_served`` of its version in one round trip.

:class:`MemoryWebhookState` is the same contract in one process (no ``redis_url``: everything
stays in process); :class:`RedisWebhookState` keeps it in Redis through a
:class:`~wecom_actors.redis_link.RedisLink` (one round trip per call). Every value is bounded
(:data:`MAX_SNAPSHOT_BYTES`) and the in-process tables are bounded in entries.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import trio

if TYPE_CHECKING:
    from ..redis_link import RedisLink

__all__ = [
    "DEDUPE_SECONDS",
    "MAX_SNAPSHOT_BYTES",
    "STREAM_SECONDS",
    "MemoryWebhookState",
    "RedisWebhookState",
    "StreamSnapshot",
    "WebhookState",
    "namespace_for",
]

#: WeCom polls a stream for six minutes after the user's message; a little more is kept.
STREAM_SECONDS = 380.0
#: A msgid is remembered this long (as long as a signed request may be replayed).
DEDUPE_SECONDS = 600.0
#: The largest snapshot stored (a stream's content is at most 20480 bytes; images add more).
MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024


class StreamSnapshot(msgspec.Struct, frozen=True):
    """One stream's latest state: what a refresh poll is answered with."""

    version: int
    content: str
    finish: bool
    answer: str  # the plaintext JSON answer (encrypted by whichever replica serves the poll)


class WebhookState(Protocol):
    async def first_delivery(self, msgid: str) -> bool: ...

    async def claim(self, msgid: str, value: str) -> str | None: ...

    async def publish(self, stream_id: str, snapshot: StreamSnapshot) -> bool: ...

    async def snapshot(self, stream_id: str) -> StreamSnapshot | None: ...

    async def mark_served(self, stream_id: str, version: int) -> None: ...

    async def serve(self, stream_id: str) -> StreamSnapshot | None: ...

    async def served_version(self, stream_id: str) -> int: ...


def namespace_for(token: str, receive_id: str = "") -> str:
    """A key namespace for one webhook bot that does not reveal its token (a hash of it)."""
    digest = hashlib.sha256(f"wecom-actors\0{token}\0{receive_id}".encode()).hexdigest()
    return digest[:20]


def _encode(snapshot: StreamSnapshot) -> bytes:
    data = msgspec.json.encode(snapshot)
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise ValueError(f"a stream snapshot of {len(data)} bytes is over the {MAX_SNAPSHOT_BYTES}-byte bound")
    return data


def _check_id(kind: str, value: str) -> None:
    if not value or len(value) > 256:
        raise ValueError(f"a {kind} must have 1..256 characters")


class MemoryWebhookState:
    """The contract in one process, timed by Trio's clock; at most ``max_entries`` per table
    (the oldest are dropped first)."""

    def __init__(
        self, *, max_entries: int = 100_000, stream_ttl: float = STREAM_SECONDS, dedupe_ttl: float = DEDUPE_SECONDS
    ) -> None:
        self.max_entries = max_entries
        self.stream_ttl, self.dedupe_ttl = stream_ttl, dedupe_ttl
        self._seen: OrderedDict[str, tuple[float, str]] = OrderedDict()  # msgid -> (expires at, value)
        self._served: dict[str, int] = {}
        self._streams: OrderedDict[str, tuple[float, StreamSnapshot]] = OrderedDict()

    def _expire(self, table: OrderedDict[str, Any], now: float) -> None:
        while table and (len(table) > self.max_entries or _expiry(next(iter(table.values()))) <= now):
            table.popitem(last=False)

    async def first_delivery(self, msgid: str) -> bool:
        return await self.claim(msgid, "1") is None

    async def claim(self, msgid: str, value: str) -> str | None:
        _check_id("msgid", msgid)
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        self._expire(self._seen, now)
        entry = self._seen.get(msgid)
        if entry is not None and entry[0] > now:
            return entry[1]
        self._seen[msgid] = (now + self.dedupe_ttl, value)
        self._seen.move_to_end(msgid)
        self._expire(self._seen, now)
        return None

    async def mark_served(self, stream_id: str, version: int) -> None:
        _check_id("stream id", stream_id)
        await trio.lowlevel.checkpoint()
        self._served[stream_id] = max(version, self._served.get(stream_id, 0))
        while len(self._served) > self.max_entries:
            self._served.pop(next(iter(self._served)))

    async def serve(self, stream_id: str) -> StreamSnapshot | None:
        _check_id("stream id", stream_id)
        snapshot = await self.snapshot(stream_id)
        if snapshot is not None:
            await self.mark_served(stream_id, snapshot.version)
        return snapshot

    async def served_version(self, stream_id: str) -> int:
        _check_id("stream id", stream_id)
        await trio.lowlevel.checkpoint()
        if stream_id not in self._streams:
            self._served.pop(stream_id, None)
            return 0
        return self._served.get(stream_id, 0)

    async def publish(self, stream_id: str, snapshot: StreamSnapshot) -> bool:
        _check_id("stream id", stream_id)
        _encode(snapshot)
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        self._expire(self._streams, now)
        current = self._streams.get(stream_id)
        if current is not None and current[0] > now and current[1].version >= snapshot.version:
            return False
        self._streams[stream_id] = (now + self.stream_ttl, snapshot)
        self._streams.move_to_end(stream_id)
        self._expire(self._streams, now)
        return True

    async def snapshot(self, stream_id: str) -> StreamSnapshot | None:
        _check_id("stream id", stream_id)
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        self._expire(self._streams, now)
        entry = self._streams.get(stream_id)
        return None if entry is None or entry[0] <= now else entry[1]


def _expiry(entry: tuple[float, object]) -> float:
    return entry[0]


# KEYS[1] the stream's key; ARGV[1] version, ARGV[2] the encoded snapshot, ARGV[3] ttl ms.
_PUBLISH = """
local current = redis.call('hget', KEYS[1], 'v')
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('hset', KEYS[1], 'v', ARGV[1], 's', ARGV[2])
redis.call('pexpire', KEYS[1], ARGV[3])
return 1
"""


# KEYS[1] the msgid's key; ARGV[1] the value, ARGV[2] ttl ms. nil: ours now; else the owner's value.
_CLAIM = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('get', KEYS[1])
"""
# KEYS[1] the stream's key; ARGV[1] a served version (kept if higher; only while the stream lives).
_SERVED = """
if redis.call('exists', KEYS[1]) == 0 then return 0 end
local current = tonumber(redis.call('hget', KEYS[1], 'x') or '0')
if tonumber(ARGV[1]) > current then redis.call('hset', KEYS[1], 'x', ARGV[1]) end
return 1
"""


# KEYS[1] the stream's key: its snapshot, its version recorded as served (if higher).
_SERVE = """
local s = redis.call('hget', KEYS[1], 's')
if not s then return false end
local v = tonumber(redis.call('hget', KEYS[1], 'v'))
if v > tonumber(redis.call('hget', KEYS[1], 'x') or '0') then redis.call('hset', KEYS[1], 'x', v) end
return s
"""


class RedisWebhookState:
    """The contract in Redis (one round trip per call); keys under ``wecom-actors:{namespace}``."""

    def __init__(
        self,
        link: RedisLink,
        namespace: str,
        *,
        prefix: str = "wecom-actors",
        stream_ttl: float = STREAM_SECONDS,
        dedupe_ttl: float = DEDUPE_SECONDS,
    ) -> None:
        self.link = link
        self.stream_ttl, self.dedupe_ttl = stream_ttl, dedupe_ttl
        self._base = f"{prefix}:{{{namespace}}}"

    async def first_delivery(self, msgid: str) -> bool:
        return await self.claim(msgid, "1") is None

    async def claim(self, msgid: str, value: str) -> str | None:
        _check_id("msgid", msgid)
        key = f"{self._base}:msgid:{msgid}"
        args = [value, str(max(1, round(self.dedupe_ttl * 1000)))]

        async def run(client: Any) -> str | None:
            owner = await client.register_script(_CLAIM)(keys=[key], args=args)
            return None if owner in (None, False) else str(owner)

        return await self.link.call(run)

    async def mark_served(self, stream_id: str, version: int) -> None:
        _check_id("stream id", stream_id)
        key = f"{self._base}:stream:{stream_id}"

        async def run(client: Any) -> None:
            await client.register_script(_SERVED)(keys=[key], args=[str(version)])

        await self.link.call(run)

    async def serve(self, stream_id: str) -> StreamSnapshot | None:
        _check_id("stream id", stream_id)
        key = f"{self._base}:stream:{stream_id}"

        async def run(client: Any) -> str | None:
            value = await client.register_script(_SERVE)(keys=[key], args=[])
            return None if value in (None, False) else str(value)

        data = await self.link.call(run)
        return None if data is None else msgspec.json.decode(data, type=StreamSnapshot)

    async def served_version(self, stream_id: str) -> int:
        _check_id("stream id", stream_id)
        key = f"{self._base}:stream:{stream_id}"

        async def run(client: Any) -> int:
            value = await client.hget(key, "x")
            return int(value) if value else 0

        return await self.link.call(run)

    async def publish(self, stream_id: str, snapshot: StreamSnapshot) -> bool:
        _check_id("stream id", stream_id)
        data = _encode(snapshot).decode()
        key = f"{self._base}:stream:{stream_id}"
        args = [str(snapshot.version), data, str(max(1, round(self.stream_ttl * 1000)))]

        async def store(client: Any) -> bool:
            script = client.register_script(_PUBLISH)
            return bool(await script(keys=[key], args=args))

        return await self.link.call(store)

    async def snapshot(self, stream_id: str) -> StreamSnapshot | None:
        _check_id("stream id", stream_id)
        key = f"{self._base}:stream:{stream_id}"

        async def load(client: Any) -> str | None:
            value: str | None = await client.hget(key, "s")
            return value

        data = await self.link.call(load)
        if data is None:
            return None
        return msgspec.json.decode(data, type=StreamSnapshot)
