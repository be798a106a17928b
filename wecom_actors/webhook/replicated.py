"""Webhook replicas behind one address: the bot's side of :mod:`.shared_state`.

With ``redis_url`` set, a webhook bot (:class:`~.bot.WebhookBot`) asks :class:`SharedStreams`:

* for a new message's msgid, :meth:`claim` (``SET NX`` with the stream id it would announce):
  the replica that wins runs the handler and *owns* the exchange (:meth:`own` publishes it); a
  replica that loses (the
  callback was delivered again, to it) answers from the owner's published snapshot with the
  owner's stream id (:meth:`answer_for`), and never runs the handler;
* for a refresh poll of a stream it does not own, :meth:`refresh`: the latest published snapshot,
  and the served version is recorded so the owner's frames count as served;
* the owner's :meth:`run` loop publishes each owned stream's snapshot whenever its version
  changed (a snapshot of version 0, empty and unfinished, is published at claim time, before the
  POST is answered) and applies the versions other replicas served (the frames waiting for a
  poll settle; a served final answer counts as delivered).

A poll that lands on the owner is answered by its own table as before. Template cards sent with
a stream are answered only by the owner (a card goes once per message). Redis unavailable: a new
message is handled here (it may then run twice if it was also delivered to another replica); a
poll for a stream this replica does not know is refused with 503 (WeCom polls again), instead of
being finished empty.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import trio

from ..protocol.replies import encode_body
from ..redis_link import RedisLink, RedisUnavailable
from ..render import stream_reply
from .shared_state import (
    STREAM_SECONDS,
    RedisWebhookState,
    StreamSnapshot,
    WebhookState,
    namespace_for,
)

if TYPE_CHECKING:
    from .streams import Exchange

__all__ = ["PUBLISH_INTERVAL", "SharedStreams", "shared_streams_for"]

log = logging.getLogger("wecom_actors.webhook.replicas")

#: How often the owner publishes changed snapshots and reads back what others served.
PUBLISH_INTERVAL = 0.1
#: An owned stream's served version is read at most this often while something is unserved.
SERVED_INTERVAL = 0.3
#: Stream ids of this replica remembered at most (a poll for an older one asks Redis).
MAX_LOCAL_STREAMS = 100_000


def shared_streams_for(config: Any) -> SharedStreams | None:
    """The shared state of a webhook bot configured with ``redis_url``, else None."""
    if not getattr(config, "redis_url", ""):
        return None
    link = RedisLink(config.redis_url, timeout=2.0)
    state = RedisWebhookState(link, namespace_for(config.token, config.encoding_aes_key))
    return SharedStreams(state, link=link)


def _snapshot_of(ex: Exchange) -> StreamSnapshot:
    """The answer a poll would get now, built without serving anything (no side effects)."""
    body = stream_reply(
        ex.stream_id, ex.content, ex.finish, feedback_id=ex.feedback_id, msg_items=ex.msg_items if ex.finish else None
    )
    return StreamSnapshot(ex.version, ex.content, ex.finish, encode_body(body).decode())


def _shareable(ident: str) -> bool:
    """An id the shared state keeps (1..256 characters; anything else stays local)."""
    return 0 < len(ident) <= 256


class SharedStreams:
    def __init__(self, state: WebhookState, *, link: RedisLink | None = None, interval: float = PUBLISH_INTERVAL) -> None:
        self.state = state
        self.link = link
        self.interval = interval
        self._owned: dict[str, Exchange] = {}  # stream id -> exchange, while WeCom may poll it
        self._local: OrderedDict[str, float] = OrderedDict()  # stream ids opened here -> until
        self._published: dict[str, int] = {}
        self._asked: dict[str, float] = {}  # stream id -> when its served version was last read
        self.counts = dict.fromkeys(("claims_lost", "remote_polls", "redis_errors"), 0)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            if self.link is not None:
                await nursery.start(self.link.run)
            task_status.started()
            while True:
                await trio.sleep(self.interval)
                try:
                    await self._sync()
                except RedisUnavailable as exc:
                    self.counts["redis_errors"] += 1
                    log.warning("shared stream state not synced: %s", exc)

    async def _sync(self) -> None:
        for stream_id, ex in list(self._owned.items()):
            if ex.version > self._published.get(stream_id, -1):
                snapshot = _snapshot_of(ex)
                await self.state.publish(stream_id, snapshot)
                self._published[stream_id] = snapshot.version
            # Ask what other replicas served only while something is unserved here, and at most
            # every SERVED_INTERVAL (WeCom polls about once a second).
            unserved = ex.version > ex.polled_version or (ex.finish and not ex.final_served)
            now = trio.current_time()
            if unserved and now >= self._asked.get(stream_id, 0.0) + SERVED_INTERVAL:
                self._asked[stream_id] = now
                served = await self.state.served_version(stream_id)
                if served > ex.polled_version:
                    ex.polled_version = served
                    ex.settle_upto(served)
                    if ex.finish and served >= ex.version and not ex.final_served:
                        ex.final_served = True  # another replica sent the final answer
                        if ex.on_served is not None:
                            ex.on_served()
            if ex.final_served or ex.closed or not ex.polled_live:
                del self._owned[stream_id]
                self._published.pop(stream_id, None)
                self._asked.pop(stream_id, None)

    def is_local(self, stream_id: str) -> bool:
        """True if this replica opened ``stream_id`` (its own table answers the polls)."""
        expires = self._local.get(stream_id)
        return expires is not None and expires > trio.current_time()

    def note_local(self, stream_id: str) -> None:
        """``stream_id`` was opened here (kept for WeCom's polling window, bounded in number)."""
        if not stream_id:
            return
        now = trio.current_time()
        local = self._local
        local[stream_id] = now + STREAM_SECONDS
        local.move_to_end(stream_id)
        while local and (len(local) > MAX_LOCAL_STREAMS or next(iter(local.values())) <= now):
            local.popitem(last=False)

    async def claim(self, msgid: str, stream_id: str) -> str | None:
        """None: this replica owns ``msgid`` now; else the owner's stream id ("" for an
        event). RedisUnavailable propagates."""
        if not _shareable(msgid):
            return None  # not a key we store: handled here only
        owner = await self.state.claim(msgid, stream_id)
        if owner is not None:
            self.counts["claims_lost"] += 1
        return owner

    async def own(self, ex: Exchange) -> None:
        """Publish a claimed exchange's stream (version 0 now) and keep it published."""
        self.note_local(ex.stream_id)
        if not ex.stream_id:
            return
        self._owned[ex.stream_id] = ex
        snapshot = _snapshot_of(ex)
        await self.state.publish(ex.stream_id, snapshot)
        self._published[ex.stream_id] = snapshot.version

    async def answer_for(self, stream_id: str) -> bytes | None:
        """A redelivered message owned elsewhere: its stream's latest answer (None: an event)."""
        if not stream_id:
            return None
        answer = await self.refresh(stream_id)
        if answer is None:  # not published yet: announce the stream, empty and unfinished
            return encode_body(stream_reply(stream_id, "", False))
        return answer

    async def refresh(self, stream_id: str) -> bytes | None:
        """A poll for a stream owned elsewhere: its latest answer, or None if nobody has it."""
        if not _shareable(stream_id):
            return None
        snapshot = await self.state.serve(stream_id)  # read and record as served: one round trip
        if snapshot is None:
            return None
        self.counts["remote_polls"] += 1
        return snapshot.answer.encode()
