"""SessionStreams' timer heap: cancelled timers stop counting, are never run, and are compacted."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from wecom_actors.sessions import SessionStreams


@pytest.mark.parametrize("cancelled", [0, 1, 64, 65, 900, 1000])
def test_cancelled_timers_are_not_counted_and_the_heap_is_compacted(cancelled: int) -> None:
    streams = SessionStreams()
    timers = [streams.call_at(float(n), lambda: None) for n in range(1000)]
    for timer in timers[:cancelled]:
        streams.cancel(timer)
        streams.cancel(timer)  # twice is a no-op
    assert streams.pending_timers == 1000 - cancelled
    # Cancelled entries never outnumber live ones by much: memory follows the live timers.
    assert len(streams._heap) <= max(2 * (1000 - cancelled), 1000 - cancelled + SessionStreams.COMPACT_MIN)


async def test_only_live_timers_fire_in_order(autojump_clock: trio.testing.MockClock) -> None:
    streams = SessionStreams()
    fired: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(streams.run)
        timers = [streams.call_at(trio.current_time() + n, lambda n=n: fired.append(n)) for n in range(200)]
        for timer in timers[::2]:
            streams.cancel(timer)
        await trio.sleep(300)
        assert fired == list(range(1, 200, 2))
        assert streams.pending_timers == 0
        assert streams.timers_fired == 100
        nursery.cancel_scope.cancel()
