"""The Correlator actor with a connection's Writer and Reader, over an in-memory transport, in
virtual time (the rules themselves: tests/test_correlation.py)."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing

from wecom_actors.errors import AckError, AckTimeout, ConnectionLost, OutcomeUnknown
from wecom_actors.longconn.correlator import (
    ConnectionDown,
    ConnectionUp,
    Correlator,
    Requester,
    WriteBatch,
    Writer,
)
from wecom_actors.longconn.reader import Reader

from .memws import Peer

_generations = itertools.count(1)


async def _start(nursery: trio.Nursery, correlator: Correlator, peer: Peer) -> trio.CancelScope:
    """One connection: a Writer and a Reader in their own nursery; the Correlator is told by
    message when it is up and when it is down (the ConnectionSupervisor's job in the bot)."""
    scope = trio.CancelScope()
    generation = next(_generations)

    async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        writer_tx, writer_rx = trio.open_memory_channel[WriteBatch](64)
        try:
            with scope:
                async with trio.open_nursery() as conn_nursery:
                    await conn_nursery.start(Writer(peer.transport, writer_rx, bound=5).run)
                    await correlator.mailbox.send(ConnectionUp(generation, writer_tx, None))
                    reader = Reader(peer.transport, correlator.mailbox, generation, _no_callbacks)  # type: ignore[arg-type]
                    await conn_nursery.start(reader.run)
                    task_status.started()
        finally:
            writer_rx.close()
            correlator.mailbox.send_nowait(ConnectionDown(generation))

    await nursery.start(run)
    return scope


class _NoCallbacks:
    """The Router's mailbox stand-in: no callbacks expected here."""

    def send_nowait(self, callbacks: object) -> None:
        raise AssertionError("no callbacks expected")


_no_callbacks = _NoCallbacks()


async def test_one_frame_in_flight_per_req_id_and_order_kept(mock_clock: trio.testing.MockClock) -> None:
    c = Correlator(ack_timeout=5)
    peer = Peer(0)
    results: list[str] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(c.run)
            await _start(nursery, c, peer)

            async def send(i: int) -> None:
                await Requester(c.mailbox).request("aibot_respond_msg", "CB1", {"n": i})
                results.append(f"done{i}")

            for i in range(3):
                nursery.start_soon(send, i)
                await trio.testing.wait_all_tasks_blocked()
            for i in range(3):
                frame = await peer.recv()
                assert frame["body"] == {"n": i}
                # Nothing else is written while this frame waits for its ack.
                await trio.testing.wait_all_tasks_blocked()
                with pytest.raises(trio.WouldBlock):
                    peer.from_client.receive_nowait()
                await peer.ack("CB1")
            await trio.testing.wait_all_tasks_blocked()
            assert results == ["done0", "done1", "done2"]
            assert c.statistics().lanes == 0
            nursery.cancel_scope.cancel()


async def test_conflict_6000_is_retried_with_backoff(autojump_clock: trio.testing.MockClock) -> None:
    c = Correlator(ack_timeout=5)
    peer = Peer(0)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(c.run)
            await _start(nursery, c, peer)
            nursery.start_soon(Requester(c.mailbox).request, "aibot_respond_msg", "CB1", {"x": 1})
            times = []
            for errcode in (6000, 6000, 6000, 0):
                frame = await peer.recv()
                times.append(trio.current_time())
                await peer.ack(frame["headers"]["req_id"], errcode)
            await trio.testing.wait_all_tasks_blocked()
            assert [round(b - a, 6) for a, b in itertools.pairwise(times)] == [0.2, 0.4, 0.8]
            s = c.statistics()
            assert (s.lanes, s.acked, s.conflicts_retried) == (0, 1, 3)
            nursery.cancel_scope.cancel()


async def test_other_errcode_fails_and_timeout_fails(autojump_clock: trio.testing.MockClock) -> None:
    c = Correlator(ack_timeout=5)
    peer = Peer(0)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(c.run)
            await _start(nursery, c, peer)

            async def refused() -> None:
                with pytest.raises(AckError) as info:
                    await Requester(c.mailbox).request("aibot_send_msg", "R1", {})
                assert info.value.errcode == 40058

            nursery.start_soon(refused)
            frame = await peer.recv()
            await peer.ack(frame["headers"]["req_id"], 40058, "too long")
            start = trio.current_time()
            with pytest.raises(AckTimeout):
                await Requester(c.mailbox).request("aibot_send_msg", "R2", {})
            assert trio.current_time() - start == 5
            assert c.statistics().lanes == 0
            nursery.cancel_scope.cancel()


async def test_reconnect_resends_idempotent_and_fails_the_rest(mock_clock: trio.testing.MockClock) -> None:
    c = Correlator(ack_timeout=5)
    first, second = Peer(0), Peer(1)
    outcomes: dict[str, object] = {}

    async def call(name: str, cmd: str, req_id: str, idempotent: bool, bound: bool = False) -> None:
        try:
            await Requester(c.mailbox).request(cmd, req_id, {"n": name}, idempotent=idempotent, bound=bound)
            outcomes[name] = "ok"
        except (OutcomeUnknown, ConnectionLost) as exc:
            outcomes[name] = type(exc).__name__

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(c.run)
            scope = await _start(nursery, c, first)
            nursery.start_soon(call, "stream", "aibot_respond_msg", "CB1", True)
            nursery.start_soon(call, "push", "aibot_send_msg", "P1", False)
            nursery.start_soon(call, "ping", "ping", "ping_1", True, True)
            for _ in range(3):
                await first.recv()
            scope.cancel()  # the connection dies with three frames un-acked
            await trio.testing.wait_all_tasks_blocked()
            await _start(nursery, c, second)
            frame = await second.recv()
            assert frame["body"] == {"n": "stream"} and frame["headers"]["req_id"] == "CB1"
            await second.ack("CB1")
            await trio.testing.wait_all_tasks_blocked()
            assert outcomes == {"stream": "ok", "push": "OutcomeUnknown", "ping": "ConnectionLost"}
            assert c.statistics().resent_after_reconnect == 1
            nursery.cancel_scope.cancel()


async def test_846609_kills_the_connection_and_resends_after_resubscribe(mock_clock: trio.testing.MockClock) -> None:
    c = Correlator(ack_timeout=5)
    first, second = Peer(0), Peer(1)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(c.run)

            async def first_conn() -> None:
                with pytest.RaisesGroup(pytest.RaisesGroup(ConnectionLost)):
                    async with trio.open_nursery() as inner:
                        await _start(inner, c, first)

            nursery.start_soon(first_conn)
            result: list[str] = []

            async def push() -> None:
                await Requester(c.mailbox).request("aibot_send_msg", "P1", {}, idempotent=False)
                result.append("ok")

            nursery.start_soon(push)
            frame = await first.recv()
            await first.ack(frame["headers"]["req_id"], 846609, "aibot websocket not subscribed")
            await trio.testing.wait_all_tasks_blocked()
            await _start(nursery, c, second)
            frame = await second.recv()
            assert frame["headers"]["req_id"] == "P1"
            await second.ack("P1")
            await trio.testing.wait_all_tasks_blocked()
            assert result == ["ok"]
            nursery.cancel_scope.cancel()


async def test_ten_thousand_requests_leave_no_state(autojump_clock: trio.testing.MockClock) -> None:
    c = Correlator(ack_timeout=5)
    peer = Peer(0)
    done = 0

    async def one(i: int) -> None:
        nonlocal done
        await Requester(c.mailbox).request("aibot_respond_msg", f"CB{i % 500}", {"i": i})
        done += 1

    async def server() -> None:
        for _ in range(10_000):
            frame = await peer.recv()
            await peer.ack(frame["headers"]["req_id"])

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            await nursery.start(c.run)
            await _start(nursery, c, peer)
            nursery.start_soon(server)
            async with trio.open_nursery() as callers:
                for i in range(10_000):
                    callers.start_soon(one, i)
            assert done == 10_000
            await trio.sleep(6)  # past every ack deadline: the timer heap drains too
            s = c.statistics()
            assert (s.lanes, s.queued, s.in_flight, s.timers, s.acked) == (0, 0, 0, 0, 10_000)
            nursery.cancel_scope.cancel()


async def test_cancelled_caller_is_never_written(mock_clock: trio.testing.MockClock) -> None:
    c = Correlator(ack_timeout=5)
    peer = Peer(0)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(c.run)
            await _start(nursery, c, peer)
            nursery.start_soon(Requester(c.mailbox).request, "aibot_respond_msg", "CB1", {"n": 0})
            frame = await peer.recv()
            with trio.CancelScope() as abandoned:
                nursery.start_soon(_cancel_soon, abandoned)
                await Requester(c.mailbox).request("aibot_respond_msg", "CB1", {"n": 1})  # queued behind n=0
            await peer.ack("CB1")
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.WouldBlock):
                peer.from_client.receive_nowait()
            assert frame["body"] == {"n": 0}
            assert c.statistics().lanes == 0
            nursery.cancel_scope.cancel()


