"""One accepted WebSocket connection of the fake, and the TCP stream under it.

The fake wraps each accepted :class:`trio.SocketStream` in a :class:`ControlledStream` before
handing it to ``trio_websocket.wrap_server_stream``, so faults can act below the WebSocket layer:
an abort with no close handshake (RST) and a half-open stall.
"""

from __future__ import annotations

import socket
import struct

import trio
from trio_websocket import WebSocketConnection

from ._openws_records import ConnectionView

__all__ = ["Conn", "ControlledStream"]


class ControlledStream(trio.abc.Stream):
    """A socket stream the fake can abort or stall."""

    def __init__(self, inner: trio.abc.Stream, tcp: trio.SocketStream | None = None) -> None:
        self._inner = inner
        #: The TCP stream under ``inner`` (itself unless TLS is layered in between).
        self._tcp = tcp if tcp is not None else inner
        #: Swallow what the client sends and send nothing (a half-open peer).
        self.stalled = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.stalled:
            await trio.lowlevel.checkpoint()
            return
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while True:
            data = await self._inner.receive_some(max_bytes)
            if not data or not self.stalled:
                return bytes(data)
            # Stalled: the bytes are dropped unread, so no frame (not even a Close or a WS ping)
            # ever reaches the WebSocket layer; EOF still ends the connection.

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()  # TLS: a close_notify, if the socket is still there
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # aborted or reset: nothing left to say goodbye on
        finally:
            if self._tcp is not self._inner:
                await self._tcp.aclose()

    def abort(self) -> None:
        """Close the socket now with SO_LINGER 0: the peer sees a reset, no close handshake."""
        sock = self._tcp.socket  # type: ignore[attr-defined]
        if sock.fileno() != -1:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # wakes any task blocked on the socket with ClosedResourceError


class Conn:
    """The fake's view of one connection."""

    def __init__(
        self,
        conn_id: int,
        stream: ControlledStream,
        ws: WebSocketConnection,
        nursery: trio.Nursery,
        now: float,
    ) -> None:
        self.id = conn_id
        self.stream = stream
        self.ws = ws
        #: Background work of this connection (delayed acks, closes); dies with it.
        self.nursery = nursery
        self.bot_id: str | None = None
        self.subscribed = False
        #: Got a disconnected_event (kicked): no callbacks, requests other than ping -> 846609.
        self.replaced = False
        #: The fake started closing or aborting it.
        self.closing = False
        self.closed = False
        self.close_done = trio.Event()
        self.last_frame = now
        self.opened_at = now
        self.send_lock = trio.Lock()
        #: Set by the fake when it starts a close (code, reason); else read from the socket.
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.closed_by: str | None = None

    def view(self) -> ConnectionView:
        return ConnectionView(
            self.id, self.bot_id, self.subscribed, self.replaced, self.closing, self.closed,
            self.opened_at, self.last_frame, self.close_code, self.close_reason,
            self.closed_by,  # type: ignore[arg-type]
        )  # fmt: skip
