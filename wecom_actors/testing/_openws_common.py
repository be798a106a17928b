"""Errcodes and body-reading helpers shared by the fake's request rules (sans-IO)."""

from __future__ import annotations

import enum
from collections import deque
from typing import Any

__all__ = ["FakeErrcode", "Rejected", "integer", "obj", "param", "string", "within_rate"]


class FakeErrcode(enum.IntEnum):
    """Every errcode the fake answers with. Only 0 is official; the rest are the codes
    seen in the field where there is one, and the fake's own documented choices otherwise."""

    OK = 0
    CONFLICT = 6000  # field report: a second frame on a req_id whose first is not acked
    INVALID_MEDIA_ID = 40007  # fake's choice (WeCom's general "invalid media_id")
    INVALID_MSGTYPE = 40008  # fake's choice (WeCom's general "invalid message type")
    INVALID_PARAMETER = 40058  # fake's choice: malformed body, upload errors, unknown cmd
    CONTENT_TOO_LONG = 45002  # fake's choice (WeCom's general "content size out of limit")
    RATE_LIMITED = 45009  # fake's choice (WeCom's general "api freq out of limit") (30/min, 1000/h)
    INVALID_REQ_ID = 846605  # field report
    CONVERSATION_NOT_OPEN = 846607  # fake's choice: push to a chat that never wrote
    STREAM_CLOSED = 846608  # fake's choice: stream finished or past its 6 minutes
    NOT_SUBSCRIBED = 846609  # field report
    INVALID_SECRET = 600041  # field report: subscribe with a wrong secret


class Rejected(Exception):
    """Raised inside the rules: the request is answered with this errcode and not applied."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


def param(msg: str) -> Rejected:
    return Rejected(FakeErrcode.INVALID_PARAMETER, f"invalid parameter: {msg}")


def obj(d: dict[str, Any], key: str) -> dict[str, Any]:
    v = d.get(key)
    if not isinstance(v, dict):
        raise param(f"{key} must be an object")
    return v


def string(d: dict[str, Any], key: str, *, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str) or (default is None and not v):
        raise param(f"{key} must be a non-empty string")
    return v


def integer(d: dict[str, Any], key: str) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise param(f"{key} must be an integer")
    return v


def within_rate(times: deque[float], now: float, what: str) -> None:
    """Raise 45009 if one more event would exceed 30/min or 1000/h; else count it."""
    while times and times[0] <= now - 3600.0:
        times.popleft()
    recent = 0
    for t in reversed(times):
        if t <= now - 60.0:
            break
        recent += 1
    if recent >= 30 or len(times) >= 1000:
        per = "minute" if recent >= 30 else "hour"
        limit = 30 if recent >= 30 else 1000
        raise Rejected(FakeErrcode.RATE_LIMITED, f"api freq out of limit: {limit} {what} per {per}")
    times.append(now)
