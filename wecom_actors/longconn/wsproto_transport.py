"""A WebSocket transport driving wsproto (trio-websocket's own engine) directly over a trio stream.

Why it exists (measured, see docs/benchmarks.md): trio-websocket runs a reader task that puts every message on a
memory channel, so each inbound frame costs a task hop. Here the Reader's ``receive()`` parses
the bytes of one socket read into all the messages they hold and hands them out without further
wake-ups, and ``send_many()`` writes every ready frame with one ``send_all``.

Same interface and error contract as :mod:`.transport`: every failure is ``ConnectionLost``.
"""

from __future__ import annotations

import os
import ssl
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ..errors import ConnectionLost
from ..tls import client_context
from .rawsocket import open_raw_tcp_stream
from .transport import ABORT_CLOSE_TIMEOUT, Transport, only_cancelled

__all__ = ["WsprotoTransport", "open_wsproto_transport"]

_RECEIVE_SIZE = 65536
_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError)


class WsprotoTransport:
    """One client WebSocket connection; the Correlator writes, the Reader reads."""

    def __init__(self, stream: trio.abc.Stream, ws: WSConnection, max_message_size: int) -> None:
        self._stream = stream
        self._ws = ws
        self._max = max_message_size
        self._ready: deque[str] = deque()
        self._partial: list[str] = []
        self._partial_size = 0
        self._send_lock = trio.StrictFIFOLock()
        self._closed_reason: str | None = None

    async def receive(self) -> str:
        # Messages already parsed from an earlier read are handed out without a wake-up; the
        # Reader checkpoints anyway when it passes each one on.
        while not self._ready:
            if self._closed_reason is not None:
                raise ConnectionLost(self._closed_reason)
            try:
                data = await self._stream.receive_some(_RECEIVE_SIZE)
            except _STREAM_ERRORS as exc:
                raise ConnectionLost(f"receive failed: {type(exc).__name__}: {exc}") from exc
            if not data:
                raise ConnectionLost("the server closed the TCP connection")
            try:
                self._ws.receive_data(cast(bytes, data))
                await self._process_events()
            except RemoteProtocolError as exc:
                raise ConnectionLost(f"WebSocket protocol error: {exc}") from exc
        return self._ready.popleft()

    def receive_nowait(self) -> str:
        """A message already parsed from the last read, or trio.WouldBlock: the Reader takes
        everything one read brought before it posts the acks and callbacks on."""
        if not self._ready:
            raise trio.WouldBlock
        return self._ready.popleft()

    async def _process_events(self) -> None:
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                self._partial.append(event.data)
                self._partial_size += len(event.data)
                if self._partial_size > self._max:
                    await self._send_bytes(self._ws.send(CloseConnection(code=1009, reason="message too big")))
                    raise ConnectionLost(f"a message larger than {self._max} characters")
                if event.message_finished:
                    self._ready.append("".join(self._partial))
                    self._partial.clear()
                    self._partial_size = 0
            elif isinstance(event, BytesMessage):
                continue  # WeCom sends text frames only; binary is skipped
            elif isinstance(event, Ping):
                await self._send_bytes(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    await self._send_bytes(self._ws.send(event.response()))
                self._closed_reason = f"closed by the server (code {event.code}{', ' + event.reason if event.reason else ''})"
        if self._closed_reason is not None and not self._ready:
            raise ConnectionLost(self._closed_reason)

    async def send(self, data: bytes) -> None:
        await self.send_many([data])

    async def send_many(self, frames: list[bytes]) -> None:
        """Write several frames with one ``send_all`` (write coalescing).

        Data frames are built here rather than by wsproto: our frames are already UTF-8 JSON
        bytes, and wsproto would want them as str, encode them again and mask them one byte at a
        time in Python. Control frames (pong, close) still go through wsproto, under the same
        send lock, so frames never interleave.
        """
        if self._ws.state is not ConnectionState.OPEN:
            raise ConnectionLost(f"the connection is closing ({self._ws.state.name})")
        await self._send_bytes(b"".join(masked_text_frame(frame, os.urandom(4)) for frame in frames))

    async def _send_bytes(self, data: bytes) -> None:
        # A free lock is taken without a schedule point (trio's ``Lock.acquire`` always yields):
        # the Writer is almost always the only sender, and each yield is a wake-up per batch.
        lock = self._send_lock
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            await self._stream.send_all(data)
        except _STREAM_ERRORS as exc:
            raise ConnectionLost(f"send failed: {type(exc).__name__}: {exc}") from exc
        finally:
            lock.release()

    async def close(self, grace: float) -> None:
        """Close handshake within ``grace`` seconds, then close the stream in any case."""
        try:
            with trio.move_on_after(grace):
                if self._ws.state is ConnectionState.OPEN:
                    await self._send_bytes(self._ws.send(CloseConnection(code=1000)))
                while self._ws.state is not ConnectionState.CLOSED and self._closed_reason is None:
                    data = await self._stream.receive_some(_RECEIVE_SIZE)
                    if not data:
                        break
                    self._ws.receive_data(cast(bytes, data))
                    for event in self._ws.events():
                        if isinstance(event, CloseConnection):
                            self._closed_reason = "closed"
        except (ConnectionLost, RemoteProtocolError, LocalProtocolError, *_STREAM_ERRORS):
            pass  # closing a broken connection: the stream is closed below either way
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)


