"""The webhook's streams: a :class:`~wecom_actors.sessions.ReplyStream` that keeps its own state.

A webhook frame is settled while the HTTP answer to a refresh poll is being built
(``WebhookReplies.stream_frame_nowait`` and ``StreamTable.settle_upto``), and the stream must put
the text appended meanwhile into the snapshot at once, inside that call, so that every answer
carries all text appended until it. A round trip through the SessionStreams mailbox would show
that text one poll late. So in webhook mode a stream's state lives in its
:class:`DirectReplyStream` and is changed by the tasks that touch it: the handler's (appends),
the HTTP task's (settlements) and the SessionStreams task's (its ``call_at`` timers: coalescing
pauses and the 6-minute window; its ``spawn`` for the rare finish at the window).

Appends are coalesced: at most one frame is in flight (settled when an answer carried it) and
frames go out no more often than ``min_interval``. The final frame carries the whole text; when
WeCom does not poll the stream, the text goes out through ``fallback`` (the response_url).
"""

from __future__ import annotations

import logging
import math
from typing import TypedDict

import trio

from ..errors import ReplyFailed, RequestError, StaleReply
from ..protocol.limits import MAX_CONTENT_BYTES, STREAM_WINDOW_SECONDS
from ..protocol.replies import MsgItem, TemplateCard
from ..render import first_part, split_content
from ..sessions import CONTINUED_NOTE, WINDOW_MARGIN, ReplyChannel, ReplyStream
from ..streamactor import SessionStreams, Timer
from .streams import FrameDone

__all__ = ["DirectReplyStream"]

log = logging.getLogger("wecom_actors.sessions")

class FrameExtras(TypedDict):
    """What a stream frame carries besides its text."""

    feedback_id: str | None
    msg_items: list[MsgItem] | None
    card: TemplateCard | None


