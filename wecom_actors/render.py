"""The ReplyRenderer: handler output -> protocol bodies, for either mode (pure functions).

It holds no state and never waits, so it is a layer of functions rather than a task: a task
would add two channel hops per frame on the hot path (docs/architecture.md) and buy nothing.
"""

from __future__ import annotations

import base64
import hashlib
import re

from .errors import UploadError
from .protocol.limits import (
    MAX_CONTENT_BYTES,
    MAX_MSG_ITEM_IMAGE_BYTES,
    MAX_VIDEO_DESCRIPTION_BYTES,
    MAX_VIDEO_TITLE_BYTES,
    MEDIA_KINDS,
)
from .protocol.replies import (
    Feedback,
    MarkdownBody,
    MediaId,
    MsgItem,
    MsgItemImage,
    StreamBody,
    StreamReply,
    StreamWithCardReply,
    TemplateCard,
    VideoMediaId,
)

__all__ = [
    "media_body",
    "msg_item_image",
    "split_content",
    "stream_reply",
    "strip_mention",
    "truncate_utf8",
    "utf8_len",
]


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def split_content(text: str, limit: int = MAX_CONTENT_BYTES) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-8 bytes each.

    Cuts fall on a character boundary, preferably just after a newline in the last quarter of a
    part (so markdown lines stay whole). ``"".join(parts) == text`` always; ``[""]`` for "".
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1 byte, got {limit}")
    data = text.encode("utf-8")
    if len(data) <= limit:
        return [text]
    parts: list[str] = []
    start = 0
    while len(data) - start > limit:
        end = start + limit
        while end > start and (data[end] & 0xC0) == 0x80:  # never cut inside a UTF-8 sequence
            end -= 1
        if end == start:
            raise ValueError(f"limit {limit} is smaller than one character of the text")
        newline = data.rfind(b"\n", start + (limit * 3) // 4, end)
        if newline != -1:
            end = newline + 1
        parts.append(data[start:end].decode("utf-8"))
        start = end
    parts.append(data[start:].decode("utf-8"))
    return parts


def first_part(text: str, limit: int = MAX_CONTENT_BYTES) -> str:
    """What fits in one frame: the first part of :func:`split_content` (cheap when it fits)."""
    if len(text) * 4 <= limit or utf8_len(text) <= limit:
        return text
    return split_content(text, limit)[0]


def stream_reply(
    stream_id: str,
    content: str,
    finish: bool,
    *,
    feedback_id: str | None = None,
    msg_items: list[MsgItem] | None = None,
    card: TemplateCard | None = None,
) -> StreamReply | StreamWithCardReply:
    body = StreamBody(
        id=stream_id,
        finish=finish,
        content=content,
        msg_item=msg_items if finish and msg_items else None,
        feedback=Feedback(feedback_id) if feedback_id else None,
    )
    if card is not None:
        return StreamWithCardReply(stream=body, template_card=card)
    return StreamReply(stream=body)


def markdown_body(text: str, feedback_id: str | None = None) -> MarkdownBody:
    return MarkdownBody(content=text, feedback=Feedback(feedback_id) if feedback_id else None)


def msg_item_image(data: bytes) -> MsgItem:
    """An inline stream image (JPG/PNG, at most 10 MB raw): base64 plus md5 of the raw bytes."""
    if len(data) > MAX_MSG_ITEM_IMAGE_BYTES:
        raise ValueError(f"a stream image is limited to {MAX_MSG_ITEM_IMAGE_BYTES} bytes, got {len(data)}")
    if not (data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff")):
        raise ValueError("a stream image must be a PNG or JPEG")
    return MsgItem(
        image=MsgItemImage(base64=base64.b64encode(data).decode("ascii"), md5=hashlib.md5(data).hexdigest())
    )


_LEADING_MENTION = re.compile(r"^\s*@\S+\s*")


def strip_mention(text: str, *, group: bool, bot_name: str | None = None) -> str:
    """Remove the bot's own @mention from a group message's text.

    With ``bot_name`` only ``@bot_name`` is removed (wherever it stands); without it, the leading
    @mention is taken to be the bot's (WeCom delivers a group message only when the bot is
    mentioned, and clients put that mention first). Single-chat text is returned unchanged.
    """
    if not group:
        return text
    if bot_name:
        return re.sub(rf"(^|\s)@{re.escape(bot_name)}(?=\s|$)\s*", r"\1", text, count=1).strip()
    return _LEADING_MENTION.sub("", text, count=1)

def truncate_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def media_body(
    kind: str, media_id: str, *, title: str | None = None, description: str | None = None
) -> MediaId | VideoMediaId:
    """The ``{"media_id": ...}`` object of a file/image/voice/video message; a video's title
    and description are truncated to 128 / 512 bytes on a character boundary."""
    if kind not in MEDIA_KINDS:
        raise UploadError(f"media kind must be one of {', '.join(MEDIA_KINDS)}, not {kind!r}")
    if not media_id:
        raise UploadError("media_id must not be empty")
    if kind == "video":
        return VideoMediaId(
            media_id,
            title=None if title is None else truncate_utf8(title, MAX_VIDEO_TITLE_BYTES),
            description=None if description is None else truncate_utf8(description, MAX_VIDEO_DESCRIPTION_BYTES),
        )
    if title is not None or description is not None:
        raise UploadError("only video messages carry a title and description")
    return MediaId(media_id)
