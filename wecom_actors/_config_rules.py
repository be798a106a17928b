"""What each setting accepts: one predicate and one description of the expected value per field
of :class:`~wecom_actors.config.BotConfig` (a test checks the two name the same fields)."""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

from ._config_urls import _redis_url, _ws_url

__all__ = ["GROUP_ORDERS", "LOG_FORMATS", "LOG_LEVELS", "MODES", "TRANSPORTS"]

MODES = ("long-connection", "webhook")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
TRANSPORTS = ("trio-websocket", "wsproto")
GROUP_ORDERS = ("sender", "chat")
_AES_CHARS = frozenset(string.ascii_letters + string.digits)


def _aes_key(v: str) -> bool:
    return v == "" or (len(v) == 43 and set(v) <= _AES_CHARS)


def _positive(v: float) -> bool:
    return v > 0


def _non_negative(v: float) -> bool:
    return v >= 0


_SECONDS = "a number of seconds > 0"
# field -> (predicate on the typed value, what is expected)
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "mode": (lambda v: v in MODES, "long-connection or webhook"),
    "bot_id": (lambda v: True, "a bot id"),
    "bot_secret": (lambda v: True, "a bot secret"),
    "ws_url": (_ws_url, "a ws:// or wss:// URL with a host"),
    "ws_allow_insecure": (lambda v: True, "true or false (environment: 1/0, true/false, yes/no, on/off)"),
    "heartbeat_interval": (_positive, _SECONDS),
    "token": (lambda v: True, "a token"),
    "encoding_aes_key": (_aes_key, "exactly 43 characters of A-Z, a-z and 0-9"),
    "host": (bool, "a non-empty host name or address"),
    "port": (lambda v: 0 <= v <= 65535, "an integer from 0 to 65535 (0 picks a free port)"),
    "callback_path": (lambda v: v.startswith("/"), "a path starting with '/'"),
    "media_allow_private": (
        lambda v: True,
        "true or false (environment: 1/0, true/false, yes/no, on/off)",
    ),
    "log_level": (lambda v: v in LOG_LEVELS, "one of " + ", ".join(LOG_LEVELS)),
    "log_format": (lambda v: v in LOG_FORMATS, "one of " + ", ".join(LOG_FORMATS)),
    "admin_port": (lambda v: 0 <= v <= 65535, "an integer from 0 to 65535 (0 turns it off)"),
    "ack_timeout": (_positive, _SECONDS),
    "connect_timeout": (_positive, _SECONDS),
    "reconnect_initial": (_positive, _SECONDS),
    "reconnect_max": (_positive, _SECONDS),
    "reconnect_jitter": (lambda v: 0 <= v <= 1, "a fraction from 0 to 1"),
    "restart_intensity": (_non_negative, "an integer >= 0"),
    "restart_period": (_positive, _SECONDS),
    "auth_max_attempts": (_positive, "an integer >= 1"),
    "max_frame_bytes": (_positive, "a number of bytes >= 1"),
    "handler_concurrency": (_positive, "an integer >= 1"),
    "session_queue_size": (_positive, "an integer >= 1"),
    "max_queued_messages": (_positive, "an integer >= 1"),
    "max_queued_bytes": (_positive, "a number of bytes >= 1"),
    "group_order": (lambda v: v in GROUP_ORDERS, "one of " + ", ".join(GROUP_ORDERS)),
    "drain_timeout": (_non_negative, "a number of seconds >= 0"),
    "stream_min_interval": (_non_negative, "a number of seconds >= 0"),
    "media_max_bytes": (_positive, "a number of bytes >= 1"),
    "media_timeout": (_positive, _SECONDS),
    "webhook_max_body": (_positive, "a number of bytes >= 1"),
    "webhook_timestamp_window": (_non_negative, "a number of seconds >= 0 (0 disables the check)"),
    "webhook_header_timeout": (_positive, _SECONDS),
    "webhook_keep_alive_timeout": (_positive, _SECONDS),
    "webhook_body_timeout": (_positive, _SECONDS),
    "webhook_max_connections": (_positive, "an integer >= 1"),
    "transport": (lambda v: v in TRANSPORTS, "one of " + ", ".join(TRANSPORTS)),
    "bot_name": (lambda v: "@" not in v and not any(c.isspace() for c in v), "a name without '@' or spaces"),
    "redis_url": (_redis_url, "redis://[user:password@]host[:port][/db], rediss://... or unix:///path"),
    "lease_ttl": (lambda v: 0.5 <= v <= 3600, "a number of seconds from 0.5 to 3600"),
}
