"""A WebSocket transport of our own over a trio stream: wsproto for the HTTP upgrade, our framing.

Why it exists (measured, see docs/benchmarks.md): trio-websocket runs a reader task that puts every message on a
memory channel, so each inbound frame costs a task hop, and wsproto's frame parser costs more
than the rest of reading a frame. Here the Reader's ``receive()`` parses the bytes of one socket
read into all the messages they hold (:class:`~.wsframes.FrameParser`) and hands them out
without further wake-ups, and ``send_many()`` writes every ready frame with one ``send_all``
on a :class:`~.rawsocket.RawSocketStream` (no wake-up when the kernel takes it all).

Same interface and error contract as :mod:`.transport`: every failure is ``ConnectionLost``.
"""

from __future__ import annotations

import os
import ssl
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request
from wsproto.utilities import RemoteProtocolError

from ..errors import ConnectionLost
from ..tls import client_context
from .rawsocket import open_raw_tcp_stream
from .transport import ABORT_CLOSE_TIMEOUT, Transport, only_cancelled
from .wsframes import (
    CLOSE,
    PING,
    PONG,
    TEXT,
    FrameParser,
    ProtocolError,
    close_payload,
    masked_frame,
)

__all__ = ["WsprotoTransport", "masked_text_frame", "open_wsproto_transport"]

_RECEIVE_SIZE = 65536
#: The HTTP upgrade response's head, at most (bytes).
_MAX_HANDSHAKE = 16384
_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError)


class WsprotoTransport:
    """One client WebSocket connection; the Correlator writes, the Reader reads."""

    def __init__(self, stream: trio.abc.Stream, max_message_size: int, trailing: bytes = b"") -> None:
        self._stream = stream
        self._parser = FrameParser(max_message_size)
        self._pending = trailing  # frames that came with the upgrade response
        self._ready: deque[str] = deque()
        self._send_lock = trio.StrictFIFOLock()
        self._close_sent = False
        self._close_received = False
        self._closed_reason: str | None = None

    async def receive(self) -> str:
        data: bytes | bytearray
        # Messages already parsed from an earlier read are handed out without a wake-up; the
        # Reader checkpoints anyway when it passes each one on.
        while not self._ready:
            if self._closed_reason is not None:
                raise ConnectionLost(self._closed_reason)
            if self._pending:
                data, self._pending = self._pending, b""
            else:
                try:
                    data = await self._stream.receive_some(_RECEIVE_SIZE)
                except _STREAM_ERRORS as exc:
                    raise ConnectionLost(f"receive failed: {type(exc).__name__}: {exc}") from exc
                if not data:
                    raise ConnectionLost("the server closed the TCP connection")
            await self._process(data)
        return self._ready.popleft()

    def receive_nowait(self) -> str:
        """A message already parsed from the last read, or trio.WouldBlock: the Reader takes
        everything one read brought before it posts the acks and callbacks on."""
        if not self._ready:
            raise trio.WouldBlock
        return self._ready.popleft()

    async def _process(self, data: bytes | bytearray) -> None:
        try:
            events = self._parser.feed(data)
        except ProtocolError as exc:
            self._closed_reason = f"WebSocket protocol error: {exc.reason}"
            try:
                await self._send_close(exc.code, exc.reason)
            except ConnectionLost:
                pass  # the connection is being dropped either way
            raise ConnectionLost(self._closed_reason) from exc
        for event in events:
            opcode = event.opcode
            if opcode == TEXT:
                self._ready.append(event.data)  # type: ignore[arg-type]  # TEXT carries a str
            elif opcode == PING:
                if not self._close_sent:  # nothing but the close frame after it
                    await self._send_bytes(masked_frame(PONG, event.data, os.urandom(4)))  # type: ignore[arg-type]
            elif opcode == CLOSE:
                self._close_received = True
                self._closed_reason = f"closed by the server (code {event.code}{', ' + str(event.data) if event.data else ''})"
                try:
                    await self._send_close(event.code)  # echo the status (RFC 6455, section 5.5.1)
                except ConnectionLost:
                    pass  # the server may have dropped the TCP connection already: its close is the news
            # binary messages and pongs are skipped: WeCom sends text frames only
        if self._closed_reason is not None and not self._ready:
            raise ConnectionLost(self._closed_reason)

    async def _send_close(self, code: int, reason: str = "") -> None:
        if self._close_sent:
            return
        self._close_sent = True
        payload = b"" if code == 1005 else close_payload(code, reason)  # 1005: "no status", never sent
        await self._send_bytes(masked_frame(CLOSE, payload, os.urandom(4)))

    async def send(self, data: bytes) -> None:
        await self.send_many([data])

    async def send_many(self, frames: list[bytes]) -> None:
        """Write several frames with one ``send_all`` (write coalescing).

        Our frames are already UTF-8 JSON bytes: each is masked as a whole (one big-integer
        XOR), with one random draw for the batch's masking keys.
        """
        if self._close_sent or self._close_received:
            raise ConnectionLost("the connection is closing")
        keys = os.urandom(4 * len(frames))
        await self._send_bytes(
            b"".join(masked_frame(TEXT, frame, keys[4 * i : 4 * i + 4]) for i, frame in enumerate(frames))
        )

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
        data: bytes | bytearray
        try:
            with trio.move_on_after(grace):
                if not self._close_received:
                    await self._send_close(1000)
                while not self._close_received and self._closed_reason is None:
                    if self._pending:
                        data, self._pending = self._pending, b""
                    else:
                        data = await self._stream.receive_some(_RECEIVE_SIZE)
                    if not data:
                        break
                    if any(event.opcode == CLOSE for event in self._parser.feed(data)):
                        self._close_received = True
        except (ConnectionLost, ProtocolError, *_STREAM_ERRORS):
            pass  # closing a broken connection: the stream is closed below either way
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)


def masked_text_frame(payload: bytes, mask: bytes) -> bytes:
    """One final, masked text frame (RFC 6455, section 5.2) carrying ``payload`` (UTF-8)."""
    return masked_frame(TEXT, payload, mask)


async def _connect(url: str, connect_timeout: float) -> tuple[trio.abc.Stream, bytes]:
    """Dial and upgrade: the stream, and any bytes that followed the upgrade response (frames)."""
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
            # wsproto gets the response's head only: what follows it is frames, ours to parse.
            received = b""
            while (end := received.find(b"\r\n\r\n")) < 0:
                if len(received) > _MAX_HANDSHAKE:
                    raise ConnectionLost(f"an upgrade response head over {_MAX_HANDSHAKE} bytes")
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    raise ConnectionLost("the server closed the connection during the handshake")
                received += data
            ws.receive_data(received[: end + 4])
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    return stream, received[end + 4 :]
                if isinstance(event, (RejectConnection, RejectData)):
                    status = getattr(event, "status_code", "?")
                    raise ConnectionLost(f"the server refused the WebSocket handshake (HTTP {status})")
            raise ConnectionLost("no WebSocket upgrade response from the server")
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
    stream, trailing = await _connect(url, connect_timeout)
    transport = WsprotoTransport(stream, max_message_size, trailing)
    failed = False
    try:
        yield transport
    except BaseException as exc:
        failed = not only_cancelled(exc)
        raise
    finally:
        with trio.CancelScope(shield=True):
            await transport.close(ABORT_CLOSE_TIMEOUT if failed else disconnect_timeout)
