"""The state of one streamed reply, owned by SessionStreams (plain data, no I/O)."""

from __future__ import annotations

import math
from typing import Any

from .protocol.replies import TemplateCard

__all__ = ["CONTINUED_NOTE", "WINDOW_MARGIN", "StreamState"]

#: A stream is finished this long before WeCom's 6-minute window closes if its handler still runs.
WINDOW_MARGIN = 30.0
#: Shown at the end of a stream cut at the window; the rest follows as a message.
CONTINUED_NOTE = "\n\n(continued in the next message)"


class StreamState:
    __slots__ = (
        "attempts",
        "card",
        "card_sent",
        "channel",
        "closing",
        "content",
        "content_limit",
        "cut",
        "delivered_version",
        "feedback_id",
        "final_content",
        "final_started",
        "finish",
        "flushes",
        "frames_sent",
        "in_flight",
        "key",
        "last_sent",
        "max_final_attempts",
        "min_interval",
        "parts",
        "rest",
        "sent_version",
        "stale",
        "stream_id",
        "supersede",
        "timer",
        "timer_at",
        "version",
        "window",
        "window_deadline",
        "window_sent",
        "window_timer",
    )

    def __init__(
        self,
        key: int,
        channel: Any,
        stream_id: str,
        feedback_id: str | None,
        min_interval: float,
        content_limit: int,
        window: float,
        max_final_attempts: int,
    ) -> None:
        self.key = key
        self.channel = channel
        self.stream_id = stream_id
        self.feedback_id = feedback_id
        self.min_interval = min_interval
        self.content_limit = content_limit
        self.window = window
        self.max_final_attempts = max_final_attempts
        #: The channel keeps only the newest frame (webhook snapshots): a frame need not wait
        #: for the one before it to settle, and the final frame need not either.
        self.supersede: bool = getattr(channel, "frames_supersede", False)
        self.parts: list[str] = []
        self.content = ""
        self.version = 0
        self.sent_version = 0
        self.delivered_version = 0
        self.frames_sent = 0
        self.in_flight = False
        self.last_sent = -math.inf
        self.window_deadline = math.inf  # set by the first frame
        self.timer_at = math.inf  # when the coalescing timer fires, if there is one
        self.timer: list[Any] | None = None  # that timer (a SessionStreams heap entry)
        self.window_timer: list[Any] | None = None  # the 6-minute window's timer
        self.cut: int | None = None  # chars delivered by a finish at the window (-1: under way)
        self.window_sent = False
        self.stale = False
        self.closing = False
        self.card: TemplateCard | None = None
        self.card_sent = False
        self.flushes: list[tuple[int, Any]] = []  # (version, reply channel)
        self.finish: tuple[str, list[Any], Any] | None = None  # (suffix, msg_items, reply)
        self.final_started = False
        self.final_content = ""
        self.rest: list[str] = []
        self.attempts = 0

    def text(self) -> str:
        if self.parts:
            self.content += "".join(self.parts)
            self.parts.clear()
        return self.content

    def append(self, text: str, card: TemplateCard | None) -> None:
        self.parts.append(text)
        self.version += 1
        self.card_op(card)

    def set(self, text: str, card: TemplateCard | None) -> None:
        self.parts.clear()
        self.content = text
        self.version += 1
        self.card_op(card)

    def card_op(self, card: TemplateCard | None) -> None:
        if card is not None and self.card is None:
            self.card = card
