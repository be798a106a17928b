"""Webhook stream state: one :class:`Exchange` per callback, served to WeCom's refresh polls.

In webhook mode WeCom pulls: the bot answers a message callback with a ``stream`` reply that
announces a stream id, and WeCom then POSTs a *stream refresh* for that id about once a second
until an answer carries ``finish=true`` or six minutes have passed since the user's message
(docs/protocol-notes.md, 'Polling'). So the handler's output is not sent anywhere: it is kept here as the
stream's latest *snapshot* (full content so far, finish flag, images, card), and every poll is
answered from it.

An Exchange goes through phases: ``PENDING`` until the callback's POST is answered, then
``STREAM`` (answered with a stream: WeCom polls), ``DIRECT`` (answered with a card, a welcome or
a card update) or ``EMPTY`` (answered with an empty body). The :class:`StreamTable` indexes live
exchanges by req_id (the msgid) and by stream id, answers refresh polls, finishes streams near
the end of WeCom's window and evicts state once that window is over.

The snapshot is fed by the ReplyRenderer actor (``WebhookReplies.put_frame``): SessionStreams
sends a new frame whenever the text has grown, at most one per ``min_interval``, without waiting
for a poll, so an answer carries the text appended until shortly before it. A frame settles
when an answer carried it (the POST's answer counts): the answer posts the settlements of the
frames it served to the SessionStreams mailbox (``StreamTable.settlements``), which is what a
``flush()`` waits for; a frame nobody serves settles ``POLL_WAIT`` s later (the sweeper).
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec
import trio

from ..protocol.inbound import InboundMessage
from ..protocol.limits import STREAM_WINDOW_SECONDS
from ..protocol.replies import MsgItem, TemplateCard, TemplateCardReply, encode_body
from ..render import stream_reply
from ..renderer import Settled
from .response_url import ResponseUrlRecord

__all__ = ["Exchange", "FinalAnswer", "FrameWaiter", "Phase", "StreamTable", "TableStatistics"]

log = logging.getLogger("wecom_actors.webhook.streams")

#: A refresh poll this long after the message finishes a stream that is still running, with
#: what exists (WeCom stops polling at 360 s); later output goes by response_url. ReplyStream
#: already finishes its stream 330 s after its *first frame* (sessions.WINDOW_MARGIN), cleanly;
#: this is the safety net for a stream whose first frame came late (a handler that was queued).
STREAM_CUTOFF_SECONDS = STREAM_WINDOW_SECONDS - 10.0
#: State of a finished exchange is kept for WeCom's whole stream window, then evicted.
KEEP_SECONDS = STREAM_WINDOW_SECONDS
#: An exchange whose handler never ran (dropped at shutdown) is evicted after this long anyway.
HARD_KEEP_SECONDS = 3600.0
#: After eviction a msgid is remembered this long (from the message) so a late redelivery is
#: answered empty instead of starting a second handler run. (At least: the bot makes it outlive
#: the timestamp window, so no replay of a signed request can start a second run.)
TOMBSTONE_SECONDS = 600.0
#: How often the sweeper runs.
SWEEP_INTERVAL = 30.0
#: A non-final frame waits at most this long to be served by an answer; then it settles anyway
#: (WeCom stopped polling: the handler must not wait forever in ``flush()``).
POLL_WAIT = 5.0
#: Frames past ``POLL_WAIT`` are settled in batches at most this late.
POLL_WAIT_SLACK = 0.5

#: What waits for a frame to be served: the frame's SessionStreams token (its settlement is
#: posted), or a trio.Event (set) for ``WebhookReplies.stream_frame`` called directly.
FrameWaiter = tuple[int, int, int] | trio.Event


class FinalAnswer(bytes):
    """A stream answer with ``finish=true``: the HTTP layer calls ``on_sent()`` once it has
    been sent whole (only then does the stream count as delivered)."""

    on_sent: Callable[[], None]


class Phase(enum.Enum):
    PENDING = "pending"
    STREAM = "stream"
    DIRECT = "direct"
    EMPTY = "empty"


class Exchange:
    """One message or event callback: how its POST was answered and its stream's snapshot."""

    __slots__ = (
        "_changed",
        "_waiters",
        "card",
        "card_sent",
        "closed",
        "content",
        "conversation",
        "created",
        "direct",
        "dispatched",
        "feedback_id",
        "final_served",
        "finish",
        "handler_done",
        "is_event",
        "msg_items",
        "on_served",
        "on_settled",
        "outbox",
        "phase",
        "polled_version",
        "req_id",
        "response_url",
        "single_chat",
        "stream_claimed",
        "stream_id",
        "version",
    )

    def __init__(
        self,
        req_id: str,
        message: InboundMessage,
        *,
        stream_id: str,
        created: float,
        is_event: bool,
        response_url: ResponseUrlRecord | None,
    ) -> None:
        self.req_id = req_id
        self.stream_id = stream_id
        self.created = created
        self.is_event = is_event
        self.conversation = message.conversation
        self.single_chat = message.chattype != "group"
        self.response_url = response_url
        self.phase = Phase.PENDING
        self.stream_claimed = False  # the first turn.stream() took the announced stream id
        self.closed = False  # no more stream frames: cut off at the window's end, or detached
        self.dispatched = False
        self.handler_done = False
        # the snapshot
        self.content = ""
        self.finish = False
        self.msg_items: list[MsgItem] | None = None
        self.card: TemplateCard | None = None
        self.card_sent = False
        self.feedback_id: str | None = None
        self.version = 0
        self.polled_version = 0
        self.final_served = False  # a finish=true answer was sent whole
        self.on_served: Callable[[], None] | None = None
        #: Where the settlements of served frames go (the table's ``post_settled``).
        self.on_settled: Callable[[list[Settled]], None] | None = None
        self.direct: bytes | None = None  # the plaintext of a non-stream answer
        self.outbox: list[str] = []  # text for the single response_url post, sent at turn end
        # Created only while somebody waits (most exchanges never need one).
        self._changed: trio.Event | None = None
        self._waiters: list[tuple[int, FrameWaiter]] = []  # frames waiting to be served, by version

    def __repr__(self) -> str:
        return f"Exchange({self.req_id!r}, {self.phase.value}, v{self.version})"

    # --- notifications ---------------------------------------------------------------------------

    def changed(self) -> None:
        """Wake whoever waits to answer this exchange's POST."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _wake_frames(self) -> None:
        """Settle every frame waiting to be served (served, or no longer polled)."""
        waiters, self._waiters = self._waiters, []
        self._settle(waiters)

    def settle_upto(self, version: int) -> None:
        """Settle the frames of ``version`` and older: an answer carried them, or ``POLL_WAIT``
        is over for them (the table's sweeper)."""
        waiters = self._waiters
        if waiters and waiters[0][0] <= version:  # in version order
            self._waiters = [w for w in waiters if w[0] > version]
            self._settle([w for w in waiters if w[0] <= version])

    def _settle(self, waiters: list[tuple[int, FrameWaiter]]) -> None:
        settled = []
        for _, waiter in waiters:
            if type(waiter) is tuple:
                settled.append(Settled(waiter, None))
            else:
                waiter.set()  # type: ignore[union-attr]
        if settled and self.on_settled is not None:
            self.on_settled(settled)

    @property
    def polled_live(self) -> bool:
        """WeCom may still poll this stream (so a frame waiting for a poll should keep waiting)."""
        return not self.closed and not self.is_event and self.phase in (Phase.PENDING, Phase.STREAM)

    # --- the handler side ------------------------------------------------------------------------

    def set_frame(
        self,
        content: str,
        finish: bool,
        *,
        feedback_id: str | None = None,
        msg_items: list[MsgItem] | None = None,
        card: TemplateCard | None = None,
    ) -> int:
        """Replace the snapshot; returns its new version."""
        self.content = content
        self.finish = finish
        if finish and msg_items:
            self.msg_items = list(msg_items)
        if feedback_id and self.feedback_id is None:
            self.feedback_id = feedback_id
        if card is not None and self.card is None:
            self.card = card
        self.version += 1
        self.changed()
        return self.version

    def when_served(self, version: int, waiter: FrameWaiter) -> bool:
        """Settle ``waiter`` once an answer has carried ``version`` (or WeCom stops polling the
        stream, or :meth:`settle_upto`). False (and nothing kept) if that is already the case."""
        if self.polled_version >= version or not self.polled_live:
            return False
        self._waiters.append((version, waiter))
        return True

    async def wait_polled(self, version: int) -> None:
        """Wait until an answer has served ``version`` (or WeCom stops polling the stream)."""
        done = trio.Event()
        if self.when_served(version, done):
            await done.wait()

    def handler_finished(self) -> None:
        """The turn is over: a stream nobody finished is finished with what exists."""
        self.handler_done = True
        if self.phase is Phase.STREAM and not self.finish:  # PENDING: decided in first_answer
            self.finish = True
            self.version += 1
        self.changed()
        self._wake_frames()

    # --- the WeCom side --------------------------------------------------------------------------

    def ready(self) -> bool:
        """True once the POST's answer is known (it may still be an unfinished stream)."""
        if self.is_event:
            return self.direct is not None or self.handler_done or self.phase is not Phase.PENDING
        return self.version > 0 or self.card is not None or self.handler_done

    async def wait_ready(self) -> None:
        while not self.ready():
            if self._changed is None:
                self._changed = trio.Event()
            await self._changed.wait()

    def first_answer(self) -> bytes | None:
        """The plaintext answering the callback's POST (and any redelivery of it)."""
        if self.phase is Phase.PENDING:
            if self.is_event or (self.handler_done and not self.version and self.card is None):
                self.phase = Phase.DIRECT if self.direct is not None else Phase.EMPTY
            elif self.card is not None and not self.version and not self.stream_claimed:
                # A template card alone answers the message; no stream is started.
                self.phase, self.card_sent = Phase.DIRECT, True
                self.direct = encode_body(TemplateCardReply(template_card=self.card))
            else:
                self.phase = Phase.STREAM
                if self.handler_done and not self.finish:
                    self.finish = True
                    self.version += 1
            self._wake_frames()
        if self.phase is Phase.STREAM:
            return self.stream_answer()
        return self.direct

    def stream_answer(self) -> bytes:
        """The stream's answer now (the POST's or a refresh's); it serves the snapshot it carries."""
        card = None
        if self.card is not None and not self.card_sent:
            card, self.card_sent = self.card, True  # once per message (docs/protocol-notes.md, 'Which answer is allowed where')
        body = stream_reply(
            self.stream_id,
            self.content,
            self.finish,
            feedback_id=self.feedback_id,
            msg_items=self.msg_items if self.finish else None,
            card=card,
        )
        self.polled_version = self.version
        if self._waiters:  # this answer carries them: flush() may return
            self._wake_frames()
        if not self.finish:
            return encode_body(body)
        answer = FinalAnswer(encode_body(body))
        answer.on_sent = self._final_sent  # served once sent whole, not when built
        return answer

    def _final_sent(self) -> None:
        self.final_served = True
        if self.on_served is not None:
            self.on_served()

    def cut_off(self) -> None:
        """Finish the stream now with what exists; later output goes by response_url."""
        self.closed = True
        if not self.finish:
            self.finish = True
            self.version += 1
        self.changed()
        self._wake_frames()


class TableStatistics(msgspec.Struct, frozen=True):
    exchanges: int
    streams: int
    tombstones: int
    refreshes: int
    unknown_refreshes: int
    cut_off: int
    evicted: int


class StreamTable:
    """Live exchanges by req_id and by stream id; answers refresh polls; evicts old state."""

    def __init__(
        self, *, clock: Callable[[], float] = trio.current_time, tombstone_seconds: float = TOMBSTONE_SECONDS
    ) -> None:
        self._clock = clock
        self.tombstone_seconds = tombstone_seconds
        self._by_req: dict[str, Exchange] = {}
        self._by_stream: dict[str, Exchange] = {}
        self._tombstones: dict[str, float] = {}
        self._served: trio.Event | None = None  # created only while drain() waits
        # (deadline, exchange, version) of frames waiting to be served, in deadline order
        self._frame_deadlines: deque[tuple[float, Exchange, int]] = deque()
        self._frames_added: trio.Event | None = None
        #: The SessionStreams mailbox: settlements of served frames go there (set by the bot).
        self.settlements: trio.MemorySendChannel[Any] | None = None
        self._backlog: list[Settled] = []  # settlements the full mailbox had no room for yet
        self.on_sweep: Callable[[], None] | None = None
        self.counts = dict.fromkeys(("refreshes", "unknown_refreshes", "cut_off", "evicted"), 0)

    def __len__(self) -> int:
        return len(self._by_req)

    def statistics(self) -> TableStatistics:
        return TableStatistics(
            exchanges=len(self._by_req),
            streams=len(self._by_stream),
            tombstones=len(self._tombstones),
            **self.counts,
        )

    def get(self, req_id: str) -> Exchange | None:
        return self._by_req.get(req_id)

    def forgotten(self, msgid: str) -> bool:
        """True if ``msgid`` belonged to an exchange evicted recently (a late redelivery)."""
        until = self._tombstones.get(msgid)
        return until is not None and until > self._clock()

    def frame_waits(self, ex: Exchange, version: int, waiter: FrameWaiter) -> bool:
        """:meth:`Exchange.when_served`, settled anyway ``POLL_WAIT`` s from now (by the sweeper)."""
        if not ex.when_served(version, waiter):
            return False
        self._frame_deadlines.append((trio.current_time() + POLL_WAIT, ex, version))
        self._wake_sweeper()
        return True

    def _wake_sweeper(self) -> None:
        if self._frames_added is not None:
            self._frames_added.set()
            self._frames_added = None

    def post_settled(self, settled: list[Settled]) -> None:
        """Send the settlements of served frames to SessionStreams without waiting (called
        while an answer is built); what the full mailbox has no room for, the sweeper sends."""
        if self.settlements is None:
            return
        if not self._backlog:
            try:
                self.settlements.send_nowait(settled)
                return
            except trio.WouldBlock:
                pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # SessionStreams is stopping: nothing waits any more
        self._backlog.extend(settled)  # (order does not matter: a stream keeps the highest version)
        self._wake_sweeper()

    def expire_frames(self) -> None:
        """Settle the frames that have waited ``POLL_WAIT`` s without being served."""
        now = trio.current_time()
        pending = self._frame_deadlines
        while pending and pending[0][0] <= now:
            _, ex, version = pending.popleft()
            ex.settle_upto(version)

    def add(self, exchange: Exchange) -> None:
        self._by_req[exchange.req_id] = exchange
        exchange.on_served = self._wake_served
        exchange.on_settled = self.post_settled
        if not exchange.is_event:
            self._by_stream[exchange.stream_id] = exchange

    # --- refresh polls -----------------------------------------------------------------------

    def refresh(self, stream_id: str) -> bytes:
        """The answer to a refresh poll: the stream's latest snapshot.

        An unknown or evicted stream id gets ``finish=true`` with empty content (docs/webhook.md).
        A stream still running ``STREAM_CUTOFF_SECONDS`` after its message is finished now.
        """
        self.counts["refreshes"] += 1
        ex = self._by_stream.get(stream_id)
        if ex is None or ex.phase is not Phase.STREAM:
            self.counts["unknown_refreshes"] += 1
            return encode_body(stream_reply(stream_id, "", True))
        if not ex.finish and self._clock() - ex.created >= STREAM_CUTOFF_SECONDS:
            self.counts["cut_off"] += 1
            log.warning(
                "stream %s: still running %.0f s after its message; finishing it with what exists",
                stream_id,
                self._clock() - ex.created,
            )
            ex.cut_off()
        return ex.stream_answer()

    def _wake_served(self) -> None:
        if self._served is not None:
            self._served.set()
            self._served = None

    async def wait_streams_delivered(self) -> None:
        """Wait until every finished stream's final snapshot has been sent whole to WeCom."""
        while any(
            ex.phase is Phase.STREAM and ex.finish and not ex.final_served and not ex.closed
            for ex in self._by_req.values()
        ):
            if self._served is None:
                self._served = trio.Event()
            await self._served.wait()

    # --- eviction ------------------------------------------------------------------------------

    def sweep(self) -> None:
        now = self._clock()
        for ex in list(self._by_req.values()):
            age = now - ex.created
            if (ex.handler_done and age >= KEEP_SECONDS) or (not ex.dispatched and age >= HARD_KEEP_SECONDS):
                self._evict(ex)
        if self._tombstones:
            self._tombstones = {m: t for m, t in self._tombstones.items() if t > now}
        if self.on_sweep is not None:
            self.on_sweep()

    def _evict(self, ex: Exchange) -> None:
        self.counts["evicted"] += 1
        del self._by_req[ex.req_id]
        if self._by_stream.get(ex.stream_id) is ex:
            del self._by_stream[ex.stream_id]
        ex.closed = True
        ex._wake_frames()
        self._tombstones[ex.req_id] = ex.created + self.tombstone_seconds

    async def run_sweeper(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Evict old state every ``SWEEP_INTERVAL`` seconds (``sleep_until`` arithmetic, no drift)
        and settle frames past ``POLL_WAIT`` (at most ``POLL_WAIT_SLACK`` late, in batches)."""
        task_status.started()
        next_sweep = trio.current_time() + SWEEP_INTERVAL
        while True:
            if self._backlog and self.settlements is not None:
                backlog, self._backlog = self._backlog, []
                try:
                    await self.settlements.send(backlog)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # SessionStreams is stopping
                continue
            if self._frame_deadlines:
                await trio.sleep_until(min(next_sweep, self._frame_deadlines[0][0] + POLL_WAIT_SLACK))
            else:
                self._frames_added = trio.Event()
                with trio.move_on_at(next_sweep):
                    await self._frames_added.wait()
                self._frames_added = None
            self.expire_frames()
            if trio.current_time() >= next_sweep:
                next_sweep += SWEEP_INTERVAL
                self.sweep()
