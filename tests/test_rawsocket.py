"""RawSocketStream: a trio stream over a non-blocking socket without trio's extra schedule points."""

from __future__ import annotations

import socket

import pytest
import trio

from wecom_actors.longconn.rawsocket import RawSocketStream, open_raw_tcp_stream


def _pair() -> tuple[RawSocketStream, trio.SocketStream]:
    a, b = socket.socketpair()
    return RawSocketStream(a), trio.SocketStream(trio.socket.from_stdlib_socket(b))


async def test_a_send_the_socket_takes_at_once_has_no_schedule_point() -> None:
    raw, peer = _pair()
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    async with raw, peer, trio.open_nursery() as nursery:
        nursery.start_soon(other)
        await raw.send_all(b"hello")
        assert ran == []  # the other task has not run: send_all did not yield
        await trio.testing.wait_all_tasks_blocked()
        assert ran == ["other"]
        assert await peer.receive_some(100) == b"hello"


async def test_a_large_send_waits_for_the_peer_and_arrives_whole() -> None:
    raw, peer = _pair()
    data = bytes(range(256)) * 20_000  # 5 MB: more than the socket buffers hold
    got = bytearray()

    async def drain() -> None:
        while len(got) < len(data):
            got.extend(await peer.receive_some(1 << 16))

    async with raw, peer, trio.open_nursery() as nursery:
        nursery.start_soon(drain)
        await raw.send_all(data)
    assert bytes(got) == data


async def test_reads_wait_once_and_return_what_came_then_eof() -> None:
    raw, peer = _pair()
    async with raw, peer:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.send_all, b"abc")
            assert await raw.receive_some(2) == b"ab"  # fills the buffer: more may be waiting
            assert await raw.receive_some() == b"c"
        await peer.send_eof()
        assert await raw.receive_some() == b""
        with pytest.raises(ValueError):
            await raw.receive_some(0)


async def test_every_receive_is_a_checkpoint_even_with_data_waiting() -> None:
    raw, peer = _pair()
    async with raw, peer:
        await peer.send_all(b"x" * 10)
        with trio.testing.assert_checkpoints():
            assert await raw.receive_some(4) == b"xxxx"  # the socket was drained: wait first
        with trio.testing.assert_checkpoints():
            assert await raw.receive_some(4) == b"xxxx"  # buffer filled last time: recv at once


async def test_a_cancelled_send_sends_nothing() -> None:
    raw, peer = _pair()
    async with raw, peer:
        with trio.CancelScope() as scope:
            scope.cancel()
            await raw.send_all(b"never")
        assert scope.cancelled_caught
        await raw.send_all(b"sent")
        assert await peer.receive_some(100) == b"sent"


async def test_close_wakes_a_waiting_reader_and_later_calls_fail() -> None:
    raw, peer = _pair()
    async with peer:
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await raw.receive_some()

            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            await raw.aclose()
        await raw.aclose()  # idempotent
        with pytest.raises(trio.ClosedResourceError):
            await raw.send_all(b"x")
        with pytest.raises(trio.ClosedResourceError):
            await raw.receive_some()


async def test_two_readers_at_once_is_an_error() -> None:
    raw, peer = _pair()
    async with raw, peer, trio.open_nursery() as nursery:
        nursery.start_soon(raw.receive_some)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await raw.receive_some()
        nursery.cancel_scope.cancel()


async def test_send_after_eof_and_a_reset_peer() -> None:
    raw, peer = _pair()
    async with raw, peer:
        await raw.send_eof()
        await raw.send_eof()  # idempotent
        with pytest.raises(trio.ClosedResourceError):
            await raw.send_all(b"x")
    a, b = socket.socketpair()
    raw = RawSocketStream(a)
    b.close()
    async with raw:
        with pytest.raises(trio.BrokenResourceError):
            for _ in range(100):  # the first send may still land in the buffer
                await raw.send_all(b"x" * 65536)


async def test_open_raw_tcp_stream_talks_to_a_trio_listener() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with listeners[0]:
        raw = await open_raw_tcp_stream("127.0.0.1", port)
        async with raw, await listeners[0].accept() as server:
            assert raw.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            await raw.send_all(b"ping")
            assert await server.receive_some(10) == b"ping"
            await server.send_all(b"pong")
            assert await raw.receive_some(10) == b"pong"
