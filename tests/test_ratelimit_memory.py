"""A busy conversation costs the limiter at most ``per_hour`` send times, not one per message."""

from __future__ import annotations

import trio
import trio.testing

from wecom_actors.ratelimit import RateLimiter


async def test_recorded_sends_are_bounded_per_conversation(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter()
    for _ in range(5000):
        limiter.record("busy-chat")
        await trio.sleep(0.1)  # 5000 replies within the hour
    assert len(limiter._convs["busy-chat"].sent) == limiter.per_hour
    # the budget still counts the newest sends: the next push waits for the hourly window
    assert limiter.available_at("busy-chat") > trio.current_time()
