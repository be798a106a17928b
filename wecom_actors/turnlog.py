"""One log line and a few numbers per handled turn, kept at the ``serve_bot`` boundary.

:class:`TurnLog` wraps the user's handler: it times each call, logs one INFO line when the handler
returns or raises (conversation, msgtype, duration, outcome), re-raises, and counts turns by
msgtype and outcome plus a histogram of durations for ``/metrics``. The core is not touched: the
wrapper is an ordinary handler to it.

Values that come from the peer (the conversation id, an unknown msgtype) are logged with
``repr`` so a control character cannot forge a log line; metric labels take only the known
msgtypes (anything else is ``unknown``), so a peer cannot grow the label set.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from itertools import accumulate
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from .handlers.turn import Handler, Turn
from .protocol.inbound import EventMessage

if TYPE_CHECKING:
    from .config import BotConfig

__all__ = ["DURATION_BUCKETS", "OUTCOMES", "TurnLog", "TurnStatistics", "bot_label", "endpoint_of", "mask_id"]

log = logging.getLogger("wecom_actors.turn")

#: Upper bounds (seconds) of the handler-duration histogram; a reply is streamed for minutes at most.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
OUTCOMES = ("ok", "error", "cancelled")
_KNOWN_TYPES = frozenset(
    {"text", "image", "mixed", "voice", "file", "video", "enter_chat", "template_card_event",
     "feedback_event", "disconnected_event"}
)


class TurnStatistics(msgspec.Struct, frozen=True):
    """Handled turns: ``handled[msgtype][outcome]`` and the handler-duration histogram
    (``duration_buckets[i]`` counts the turns that took at most ``DURATION_BUCKETS[i]`` s)."""

    handled: dict[str, dict[str, int]]
    duration_buckets: list[int]
    duration_count: int
    duration_sum: float


def kind_of(turn: Turn) -> str:
    """The msgtype of a message, the eventtype of an event; ``unknown`` for anything else."""
    message = turn.message
    kind = str(getattr(message, "eventtype", "")) if isinstance(message, EventMessage) else message.msgtype
    return kind if kind in _KNOWN_TYPES else "unknown"


class TurnLog:
    """Per-bot turn counters and the handler wrapper that feeds them."""

    def __init__(self, bot: str) -> None:
        self.bot = bot
        self._handled: dict[str, dict[str, int]] = {}
        # turns per duration bin: bin i holds DURATION_BUCKETS[i-1] < d <= DURATION_BUCKETS[i],
        # the last bin those above every bound (statistics() makes them cumulative)
        self._bins = [0] * (len(DURATION_BUCKETS) + 1)
        self._count = 0
        self._sum = 0.0

    def wrap(self, handler: Handler) -> Handler:
        """``handler`` timed, logged and counted; exceptions pass through unchanged."""

        async def logged(turn: Turn) -> None:
            start = trio.current_time()
            outcome, detail = "error", ""
            try:
                await handler(turn)
                outcome = "ok"
            except trio.Cancelled:
                outcome = "cancelled"
                raise
            except BaseException as exc:
                detail = f" ({type(exc).__name__})"
                raise
            finally:
                self._record(turn, outcome, detail, trio.current_time() - start)

        logged.__name__ = getattr(handler, "__name__", "handler")
        return logged

    def _record(self, turn: Turn, outcome: str, detail: str, duration: float) -> None:
        kind = kind_of(turn)
        by_outcome = self._handled.setdefault(kind, dict.fromkeys(OUTCOMES, 0))
        by_outcome[outcome] += 1
        self._count += 1
        self._sum += duration
        self._bins[bisect_left(DURATION_BUCKETS, duration)] += 1
        if not log.isEnabledFor(logging.INFO):
            return  # the line and its fields are not built for nothing
        raw_type = turn.message.msgtype if kind == "unknown" else kind
        log.info(
            "handled %s in conversation %r: %.3f s, %s%s",
            raw_type if kind != "unknown" else repr(raw_type),
            turn.conversation,
            duration,
            outcome,
            detail,
            extra={
                "bot": self.bot,
                "conversation": turn.conversation,
                "msgtype": kind,
                "duration": round(duration, 6),
                "outcome": outcome,
            },
        )

    def statistics(self) -> TurnStatistics:
        return TurnStatistics(
            handled={kind: dict(counts) for kind, counts in self._handled.items()},
            duration_buckets=list(accumulate(self._bins[:-1])),
            duration_count=self._count,
            duration_sum=self._sum,
        )


def bot_label(config: BotConfig) -> str:
    """A bot's default name: its masked bot id (long connection), else ``webhook`` plus its path."""
    if config.bot_id:
        return mask_id(config.bot_id)
    return "webhook" + config.callback_path.replace("/", "_").rstrip("_")


def mask_id(value: str) -> str:
    """``aibAbCdEfGh123`` -> ``aibA…23``: enough to tell bots apart, not the whole id."""
    if not value:
        return "(none)"
    if len(value) <= 8:
        return value[:2] + "…"
    return f"{value[:4]}…{value[-2:]}"


def endpoint_of(config: BotConfig, port: Any = None) -> str:
    """Where the bot talks to WeCom: the WebSocket URL, or the webhook URL it listens on."""
    if config.mode == "long-connection":
        return config.ws_url
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"http://{host}:{port if port is not None else config.port}{config.callback_path}"
