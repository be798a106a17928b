"""What the fake webhook WeCom records and raises: each callback's view, the response_url posts,
the URL verification result, and the fake's own errcodes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CONTENT_LIMIT",
    "MAX_MSG_ITEMS",
    "FakeWebhookErrcode",
    "ResponseUrlPost",
    "VerifyResult",
    "WebhookConformanceError",
    "WebhookView",
]

CONTENT_LIMIT = 20480  # stream content, response_url markdown (UTF-8 bytes)
MAX_MSG_ITEMS = 10  # stream images, finish answer only


class WebhookConformanceError(AssertionError):
    """The bot broke a rule of the webhook protocol (strict mode)."""


class FakeWebhookErrcode(enum.IntEnum):
    """Answers of the fake's response_url endpoint. The real codes are undocumented:
    these are the fake's own choices."""

    OK = 0
    INVALID_PARAMETER = 40058
    CONTENT_TOO_LONG = 45002
    RESPONSE_URL_USED = 846620
    RESPONSE_URL_EXPIRED = 846621
    RESPONSE_URL_UNKNOWN = 846622
    CARD_NOT_ALLOWED = 846623  # template_card through response_url in a group chat


@dataclass
class VerifyResult:
    status: int
    body: bytes
    expected: str
    ok: bool
    elapsed: float


@dataclass
class ResponseUrlPost:
    """One POST the bot made to a response_url."""

    code: str
    body: Any
    errcode: int
    at: float

    @property
    def accepted(self) -> bool:
        return self.errcode == 0


@dataclass
class WebhookView:
    """One callback and everything the user saw of the bot's answer to it."""

    msgid: str
    msgtype: str
    userid: str
    chatid: str | None
    payload: dict[str, Any]
    created: float
    response_url: str | None = None
    status: int = 0
    latency: float = 0.0  # trio seconds from the POST to its answer
    first_reply: dict[str, Any] | None = None
    stream_id: str | None = None
    answers: list[dict[str, Any]] = field(default_factory=list)  # every stream answer
    refreshes: list[str] = field(default_factory=list)  # content of every refresh answer
    empty_refreshes: int = 0
    content: str = ""
    finished: bool = False
    timed_out: bool = False
    msg_items: list[dict[str, Any]] = field(default_factory=list)
    card: dict[str, Any] | None = None
    welcome: dict[str, Any] | None = None
    update: dict[str, Any] | None = None
    pushes: list[Any] = field(default_factory=list)  # accepted response_url bodies
    errors: list[str] = field(default_factory=list)

    @property
    def push_text(self) -> str:
        return "".join(p.get("markdown", {}).get("content", "") for p in self.pushes if isinstance(p, dict))

