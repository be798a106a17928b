"""Logging for the ``wecom-actors`` command: stderr, a compact format, secrets masked.

:func:`register_secret` adds a value that must never be printed; the :class:`SecretFilter` on our
handler replaces it by ``***`` in every record's message and traceback, so even an accidental
``log.debug("%s", secret)`` is harmless.

Strings a peer controls (request paths, methods, headers, URLs) go through :func:`escape`
before they reach a log line, so nobody can forge log lines with a line break or colour the
terminal with an escape sequence. :class:`LogLimiter` caps how many lines a kind of event
(a rejected request) may log per period, so a flood of bad requests cannot flood the log.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = [
    "FORMAT",
    "LOGGER_NAME",
    "LogLimiter",
    "SecretFilter",
    "contains_secret",
    "escape",
    "mask_secrets",
    "register_secret",
    "setup_logging",
]

LOGGER_NAME = "wecom_actors"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MASK = "***"
_secrets: set[str] = set()


#: Shorter values are not masked in free text: replacing every "t" or "ab" in every log line would
#: destroy the logs and hide nothing (our code never logs a secret; the mask is a second line).
MIN_MASKED_LENGTH = 6


def register_secret(value: str) -> None:
    """Mask ``value`` in every record our handler prints from now on (values shorter than
    ``MIN_MASKED_LENGTH`` are ignored)."""
    if len(value) >= MIN_MASKED_LENGTH:
        _secrets.add(value)


def mask_secrets(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: overlapping secrets
        text = text.replace(secret, _MASK)
    return text


def escape(text: str, limit: int = 200) -> str:
    """``text`` safe for one log line: every non-printable-ASCII character escaped (``\\n``,
    ``\\x1b``, ``\\u2028``, ...), cut to ``limit`` characters with ``...`` appended."""
    shown = ascii(text[:limit])[1:-1]
    return shown + "..." if len(text) > limit else shown


class LogLimiter:
    """At most ``burst`` events per ``period`` seconds may be logged (a fixed window)."""

    def __init__(self, burst: int, period: float) -> None:
        self.burst = burst
        self.period = period
        self._window_end = float("-inf")
        self._used = 0
        self._left_out = 0

    def allow(self, now: float) -> tuple[bool, int]:
        """``(True, n)`` if this event may be logged, ``n`` being how many events were left out
        since the last logged one; ``(False, 0)`` if it must not be logged."""
        if now >= self._window_end:
            self._window_end = now + self.period
            self._used = 0
        if self._used >= self.burst:
            self._left_out += 1
            return False, 0
        self._used += 1
        left_out, self._left_out = self._left_out, 0
        return True, left_out


def contains_secret(text: str) -> bool:
    """True if ``text`` contains a registered secret, in any letter case (for values a setting
    shows after changing their case)."""
    folded = text.casefold()
    return any(secret.casefold() in folded for secret in _secrets)


class SecretFilter(logging.Filter):
    """Replace every registered secret in a record's message and exception text by ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (so redirection and capture work)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


#: ``log_format = "json"``: these record attributes, renamed, then any ``extra=`` fields (bot,
#: conversation, msgtype, duration, outcome, ...), one JSON object a line.
JSON_FIELDS = ("asctime", "levelname", "name", "message")
JSON_RENAME = {"asctime": "time", "levelname": "level", "name": "logger"}


def setup_logging(level: str, fmt: str = "text") -> logging.Logger:
    """Send the ``wecom_actors`` loggers to stderr at ``level``, as text or (``fmt="json"``)
    one JSON object a line; calling it again reconfigures."""
    logger = logging.getLogger(LOGGER_NAME)
    for old in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(old)
    handler = _StderrHandler()
    handler.setFormatter(_json_formatter() if fmt == "json" else logging.Formatter(FORMAT))
    handler.addFilter(SecretFilter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    class _MaskedJsonFormatter(JsonFormatter):
        # The library formats tracebacks itself and adds extra= fields: mask every string value
        # just before it is serialised, so no field can carry a secret out.
        def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
            return {k: mask_secrets(v) if isinstance(v, str) else v for k, v in log_data.items()}

    return _MaskedJsonFormatter(list(JSON_FIELDS), rename_fields=JSON_RENAME, json_ensure_ascii=False)
