"""The sans-IO correlation table: synchronous tests, no event loop, explicit times.

(tests/test_import_guard.py checks that the module imports no I/O framework.)
"""

from __future__ import annotations

import itertools

import msgspec
import pytest

from wecom_actors.errors import AckError, AckTimeout, ConnectionLost, OutcomeUnknown, Overloaded
from wecom_actors.longconn.correlation import CorrelationTable, Request
from wecom_actors.protocol.frames import Ack


def req(req_id: str = "CB1", n: int = 0, *, cmd: str = "aibot_respond_msg", idempotent: bool = True, bound: bool = False) -> Request:
    return Request(cmd, req_id, msgspec.json.encode({"req_id": req_id, "n": n}), idempotent=idempotent, bound=bound)


def ack(req_id: str, errcode: int = 0, errmsg: str = "ok") -> Ack:
    return Ack(req_id=req_id, errcode=errcode, errmsg=errmsg)


def body(frame: bytes) -> dict[str, object]:
    return msgspec.json.decode(frame)


def live(**options: object) -> CorrelationTable:
    t = CorrelationTable(**options)  # type: ignore[arg-type]
    t.connection_up(1, can_probe=True)
    return t


def test_one_frame_in_flight_per_req_id_and_order_kept() -> None:
    t = live()
    reqs = [req("CB1", i) for i in range(3)]
    for r in reqs:
        t.submit(r)
    for i in range(3):
        frames = t.frames_to_write(0.0)
        assert [body(f)["n"] for f in frames] == [i]
        assert t.frames_to_write(0.0) == []  # nothing else while it waits for its ack
        t.ack(1, ack("CB1"), 0.1)
        assert t.take_settlements() == [reqs[i]]
        assert reqs[i].ack is not None and reqs[i].error is None
    assert t.statistics().lanes == 0


def test_lanes_are_independent() -> None:
    t = live()
    a, b = req("A"), req("B")
    t.submit(a)
    t.submit(b)
    assert len(t.frames_to_write(0.0)) == 2
    t.ack(1, ack("B"), 0.0)
    assert t.take_settlements() == [b]


def test_a_ping_goes_ahead_of_queued_frames() -> None:
    t = CorrelationTable()
    for i in range(5):
        t.submit(req(f"CB{i}"))
    t.connection_up(1)
    t.submit(req("ping_1", cmd="ping", bound=True))
    frames = t.frames_to_write(0.0)
    assert body(frames[0])["req_id"] == "ping_1" and len(frames) == 6


@pytest.mark.parametrize(("bound", "error"), [(True, ConnectionLost), (False, None)])
def test_without_a_connection(bound: bool, error: type[Exception] | None) -> None:
    t = CorrelationTable()
    r = req("R", bound=bound)
    t.submit(r)
    assert t.frames_to_write(0.0) == []
    if error is not None:
        assert isinstance(r.error, error) and t.take_settlements() == [r]
        return
    assert t.take_settlements() == []
    t.connection_up(1)
    assert len(t.frames_to_write(0.0)) == 1


def test_max_lane_overloads_the_newcomer() -> None:
    t = live(max_lane=2)
    first, second, third = req(n=0), req(n=1), req(n=2)
    for r in (first, second, third):
        t.submit(r)
    assert isinstance(third.error, Overloaded)
    assert t.take_settlements() == [third]
    assert first.error is None and second.error is None


def test_conflict_6000_is_retried_with_backoff() -> None:
    t = live()
    r = req()
    t.submit(r)
    now = 0.0
    written = []
    for errcode in (6000, 6000, 6000):
        assert len(t.frames_to_write(now)) == 1
        written.append(now)
        t.ack(1, ack("CB1", errcode), now)
        assert t.frames_to_write(now) == []
        now = t.next_deadline()
        t.tick(now)
    assert len(t.frames_to_write(now)) == 1
    written.append(now)
    t.ack(1, ack("CB1"), now)
    assert [round(b - a, 6) for a, b in itertools.pairwise(written)] == [0.2, 0.4, 0.8]
    s = t.statistics()
    assert (s.lanes, s.acked, s.conflicts_retried) == (0, 1, 3)
    assert t.take_settlements() == [r] and r.ack is not None


