"""Where a bot's lease lives: :class:`RedisLeaseStore` (replicas) and :class:`MemoryLeaseStore`.

A lease is one key per bot whose value is the holder's replica id, written with ``SET NX PX``;
a second key counts acquisitions (the fencing token, ``INCR`` in the same script, so every
holding period has a larger token than the one before). Renewal and release are
compare-and-set / compare-and-delete scripts: only the holder named in the key can extend or
delete it, so a replica whose lease expired and was taken cannot renew or release the new
holder's lease.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import msgspec
import trio

if TYPE_CHECKING:
    from .redis_link import RedisLink

__all__ = ["Acquired", "LeaseStore", "MemoryLeaseStore", "RedisLeaseStore", "lease_keys"]


class Acquired(msgspec.Struct, frozen=True):
    """The answer to an acquire: ``token`` > 0 when we hold the lease now, else the time in
    seconds the current holder's lease has left (``remaining``, 0 if unknown)."""

    token: int
    remaining: float = 0.0


class LeaseStore(Protocol):
    async def acquire(self, bot_id: str, replica: str, ttl: float) -> Acquired: ...

    async def renew(self, bot_id: str, replica: str, ttl: float) -> bool: ...

    async def release(self, bot_id: str, replica: str) -> bool: ...

    async def holder(self, bot_id: str) -> str | None: ...


def lease_keys(bot_id: str, prefix: str = "wecom-actors") -> tuple[str, str]:
    """(lease key, fencing counter key). The braces keep both in one Redis Cluster slot."""
    return f"{prefix}:{{{bot_id}}}:lease", f"{prefix}:{{{bot_id}}}:fence"


# KEYS[1] lease, KEYS[2] fence; ARGV[1] replica id, ARGV[2] ttl ms.
# Free (or already ours: a new holding period after our renewals failed): take it, count a
# new fencing token. Held by another: report its remaining time.
_ACQUIRE = """
local mine = redis.call('get', KEYS[1]) == ARGV[1]
if mine or redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if mine then redis.call('pexpire', KEYS[1], ARGV[2]) end
  return {redis.call('incr', KEYS[2]), 0}
end
return {0, redis.call('pttl', KEYS[1])}
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisLeaseStore:
    """The lease in Redis, through a :class:`~wecom_actors.redis_link.RedisLink`."""

    def __init__(self, link: RedisLink, *, prefix: str = "wecom-actors") -> None:
        self.link = link
        self.prefix = prefix

    async def _script(self, source: str, keys: list[str], args: list[str | int]) -> object:
        async def run(client: object) -> object:
            script = client.register_script(source)  # type: ignore[attr-defined]
            return await script(keys=keys, args=args)

        return await self.link.call(run)

    async def acquire(self, bot_id: str, replica: str, ttl: float) -> Acquired:
        answer = await self._script(_ACQUIRE, list(lease_keys(bot_id, self.prefix)), [replica, _ms(ttl)])
        assert isinstance(answer, list) and len(answer) == 2
        token, pttl = int(answer[0]), int(answer[1])
        return Acquired(token, max(pttl, 0) / 1000)

    async def renew(self, bot_id: str, replica: str, ttl: float) -> bool:
        key = lease_keys(bot_id, self.prefix)[0]
        return bool(await self._script(_RENEW, [key], [replica, _ms(ttl)]))

    async def release(self, bot_id: str, replica: str) -> bool:
        key = lease_keys(bot_id, self.prefix)[0]
        return bool(await self._script(_RELEASE, [key], [replica]))

    async def holder(self, bot_id: str) -> str | None:
        key = lease_keys(bot_id, self.prefix)[0]

        async def get(client: object) -> str | None:
            value: str | None = await client.get(key)  # type: ignore[attr-defined]
            return value

        return await self.link.call(get)


class MemoryLeaseStore:
    """The same rules in one process, timed by Trio's clock (tests under a MockClock, and the
    reference the Redis scripts are checked against). ``fail`` makes every call raise the
    given exception (an outage)."""

    def __init__(self) -> None:
        self._leases: dict[str, tuple[str, float]] = {}  # bot id -> (replica, expires at)
        self._fences: dict[str, int] = {}
        self.fail: BaseException | None = None
        self.calls = 0

    async def _enter(self) -> float:
        await trio.lowlevel.checkpoint()
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return trio.current_time()

    def _current(self, bot_id: str, now: float) -> tuple[str, float] | None:
        entry = self._leases.get(bot_id)
        if entry is not None and entry[1] <= now:
            del self._leases[bot_id]
            entry = None
        return entry

    async def acquire(self, bot_id: str, replica: str, ttl: float) -> Acquired:
        now = await self._enter()
        entry = self._current(bot_id, now)
        if entry is not None and entry[0] != replica:
            return Acquired(0, entry[1] - now)
        self._leases[bot_id] = (replica, now + ttl)
        self._fences[bot_id] = self._fences.get(bot_id, 0) + 1
        return Acquired(self._fences[bot_id])

    async def renew(self, bot_id: str, replica: str, ttl: float) -> bool:
        now = await self._enter()
        entry = self._current(bot_id, now)
        if entry is None or entry[0] != replica:
            return False
        self._leases[bot_id] = (replica, now + ttl)
        return True

    async def release(self, bot_id: str, replica: str) -> bool:
        now = await self._enter()
        entry = self._current(bot_id, now)
        if entry is None or entry[0] != replica:
            return False
        del self._leases[bot_id]
        return True

    async def holder(self, bot_id: str) -> str | None:
        now = await self._enter()
        entry = self._current(bot_id, now)
        return None if entry is None else entry[0]
