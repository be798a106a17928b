"""Inbound message and event callbacks (sans-IO), shared by both modes.

The body of an ``aibot_msg_callback``/``aibot_event_callback`` frame (long connection) and the
decrypted JSON of a webhook POST are the same objects. :func:`decode_callback` peeks at
``msgtype`` (and ``event.eventtype``) and decodes with a decoder built once per type. An unknown
``msgtype`` or ``eventtype`` decodes to :class:`UnknownMessage` / :class:`UnknownEvent`, keeping the
raw bytes; malformed input raises :class:`~wecom_actors.errors.FrameError`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ..errors import FrameError
from .frames import Int64

__all__ = [
    "DisconnectedEvent",
    "EnterChatEvent",
    "EventMessage",
    "FeedbackEvent",
    "FileMessage",
    "ImageMessage",
    "InboundMessage",
    "MediaRef",
    "MixedItem",
    "MixedMessage",
    "Quote",
    "Sender",
    "StreamRefresh",
    "TemplateCardEvent",
    "TextMessage",
    "UnknownEvent",
    "UnknownMessage",
    "VideoMessage",
    "VoiceMessage",
    "decode_callback",
]


class Sender(msgspec.Struct, frozen=True):
    userid: str = ""
    corpid: str | None = None


class TextContent(msgspec.Struct, frozen=True):
    content: str = ""


class MediaRef(msgspec.Struct, frozen=True):
    """A media URL (valid 5 minutes); ``aeskey`` only in long-connection mode."""

    url: str = ""
    aeskey: str | None = None


class MixedItem(msgspec.Struct, frozen=True):
    msgtype: str
    text: TextContent | None = None
    image: MediaRef | None = None


class MixedContent(msgspec.Struct, frozen=True):
    msg_item: list[MixedItem] = []


class Quote(msgspec.Struct, frozen=True):
    msgtype: str = ""
    text: TextContent | None = None
    image: MediaRef | None = None
    mixed: MixedContent | None = None
    voice: TextContent | None = None
    file: MediaRef | None = None
    video: MediaRef | None = None


class StreamId(msgspec.Struct, frozen=True):
    id: str = ""


class _Base(msgspec.Struct, frozen=True, kw_only=True):
    """Fields every callback body carries (some only in some cases)."""

    msgid: str = ""
    aibotid: str = ""
    chatid: str | None = None
    chattype: str | None = None
    from_: Sender = msgspec.field(default=Sender(), name="from")
    create_time: Int64 | None = None
    response_url: str | None = None

    @property
    def userid(self) -> str:
        return self.from_.userid

    @property
    def is_group(self) -> bool:
        return self.chattype == "group"

    @property
    def conversation(self) -> str:
        """The session key and push target: chatid for a group, the sender's userid otherwise."""
        if self.chattype == "group" and self.chatid:
            return self.chatid
        return self.from_.userid


class TextMessage(_Base, frozen=True, kw_only=True):
    msgtype: Literal["text"] = "text"
    text: TextContent = TextContent()
    quote: Quote | None = None


class ImageMessage(_Base, frozen=True, kw_only=True):
    msgtype: Literal["image"] = "image"
    image: MediaRef = MediaRef()
    quote: Quote | None = None


class MixedMessage(_Base, frozen=True, kw_only=True):
    msgtype: Literal["mixed"] = "mixed"
    mixed: MixedContent = MixedContent()
    quote: Quote | None = None


class VoiceMessage(_Base, frozen=True, kw_only=True):
    msgtype: Literal["voice"] = "voice"
    voice: TextContent = TextContent()
    quote: Quote | None = None


class FileMessage(_Base, frozen=True, kw_only=True):
    msgtype: Literal["file"] = "file"
    file: MediaRef = MediaRef()
    quote: Quote | None = None


class VideoMessage(_Base, frozen=True, kw_only=True):
    msgtype: Literal["video"] = "video"
    video: MediaRef = MediaRef()
    quote: Quote | None = None


class StreamRefresh(_Base, frozen=True, kw_only=True):
    """Webhook mode only: WeCom polls for the latest content of stream ``stream.id``."""

    msgtype: Literal["stream"] = "stream"
    stream: StreamId = StreamId()


class UnknownMessage(_Base, frozen=True, kw_only=True):
    """A callback whose ``msgtype`` this version does not know; ``raw`` is the whole body."""

    msgtype: str = ""
    raw: bytes = b""


# --- events --------------------------------------------------------------------------------------


class _EventBase(_Base, frozen=True, kw_only=True):
    msgtype: Literal["event"] = "event"


class EventMessage(_EventBase, frozen=True, kw_only=True):
    """Marker base of every event callback; ``eventtype`` says which."""

    @property
    def eventtype(self) -> str:  # overridden by a field in subclasses
        raise NotImplementedError


class _EnterChatBody(msgspec.Struct, frozen=True):
    eventtype: str = "enter_chat"


class EnterChatEvent(EventMessage, frozen=True, kw_only=True):
    """The user opened the single chat with the bot (first time that day)."""

    event: _EnterChatBody = _EnterChatBody()

    @property
    def eventtype(self) -> str:
        return "enter_chat"


class OptionIds(msgspec.Struct, frozen=True):
    option_id: list[str] = []


class SelectedItem(msgspec.Struct, frozen=True):
    question_key: str = ""
    option_ids: OptionIds = OptionIds()


class SelectedItems(msgspec.Struct, frozen=True):
    selected_item: list[SelectedItem] = []


class TemplateCardEventData(msgspec.Struct, frozen=True):
    card_type: str | None = None
    event_key: str | None = None
    task_id: str | None = None
    selected_items: SelectedItems | None = None


