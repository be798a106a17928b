"""SessionStreams' timer heap: cancelled timers stop counting, are never run, and are compacted;
timers of finished streams stop counting and never fire; live ones fire in order."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from wecom_actors.renderer import Settled
from wecom_actors.sessions import ReplyStream, SessionStreams


@pytest.mark.parametrize("cancelled", [0, 1, 64, 65, 900, 1000])
def test_cancelled_timers_are_not_counted_and_the_heap_is_compacted(cancelled: int) -> None:
    streams = SessionStreams()
    timers = [streams._call_at(float(n), lambda: None) for n in range(1000)]
    for timer in timers[:cancelled]:
        streams._cancel(timer)
        streams._cancel(timer)  # twice is a no-op
    assert streams.pending_timers == 1000 - cancelled
    # Cancelled entries never outnumber live ones by much: memory follows the live timers.
    assert len(streams._heap) <= max(2 * (1000 - cancelled), 1000 - cancelled + SessionStreams.COMPACT_MIN)


async def test_only_live_timers_fire_in_order(autojump_clock: trio.testing.MockClock) -> None:
    streams = SessionStreams()
    fired: list[int] = []
    # Set before the actor runs (it calls these from its own batches only).
    timers = [streams._call_at(trio.current_time() + n, lambda n=n: fired.append(n)) for n in range(200)]
    for timer in timers[::2]:
        streams._cancel(timer)
    async with trio.open_nursery() as nursery:
        await nursery.start(streams.run)
        await trio.sleep(300)
        assert fired == list(range(1, 200, 2))
        assert streams.pending_timers == 0
        assert streams.timers_fired == 100
        nursery.cancel_scope.cancel()


class InstantChannel:
    """Every frame is acked at once; frames are recorded with their time."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, str, str, bool]] = []

    async def send_stream_frame(self, stream_id: str, content: str, finish: bool, *, reply, token, **kw: object) -> None:  # type: ignore[no-untyped-def]
        self.frames.append((trio.current_time(), stream_id, content, finish))
        await reply.send([Settled(token, None)])

    async def fallback(self, text: str) -> None:
        raise AssertionError("no fallback expected")


async def _streams_with_a_pending_timer(streams: SessionStreams, channel: InstantChannel, n: int) -> list[ReplyStream]:
    """``n`` streams, each with a frame sent and more text waiting for its coalescing pause."""
    handles = [ReplyStream(channel, f"S{i}", streams, min_interval=1.0) for i in range(n)]  # type: ignore[arg-type]
    for s in handles:
        await s.append("a")
    await trio.testing.wait_all_tasks_blocked()
    for s in handles:
        await s.append("b")  # within the pause: a coalescing timer
    await trio.testing.wait_all_tasks_blocked()
    return handles


@pytest.mark.parametrize("finished", [0, 1, 64, 65, 900, 1000])
async def test_finished_streams_leave_no_timer_and_the_heap_is_compacted(
    finished: int, mock_clock: trio.testing.MockClock
) -> None:
    streams = SessionStreams()
    channel = InstantChannel()
    async with trio.open_nursery() as nursery:
        await nursery.start(streams.run)
        handles = await _streams_with_a_pending_timer(streams, channel, 1000)
        assert streams.pending_timers == 2000  # a coalescing pause and a window each
        for s in handles[:finished]:
            await s.finish()
        live = 2 * (1000 - finished)
        assert streams.pending_timers == live
        # Dead entries never outnumber live ones by much: memory follows the live timers.
        assert len(streams._heap) <= max(2 * live, live + SessionStreams.COMPACT_MIN) + 1
        for s in handles[finished:]:
            await s.finish()
        assert streams.pending_timers == 0
        nursery.cancel_scope.cancel()


async def test_only_live_stream_timers_fire_in_order(autojump_clock: trio.testing.MockClock) -> None:
    streams = SessionStreams()
    channel = InstantChannel()
    async with trio.open_nursery() as nursery:
        await nursery.start(streams.run)
        handles = []
        for n in range(20):
            s = ReplyStream(channel, f"S{n}", streams, min_interval=1.0 + n)  # type: ignore[arg-type]
            await s.append("a")
            handles.append(s)
        await trio.testing.wait_all_tasks_blocked()
        for s in handles:
            await s.append("b")
        for s in handles[::2]:
            await s.finish()  # its delayed frame can no longer matter
        fired_before = streams.timers_fired
        await trio.sleep(30)
        delayed = [(t, sid) for t, sid, content, finish in channel.frames if content == "ab" and not finish]
        assert [sid for _, sid in delayed] == [f"S{n}" for n in range(1, 20, 2)]
        assert [round(t, 6) for t, _ in delayed] == [1.0 + n for n in range(1, 20, 2)]
        assert streams.timers_fired - fired_before == 10
        assert streams.pending_timers == 10  # the windows of the open streams
        for s in handles[1::2]:
            await s.finish()
        assert streams.pending_timers == 0
        nursery.cancel_scope.cancel()