class DirectReplyStream(ReplyStream):
    """A webhook stream: its state lives here and it runs in the tasks that touch it (see the
    module docstring)."""

    __slots__ = (
        "_card_sent",
        "_closing",
        "_content",
        "_cut",
        "_delivered",
        "_delivered_version",
        "_idle",
        "_in_flight",
        "_last_sent",
        "_nowait",
        "_sent_version",
        "_stale",
        "_streams",
        "_timer",
        "_timer_at",
        "_version",
        "_window_deadline",
        "_window_timer",
    )

    def __init__(
        self,
        channel: ReplyChannel,
        stream_id: str,
        streams: SessionStreams,
        *,
        min_interval: float = 0.1,
        feedback_id: str | None = None,
        max_final_attempts: int = 3,
        content_limit: int = MAX_CONTENT_BYTES,
        window: float = STREAM_WINDOW_SECONDS - WINDOW_MARGIN,
    ) -> None:
        # The public fields (and the handle's unused ones) as every ReplyStream has them.
        super().__init__(
            channel, stream_id, streams, min_interval=min_interval, feedback_id=feedback_id,
            max_final_attempts=max_final_attempts, content_limit=content_limit, window=window,
        )  # fmt: skip
        self._streams = streams
        self._content = ""
        self._version = 0
        self._sent_version = 0
        self._delivered_version = 0
        # Created only when somebody waits (most streams never do): see _changed().
        self._delivered: trio.Event | None = None
        self._in_flight = False
        self._idle: trio.Event | None = None  # waited on only while a frame is in flight
        self._timer_at = math.inf  # when a delayed send is scheduled
        self._timer: Timer | None = None  # that send's SessionStreams timer
        self._window_timer: Timer | None = None  # the 6-minute window's timer
        self._closing = False
        self._stale = False
        self._last_sent = -math.inf
        self._window_deadline = math.inf  # set by the first frame
        self._cut: int | None = None  # chars of content already delivered by an early finish
        self._nowait = getattr(channel, "stream_frame_nowait", None)
        self._card_sent = False

    @property
    def content(self) -> str:
        if self._parts:
            self._content += "".join(self._parts)
            self._parts.clear()
        return self._content

    async def append(self, text: str) -> None:
        """Add ``text`` to the reply; it reaches the user with the next coalesced frame.

        A cancellation point, not a schedule point: appending never waits.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closing:
            raise RuntimeError("the stream is finished")
        if text:
            self._parts.append(text)
            self._version += 1
            self._pump()

    async def set(self, text: str) -> None:
        """Replace the whole reply text."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closing:
            raise RuntimeError("the stream is finished")
        self._parts.clear()
        self._content = text
        self._version += 1
        self._pump()

    def stage(self, text: str) -> None:
        """Replace the whole reply text without sending a frame now: for a reply that is
        finished right after (its text then goes out in the final frame alone)."""
        if self._closing:
            raise RuntimeError("the stream is finished")
        self._parts.clear()
        self._content = text
        self._version += 1

    def attach_card(self, card: TemplateCard) -> None:
        """Send ``card`` with the stream (stream_with_template_card), once per message."""
        if self.card is not None:
            raise RuntimeError("a stream carries at most one template card")
        self.card = card

    async def flush(self) -> None:
        """Wait until everything appended so far has been delivered in a frame."""
        target = self._version
        while self._delivered_version < target and not self._stale and not self._closing:
            await self._wait_change()

    # --- sending -------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Send the text waiting, now if nothing is in flight and the pause is over, else later
        (the ack of the frame in flight, or a SessionStreams timer, calls this again)."""
        if self._closing or self._stale or self._in_flight or self._sent_version == self._version:
            return
        now = trio.current_time()
        if now >= self._window_deadline:
            self._at_window()
            return
        due = self._last_sent + self.min_interval
        if now < due:
            if due < self._timer_at:
                self._timer_at = due
                self._streams.cancel(self._timer)
                self._timer = self._streams.call_at(due, self._on_timer)
            return
        version = self._version
        content = first_part(self.content, self.content_limit)
        self._sent_version = version
        self._last_sent = now
        self._in_flight = True
        self._start_frame(content, finish=False, on_done=lambda error: self._frame_done(version, error))

    def _on_timer(self) -> None:
        self._timer_at = math.inf
        self._timer = None
        self._pump()

    def _frame_done(self, version: int, error: BaseException | None) -> None:
        self._in_flight = False
        if self._idle is not None:
            self._idle.set()
            self._idle = None
        if error is not None and self.finished:
            # An intermediate frame overtaken by the final one (webhook snapshots): moot now.
            log.debug("stream %s: a superseded frame was refused: %s", self.stream_id, error)
        elif isinstance(error, StaleReply):
            # WeCom no longer takes frames on this req_id: the final text goes out as a
            # proactive message when the stream finishes.
            self._stale = True
            log.warning("stream %s: req_id no longer accepted; final text will be pushed", self.stream_id)
        elif error is not None:
            log.warning("stream %s: an intermediate frame failed: %s", self.stream_id, error)
        self._delivered_version = max(self._delivered_version, version)
        self._changed()
        self._pump()

    def _start_frame(self, content: str, *, finish: bool, on_done: FrameDone) -> None:
        kwargs = self._frame_kwargs(finish)
        if self._nowait is not None:
            try:
                self._nowait(self.stream_id, content, finish, on_done=on_done, **kwargs)
                return
            except trio.WouldBlock:
                pass  # the Correlator's mailbox is full: this frame waits for room in a task

        async def send() -> None:
            try:
                await self._channel.stream_frame(self.stream_id, content, finish, **kwargs)
            except RequestError as exc:
                on_done(exc)
            except Exception as exc:
                # This task runs in the bot-wide SessionStreams nursery: a channel's bug must
                # cost this frame, not the whole bot.
                log.exception("stream %s: sending a frame failed unexpectedly", self.stream_id)
                on_done(exc)
            else:
                on_done(None)

        self._streams.spawn(send)

    def _frame_kwargs(self, finish: bool) -> FrameExtras:
        first = self.frames_sent == 0
        self.frames_sent += 1
        if first:
            self._window_deadline = trio.current_time() + self.window
            # Cancelled when the stream closes: a finished stream leaves no timer behind.
            self._window_timer = self._streams.call_at(self._window_deadline, self._on_window)
        card = None
        if self.card is not None and not self._card_sent:
            card, self._card_sent = self.card, True  # at most once per message
        return {
            "feedback_id": self.feedback_id if first else None,
            "msg_items": self.msg_items if finish and self.msg_items else None,
            "card": card,
        }

    # --- the 6-minute window -------------------------------------------------------------------

    def _on_window(self) -> None:
        self._window_timer = None
        self._at_window()

    def _at_window(self) -> None:
        if self._closing or self._cut is not None or trio.current_time() < self._window_deadline:
            return
        self._cut = -1  # claimed; the real cut is set when the final frame goes out
        self._streams.spawn(self._finish_at_window)

    async def _finish_at_window(self) -> None:
        """The handler still runs as the 6-minute window closes: finish the stream with what
        exists now; the rest goes out as continuation messages when the handler is done."""
        await self._wait_idle()
        content = self.content
        shown = first_part(content, self.content_limit - len(CONTINUED_NOTE.encode()))
        self._cut = len(shown)
        log.warning("stream %s: finishing at the 6-minute window; the rest follows as messages", self.stream_id)
        self._streams.window_cuts += 1
        try:
            await self._final_frame(shown + CONTINUED_NOTE)
        except RequestError as exc:
            log.error("stream %s: finishing at the window failed: %s", self.stream_id, exc)
        except Exception:  # runs in the bot-wide nursery: a channel's bug must not stop the bot
            log.exception("stream %s: finishing at the window failed unexpectedly", self.stream_id)
        finally:
            self._stale = True  # later text goes out through the fallback
            self._changed()

    # --- finishing -------------------------------------------------------------------------------

    def _changed(self) -> None:
        """Wake everything waiting in flush() or finish()."""
        if self._delivered is not None:
            self._delivered.set()
            self._delivered = None

    async def _wait_change(self) -> None:
        if self._delivered is None:
            self._delivered = trio.Event()
        await self._delivered.wait()

    async def _wait_idle(self) -> None:
        while self._in_flight:
            if self._idle is None:
                self._idle = trio.Event()
            await self._idle.wait()

    def begin_close(self) -> None:
        self._closing = True
        self._changed()
        # Nothing delayed can matter any more: the final frame carries everything.
        self._streams.cancel(self._timer)
        self._timer = None
        self._timer_at = math.inf
        self._streams.cancel(self._window_timer)
        self._window_timer = None

    async def finish(self, *, suffix: str = "") -> None:
        """Send the final frame (the whole text), then any continuation parts.

        Raises :class:`ReplyFailed` when the reply could not be delivered after the bounded
        retries (the stream is marked ``failed``); cancellation propagates.
        """
        self.begin_close()
        if self.finished:
            return
        self.finished = True
        if not getattr(self._channel, "frames_supersede", False):
            await self._wait_idle()  # the frame in flight first: one frame at a time
        if self._cut == -1:  # finishing at the window right now: let it complete
            while self._cut == -1:
                await self._wait_change()
        text = self.content + suffix
        try:
            if self._cut is not None:  # finished early at the window: the rest follows as messages
                rest = text[self._cut :]
                for part in split_content(rest, self.content_limit) if rest else []:
                    await self._channel.fallback(part)
                self._streams.replies_sent += 1
                return
            parts = split_content(text, self.content_limit)
            if self._stale:
                for part in parts:
                    await self._channel.fallback(part)
            else:
                await self._final_frame(parts[0])
                for part in parts[1:]:
                    await self._channel.fallback(part)
            self._streams.replies_sent += 1
        except RequestError as exc:
            self.failed = True
            raise ReplyFailed(f"stream {self.stream_id}: reply not delivered: {exc}") from exc

    async def _final_frame(self, content: str) -> None:
        for attempt in range(1, self.max_final_attempts + 1):
            try:
                await self._channel.stream_frame(self.stream_id, content, True, **self._frame_kwargs(True))
                return
            except StaleReply:
                log.warning(
                    "stream %s: req_id no longer accepted; sending the whole text as a message",
                    self.stream_id,
                )
                await self._channel.fallback(content)
                return
            except RequestError as exc:
                if attempt == self.max_final_attempts or getattr(exc, "errcode", None) == 45009:
                    raise  # out of attempts, or rate-limited: sending again at once would not help
                log.warning("stream %s: final frame failed (%s); sending it again", self.stream_id, exc)
