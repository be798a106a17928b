"""The replica lease under a MockClock, on the in-process store (same rules as the Redis one)."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
import trio.testing

from wecom_actors.errors import AuthError, KickedOut
from wecom_actors.lease import Lease
from wecom_actors.lease_store import Acquired, MemoryLeaseStore
from wecom_actors.redis_link import RedisUnavailable

from .redis_server import eventually

TTL = 3.0


class Conn:
    """What a lease runs while held: records its live periods, subscribed at once."""

    def __init__(self, log: list[tuple[str, str, float]], name: str) -> None:
        self.log, self.name = log, name
        self.live = False
        self.runs = 0
        self.raise_after: tuple[float, BaseException] | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.runs += 1
        self.live = True
        self.log.append(("up", self.name, trio.current_time()))
        try:
            task_status.started()
            if self.raise_after is not None:
                delay, exc = self.raise_after
                await trio.sleep(delay)
                raise exc
            await trio.sleep_forever()
        finally:
            self.live = False
            self.log.append(("down", self.name, trio.current_time()))


class Frozen:
    """A store wrapper: while ``frozen``, every call of this replica hangs (a stuck process)."""

    def __init__(self, inner: MemoryLeaseStore) -> None:
        self.inner = inner
        self.frozen = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        async def call(*args: Any) -> Any:
            if self.frozen:
                await trio.sleep_forever()
            return await method(*args)

        return call


def lease(store: Any, name: str, **kw: Any) -> Lease:
    return Lease(store, "bot-1", ttl=TTL, replica=name, rng=random.Random(1), **kw)


async def test_one_holder_standbys_wait_and_fencing_grows(autojump_clock: trio.testing.MockClock) -> None:
    store = MemoryLeaseStore()
    log: list[tuple[str, str, float]] = []
    conns = {n: Conn(log, n) for n in "abc"}
    leases = {n: lease(store, n) for n in "abc"}
    async with trio.open_nursery() as nursery:
        await nursery.start(leases["a"].run, conns["a"].run)
        for n in "bc":
            await nursery.start(leases[n].run, conns[n].run)
        await trio.sleep(10 * TTL)  # renewals keep it: no takeover
        assert [n for n in "abc" if conns[n].live] == ["a"]
        assert leases["a"].statistics().held and leases["a"].statistics().fencing_token == 1
        assert leases["a"].counts["renewals"] >= 28  # every TTL/3
        assert [leases[n].state for n in "bc"] == ["standby", "standby"]
        nursery.cancel_scope.cancel()
    assert await store.holder("bot-1") is None  # released on the way out


async def test_release_hands_over_within_a_third_of_the_ttl(autojump_clock: trio.testing.MockClock) -> None:
    store = MemoryLeaseStore()
    log: list[tuple[str, str, float]] = []
    a, b = Conn(log, "a"), Conn(log, "b")
    la, lb = lease(store, "a"), lease(store, "b")
    scope_a = trio.CancelScope()

    async def run_a(*, task_status: trio.TaskStatus[None]) -> None:
        with scope_a:
            await la.run(a.run, task_status=task_status)

    async with trio.open_nursery() as nursery:
        await nursery.start(run_a)
        await nursery.start(lb.run, b.run)
        await trio.sleep(1.0)
        stopped = trio.current_time()
        scope_a.cancel()
        await eventually(lambda: b.live)
        assert trio.current_time() - stopped <= TTL / 3 + 0.1
        assert lb.token == 2
        nursery.cancel_scope.cancel()


async def test_frozen_holder_closes_before_its_ttl_and_one_standby_takes_over(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inner = MemoryLeaseStore()
    frozen = Frozen(inner)
    log: list[tuple[str, str, float]] = []
    conns = {n: Conn(log, n) for n in "abc"}
    leases = {"a": lease(frozen, "a"), "b": lease(inner, "b"), "c": lease(inner, "c")}
    async with trio.open_nursery() as nursery:
        for n in "abc":
            await nursery.start(leases[n].run, conns[n].run)
        await trio.sleep(2.1)  # between two renewals (every TTL/3 = 1 s)
        last_renewal_sent = leases["a"]._valid_until - TTL
        frozen.frozen = True
        await eventually(lambda: conns["b"].live or conns["c"].live)
        took = trio.current_time()
        downs = [t for kind, n, t in log if kind == "down" and n == "a"]
        assert len(downs) == 1 and downs[0] < last_renewal_sent + TTL  # closed before its TTL ended
        assert took >= last_renewal_sent + TTL  # nobody subscribed before it expired
        assert took - (last_renewal_sent + TTL) <= TTL / 3 + 0.1
        assert sum(1 for n in "bc" if conns[n].live) == 1
        assert leases["a"].state in ("standby", "redis-unreachable") and leases["a"].counts["losses"] == 1
        await trio.sleep(5 * TTL)
        assert sum(1 for n in "abc" if conns[n].live) == 1
        nursery.cancel_scope.cancel()


async def test_redis_down_holder_steps_down_before_ttl_then_comes_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryLeaseStore()
    log: list[tuple[str, str, float]] = []
    a = Conn(log, "a")
    la = lease(store, "a")
    async with trio.open_nursery() as nursery:
        await nursery.start(la.run, a.run)
        await trio.sleep(1.5)
        store.fail = RedisUnavailable("connection refused")
        down_at = trio.current_time()
        valid_until = la._valid_until
        await eventually(lambda: not a.live)
        assert trio.current_time() <= valid_until - la.margin + 0.01
        assert trio.current_time() - down_at < TTL
        stats = la.statistics()
        assert stats.renew_failures >= 1 and stats.losses == 1 and not stats.held
        await trio.sleep(3 * TTL)
        assert la.state == "redis-unreachable" and "connection refused" in (la.last_error or "")
        store.fail = None
        await eventually(lambda: a.live)
        assert trio.current_time() - down_at < 5 * TTL  # backoff capped at the TTL
        assert la.token == 2 and la.state == "held" and a.runs == 2
        nursery.cancel_scope.cancel()


async def test_unreachable_at_start_reports_and_retries_with_backoff(autojump_clock: trio.testing.MockClock) -> None:
    store = MemoryLeaseStore()
    store.fail = RedisUnavailable("refused")
    a = Conn([], "a")
    la = lease(store, "a")
    async with trio.open_nursery() as nursery:
        await nursery.start(la.run, a.run)  # started: the bot is up, as a replica without Redis
        assert la.state == "redis-unreachable" and not a.live
        await trio.sleep(20)
        calls = store.calls
        assert 4 <= calls <= 12  # exponential backoff from TTL/10, capped at the TTL
        store.fail = None
        await trio.sleep(TTL + 0.5)
        assert a.live and la.state == "held"
        nursery.cancel_scope.cancel()


async def test_kickout_steps_down_keeps_the_lease_and_never_fights(autojump_clock: trio.testing.MockClock) -> None:
    store = MemoryLeaseStore()
    log: list[tuple[str, str, float]] = []
    a, b = Conn(log, "a"), Conn(log, "b")
    a.raise_after = (2.0, KickedOut("disconnected_event: another connection subscribed"))
    la, lb = lease(store, "a"), lease(store, "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(la.run, a.run)
        await nursery.start(lb.run, b.run)
        await trio.sleep(10 * TTL)
        assert la.state == "stepped-down" and la.counts["kickouts"] == 1
        assert a.runs == 1 and not a.live  # no reconnect: no fight
        assert b.runs == 0 and lb.state == "standby"  # the lease is kept: no standby subscribes
        assert await store.holder("bot-1") == "a"
        nursery.cancel_scope.cancel()
    assert await store.holder("bot-1") is None  # a clean stop releases it


async def test_terminal_error_propagates_and_releases(autojump_clock: trio.testing.MockClock) -> None:
    store = MemoryLeaseStore()
    a = Conn([], "a")
    a.raise_after = (1.0, AuthError("refused"))
    la = lease(store, "a")
    with pytest.RaisesGroup(AuthError, flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            await nursery.start(la.run, a.run)
    assert await store.holder("bot-1") is None


async def test_memory_store_rules(autojump_clock: trio.testing.MockClock) -> None:
    store = MemoryLeaseStore()
    assert await store.acquire("b", "r1", 1.0) == Acquired(1)
    answer = await store.acquire("b", "r2", 1.0)
    assert answer.token == 0 and 0 < answer.remaining <= 1.0
    assert not await store.renew("b", "r2", 1.0) and not await store.release("b", "r2")
    assert await store.renew("b", "r1", 1.0)
    await trio.sleep(1.01)
    assert await store.holder("b") is None and not await store.renew("b", "r1", 1.0)
    assert (await store.acquire("b", "r2", 1.0)).token == 2
    assert await store.release("b", "r2") and await store.holder("b") is None
