"""The handler API: one :class:`Turn` per inbound message or event, the same in both modes."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import trio

from ..errors import ReplyFailed, StaleReply
from ..protocol.inbound import (
    EventMessage,
    FileMessage,
    ImageMessage,
    InboundMessage,
    MixedMessage,
    TextMessage,
    VideoMessage,
    VoiceMessage,
)
from ..protocol.inbound import MediaRef as InboundMediaRef
from ..protocol.replies import (
    FileReply,
    ImageReply,
    MarkdownReply,
    MediaId,
    TemplateCard,
    TemplateCardReply,
    TextBody,
    TextReply,
    UpdateCardReply,
    VideoReply,
    VoiceReply,
)
from ..render import markdown_body, media_body, strip_mention
from ..sessions import ReplyChannel, ReplyStream, SessionStreams, open_stream

if TYPE_CHECKING:
    from ..bot import BotHandle
    from ..media import MediaPayload

__all__ = ["Handler", "Turn", "as_handler"]

log = logging.getLogger("wecom_actors.handler")

#: Text shown at the end of a reply whose handler raised.
ERROR_SUFFIX = "\n\n(Sorry, something went wrong while answering.)"
#: How long a final frame may take once its handler was cancelled (shutdown stays under 5 s).
FINAL_FRAME_BOUND = 0.9
#: Text of a reply that a shutdown interrupted.
INTERRUPTED_SUFFIX = "\n\n(Interrupted: the bot is restarting.)"



async def _finish(s: ReplyStream, suffix: str) -> None:
    try:
        await s.finish(suffix=suffix)
    except ReplyFailed as exc:
        log.error("%s", exc)

class Turn:
    """What a handler gets for one inbound message or event."""

    __slots__ = (
        "_bot_name",
        "_channel",
        "_download",
        "_min_interval",
        "_new_stream_id",
        "_streams",
        "bot",
        "message",
        "replied",
        "req_id",
        "streams",
    )

    def __init__(
        self,
        message: InboundMessage,
        *,
        req_id: str,
        channel: ReplyChannel,
        bot: BotHandle,
        new_stream_id: Callable[[str], str],
        download: Callable[[InboundMediaRef], Awaitable[MediaPayload]],
        min_interval: float,
        streams: SessionStreams,
        bot_name: str | None = None,
    ) -> None:
        self.message = message
        self.req_id = req_id
        self.bot = bot
        self._channel = channel
        self._new_stream_id = new_stream_id
        self._download = download
        self._min_interval = min_interval
        self._streams = streams
        self._bot_name = bot_name
        self.streams: list[ReplyStream] = []
        self.replied = False

    @property
    def conversation(self) -> str:
        """The chatid of a group, else the sender's userid: the session key and push target."""
        return self.message.conversation

    @property
    def text(self) -> str:
        """The text of a text, voice or mixed message, without the bot's own @mention."""
        msg = self.message
        group = msg.chattype == "group"
        if isinstance(msg, TextMessage):
            return strip_mention(msg.text.content, group=group, bot_name=self._bot_name)
        if isinstance(msg, VoiceMessage):
            return msg.voice.content
        if isinstance(msg, MixedMessage):
            texts = [item.text.content for item in msg.mixed.msg_item if item.text is not None]
            return strip_mention("\n".join(texts), group=group, bot_name=self._bot_name)
        return ""

    @property
    def is_event(self) -> bool:
        return isinstance(self.message, EventMessage)

    def media_refs(self) -> list[InboundMediaRef]:
        msg = self.message
        if isinstance(msg, ImageMessage):
            return [msg.image]
        if isinstance(msg, FileMessage):
            return [msg.file]
        if isinstance(msg, VideoMessage):
            return [msg.video]
        if isinstance(msg, MixedMessage):
            return [item.image for item in msg.mixed.msg_item if item.image is not None]
        return []

    async def download(self, ref: InboundMediaRef) -> MediaPayload:
        """Download and decrypt one media item (size-capped, private addresses refused)."""
        return await self._download(ref)

    async def media(self) -> list[MediaPayload]:
        """Every media item of the message, downloaded and decrypted, in order."""
        return [await self._download(ref) for ref in self.media_refs()]

    @asynccontextmanager
    async def stream(self, *, feedback_id: str | None = None) -> AsyncIterator[ReplyStream]:
        """One streamed reply: ``append`` text, frames are coalesced, always finished.

        When the block raises, the reply is finished with what exists plus a short error note
        and the exception propagates; when it is cancelled (shutdown), it is finished with what
        exists plus a note, shielded and bounded in time.
        """
        s = open_stream(
            self._channel,
            self._new_stream_id(self.req_id),
            self._streams,
            min_interval=self._min_interval,
            feedback_id=feedback_id,
        )
        self.streams.append(s)
        self.replied = True
        suffix = ""
        cancelled = False
        try:
            yield s
        except trio.Cancelled:
            suffix, cancelled = INTERRUPTED_SUFFIX, True
            raise
        except BaseException:
            suffix = ERROR_SUFFIX
            raise
        finally:
            # A cancelled stream still gets its final frame: shielded, and bounded in time so a
            # shutdown stays prompt. Otherwise the correlator's own timeouts bound it (and no
            # cancel scope is made: this runs once per reply).
            if cancelled:
                with trio.CancelScope(shield=True, deadline=trio.current_time() + FINAL_FRAME_BOUND):
                    await _finish(s, suffix)
            else:
                await _finish(s, suffix)

    async def reply_text(self, text: str) -> None:
        """A complete streamed reply in one frame (the final one: no frame before it)."""
        async with self.stream() as s:
            await trio.lowlevel.checkpoint_if_cancelled()
            s.stage(text)

    async def reply_markdown(self, text: str, *, feedback_id: str | None = None) -> None:
        self.replied = True
        try:
            await self._channel.reply(MarkdownReply(markdown=markdown_body(text, feedback_id)))
        except StaleReply:
            # The req_id is no longer accepted (e.g. after a reconnect): same text, as a message.
            await self._channel.fallback(text)

    async def reply_card(self, card: TemplateCard) -> None:
        self.replied = True
        await self._channel.reply(TemplateCardReply(template_card=card))

    async def reply_media(self, kind: str, media_id: str, *, title: str | None = None, description: str | None = None) -> None:
        """Reply with uploaded media: ``kind`` is file, image, voice or video (a video's title and
        description are cut to 128 / 512 bytes)."""
        self.replied = True
        ref = media_body(kind, media_id, title=title, description=description)
        body: object
        if kind == "file":
            body = FileReply(file=cast(MediaId, ref))
        elif kind == "image":
            body = ImageReply(image=cast(MediaId, ref))
        elif kind == "voice":
            body = VoiceReply(voice=cast(MediaId, ref))
        else:
            body = VideoReply(video=ref)  # type: ignore[arg-type]
        await self._channel.reply(body)

    async def welcome(self, content: str | TemplateCard) -> None:
        """Answer an enter_chat event (within 5 s of it)."""
        self.replied = True
        if isinstance(content, TemplateCard):
            await self._channel.welcome(TemplateCardReply(template_card=content))
        else:
            await self._channel.welcome(TextReply(text=TextBody(content)))

    async def update_card(self, card: TemplateCard, *, userids: list[str] | None = None) -> None:
        """Answer a template_card_event by replacing the card (within 5 s; same task_id)."""
        self.replied = True
        await self._channel.update_card(UpdateCardReply(template_card=card, userids=userids))

    async def push_markdown(self, text: str) -> None:
        """A proactive markdown message to the same chat."""
        await self._channel.fallback(text)


Handler = Callable[[Turn], Awaitable[None]]


def as_handler(handler: Callable[..., Any]) -> Handler:
    """Accept ``async def h(turn)`` or an async generator ``async def h(turn): yield "part"``.

    An async generator streams the parts it yields as one text reply; it is called for
    messages only (events are acknowledged and otherwise ignored).
    """
    if inspect.isasyncgenfunction(handler):
        gen_fn = handler

        async def streamed(turn: Turn) -> None:
            if turn.is_event:
                return
            async with turn.stream() as s:
                agen = gen_fn(turn)
                try:
                    async for part in agen:
                        await s.append(str(part))
                finally:
                    await agen.aclose()

        streamed.__name__ = getattr(handler, "__name__", "streamed")
        return streamed
    if not callable(handler):
        raise TypeError(f"a handler must be an async function, got {handler!r}")
    return handler