def test_a_fourth_conflict_fails() -> None:
    t = live()
    r = req()
    t.submit(r)
    now = 0.0
    for _ in range(4):
        t.frames_to_write(now)
        t.ack(1, ack("CB1", 6000, "conflict"), now)
        if r.error is not None:
            break
        now = t.next_deadline()
        t.tick(now)
    assert isinstance(r.error, AckError) and r.error.errcode == 6000


@pytest.mark.parametrize("errcode", [40058, 846605, 45009])
def test_other_errcodes_fail(errcode: int) -> None:
    t = live()
    r = req()
    t.submit(r)
    t.frames_to_write(0.0)
    t.ack(1, ack("CB1", errcode, "no"), 0.0)
    assert isinstance(r.error, AckError) and r.error.errcode == errcode
    assert t.take_settlements() == [r] and t.statistics().lanes == 0


@pytest.mark.parametrize(
    ("idempotent", "can_probe", "outcome"),
    [(False, True, "timeout"), (True, False, "timeout"), (True, True, "probe")],
)
def test_ack_timeout(idempotent: bool, can_probe: bool, outcome: str) -> None:
    t = CorrelationTable(ack_timeout=5)
    t.connection_up(1, can_probe=can_probe)
    r = req(idempotent=idempotent)
    t.submit(r)
    t.frames_to_write(10.0)
    assert t.next_deadline() == 15.0
    t.tick(14.9)
    assert t.take_settlements() == [] and not t.take_probe()
    t.tick(15.0)
    if outcome == "timeout":
        assert isinstance(r.error, AckTimeout) and t.take_settlements() == [r]
        assert not t.take_probe()
    else:
        assert t.take_settlements() == [] and t.take_probe() and not t.take_probe()


def test_a_late_ack_on_a_healthy_connection_resends() -> None:
    t = live(ack_timeout=5)
    r = req()
    t.submit(r)
    t.frames_to_write(0.0)
    t.tick(5.0)
    assert t.take_probe()
    t.probe_result(1, True)
    assert len(t.frames_to_write(5.1)) == 1 and r.attempts == 2
    t.ack(1, ack("CB1"), 5.2)
    assert t.take_settlements() == [r] and r.ack is not None


def test_a_late_ack_still_settles_while_suspect() -> None:
    t = live(ack_timeout=5)
    r = req()
    t.submit(r)
    t.frames_to_write(0.0)
    t.tick(5.0)
    t.ack(1, ack("CB1"), 5.5)
    assert t.take_settlements() == [r]


def test_a_late_ack_on_a_dead_connection_resends_on_the_next() -> None:
    t = live(ack_timeout=5)
    r = req()
    t.submit(r)
    t.frames_to_write(0.0)
    t.tick(5.0)
    assert t.take_probe()
    t.probe_result(1, False)
    assert t.frames_to_write(5.0) == []
    t.connection_lost(1)
    t.connection_up(2, can_probe=True)
    assert len(t.frames_to_write(7.0)) == 1
    assert t.statistics().resent_after_reconnect == 1


def test_too_many_timeouts_fail_even_with_probes() -> None:
    t = live(ack_timeout=5, max_ack_timeouts=2)
    r = req()
    t.submit(r)
    now = 0.0
    for _ in range(2):
        t.frames_to_write(now)
        now += 5
        t.tick(now)
        assert t.take_probe()
        t.probe_result(1, True)
    t.frames_to_write(now)
    t.tick(now + 5)
    assert isinstance(r.error, AckTimeout)