def masked_text_frame(payload: bytes, mask: bytes) -> bytes:
    """One final, masked text frame (RFC 6455, section 5.2) carrying ``payload`` (UTF-8)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x81, 0x80 | n))
    elif n < 1 << 16:
        header = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    # XOR with the repeated 4-byte key as one big-integer operation (C speed).
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")
    return header + mask + masked


async def _connect(url: str, connect_timeout: float) -> tuple[trio.abc.Stream, WSConnection]:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConnectionLost(f"not a ws:// or wss:// URL: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    stream: trio.abc.Stream | None = None
    try:
        with trio.fail_after(connect_timeout):
            stream = await open_raw_tcp_stream(parts.hostname, port)
            if secure:
                tls = trio.SSLStream(stream, client_context(), server_hostname=parts.hostname)
                await tls.do_handshake()
                stream = tls
            ws = WSConnection(ConnectionType.CLIENT)
            await stream.send_all(ws.send(Request(host=host_header, target=target)))
            while True:
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    raise ConnectionLost("the server closed the connection during the handshake")
                ws.receive_data(cast(bytes, data))
                for event in ws.events():
                    if isinstance(event, AcceptConnection):
                        return stream, ws
                    if isinstance(event, (RejectConnection, RejectData)):
                        status = getattr(event, "status_code", "?")
                        raise ConnectionLost(f"the server refused the WebSocket handshake (HTTP {status})")
    except trio.TooSlowError:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        raise ConnectionLost(f"no WebSocket handshake with {parts.hostname} within {connect_timeout} s") from None
    except (*_STREAM_ERRORS, RemoteProtocolError) as exc:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        raise ConnectionLost(f"connecting to {parts.hostname}:{port} failed: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        raise


@asynccontextmanager
async def open_wsproto_transport(
    url: str,
    *,
    connect_timeout: float,
    max_message_size: int,
    disconnect_timeout: float = 2.0,
) -> AsyncIterator[Transport]:
    """Dial ``url``; on exit close gracefully (plain exit or cancellation) or fast (failure)."""
    stream, ws = await _connect(url, connect_timeout)
    transport = WsprotoTransport(stream, ws, max_message_size)
    failed = False
    try:
        yield transport
    except BaseException as exc:
        failed = not only_cancelled(exc)
        raise
    finally:
        with trio.CancelScope(shield=True):
            await transport.close(ABORT_CLOSE_TIMEOUT if failed else disconnect_timeout)