async def _cancel_soon(scope: trio.CancelScope) -> None:
    await trio.testing.wait_all_tasks_blocked()
    scope.cancel()


async def test_one_batch_of_requests_is_one_write(mock_clock: trio.testing.MockClock) -> None:
    """Requests posted together are taken in one mailbox batch and written with one send_many."""
    c = Correlator(ack_timeout=5)
    peer = Peer(0)
    writes: list[int] = []
    send_many = peer.transport.send_many

    async def recording(frames: list[bytes]) -> None:
        writes.append(len(frames))
        await send_many(frames)

    peer.transport.send_many = recording  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await nursery.start(c.run)
        await _start(nursery, c, peer)
        await trio.testing.wait_all_tasks_blocked()
        batches = c.batches
        for i in range(100):
            await Requester(c.mailbox).submit("aibot_respond_msg", f"CB{i}", {"i": i}, reply=None, token=None)  # type: ignore[arg-type]
        await trio.testing.wait_all_tasks_blocked()
        assert writes == [100]
        assert c.batches == batches + 1
        stats = c.mailbox_statistics()
        assert stats.buffer_used == 0 and stats.buffer_max == 4096
        for _ in range(100):
            await peer.recv()
        nursery.cancel_scope.cancel()


class _OneRead:
    """A transport whose one read brought several frames (as the wsproto transport parses them)."""

    def __init__(self, frames: list[bytes]) -> None:
        self._frames = frames
        self._read = False

    async def receive(self) -> bytes:
        if self._read:
            await trio.sleep_forever()
        self._read = True
        return self._frames.pop(0)

    def receive_nowait(self) -> bytes:
        if not self._frames:
            raise trio.WouldBlock
        return self._frames.pop(0)