def test_reconnect_resends_idempotent_and_fails_the_rest() -> None:
    t = live()
    stream, push, ping = req("CB1"), req("P1", cmd="aibot_send_msg", idempotent=False), req("ping_1", cmd="ping", bound=True)
    for r in (stream, push, ping):
        t.submit(r)
    assert len(t.frames_to_write(0.0)) == 3
    t.connection_lost(1)
    assert isinstance(push.error, OutcomeUnknown) and isinstance(ping.error, ConnectionLost)
    assert set(t.take_settlements()) == {push, ping}
    assert t.frames_to_write(1.0) == []  # no connection
    t.connection_up(2)
    frames = t.frames_to_write(2.0)
    assert [body(f)["req_id"] for f in frames] == ["CB1"]
    t.ack(2, ack("CB1"), 2.0)
    assert t.take_settlements() == [stream]
    assert t.statistics().resent_after_reconnect == 1


def test_an_ack_from_an_old_connection_is_not_matched() -> None:
    t = live()
    r = req()
    t.submit(r)
    t.frames_to_write(0.0)
    t.connection_lost(1)
    t.connection_up(2)
    t.frames_to_write(0.0)
    t.ack(1, ack("CB1"), 0.0)
    assert t.take_settlements() == [] and t.statistics().unmatched_acks == 1
    t.ack(2, ack("CB1"), 0.0)
    assert t.take_settlements() == [r]


def test_connection_lost_is_idempotent() -> None:
    t = live()
    r = req()
    t.submit(r)
    t.frames_to_write(0.0)
    t.connection_lost(1)
    t.connection_lost(1)
    t.connection_lost(7)
    assert t.statistics().resent_after_reconnect == 1


@pytest.mark.parametrize("idempotent", [True, False])
def test_846609_drops_the_connection_and_resends_after_resubscribe(idempotent: bool) -> None:
    t = live()
    r = req("P1", cmd="aibot_send_msg", idempotent=idempotent)
    other = req("CB2")
    t.submit(r)
    t.submit(other)
    t.frames_to_write(0.0)
    t.ack(1, ack("P1", 846609, "aibot websocket not subscribed"), 0.0)
    lost = t.take_lost()
    assert lost is not None and "846609" in lost and t.take_lost() is None
    assert not t.connected and t.frames_to_write(0.0) == []
    t.connection_up(2)
    frames = t.frames_to_write(1.0)
    assert sorted(body(f)["req_id"] for f in frames) == ["CB2", "P1"]
    t.ack(2, ack("P1"), 1.0)
    assert r in t.take_settlements() and r.ack is not None


def test_846609_resubscribes_are_bounded() -> None:
    t = CorrelationTable(max_resubscribe_retries=2)
    r = req("P1")
    t.submit(r)
    for generation in (1, 2, 3):
        t.connection_up(generation)
        t.frames_to_write(0.0)
        t.ack(generation, ack("P1", 846609, "not subscribed"), 0.0)
    assert isinstance(r.error, AckError) and r.error.errcode == 846609


@pytest.mark.parametrize("where", ["queued", "behind"])
def test_an_abandoned_request_is_never_written(where: str) -> None:
    t = live()
    first, second = req(n=0), req(n=1)
    t.submit(first)
    if where == "queued":
        first.abandoned = True
        assert t.frames_to_write(0.0) == []
        assert t.take_settlements() == [] and t.statistics().lanes == 0
        return
    t.submit(second)
    t.frames_to_write(0.0)
    second.abandoned = True
    t.ack(1, ack("CB1"), 0.0)
    assert t.frames_to_write(0.0) == []
    assert t.take_settlements() == [first] and t.statistics().lanes == 0


def test_ten_thousand_requests_leave_no_state() -> None:
    t = live(ack_timeout=5)
    reqs = [req(f"CB{i % 500}", i) for i in range(10_000)]
    for r in reqs:
        t.submit(r)
    done = 0
    now = 0.0
    while done < 10_000:
        frames = t.frames_to_write(now)
        assert frames
        for f in frames:
            t.ack(1, ack(str(body(f)["req_id"])), now)
        done += len(t.take_settlements())
        now += 0.01
    t.tick(now + 6)
    assert t.next_deadline() == float("inf")
    s = t.statistics()
    assert (s.lanes, s.queued, s.in_flight, s.timers, s.acked) == (0, 0, 0, 0, 10_000)
