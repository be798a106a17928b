"""The request bodies of the fake's control API, decoded and checked by msgspec.

Every body is a JSON object; unknown fields, wrong types and out-of-range values are refused
with a message naming the field (HTTP 400), before anything is changed.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal, TypeVar

import msgspec

__all__ = [
    "MAX_BODY",
    "MAX_MEDIA",
    "BadRequest",
    "CardClickIn",
    "EnterChatIn",
    "FaultIn",
    "FeedbackIn",
    "MessageIn",
    "MixedItemIn",
    "decode_body",
    "media_bytes",
]

_T = TypeVar("_T")

MAX_BODY = 16 * 1024 * 1024  # bytes of one request body
MAX_MEDIA = 10 * 1024 * 1024  # bytes of one decoded image / file / video
MAX_TEXT = 20480  # UTF-8 bytes WeCom allows in a message (the fake's own content limit)

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[0-9A-Za-z_.@\-]+$")]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


class BadRequest(Exception):
    """A control request that cannot be served: answered with ``status`` and a JSON error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class MixedItemIn(_In):
    type: Literal["text", "image"]
    text: Text | None = None
    data_base64: str | None = None


class MessageIn(_In):
    """``POST /api/v1/messages``: a user sends the bot a message."""

    type: Literal["text", "voice", "image", "file", "video", "mixed"]
    userid: Id = "alice"
    chatid: Id | None = None
    text: Text | None = None
    data_base64: str | None = None
    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    items: Annotated[list[MixedItemIn], msgspec.Meta(min_length=1, max_length=20)] | None = None
    mention: bool = True  # in a group, prefix "@<bot name> " unless the text mentions already


class EnterChatIn(_In):
    """``POST /api/v1/enter_chat``: the user opens the single chat with the bot."""

    userid: Id = "alice"


class CardClickIn(_In):
    """``POST /api/v1/card_click``: the user clicks a button of a template card."""

    task_id: Id
    event_key: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    userid: Id = "alice"
    chatid: Id | None = None
    selected_items: dict[str, Any] | None = None


class FeedbackIn(_In):
    """``POST /api/v1/feedback``: the user rates a reply that carried a feedback id."""

    feedback_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    type: Annotated[int, msgspec.Meta(ge=1, le=3)] = 1
    content: Text | None = None
    userid: Id = "alice"
    chatid: Id | None = None


class FaultIn(_In):
    """``POST /api/v1/faults``: break things (most kinds in long-connection mode only)."""

    kind: Literal[
        "drop", "stall", "close", "kick", "kick_second_subscriber", "ack_errors", "delay_acks",
        "drop_acks", "refuse_auth", "clear", "redeliver", "media",
    ]  # fmt: skip
    msgid: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    media: Literal["bad-padding", "not-found"] | None = None
    code: Annotated[int, msgspec.Meta(ge=1000, le=4999)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=120)] | None = None
    errcode: int | None = None
    cmd: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    count: Annotated[int, msgspec.Meta(ge=1)] | None = None
    seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] | None = None
    leave_open: bool = False


def decode_body(raw: bytes, type_: type[_T]) -> _T:
    """Decode one request body or raise :class:`BadRequest` (400) naming what is wrong."""
    if not raw.strip():
        raise BadRequest(400, "the request body must be a JSON object")
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        raise BadRequest(400, f"invalid request: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(400, f"malformed JSON: {exc}") from None


def media_bytes(data_base64: str | None, what: str) -> bytes:
    """The decoded bytes of a media field, non-empty and at most :data:`MAX_MEDIA`."""
    if not data_base64:
        raise BadRequest(400, f"{what} needs data_base64 (the media bytes, base64)")
    if len(data_base64) > MAX_MEDIA * 4 // 3 + 4:
        raise BadRequest(413, f"{what} is larger than {MAX_MEDIA} bytes")
    try:
        data = base64.b64decode(data_base64, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(400, f"{what}: data_base64 is not valid base64") from None
    if not data:
        raise BadRequest(400, f"{what}: the media is empty")
    return data
