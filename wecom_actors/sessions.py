"""SessionStreams: one WeCom stream per reply, coalesced frames, always finished.

A :class:`ReplyStream` keeps the whole text so far (content is full-replace on the wire, so
every frame carries all of it and the final frame repeats it: an empty final frame would wipe
the answer). Appends are coalesced: a flusher sends at most one frame at a time (ack-paced) and
no more often than ``min_interval``. The final frame is sent again on an unexpected error a
bounded number of times; when WeCom no longer accepts the req_id (846605 after a reconnect), the
text goes out once as a proactive message to the same chat instead (``ReplyChannel.fallback``).

Mode-specific delivery sits behind :class:`ReplyChannel` (long connection: correlator frames;
webhook: snapshots served to refresh polls).
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

import trio

from .errors import ReplyFailed, RequestError, StaleReply
from .protocol.limits import MAX_CONTENT_BYTES, STREAM_WINDOW_SECONDS
from .protocol.replies import MsgItem, TemplateCard, UpdateCardReply
from .render import first_part, split_content

__all__ = ["CONTINUED_NOTE", "WINDOW_MARGIN", "ReplyChannel", "ReplyStream"]

#: A stream is finished this long before WeCom's 6-minute window closes if its handler still runs.
WINDOW_MARGIN = 30.0
#: Shown at the end of a stream cut at the window; the rest follows as a message.
CONTINUED_NOTE = "\n\n(continued in the next message)"

log = logging.getLogger("wecom_actors.sessions")


class ReplyChannel(Protocol):
    """How replies to one inbound message or event reach WeCom in the active mode."""

    async def stream_frame(
        self,
        stream_id: str,
        content: str,
        finish: bool,
        *,
        feedback_id: str | None = None,
        msg_items: list[MsgItem] | None = None,
        card: TemplateCard | None = None,
    ) -> None:
        """Deliver one stream frame; raises StaleReply or another RequestError."""
        ...

    async def reply(self, body: object) -> None:
        """A one-shot reply to a message (markdown, template card, media)."""
        ...

    async def welcome(self, body: object) -> None: ...

    async def update_card(self, body: UpdateCardReply) -> None: ...

    async def fallback(self, text: str) -> None:
        """Deliver ``text`` as a proactive message to the same chat (continuations, stale
        streams); raises RequestError."""
        ...


class ReplyStream:
    """One streamed reply. Use through ``Turn.stream()``; not constructed by users."""

    def __init__(
        self,
        channel: ReplyChannel,
        stream_id: str,
        *,
        min_interval: float = 0.1,
        feedback_id: str | None = None,
        max_final_attempts: int = 3,
        content_limit: int = MAX_CONTENT_BYTES,
        window: float = STREAM_WINDOW_SECONDS - WINDOW_MARGIN,
    ) -> None:
        self._channel = channel
        self.stream_id = stream_id
        self.min_interval = min_interval
        self.feedback_id = feedback_id
        self.max_final_attempts = max_final_attempts
        self.content_limit = content_limit
        self.window = window
        self._window_deadline = math.inf  # set by the first frame
        self._cut: int | None = None  # chars of content already delivered by an early finish
        self._parts: list[str] = []
        self._content = ""
        self._version = 0
        self._delivered_version = 0
        self._frames_sent = 0
        self._dirty = trio.Event()
        self._delivered = trio.Event()
        self._closing = False
        self._stale = False
        self._last_sent = -math.inf
        self._pause = trio.CancelScope()
        self.msg_items: list[MsgItem] = []
        self.card: TemplateCard | None = None
        self._card_sent = False
        self.finished = False
        self.failed = False

    @property
    def content(self) -> str:
        if self._parts:
            self._content += "".join(self._parts)
            self._parts.clear()
        return self._content

    @property
    def frames_sent(self) -> int:
        return self._frames_sent

    async def append(self, text: str) -> None:
        """Add ``text`` to the reply; it reaches the user with the next coalesced frame."""
        if self._closing:
            raise RuntimeError("the stream is finished")
        if text:
            self._parts.append(text)
            self._version += 1
            self._dirty.set()
        await trio.lowlevel.checkpoint()

    async def set(self, text: str) -> None:
        """Replace the whole reply text."""
        if self._closing:
            raise RuntimeError("the stream is finished")
        self._parts.clear()
        self._content = text
        self._version += 1
        self._dirty.set()
        await trio.lowlevel.checkpoint()

    def attach_card(self, card: TemplateCard) -> None:
        """Send ``card`` with the stream (stream_with_template_card), once per message."""
        if self.card is not None:
            raise RuntimeError("a stream carries at most one template card")
        self.card = card

    async def flush(self) -> None:
        """Wait until everything appended so far has been delivered in a frame."""
        target = self._version
        while self._delivered_version < target and not self._stale and not self._closing:
            self._dirty.set()
            await self._delivered.wait()

    # --- driven by Turn.stream() -------------------------------------------------------------

    async def run_flusher(self) -> None:
        while True:
            with trio.move_on_at(self._window_deadline):
                await self._dirty.wait()
            if self._closing:
                return
            if trio.current_time() >= self._window_deadline:
                await self._finish_at_window()
                return
            self._dirty = trio.Event()
            # Coalescing pause; closing ends it at once (the final frame must not wait).
            pause_until = min(self._last_sent + self.min_interval, self._window_deadline)
            if pause_until > trio.current_time():
                with trio.CancelScope(deadline=pause_until) as self._pause:
                    await trio.sleep_forever()
            if self._closing:
                return
            if self._stale:
                continue
            version, content = self._version, self.content
            try:
                await self._send(first_part(content, self.content_limit), finish=False)
            except StaleReply:
                # WeCom no longer takes frames on this req_id: the final text goes out as a
                # proactive message when the stream finishes.
                self._stale = True
                log.warning("stream %s: req_id no longer accepted; final text will be pushed", self.stream_id)
            except RequestError as exc:
                log.warning("stream %s: an intermediate frame failed: %s", self.stream_id, exc)
            self._last_sent = trio.current_time()
            self._delivered_version = version
            self._delivered.set()
            self._delivered = trio.Event()

    async def _finish_at_window(self) -> None:
        """The handler still runs as the 6-minute window closes: finish the stream with what
        exists now; the rest goes out as continuation messages when the handler is done."""
        content = self.content
        shown = first_part(content, self.content_limit - len(CONTINUED_NOTE.encode()))
        self._cut = len(shown)
        log.warning("stream %s: finishing at the 6-minute window; the rest follows as messages", self.stream_id)
        try:
            await self._final_frame(shown + CONTINUED_NOTE)
        except RequestError as exc:
            log.error("stream %s: finishing at the window failed: %s", self.stream_id, exc)
        self._stale = True  # later text goes out through the fallback
        self._delivered.set()

    def begin_close(self) -> None:
        self._closing = True
        self._pause.cancel()
        self._dirty.set()
        self._delivered.set()

    async def finish(self, *, suffix: str = "") -> None:
        """Send the final frame (the whole text), then any continuation parts.

        Never raises RequestError: a reply that cannot be delivered is logged and marked
        ``failed`` (the caller counts it); cancellation still propagates.
        """
        self.begin_close()
        if self.finished:
            return
        self.finished = True
        text = self.content + suffix
        try:
            if self._cut is not None:  # finished early at the window: the rest follows as messages
                rest = text[self._cut :]
                for part in split_content(rest, self.content_limit) if rest else []:
                    await self._channel.fallback(part)
                return
            parts = split_content(text, self.content_limit)
            if self._stale:
                for part in split_content(text, self.content_limit):
                    await self._channel.fallback(part)
            else:
                await self._final_frame(parts[0])
                for part in parts[1:]:
                    await self._channel.fallback(part)
        except RequestError as exc:
            self.failed = True
            raise ReplyFailed(f"stream {self.stream_id}: reply not delivered: {exc}") from exc

    async def _final_frame(self, content: str) -> None:
        for attempt in range(1, self.max_final_attempts + 1):
            try:
                await self._send(content, finish=True)
                return
            except StaleReply:
                log.warning(
                    "stream %s: req_id no longer accepted; sending the whole text as a message",
                    self.stream_id,
                )
                await self._channel.fallback(content)
                return
            except RequestError as exc:
                if attempt == self.max_final_attempts:
                    raise
                log.warning("stream %s: final frame failed (%s); sending it again", self.stream_id, exc)

    async def _send(self, content: str, *, finish: bool) -> None:
        first = self._frames_sent == 0
        self._frames_sent += 1
        if first:
            self._window_deadline = trio.current_time() + self.window
        card = None
        if self.card is not None and not self._card_sent:
            card, self._card_sent = self.card, True  # at most once per message
        await self._channel.stream_frame(
            self.stream_id,
            content,
            finish,
            feedback_id=self.feedback_id if first else None,
            msg_items=self.msg_items if finish and self.msg_items else None,
            card=card,
        )
