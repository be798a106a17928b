"""Prometheus metrics of a fleet, read from each bot's public statistics at scrape time.

A custom :class:`prometheus_client.registry.Collector` turns ``BotHandle.statistics()`` and
``BotHandle.turn_statistics()`` into metric families when ``/metrics`` is scraped, so the runtime
keeps plain counters and nothing is updated twice. Names start with ``wecom_``; every family has a
``bot`` label (the bot's fleet name, or its bot id). Counters end in ``_total``, durations are
``_seconds`` histograms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .admin import READY_STATES
from .turnlog import DURATION_BUCKETS

if TYPE_CHECKING:
    from .fleet import BotSlot

__all__ = ["READY_STATES", "FleetCollector", "fleet_registry", "render_metrics"]

#: READY_STATES (from admin.py): subscribed (long connection), serving (webhook), or standby (a
#: replica waiting for its bot's lease).

# statistics() field -> (metric name without _total, help)
_COUNTERS = (
    ("received", "wecom_messages_received", "Messages and events received (before dedupe)."),
    ("duplicates", "wecom_dedupe_drops", "Redelivered messages dropped by msgid dedupe."),
    ("busy_rejections", "wecom_busy_rejections", "Messages answered 'busy' because a queue was full."),
    ("handler_errors", "wecom_handler_errors", "Handler calls that raised."),
    ("replies_failed", "wecom_replies_failed", "Replies that could not be delivered after retries."),
    ("connects", "wecom_connects", "Long connections opened and subscribed."),
    ("reconnects", "wecom_reconnects", "Long connections re-established after a loss."),
    ("frames_in", "wecom_frames_received", "Frames (long connection) or callbacks (webhook) received."),
    ("junk_frames", "wecom_junk_frames", "Inbound frames or requests refused as malformed."),
    ("pings_missed", "wecom_pings_missed", "Heartbeat pings without an ack."),
    ("frames_sent", "wecom_frames_sent", "Request frames written (long connection: replies, pings, pushes)."),
    ("replies_sent", "wecom_replies_sent", "Streamed replies delivered whole (final frame or fallback message)."),
    ("stream_window_cuts", "wecom_stream_window_cuts", "Streams finished early at WeCom's 6-minute window."),
)
# LeaseStatistics field -> (metric name without _total, help); only for bots with redis_url
_LEASE_COUNTERS = (
    ("acquisitions", "wecom_lease_acquisitions", "Times this replica acquired its bot's lease."),
    ("losses", "wecom_lease_losses", "Holding periods ended because renewals failed (connection closed)."),
    ("kickouts", "wecom_lease_kickouts", "Kick-outs while holding the lease (another process subscribed)."),
    ("renew_failures", "wecom_lease_renew_failures", "Lease renewals that got no answer from Redis."),
    ("redis_errors", "wecom_redis_errors", "Redis calls of the lease that failed or timed out."),
)
_GAUGES = (
    ("sessions", "wecom_sessions", "Conversations with a live session."),
    ("queued_messages", "wecom_queued_messages", "Messages waiting for their conversation's handler."),
    ("running_handlers", "wecom_running_handlers", "Handlers running now."),
    ("requests_in_flight", "wecom_requests_in_flight", "Requests sent and waiting for their ack."),
    ("requests_queued", "wecom_requests_queued", "Requests queued behind their lane."),
)


class FleetCollector(Collector):
    """Metric families for every bot that ``slots()`` returns, built at each scrape."""

    def __init__(self, slots: Callable[[], list[BotSlot]]) -> None:
        self._slots = slots

    def collect(self) -> Iterator[Metric]:
        slots = self._slots()
        up = GaugeMetricFamily(
            "wecom_bot_up", "1 while the bot is subscribed, serving or a standby replica, else 0.", labels=["bot"]
        )
        state = GaugeMetricFamily("wecom_bot_state", "1 for the bot's current state.", labels=["bot", "state"])
        code = GaugeMetricFamily(
            "wecom_bot_exit_code", "Exit code of a bot stopped by a terminal error (absent while running).",
            labels=["bot"],
        )
        counters = {f: CounterMetricFamily(n, h, labels=["bot"]) for f, n, h in _COUNTERS}
        gauges = {f: GaugeMetricFamily(n, h, labels=["bot"]) for f, n, h in _GAUGES}
        handled = CounterMetricFamily(
            "wecom_messages_handled", "Messages and events handled, by msgtype and outcome.",
            labels=["bot", "msgtype", "outcome"],
        )
        duration = HistogramMetricFamily(
            "wecom_handler_duration_seconds", "Seconds from the handler's start to its return.", labels=["bot"]
        )
        acks = CounterMetricFamily("wecom_acks", "Acks read, by errcode (long connection).", labels=["bot", "errcode"])
        by_type = CounterMetricFamily(
            "wecom_messages_received_by_type", "Messages and events received, by msgtype or eventtype.",
            labels=["bot", "type"],
        )
        ack_age = GaugeMetricFamily(
            "wecom_last_ack_age_seconds", "Seconds since the newest ack (long connection; absent before one).",
            labels=["bot"],
        )
        held = GaugeMetricFamily("wecom_lease_held", "1 while this replica holds its bot's lease.", labels=["bot"])
        token = GaugeMetricFamily("wecom_lease_fencing_token", "Fencing token of the last acquisition.", labels=["bot"])
        lease_counters = {f: CounterMetricFamily(n, h, labels=["bot"]) for f, n, h in _LEASE_COUNTERS}
        for slot in slots:
            name = slot.name
            current = slot.state()
            up.add_metric([name], 1.0 if current in READY_STATES else 0.0)
            state.add_metric([name, current], 1.0)
            if slot.error is not None:
                code.add_metric([name], float(slot.error.exit_code))
            handle = slot.handle if slot.started else None
            if handle is None:
                continue
            stats = handle.statistics()
            for field, family in counters.items():
                family.add_metric([name], float(getattr(stats, field)))
            for field, gauge in gauges.items():
                gauge.add_metric([name], float(getattr(stats, field)))
            for errcode, count in sorted(stats.acks_by_errcode.items()):
                acks.add_metric([name, str(errcode)], float(count))
            for kind, count in sorted(stats.received_by_type.items()):
                by_type.add_metric([name, kind], float(count))
            if stats.last_ack_age is not None:
                ack_age.add_metric([name], stats.last_ack_age)
            if stats.lease is not None:
                held.add_metric([name], 1.0 if stats.lease.held else 0.0)
                token.add_metric([name], float(stats.lease.fencing_token))
                for field, family in lease_counters.items():
                    family.add_metric([name], float(getattr(stats.lease, field)))
            turns = handle.turn_statistics()
            for kind, outcomes in sorted(turns.handled.items()):
                for outcome, count in outcomes.items():
                    handled.add_metric([name, kind, outcome], float(count))
            buckets = [(_le(b), float(n)) for b, n in zip(DURATION_BUCKETS, turns.duration_buckets, strict=True)]
            buckets.append(("+Inf", float(turns.duration_count)))
            duration.add_metric([name], buckets, turns.duration_sum)
        yield up
        yield state
        yield code
        yield from counters.values()
        yield from gauges.values()
        yield acks
        yield by_type
        yield ack_age
        yield handled
        yield duration
        yield held
        yield token
        yield from lease_counters.values()


def _le(bound: float) -> str:
    return repr(float(bound))


def fleet_registry(slots: Callable[[], list[BotSlot]]) -> CollectorRegistry:
    """A registry of its own (not the process-global one) holding the fleet's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(slots))
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)
