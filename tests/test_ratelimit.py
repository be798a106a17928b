"""The per-conversation send limiter, in exact virtual time."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from wecom_actors import Overloaded, RateLimiter, RateLimiterStatistics


async def test_the_31st_send_in_a_minute_waits_until_the_window_frees(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter()
    with trio.fail_after(600):
        start = trio.current_time()
        for _ in range(10):
            await limiter.acquire("alice")
        await trio.sleep(30)
        for _ in range(20):
            await limiter.acquire("alice")
        assert trio.current_time() - start == 30
        await limiter.acquire("alice")  # 31st: waits for the first ten to leave the window
        assert trio.current_time() - start == 60
        for _ in range(9):
            await limiter.acquire("alice")
        assert trio.current_time() - start == 60
        await limiter.acquire("alice")  # 41st: the window holds 20 (t=30) + 10 (t=60)
        assert trio.current_time() - start == 90
        # Another conversation has its own budget.
        await limiter.acquire("bob")
        assert trio.current_time() - start == 90
        s = limiter.statistics()
        assert (s.acquired, s.waited, s.rejected, s.conversations) == (42, 2, 0, 2)


async def test_concurrent_waiters_get_slots_in_arrival_order(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(max_wait=120, max_waiters=64)
    served: dict[int, float] = {}
    with trio.fail_after(600):
        start = trio.current_time()

        async def send(i: int) -> None:
            await limiter.acquire("g")
            served[i] = trio.current_time() - start

        async with trio.open_nursery() as nursery:
            for i in range(65):
                nursery.start_soon(send, i)
                await trio.testing.wait_all_tasks_blocked()
            assert limiter.statistics().waiting == 35
        # A later caller never gets an earlier slot (equal slots wake in any order).
        assert [served[i] for i in range(65)] == [0] * 30 + [60] * 30 + [120] * 5
        assert limiter.statistics().waiting == 0


async def test_past_the_queue_bound_it_fails_at_once(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(max_waiters=3)
    with trio.fail_after(600):
        for _ in range(30):
            await limiter.acquire("c")
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(limiter.acquire, "c")
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            with pytest.raises(Overloaded, match="already wait"):
                await limiter.acquire("c")
            assert trio.current_time() == start
            await limiter.acquire("other")  # other conversations are unaffected
        assert limiter.statistics().rejected == 1


async def test_a_wait_longer_than_max_wait_fails_at_once(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(max_wait=10)
    with trio.fail_after(600):
        for _ in range(30):
            await limiter.acquire("c")
        start = trio.current_time()
        with pytest.raises(Overloaded, match="longer than the 10 s") as info:
            await limiter.acquire("c")
        assert trio.current_time() == start
        assert "30/min" in str(info.value)
        await trio.sleep(49)
        with pytest.raises(Overloaded):
            await limiter.acquire("c")  # still 11 s away: over the bound
        await trio.sleep(1)
        await limiter.acquire("c")  # 10 s of waiting is within it
        assert trio.current_time() - start == 60


async def test_a_thousand_an_hour(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(max_wait=3600)
    with trio.fail_after(10_000):
        start = trio.current_time()
        for _ in range(1000):
            await limiter.acquire("c")
        # 33 full minutes of 30, then 10 more at minute 33.
        assert trio.current_time() - start == 33 * 60
        assert limiter.available_at("c") - start == 3600
        limiter.max_wait = 60
        with pytest.raises(Overloaded, match="no room for 1620 s"):
            await limiter.acquire("c")
        limiter.max_wait = 3600
        await limiter.acquire("c")  # the 1001st waits for the first send to leave the hour
        assert trio.current_time() - start == 3600


async def test_the_fail_fast_message_comes_before_any_wait(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(per_minute=1, per_hour=2, max_wait=100)
    with trio.fail_after(600):
        await limiter.acquire("c")
        await limiter.acquire("c")  # waits a minute
        start = trio.current_time()
        with pytest.raises(Overloaded, match="1/min, 2/h"):
            await limiter.acquire("c")  # the hour is full until t0 + 3600
        assert trio.current_time() == start


async def test_record_counts_replies_without_waiting(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter()
    with trio.fail_after(600):
        start = trio.current_time()
        for _ in range(40):
            limiter.record("c")  # never blocks, even past the budget
        await limiter.acquire("c")  # waits until the first 30 leave the minute, and the rest
        assert trio.current_time() - start == 60
        assert limiter.statistics().recorded == 40


async def test_a_cancelled_waiter_leaves_the_queue(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(max_waiters=1)
    with trio.fail_after(600):
        for _ in range(30):
            await limiter.acquire("c")
        with trio.move_on_after(5):
            await limiter.acquire("c")
        assert limiter.statistics().waiting == 0
        start = trio.current_time()
        await limiter.acquire("c")  # the bound is free again
        assert trio.current_time() - start == 55


async def test_idle_conversations_are_evicted(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter()
    with trio.fail_after(10_000):
        for i in range(100):
            await limiter.acquire(f"user{i}")
        limiter.record("replied-only")
        assert limiter.statistics().conversations == 101
        await trio.sleep(3599)
        await limiter.acquire("fresh")
        assert limiter.statistics().conversations == 102  # sends of the last hour still count
        await trio.sleep(1)
        await limiter.acquire("fresh")
        stats = limiter.statistics()
        assert stats == RateLimiterStatistics(
            conversations=1, waiting=0, acquired=102, waited=0, recorded=1, rejected=0
        )


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(per_minute=0)
    with pytest.raises(ValueError):
        RateLimiter(max_wait=-1)


async def test_reservations_and_replies_share_the_window(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(max_wait=120)
    with trio.fail_after(600):
        start = trio.current_time()
        for _ in range(29):
            await limiter.acquire("c")
        await trio.sleep(10)
        limiter.record("c")  # the 30th, a reply at t=10
        async with trio.open_nursery() as nursery:
            nursery.start_soon(limiter.acquire, "c")  # waits until t=60
            await trio.testing.wait_all_tasks_blocked()
            assert limiter.available_at("c") - start == 60  # the next one too (29 left at t=0)
            await trio.sleep(5)
            limiter.record("c")  # a reply while a push waits: counted, in time order
        assert trio.current_time() - start == 60
        await limiter.acquire("c")
        assert trio.current_time() - start == 60
        # The minute now holds t=10, t=15, two at t=60: 26 more fit before t=70.
        for _ in range(26):
            await limiter.acquire("c")
        assert trio.current_time() - start == 60
        await limiter.acquire("c")
        assert trio.current_time() - start == 70
