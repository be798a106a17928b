"""Frozen records the fake WeCom hands out: what was said on the wire and what the user sees.

Every record is a snapshot: the fake keeps mutable state internally and freezes a copy each time
one of its views (``conversation()``, ``stream()``, ``statistics()``) is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Bubble",
    "BubbleKind",
    "Callback",
    "ConnectionView",
    "FakeStatistics",
    "RecordedFrame",
    "StreamView",
    "UploadedMedia",
]

BubbleKind = Literal[
    "stream", "markdown", "text", "template_card", "file", "image", "voice", "video"
]


@dataclass(frozen=True, slots=True)
class RecordedFrame:
    """One WebSocket text message, as sent (``direction="out"``) or received (``"in"``).

    ``data`` is the decoded JSON object, or ``None`` when the text was not a JSON object.
    ``delivered`` is ``False`` for an outgoing frame the fake swallowed (a stalled connection).
    """

    time: float
    direction: Literal["in", "out"]
    conn_id: int
    text: str
    data: dict[str, Any] | None
    delivered: bool = True

    @property
    def cmd(self) -> str | None:
        cmd = self.data.get("cmd") if self.data is not None else None
        return cmd if isinstance(cmd, str) else None

    @property
    def req_id(self) -> str | None:
        if self.data is None:
            return None
        headers = self.data.get("headers")
        req_id = headers.get("req_id") if isinstance(headers, dict) else None
        return req_id if isinstance(req_id, str) else None

    @property
    def errcode(self) -> int | None:
        """The errcode of an ack (``None`` for anything else)."""
        code = self.data.get("errcode") if self.data is not None else None
        return code if isinstance(code, int) else None

    @property
    def body(self) -> Any:
        return self.data.get("body") if self.data is not None else None


@dataclass(frozen=True, slots=True)
class Callback:
    """A callback the fake pushed: its server-generated ``req_id``, the ``msgid`` and the body."""

    req_id: str
    msgid: str
    body: dict[str, Any]
    cmd: str = "aibot_msg_callback"
    conn_id: int = 0


@dataclass(frozen=True, slots=True)
class Bubble:
    """One message as the user would see it in the conversation.

    ``content`` is the visible text (the last *accepted* stream frame, the markdown or welcome
    text; the filename for a file; ``""`` for cards and other media). ``card`` is the current
    template card (after any updates); ``updates`` counts accepted frames/updates after the first.
    """

    kind: BubbleKind
    req_id: str | None
    stream_id: str | None
    content: str
    finished: bool
    card: dict[str, Any] | None
    media_id: str | None
    updates: int
    time_first: float
    time_last: float


@dataclass(frozen=True, slots=True)
class StreamView:
    """A stream reply as the fake sees it (``first_frame_time`` is trio time)."""

    id: str
    req_id: str
    content: str
    finished: bool
    accepted_frames: int
    rejected_frames: int
    first_frame_time: float
    msg_items: tuple[dict[str, Any], ...] = ()
    feedback_id: str | None = None


@dataclass(frozen=True, slots=True)
class UploadedMedia:
    """A temporary media the bot uploaded through the chunked upload."""

    media_id: str
    type: str
    filename: str
    data: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class FakeStatistics:
    """Counters since the fake was created (``live_connections`` is a gauge: open sockets)."""

    connections_total: int
    live_connections: int
    subscribes_ok: int
    subscribes_refused: int
    frames_in: int
    frames_out: int
    acks_by_errcode: Mapping[int, int] = field(default_factory=dict)
    callbacks_pushed: int = 0


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """One WebSocket connection to the fake (times are trio time).

    ``replaced`` means it was kicked (got a ``disconnected_event``). Once ``closed``,
    ``close_code`` is the WebSocket close code (1006 when the socket went away without a close
    handshake) and ``closed_by`` says who started the close: ``"server"`` or ``"client"``.
    """

    id: int
    bot_id: str | None
    subscribed: bool
    replaced: bool
    closing: bool
    closed: bool
    opened_at: float
    last_frame_at: float
    close_code: int | None = None
    close_reason: str | None = None
    closed_by: Literal["server", "client"] | None = None