async def test_the_reader_posts_one_read_as_one_list_of_acks_and_one_of_callbacks() -> None:
    from wecom_actors.longconn.correlator import Acks

    callback = (
        b'{"cmd": "aibot_msg_callback", "headers": {"req_id": "R%d"}, "body": {"msgid": "m%d", '
        b'"chattype": "single", "from": {"userid": "u"}, "msgtype": "text", "text": {"content": "x"}}}'
    )
    frames = [b'{"headers": {"req_id": "A%d"}, "errcode": 0, "errmsg": "ok"}' % i for i in range(3)]
    frames += [callback % (i, i) for i in range(2)]
    correlator_tx, correlator_rx = trio.open_memory_channel[object](10)
    router_tx, router_rx = trio.open_memory_channel[object](10)
    reader = Reader(_OneRead(frames), correlator_tx, 7, router_tx)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(reader.run)
        await trio.testing.wait_all_tasks_blocked()
        acks = correlator_rx.receive_nowait()
        assert isinstance(acks, Acks) and acks.generation == 7
        assert [a.req_id for a in acks.acks] == ["A0", "A1", "A2"]
        callbacks = router_rx.receive_nowait()
        assert [req_id for req_id, _, _ in callbacks] == ["R0", "R1"]  # type: ignore[attr-defined]
        with pytest.raises(trio.WouldBlock):
            correlator_rx.receive_nowait()
        with pytest.raises(trio.WouldBlock):
            router_rx.receive_nowait()
        assert reader.frames_in == 5
        nursery.cancel_scope.cancel()


async def test_an_ack_deadline_passes_on_time_while_other_traffic_keeps_the_correlator_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    c = Correlator(ack_timeout=5)
    peer = Peer(0)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(c.run)
            await _start(nursery, c, peer)
            timed_out: list[float] = []

            async def unanswered() -> None:
                start = trio.current_time()
                with pytest.raises(AckTimeout):
                    await Requester(c.mailbox).request("aibot_send_msg", "LOST", {})
                timed_out.append(trio.current_time() - start)

            nursery.start_soon(unanswered)
            assert (await peer.recv())["headers"]["req_id"] == "LOST"  # never acked
            for i in range(16):  # a request and its ack every 0.5 s, across the deadline
                nursery.start_soon(Requester(c.mailbox).request, "aibot_respond_msg", f"CB{i}", {"n": i})
                frame = await peer.recv()
                await trio.sleep(0.5)
                await peer.ack(frame["headers"]["req_id"])
            await trio.testing.wait_all_tasks_blocked()
            assert timed_out == [5]
            s = c.statistics()
            assert (s.lanes, s.acked) == (0, 16)
            nursery.cancel_scope.cancel()
