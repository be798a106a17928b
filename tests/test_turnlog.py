"""TurnLog: per-turn counters, the duration histogram and the INFO line."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from wecom_actors.turnlog import DURATION_BUCKETS, TurnLog


def _turn(msgtype: str = "text") -> object:
    return SimpleNamespace(message=SimpleNamespace(msgtype=msgtype), conversation="u1")


def test_the_histogram_is_cumulative_with_bounds_inclusive() -> None:
    tl = TurnLog("bot")
    for d in (0.01, 0.05, 0.07, 3.0, 400.0):
        tl._record(_turn(), "ok", "", d)  # type: ignore[arg-type]
    s = tl.statistics()
    expected = [sum(1 for d in (0.01, 0.05, 0.07, 3.0, 400.0) if d <= b) for b in DURATION_BUCKETS]
    assert s.duration_buckets == expected
    assert s.duration_buckets[:3] == [2, 3, 3] and s.duration_buckets[-1] == 4  # 400 s: only in +Inf
    assert s.duration_count == 5 and s.duration_sum == pytest.approx(403.13)
    assert s.handled == {"text": {"ok": 5, "error": 0, "cancelled": 0}}


def test_the_info_line_only_when_info_is_on(caplog: pytest.LogCaptureFixture) -> None:
    tl = TurnLog("bot")
    with caplog.at_level(logging.WARNING, logger="wecom_actors.turn"):
        tl._record(_turn(), "ok", "", 0.2)  # type: ignore[arg-type]
    assert not caplog.records
    with caplog.at_level(logging.INFO, logger="wecom_actors.turn"):
        tl._record(_turn("weird\n"), "error", " (ValueError)", 0.2)  # type: ignore[arg-type]
    (record,) = caplog.records
    assert record.getMessage() == "handled 'weird\\n' in conversation 'u1': 0.200 s, error (ValueError)"
    assert (record.msgtype, record.outcome, record.duration) == ("unknown", "error", 0.2)  # type: ignore[attr-defined]
    assert tl.statistics().handled["unknown"]["error"] == 1 and tl.statistics().duration_count == 2
