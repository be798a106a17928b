"""The webhook server under attack, on loopback, in real time: nobody can stall it.

Each test runs an attack with small configured timeouts and checks that the attack is bounded
(connections closed, answers sent) and that ``GET /healthz`` on a fresh connection answers
within a second during and right after it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from wecom_actors import BotConfig, BotHandle, serve_bot
from wecom_actors.webhook.server import WebhookServer

TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
PROBE = b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n"


@asynccontextmanager
async def running_bot(**overrides: Any) -> AsyncIterator[tuple[BotHandle, int]]:
    values: dict[str, Any] = dict(mode="webhook", token=TOKEN, encoding_aes_key=KEY, host="127.0.0.1", port=0)
    values.update(overrides)
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(serve_bot, BotConfig(**values), "echo")
        yield handle, handle.runtime.port
        nursery.cancel_scope.cancel()


def server_of(handle: BotHandle) -> WebhookServer:
    server: WebhookServer = handle.runtime.server
    return server


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    data = b""
    try:
        while chunk := await stream.receive_some(65536):
            data += chunk
    except trio.BrokenResourceError:
        pass
    return data


async def probe(port: int, *, within: float = 1.0) -> None:
    """``GET /healthz`` on a new connection is answered 200 within ``within`` seconds."""
    with trio.fail_after(within):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(PROBE.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
            answer = await read_until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]


async def read_response(stream: trio.SocketStream) -> bytes:
    """One whole answer (head and Content-Length body) from a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += await stream.receive_some(65536)
    return data


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_connections_opened_and_closed_without_a_byte_free_their_sockets_at_once() -> None:
    # The flood of the report: connect, close, no byte sent. hypercorn alone kept each socket
    # until its keep-alive timer ended; here a peer's EOF closes it at once.
    async with running_bot(webhook_header_timeout=30.0, webhook_keep_alive_timeout=30.0) as (handle, port):
        await probe(port)
        baseline = open_fds()
        for _ in range(300):
            s = await trio.open_tcp_stream("127.0.0.1", port)
            await s.aclose()
        await probe(port)
        with trio.fail_after(2):  # far below the 30 s timers: closed at EOF, not by a timer
            await trio.testing.wait_all_tasks_blocked(cushion=0.1)
        assert server_of(handle).connections == 0
        assert open_fds() <= baseline + 2
        await probe(port)


async def test_silent_connections_are_closed_after_the_header_timeout() -> None:
    async with running_bot(webhook_header_timeout=0.5) as (handle, port):
        silent = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(50)]
        await probe(port)  # during the attack
        start = trio.current_time()
        with trio.fail_after(3):
            for s in silent:
                assert await read_until_closed(s) == b""  # the server closed it, sending nothing
        assert 0.3 <= trio.current_time() - start < 2
        assert server_of(handle).timed_out == 50
        await probe(port)  # right after
        for s in silent:
            await s.aclose()


async def test_a_head_sent_a_byte_at_a_time_is_cut_at_the_header_timeout() -> None:
    async with running_bot(webhook_header_timeout=0.6) as (_, port):
        s = await trio.open_tcp_stream("127.0.0.1", port)
        start = trio.current_time()
        closed = False
        with trio.fail_after(3):
            for byte in b"GET /healthz HTTP/1.1\r\nHost: bot\r\nX-Slow: " + b"a" * 100:
                try:
                    await s.send_all(bytes([byte]))
                except trio.BrokenResourceError:
                    closed = True
                    break
                with trio.move_on_after(0.05):
                    if await s.receive_some(100) == b"":
                        closed = True
                        break
        assert closed and trio.current_time() - start < 1.5
        await probe(port)
        await s.aclose()


async def test_a_body_announced_and_never_sent_gets_408_within_the_body_timeout() -> None:
    async with running_bot(webhook_body_timeout=0.5) as (handle, port):
        stalled = []
        for _ in range(20):
            s = await trio.open_tcp_stream("127.0.0.1", port)
            await s.send_all(b"POST /wecom/callback?msg_signature=a&timestamp=1&nonce=n HTTP/1.1\r\nHost: bot\r\nContent-Length: 1000\r\n\r\n{")
            stalled.append(s)
        await probe(port)  # during the attack
        with trio.fail_after(3):
            for s in stalled:
                answer = await read_until_closed(s)  # answered, then closed (the body is unread)
                assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        assert handle.runtime.webhook_statistics().rejected_by_status == {408: 20}
        await probe(port)
        for s in stalled:
            await s.aclose()


