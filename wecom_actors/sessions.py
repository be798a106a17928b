"""ReplyStream: the handler's handle on one streamed reply; ReplyChannel: how replies leave.

A :class:`ReplyStream` holds no stream state: ``append``/``set``/``flush``/``finish`` post ops
to the :class:`~.streamactor.SessionStreams` mailbox (``append`` and ``set`` never wait unless
the mailbox is full; ``flush`` and ``finish`` wait for their answer on a one-shot channel).
SessionStreams owns each stream's state (text, coalescing, the 6-minute window, the 20480-byte
budget, the final frame's retries); its frames go through the
:class:`~.renderer.ReplyRenderer`. When WeCom no longer accepts the req_id (846605, e.g. after a
reconnect) the text goes out once as a proactive message instead; text past the 20480-byte
budget, and text appended after the stream was finished at the window, go out as continuation
messages. Those proactive sends are made by the finishing handler's task
(``ReplyChannel.fallback``), from the parts SessionStreams answers ``finish`` with.

Mode-specific delivery sits behind :class:`ReplyChannel` (long connection: correlator requests;
webhook: snapshots served to refresh polls).
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol

import trio

from .errors import ReplyFailed, RequestError
from .mailbox import post
from .protocol.limits import MAX_CONTENT_BYTES, MAX_MSG_ITEMS, STREAM_WINDOW_SECONDS
from .protocol.replies import MsgItem, TemplateCard, UpdateCardReply
from .render import msg_item_image
from .streamactor import SessionStreams
from .streamstate import CONTINUED_NOTE, WINDOW_MARGIN

__all__ = ["CONTINUED_NOTE", "WINDOW_MARGIN", "ReplyChannel", "ReplyStream", "SessionStreams", "open_stream"]

_keys = itertools.count(1)


class ReplyChannel(Protocol):
    """How replies to one inbound message or event reach WeCom in the active mode.

    A channel may also offer ``async send_stream_frame(stream_id, content, finish, *, reply,
    token, feedback_id, msg_items, card)``: post the frame as a request whose settlement goes to
    ``reply`` (the long connection); or ``put_frame(stream_id, content, finish, *, token,
    feedback_id, msg_items, card)``: take the frame synchronously, returning its settlement or
    None when it comes later (the webhook's snapshots; such a channel sets ``frames_supersede``).
    Channels with neither get a task per frame from the ReplyRenderer.
    """

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
    """One streamed reply. Use through ``Turn.stream()``; not constructed by users.

    A handle: the stream's state lives in :class:`SessionStreams`; this object posts ops."""

    __slots__ = (
        "_answers",
        "_card",
        "_channel",
        "_closed",
        "_key",
        "_mailbox",
        "_opened",
        "_parts",
        "_staged",
        "_text",
        "card",
        "content_limit",
        "failed",
        "feedback_id",
        "finished",
        "frames_sent",
        "max_final_attempts",
        "min_interval",
        "msg_items",
        "stream_id",
        "window",
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
        self._channel = channel
        self._mailbox = streams.mailbox
        self._key = next(_keys)
        self.stream_id = stream_id
        self.min_interval = min_interval
        self.feedback_id = feedback_id
        self.max_final_attempts = max_final_attempts
        self.content_limit = content_limit
        self.window = window
        self._opened = False
        self._closed = False
        # The one-shot channel flush() was answered on, kept for the next flush() or finish()
        # (each waits for exactly one answer; one that was not answered is never reused).
        self._answers: tuple[trio.MemorySendChannel[Any], trio.MemoryReceiveChannel[Any]] | None = None
        self._parts: list[str] = []  # the handler's own text, for ``content``
        self._staged: str | None = None  # staged text, posted with the next op
        self._text = ""
        self._card: TemplateCard | None = None  # attached, not yet posted
        self.msg_items: list[MsgItem] = []
        self.card: TemplateCard | None = None
        #: Frames sent, as of the last ``flush()`` or ``finish()``.
        self.frames_sent = 0
        self.finished = False
        self.failed = False

    @property
    def content(self) -> str:
        if self._parts:
            self._text += "".join(self._parts)
            self._parts.clear()
        return self._text

    async def _post(self, op: tuple[Any, ...]) -> None:
        if not self._opened:
            self._opened = True
            opening = ("open", self._key, self._channel, self.stream_id, self.feedback_id, self.min_interval,
                       self.content_limit, self.window, self.max_final_attempts)  # fmt: skip
            await post(self._mailbox, opening)
        if self._staged is not None:
            staged, self._staged = self._staged, None
            await post(self._mailbox, ("stage", self._key, staged, None))
        await post(self._mailbox, op)

    def _take_card(self) -> TemplateCard | None:
        card, self._card = self._card, None
        return card

    async def append(self, text: str) -> None:
        """Add ``text`` to the reply; it reaches the user with the next coalesced frame.

        A cancellation point; it waits only when the SessionStreams mailbox is full.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise RuntimeError("the stream is finished")
        if text:
            self._parts.append(text)
            await self._post(("append", self._key, text, self._take_card()))

    async def set(self, text: str) -> None:
        """Replace the whole reply text."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise RuntimeError("the stream is finished")
        self._parts.clear()
        self._text = text
        self._staged = None
        await self._post(("set", self._key, text, self._take_card()))

    def stage(self, text: str) -> None:
        """Replace the whole reply text without sending a frame now: for a reply that is
        finished right after (its text then goes out in the final frame alone). Posted with
        the next op."""
        if self._closed:
            raise RuntimeError("the stream is finished")
        self._parts.clear()
        self._text = text
        self._staged = text

    def add_image(self, data: bytes) -> None:
        """Show a JPG/PNG image (raw bytes, at most 10 MB) with the final frame; at most 10."""
        if len(self.msg_items) >= MAX_MSG_ITEMS:
            raise ValueError(f"a stream carries at most {MAX_MSG_ITEMS} images")
        self.msg_items.append(msg_item_image(data))

    def attach_card(self, card: TemplateCard) -> None:
        """Send ``card`` with the stream (stream_with_template_card), once per message: it
        rides on the next frame."""
        if self.card is not None:
            raise RuntimeError("a stream carries at most one template card")
        self.card = self._card = card

    async def flush(self) -> None:
        """Wait until everything appended so far has been delivered in a frame."""
        if self._closed:
            return
        reply, answer = self._answers or trio.open_memory_channel[Any](1)
        self._answers = None  # taken: a concurrent flush() makes its own
        try:
            await self._post(("flush", self._key, reply, self._take_card()))
            self.frames_sent = await answer.receive()
        except BaseException:
            answer.close()  # not answered (cancelled): a late answer goes nowhere; never reused
            raise
        self._answers = (reply, answer)  # answered: the one-shot channel can serve finish() too

    async def finish(self, *, suffix: str = "") -> None:
        """Send the final frame (the whole text), then any continuation parts.

        Raises :class:`ReplyFailed` when the reply could not be delivered after the bounded
        retries (the stream is marked ``failed``); cancellation propagates.
        """
        self._closed = True
        if self.finished:
            return
        self.finished = True
        reply, answer = self._answers or trio.open_memory_channel[Any](1)
        self._answers = None
        with answer:
            await self._post(("finish", self._key, suffix, self.msg_items, self._take_card(), reply))
            outcome, value, self.frames_sent = await answer.receive()
        try:
            if outcome == "failed":
                raise value
            if value:
                for part in value:
                    await self._channel.fallback(part)
                await post(self._mailbox, ("served", self._key))
        except RequestError as exc:
            self.failed = True
            raise ReplyFailed(f"stream {self.stream_id}: reply not delivered: {exc}") from exc
        finally:
            del value


def open_stream(
    channel: ReplyChannel, stream_id: str, streams: SessionStreams, *, min_interval: float, feedback_id: str | None
) -> ReplyStream:
    """A new stream's handle (its state is created in SessionStreams by its first op)."""
    return ReplyStream(channel, stream_id, streams, min_interval=min_interval, feedback_id=feedback_id)
