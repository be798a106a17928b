"""The connection Writer: each batch of frames is one shielded, bounded send_many."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from wecom_actors.errors import ConnectionLost
from wecom_actors.longconn.correlator import WriteBatch, Writer


class SlowTransport:
    """send_many takes ``delay`` seconds, then records the frames."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.sent: list[bytes] = []

    async def receive(self) -> str:
        raise NotImplementedError

    async def send(self, data: bytes) -> None:
        await self.send_many([data])

    async def send_many(self, frames: list[bytes]) -> None:
        await trio.sleep(self.delay)
        self.sent += frames


async def test_a_cancelled_writer_finishes_the_write_in_progress(autojump_clock: trio.testing.MockClock) -> None:
    conn = SlowTransport(delay=1.0)
    tx, rx = trio.open_memory_channel[WriteBatch](8)
    with trio.CancelScope() as outer:
        async with trio.open_nursery() as nursery:
            await nursery.start(Writer(conn, rx, bound=5.0).run)
            tx.send_nowait(WriteBatch([b"a", b"b"], None))
            await trio.sleep(0.5)  # the write is under way
            outer.cancel()
    assert conn.sent == [b"a", b"b"]  # whole, although the writer was cancelled mid-write
    assert trio.current_time() == pytest.approx(1.0)


async def test_a_write_that_takes_longer_than_the_bound_drops_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    conn = SlowTransport(delay=60.0)
    tx, rx = trio.open_memory_channel[WriteBatch](8)
    tx.send_nowait(WriteBatch([b"x"], None))
    with pytest.raises(ConnectionLost, match=r"longer than 5\.0 s"):
        await Writer(conn, rx, bound=5.0).run()
    assert conn.sent == []
    assert trio.current_time() == pytest.approx(5.0)


async def test_frames_of_waiting_batches_go_out_in_one_write_then_the_846609_reason(
    autojump_clock: trio.testing.MockClock,
) -> None:
    conn = SlowTransport(delay=0.0)
    tx, rx = trio.open_memory_channel[WriteBatch](8)
    tx.send_nowait(WriteBatch([b"1"], None))
    tx.send_nowait(WriteBatch([b"2", b"3"], "kicked: 846609"))
    writer = Writer(conn, rx, bound=5.0)
    with pytest.raises(ConnectionLost, match="846609"):
        await writer.run()
    assert conn.sent == [b"1", b"2", b"3"] and writer.frames_out == 3
