"""SessionStreams: the bot-wide actor that owns every streamed reply's state.

:class:`~.sessions.ReplyStream` handles post ops here (``open``, ``append``, ``set``,
``stage``, ``flush``, ``finish``); this actor alone holds each stream's state
(:class:`~.streamstate.StreamState`): the whole text so far, coalescing (one frame in flight,
ack-paced, at most one frame per ``min_interval``), the 6-minute window, the 20480-byte budget,
the card and images, and the final frame's bounded retries. The frames of one batch go to the
:class:`~.renderer.ReplyRenderer` as one list; their settlements come back to this mailbox as
lists of objects with ``token`` and ``error``. ``flush`` and ``finish`` are answered on the
one-shot channel their op carries; ``finish`` is answered with the parts still to go out as
proactive messages (continuations, stale req_ids), which the finishing handler's task sends.

Both modes use this actor. On the long connection a frame is a request: one in flight per
stream, the next one sent when its ack settles it. In webhook mode a frame replaces the snapshot
WeCom's refresh polls are answered from (the channel says ``frames_supersede``): frames go out
as the text grows, at most one per ``min_interval``, without waiting for a poll; a frame settles
when an answer carried it (``flush()`` waits for that), so every poll carries the text appended
until about ``min_interval`` before it.

The actor also keeps one timer heap (coalescing pauses, windows), run in its own task.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import trio

from .errors import AckError, RequestError, StaleReply
from .mailbox import MailboxStatistics, fill, mailbox_statistics
from .protocol.limits import ErrCode
from .protocol.replies import MsgItem
from .render import first_part, split_content
from .renderer import ReplyRenderer
from .streamstate import CONTINUED_NOTE, StreamState

__all__ = ["MAILBOX_SIZE", "SessionStreams", "Timer"]

log = logging.getLogger("wecom_actors.sessions")

#: The SessionStreams mailbox: ops from ReplyStream handles and lists of frame settlements.
MAILBOX_SIZE = 4096
#: How soon frames the renderer had no room for are offered again.
RETRY_UNSENT = 0.005

#: A timer in the heap: ``[when, seq, callback]``; a cancelled one has ``callback = None`` and
#: is skipped (and compacted away) instead of being searched for.
Timer = list[Any]

#: Settlement kinds (the second item of a frame's token).
_FRAME, _FINAL, _WINDOW = 0, 1, 2


def as_stale(error: BaseException | None) -> BaseException | None:
    """846605 (invalid req_id) means WeCom no longer takes frames on it: a StaleReply."""
    if isinstance(error, AckError) and error.errcode == ErrCode.INVALID_REQ_ID:
        return StaleReply(str(error), errcode=error.errcode, errmsg=error.errmsg)
    return error


class SessionStreams:
    """The bot-wide actor that owns every stream (see the module docstring).

    A timer that can no longer matter (its stream finished) is cancelled at once: it stops
    counting and holding its stream, and cancelled entries are compacted out of the heap once
    they are the majority, so memory follows the streams in flight, not the streams served.
    """

    #: Compact the heap when more than this many cancelled entries make up over half of it.
    COMPACT_MIN = 64

    def __init__(self) -> None:
        self.mailbox, self._rx = trio.open_memory_channel[Any](MAILBOX_SIZE)
        self.renderer = ReplyRenderer(self.mailbox)
        self._streams: dict[int, StreamState] = {}
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._live = 0
        self._cancelled = 0
        self._frames: list[Any] = []  # frames for the renderer, sent at the end of a batch
        self.batches = self.messages = 0
        self.timers_fired = 0
        self.window_cuts = 0  # streams finished early at the 6-minute window
        self.replies_sent = 0  # streamed replies delivered whole (final frame or fallback)

    # --- timers ------------------------------------------------------------------------------------

    def _call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback()`` (synchronous, quick, never raising) in this actor's task at trio
        time ``when``; the returned handle goes to :meth:`_cancel`. Called only from this
        actor's own batch, after which it reads the heap again before it sleeps."""
        timer: Timer = [when, next(self._seq), callback]
        heapq.heappush(self._heap, timer)
        self._live += 1
        return timer

    def _cancel(self, timer: Timer | None) -> None:
        """Forget ``timer`` (a no-op if it fired or was cancelled already)."""
        if timer is None or timer[2] is None:
            return
        timer[2] = None
        self._live -= 1
        self._cancelled += 1
        heap = self._heap
        if self._cancelled > self.COMPACT_MIN and 2 * self._cancelled > len(heap):
            heap[:] = [t for t in heap if t[2] is not None]
            heapq.heapify(heap)
            self._cancelled = 0

    @property
    def pending_timers(self) -> int:
        """Timers that may still fire (cancelled ones not counted)."""
        return self._live

    def mailbox_statistics(self) -> MailboxStatistics:
        return mailbox_statistics(self._rx, self.batches, self.messages)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.renderer.run)
            task_status.started()
            rx = self._rx
            while True:
                # One cancel scope per timer that fires, not per wake-up: its deadline follows
                # the heap; when it passes, the scope is left, due timers run, and a new one is
                # entered.
                with trio.CancelScope() as sleep:
                    wake_at = math.inf
                    while True:
                        deadline = self._next_deadline()
                        if deadline != wake_at:  # (setting a deadline costs even when unchanged)
                            sleep.deadline = wake_at = deadline
                        first = await rx.receive()
                        self._work(fill(rx, [first]))
                self._work(fill(rx, []))

    def _next_deadline(self) -> float:
        heap = self._heap
        while heap and heap[0][2] is None:  # cancelled: never wake up for it
            heapq.heappop(heap)
            self._cancelled -= 1
        deadline: float = heap[0][0] if heap else math.inf
        if self._frames:
            deadline = min(deadline, trio.current_time() + RETRY_UNSENT)
        return deadline

    def _work(self, batch: list[Any]) -> None:
        """One batch: ops and settlements, then the timers that are due, then the frames."""
        self.batches += 1
        self.messages += len(batch)
        now = trio.current_time()
        for message in batch:
            if type(message) is list:
                for settled in message:
                    self._settled(settled.token, as_stale(settled.error), now)
            else:
                self._op(message, now)
        heap = self._heap
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)
            callback = timer[2]
            if callback is None:
                self._cancelled -= 1
                continue
            timer[2] = None
            self._live -= 1
            self.timers_fired += 1
            callback()
        self._send_frames()

    def _set_timer(self, st: StreamState, kind: int, when: float) -> None:
        self._clear_timer(st, kind)
        if kind == _FRAME:
            st.timer_at = when
            st.timer = self._call_at(when, partial(self._on_timer, st))
        else:
            st.window_timer = self._call_at(when, partial(self._on_window, st))

    def _clear_timer(self, st: StreamState, kind: int) -> None:
        if kind == _FRAME:
            st.timer_at = math.inf
            self._cancel(st.timer)
            st.timer = None
        else:
            self._cancel(st.window_timer)
            st.window_timer = None

    def _on_timer(self, st: StreamState) -> None:
        st.timer_at = math.inf
        st.timer = None
        self._pump(st, trio.current_time())

    def _on_window(self, st: StreamState) -> None:
        st.window_timer = None
        self._at_window(st, trio.current_time())

    # --- ops from ReplyStream handles -------------------------------------------------------------

    def _op(self, op: tuple[Any, ...], now: float) -> None:
        code, key = op[0], op[1]
        if code == "open":
            self._streams[key] = StreamState(key, *op[2:])
            return
        if code == "served":  # a finished stream's continuation messages went out
            self.replies_sent += 1
            return
        st = self._streams.get(key)
        if st is None:
            # A handle only posts to its own open stream: this is a bug, but it must cost that
            # op, not every other stream of the bot.
            log.error("SessionStreams: an op %r for a stream it does not know", code)
            return
        if code == "append":
            st.append(op[2], op[3])
            self._pump(st, now)
        elif code == "set":
            st.set(op[2], op[3])
            self._pump(st, now)
        elif code == "stage":  # the whole text, sent by the final frame alone
            st.set(op[2], op[3])
        elif code == "flush":
            st.card_op(op[3])
            st.flushes.append((st.version, op[2]))
            self._pump(st, now)
            self._answer_flushes(st)
        elif code == "finish":
            _, _, suffix, msg_items, card, reply = op
            st.card_op(card)
            st.closing = True
            st.finish = (suffix, msg_items, reply)
            self._clear_timer(st, _FRAME)
            self._clear_timer(st, _WINDOW)  # nothing delayed can matter: the final frame carries all
            self._answer_flushes(st)
            self._try_final(st, now)
        else:
            log.error("SessionStreams: an unknown op %r", code)

    def _answer_flushes(self, st: StreamState) -> None:
        waiting = []
        for target, reply in st.flushes:
            if st.delivered_version >= target or st.stale or st.closing:
                _answer(reply, st.frames_sent)
            else:
                waiting.append((target, reply))
        st.flushes = waiting

    # --- frames ------------------------------------------------------------------------------------

    def _pump(self, st: StreamState, now: float) -> None:
        """Send the text waiting, now if nothing is in flight and the pause is over, else later."""
        if st.closing or st.stale or st.in_flight or st.sent_version == st.version:
            return  # (in_flight stays False on a channel whose frames supersede each other)
        if now >= st.window_deadline:
            self._at_window(st, now)
            return
        due = st.last_sent + st.min_interval
        if now < due:
            if due < st.timer_at:
                self._set_timer(st, _FRAME, due)
            return
        self._clear_timer(st, _FRAME)
        st.sent_version = st.version
        st.last_sent = now
        st.in_flight = not st.supersede
        self._frame(st, first_part(st.text(), st.content_limit), False, None, _FRAME, st.version, now)

    def _frame(
        self, st: StreamState, content: str, finish: bool, msg_items: list[MsgItem] | None, kind: int, version: int, now: float
    ) -> None:
        first = st.frames_sent == 0
        st.frames_sent += 1
        if first:
            st.window_deadline = now + st.window
            self._set_timer(st, _WINDOW, st.window_deadline)  # cleared when the stream closes
        card = None
        if st.card is not None and not st.card_sent:
            card, st.card_sent = st.card, True  # at most once per message
        feedback_id = st.feedback_id if first else None
        items = msg_items if finish and msg_items else None
        self._frames.append((st.channel, st.stream_id, content, finish, feedback_id, items, card, (st.key, kind, version)))

    def _send_frames(self) -> None:
        frames = self._frames
        if not frames:
            return
        try:
            self.renderer.mailbox.send_nowait(frames)
        except trio.WouldBlock:
            return  # kept (one frame per stream at most) and offered again shortly
        self._frames = []

    def _settled(self, token: tuple[int, int, int], error: BaseException | None, now: float) -> None:
        key, kind, version = token
        st = self._streams.get(key)
        if st is None:
            return  # a superseded frame of a stream that is over
        if kind == _FRAME:
            self._frame_done(st, version, error, now)
        elif kind == _FINAL:
            self._final_done(st, error, now)
        else:
            self._window_done(st, error, now)

    def _frame_done(self, st: StreamState, version: int, error: BaseException | None, now: float) -> None:
        st.in_flight = False
        if error is not None and st.closing:
            # An intermediate frame overtaken by the final one (webhook snapshots): moot now.
            log.debug("stream %s: a superseded frame was refused: %s", st.stream_id, error)
        elif isinstance(error, StaleReply):
            # WeCom no longer takes frames on this req_id: the final text goes out as a
            # proactive message when the stream finishes.
            st.stale = True
            log.warning("stream %s: req_id no longer accepted; final text will be pushed", st.stream_id)
        elif error is not None:
            log.warning("stream %s: an intermediate frame failed: %s", st.stream_id, error)
        st.delivered_version = max(st.delivered_version, version)
        self._answer_flushes(st)
        if st.cut == -1 and not st.window_sent:
            self._window_frame(st, now)
        elif st.finish is not None:
            self._try_final(st, now)
        else:
            self._pump(st, now)

    # --- the 6-minute window -----------------------------------------------------------------------

    def _at_window(self, st: StreamState, now: float) -> None:
        if st.closing or st.cut is not None or now < st.window_deadline:
            return
        st.cut = -1  # claimed; the real cut is set when the final frame goes out
        if not st.in_flight:
            self._window_frame(st, now)

    def _window_frame(self, st: StreamState, now: float) -> None:
        """The handler still runs as the 6-minute window closes: finish the stream with what
        exists now; the rest goes out as continuation messages when the handler is done."""
        shown = first_part(st.text(), st.content_limit - len(CONTINUED_NOTE.encode()))
        st.cut = len(shown)
        st.window_sent = True
        st.final_content = shown + CONTINUED_NOTE
        st.attempts = 1
        self.window_cuts += 1
        log.warning("stream %s: finishing at the 6-minute window; the rest follows as messages", st.stream_id)
        self._frame(st, st.final_content, True, None, _WINDOW, st.version, now)

    def _window_done(self, st: StreamState, error: BaseException | None, now: float) -> None:
        if error is not None and self._retry(st, error):
            self._frame(st, st.final_content, True, None, _WINDOW, st.version, now)
            return
        if isinstance(error, StaleReply):
            # The req_id is no longer accepted: what the window frame showed goes out as a
            # message first, when the handler finishes.
            log.warning("stream %s: req_id no longer accepted at the window; its text will be pushed", st.stream_id)
            st.rest = [st.final_content]
        elif error is not None:
            log.error("stream %s: finishing at the window failed: %s", st.stream_id, error)
        st.stale = True  # later text goes out through the fallback
        self._answer_flushes(st)
        if st.finish is not None:
            self._try_final(st, now)

    # --- finishing -----------------------------------------------------------------------------------

    def _try_final(self, st: StreamState, now: float) -> None:
        if st.finish is None or st.final_started:
            return
        if st.in_flight:
            return  # the frame in flight first: one frame at a time (called again when it settles)
        if st.cut == -1:
            return  # finishing at the window right now: let it complete
        st.final_started = True
        suffix, msg_items, _ = st.finish
        text = st.text() + suffix
        if st.cut is not None:  # finished early at the window: the rest follows as messages
            rest = text[st.cut :]
            self._end(st, "push", st.rest + (split_content(rest, st.content_limit) if rest else []))
            return
        parts = split_content(text, st.content_limit)
        if st.stale:
            self._end(st, "push", parts)
            return
        st.final_content, st.rest = parts[0], parts[1:]
        st.attempts = 1
        self._frame(st, st.final_content, True, msg_items, _FINAL, st.version, now)

    def _final_done(self, st: StreamState, error: BaseException | None, now: float) -> None:
        if error is None:
            self._end(st, "push", st.rest)
        elif isinstance(error, StaleReply):
            log.warning("stream %s: req_id no longer accepted; sending the whole text as a message", st.stream_id)
            self._end(st, "push", [st.final_content, *st.rest])
        elif self._retry(st, error):
            log.warning("stream %s: final frame failed (%s); sending it again", st.stream_id, error)
            assert st.finish is not None
            self._frame(st, st.final_content, True, st.finish[1], _FINAL, st.version, now)
        else:
            self._end(st, "failed", error)

    def _retry(self, st: StreamState, error: BaseException) -> bool:
        """Send a final frame again? Not past the bound, and not when rate-limited (45009):
        sending again at once would not help."""
        if not isinstance(error, RequestError) or isinstance(error, StaleReply):
            return False
        if st.attempts >= st.max_final_attempts or getattr(error, "errcode", None) == 45009:
            return False
        st.attempts += 1
        return True

    def _end(self, st: StreamState, outcome: str, value: object) -> None:
        """The stream is over: forget it (and its timers), answer the finishing handler."""
        self._clear_timer(st, _FRAME)
        self._clear_timer(st, _WINDOW)
        del self._streams[st.key]
        assert st.finish is not None
        if outcome == "push" and not value:
            self.replies_sent += 1  # delivered whole; else once the handle sent the rest
        _answer(st.finish[2], (outcome, value, st.frames_sent))
        st.finish = None


def _answer(reply: trio.MemorySendChannel[Any], value: object) -> None:
    try:
        reply.send_nowait(value)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the handler stopped waiting (cancelled)