class _TemplateCardEventBody(msgspec.Struct, frozen=True):
    eventtype: str = "template_card_event"
    template_card_event: TemplateCardEventData | None = None
    # The Node SDK's typings put these directly under ``event``; WeCom's docs nest them.
    card_type: str | None = None
    event_key: str | None = None
    task_id: str | None = None
    selected_items: SelectedItems | None = None


class TemplateCardEvent(EventMessage, frozen=True, kw_only=True):
    """A card button/vote/menu click. Read fields through the properties: they take the nested
    ``event.template_card_event`` placement (official docs) and fall back to the flat one."""

    event: _TemplateCardEventBody = _TemplateCardEventBody()

    @property
    def eventtype(self) -> str:
        return "template_card_event"

    def _pick(self, name: str) -> str | None:
        nested = self.event.template_card_event
        value: str | None = getattr(nested, name) if nested is not None else None
        if value is None:
            value = getattr(self.event, name)
        return value

    @property
    def event_key(self) -> str | None:
        return self._pick("event_key")

    @property
    def task_id(self) -> str | None:
        return self._pick("task_id")

    @property
    def card_type(self) -> str | None:
        return self._pick("card_type")

    @property
    def selected_items(self) -> SelectedItems | None:
        nested = self.event.template_card_event
        if nested is not None and nested.selected_items is not None:
            return nested.selected_items
        return self.event.selected_items


class FeedbackData(msgspec.Struct, frozen=True):
    id: str = ""
    type: Int64 | None = None
    content: str | None = None
    inaccurate_reason_list: list[Int64] | None = None


class _FeedbackBody(msgspec.Struct, frozen=True):
    eventtype: str = "feedback_event"
    feedback_event: FeedbackData = FeedbackData()


class FeedbackEvent(EventMessage, frozen=True, kw_only=True):
    """The user rated a reply that carried a ``feedback.id``. No reply is allowed."""

    event: _FeedbackBody = _FeedbackBody()

    @property
    def eventtype(self) -> str:
        return "feedback_event"

    @property
    def feedback(self) -> FeedbackData:
        return self.event.feedback_event


class _DisconnectedBody(msgspec.Struct, frozen=True):
    eventtype: str = "disconnected_event"


class DisconnectedEvent(EventMessage, frozen=True, kw_only=True):
    """Long connection only: a newer connection of the same bot replaced this one."""

    event: _DisconnectedBody = _DisconnectedBody()

    @property
    def eventtype(self) -> str:
        return "disconnected_event"


class UnknownEvent(EventMessage, frozen=True, kw_only=True):
    """An event whose ``eventtype`` this version does not know; ``raw`` is the whole body."""

    unknown_eventtype: str = ""
    raw: bytes = b""

    @property
    def eventtype(self) -> str:
        return self.unknown_eventtype


InboundMessage = (
    TextMessage
    | ImageMessage
    | MixedMessage
    | VoiceMessage
    | FileMessage
    | VideoMessage
    | StreamRefresh
    | EventMessage
    | UnknownMessage
)


# --- decoding ------------------------------------------------------------------------------------


class _PeekEvent(msgspec.Struct, frozen=True):
    eventtype: str = ""
    event_type: str = ""  # a legacy spelling accepted by some clients


class _Peek(msgspec.Struct, frozen=True):
    msgtype: str = ""
    event: _PeekEvent | None = None


_peek = msgspec.json.Decoder(_Peek)
_BY_MSGTYPE: dict[str, msgspec.json.Decoder[Any]] = {
    cls.__struct_defaults__[cls.__struct_fields__.index("msgtype")]: msgspec.json.Decoder(cls)
    for cls in (TextMessage, ImageMessage, MixedMessage, VoiceMessage, FileMessage, VideoMessage, StreamRefresh)
}
_BY_EVENTTYPE: dict[str, msgspec.json.Decoder[Any]] = {
    "enter_chat": msgspec.json.Decoder(EnterChatEvent),
    "template_card_event": msgspec.json.Decoder(TemplateCardEvent),
    "feedback_event": msgspec.json.Decoder(FeedbackEvent),
    "disconnected_event": msgspec.json.Decoder(DisconnectedEvent),
}
_base_decoder = msgspec.json.Decoder(_Base)


def decode_callback(body: bytes | msgspec.Raw | str) -> InboundMessage:
    """Decode a callback body. Raises :class:`FrameError` when it is not a well-typed object."""
    try:
        peek = _peek.decode(body)
        decoder = _BY_MSGTYPE.get(peek.msgtype)
        if decoder is not None:
            message: InboundMessage = decoder.decode(body)
            return message
        if peek.msgtype == "event":
            eventtype = ""
            if peek.event is not None:
                eventtype = peek.event.eventtype or peek.event.event_type
            decoder = _BY_EVENTTYPE.get(eventtype)
            if decoder is not None:
                event: InboundMessage = decoder.decode(body)
                return event
            base = _base_decoder.decode(body)
            return UnknownEvent(**_base_fields(base), unknown_eventtype=eventtype, raw=_raw_bytes(body))
        base = _base_decoder.decode(body)
        return UnknownMessage(**_base_fields(base), msgtype=peek.msgtype, raw=_raw_bytes(body))
    except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:  # ValidationError included
        raise FrameError(f"malformed callback body: {type(exc).__name__}: {exc}") from None


def _raw_bytes(body: bytes | msgspec.Raw | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _base_fields(base: _Base) -> dict[str, Any]:
    return {name: getattr(base, name) for name in _Base.__struct_fields__}