async def test_at_the_connection_cap_idle_keep_alive_connections_make_room() -> None:
    async with running_bot(webhook_max_connections=4, webhook_header_timeout=0.5) as (handle, port):
        kept = []
        for _ in range(4):  # one answered request each, then idle (keep-alive)
            s = await trio.open_tcp_stream("127.0.0.1", port)
            await s.send_all(PROBE)
            assert (await read_response(s)).startswith(b"HTTP/1.1 200 ")
            kept.append(s)
        assert server_of(handle).connections == 4
        start = trio.current_time()
        newer = []
        for _ in range(3):  # each evicts the oldest idle connection instead of waiting
            s = await trio.open_tcp_stream("127.0.0.1", port)
            await s.send_all(PROBE)
            assert (await read_response(s)).startswith(b"HTTP/1.1 200 ")
            newer.append(s)
        assert trio.current_time() - start < 1
        assert server_of(handle).evicted == 3
        for s in kept[:3]:
            assert await read_until_closed(s) == b""
        await probe(port)
        for s in kept + newer:
            await s.aclose()


async def test_at_the_connection_cap_new_connections_wait_for_silent_ones_to_time_out() -> None:
    async with running_bot(webhook_max_connections=4, webhook_header_timeout=0.4) as (handle, port):
        silent = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(4)]
        start = trio.current_time()
        await probe(port)  # waits in the backlog until the silent ones are dropped
        assert trio.current_time() - start >= 0.2
        assert server_of(handle).timed_out == 4
        await probe(port)
        for s in silent:
            await s.aclose()


H2C_UPGRADE = (
    b"GET /healthz HTTP/1.1\r\nHost: bot\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
)
# The HTTP/2 client preface and an empty SETTINGS frame ("prior knowledge").
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


async def test_h2c_upgrade_is_ignored_and_answered_in_http_1_1() -> None:
    async with running_bot() as (_, port):
        s = await trio.open_tcp_stream("127.0.0.1", port)
        with trio.fail_after(2):
            await s.send_all(H2C_UPGRADE)
            answer = await read_response(s)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]  # not "101 Switching Protocols"
        assert b"upgrade" not in answer.lower()
        await probe(port)
        await s.aclose()


async def test_http2_prior_knowledge_is_refused_with_505_and_closed() -> None:
    async with running_bot() as (handle, port):
        s = await trio.open_tcp_stream("127.0.0.1", port)
        with trio.fail_after(2):
            await s.send_all(H2_PREFACE[:18])  # "PRI * HTTP/2.0\r\n\r\n": parsed as a request
            answer = await read_until_closed(s)
        assert answer.startswith(b"HTTP/1.1 505 "), answer[:80]
        assert handle.runtime.webhook_statistics().rejected_by_status.get(505) == 1
        await probe(port)
        await s.aclose()
        for _ in range(5):
            # The whole preface: its second half is not HTTP/1.1, so hypercorn may close the
            # connection (or answer 400) before the app's 505 is out; either way no HTTP/2
            # frame comes back, and the connection is closed.
            s = await trio.open_tcp_stream("127.0.0.1", port)
            with trio.fail_after(2):
                await s.send_all(H2_PREFACE)
                answer = await read_until_closed(s)
            assert answer[:13] in (b"HTTP/1.1 505 ", b"HTTP/1.1 400 ", b""), answer[:80]
            await s.aclose()
        await probe(port)


async def test_stop_is_graceful_and_frees_the_port() -> None:
    async with running_bot() as (handle, port):
        idle = await trio.open_tcp_stream("127.0.0.1", port)
        await idle.send_all(PROBE)
        await read_response(idle)
        with trio.fail_after(2):
            await server_of(handle).stop()  # the idle keep-alive connection does not hold it up
            assert await read_until_closed(idle) == b""
        with trio.fail_after(2), pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", port)  # nobody listens any more
        await idle.aclose()


async def test_a_write_to_a_peer_that_does_not_read_is_abandoned(monkeypatch: pytest.MonkeyPatch) -> None:
    from wecom_actors.webhook import server as server_module

    monkeypatch.setattr(server_module, "WRITE_TIMEOUT", 0.3)
    a, b = trio.socket.socketpair()
    released: list[bool] = []
    guarded = server_module._GuardedStream(trio.SocketStream(a), lambda: released.append(True))
    start = trio.current_time()
    with pytest.raises(trio.BrokenResourceError, match="read nothing"):
        while True:  # b never reads: the socket buffers fill up, then the write stalls
            await guarded.send_all(b"x" * 65536)
    assert 0.25 <= trio.current_time() - start < 3
    assert released == [True]  # closed, and its slot given back
    b.close()
