"""The WebSocket transport behind the long-connection actors.

One small interface (:class:`Transport`) so the actors do not depend on trio-websocket directly:
a transport on wsproto over trio streams could replace it. Every transport failure
is translated at this boundary into :class:`~wecom_actors.errors.ConnectionLost`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import trio
import trio_websocket

from ..errors import ConnectionLost
from ..tls import client_context

__all__ = ["Transport", "TransportFactory", "open_ws_transport"]

log = logging.getLogger("wecom_actors.transport")

#: How long a connection already known to be dead gets for its close handshake.
ABORT_CLOSE_TIMEOUT = 0.1

_TRANSPORT_ERRORS = (
    trio_websocket.ConnectionClosed,
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionRejected,
    trio_websocket.DisconnectionTimeout,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    OSError,
)


class Transport(Protocol):
    """A transport may also offer ``receive_nowait()``: a message already read and parsed, or
    ``trio.WouldBlock`` (the Reader then takes all of one read's messages as one batch)."""

    async def receive(self) -> str | bytes:
        """The next text message; raises ConnectionLost when the connection is gone."""
        ...

    async def send(self, data: bytes) -> None:
        """Send one UTF-8 JSON frame as a text message; raises ConnectionLost."""
        ...

    async def send_many(self, frames: list[bytes]) -> None:
        """Send several frames in order (coalesced into one write where the transport can)."""
        ...


TransportFactory = Callable[..., AbstractAsyncContextManager[Transport]]


class _WsTransport:
    __slots__ = ("_ws",)

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self._ws = ws

    async def receive(self) -> str | bytes:
        try:
            return await self._ws.get_message()
        except _TRANSPORT_ERRORS as exc:
            raise ConnectionLost(f"receive failed: {_describe(exc)}") from exc

    async def send(self, data: bytes) -> None:
        try:
            # Frames are JSON text messages (docs/protocol-notes.md, 'Endpoint and frames'); bytes would go out as binary.
            await self._ws.send_message(data.decode("utf-8"))
        except _TRANSPORT_ERRORS as exc:
            raise ConnectionLost(f"send failed: {_describe(exc)}") from exc

    async def send_many(self, frames: list[bytes]) -> None:
        for frame in frames:  # trio-websocket writes one message per call
            await self.send(frame)


def only_cancelled(exc: BaseException) -> bool:
    """True if ``exc`` is a Cancelled, or a group of nothing else (a shutdown, not a failure)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(only_cancelled(sub) for sub in exc.exceptions)
    return isinstance(exc, trio.Cancelled)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio_websocket.ConnectionClosed):
        reason = exc.reason
        if reason is None:
            return "closed"
        return f"closed (code {reason.code}{', ' + reason.reason if reason.reason else ''})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@asynccontextmanager
async def open_ws_transport(
    url: str,
    *,
    connect_timeout: float,
    max_message_size: int,
    disconnect_timeout: float = 2.0,
) -> AsyncIterator[Transport]:
    """Dial ``url`` with trio-websocket; raise ConnectionLost if that or the close fails.

    An exception raised by the body wins over a failure to close afterwards (a stalled peer
    cannot turn a KickedOut or a cancellation into a plain ConnectionLost). The TCP socket is
    closed on every way out.
    """
    body_exc: BaseException | None = None
    connection: trio_websocket.WebSocketConnection | None = None
    try:
        async with trio_websocket.open_websocket_url(
            url,
            ssl_context=client_context() if url.startswith("wss:") else None,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            max_message_size=max_message_size,
            message_queue_size=64,
        ) as ws:
            connection = ws
            try:
                yield _WsTransport(ws)
            except BaseException as exc:
                body_exc = exc
                if not only_cancelled(exc):
                    # The link is dead (or WeCom broke the protocol): do not wait the full
                    # disconnect timeout for a close handshake that will not come. (A plain
                    # cancellation, i.e. shutdown, still closes gracefully.)
                    with trio.move_on_after(ABORT_CLOSE_TIMEOUT):
                        await ws.aclose()
                raise
    except _TRANSPORT_ERRORS as exc:
        if body_exc is not None and body_exc is not exc:
            raise body_exc from None
        raise ConnectionLost(f"connection to {url} failed: {_describe(exc)}") from exc
    finally:
        if connection is not None:
            await _close_socket(connection)


async def _close_socket(ws: trio_websocket.WebSocketConnection) -> None:
    """Close the connection's TCP stream. trio-websocket leaves it open after closing with 1009
    (a message over ``max_message_size``): it sends the close frame, stops reading and returns,
    and its ``aclose()`` then sees the connection as closed already. It has no public handle on
    the stream, hence the private attribute (tests/test_ws_transport_close.py guards it)."""
    stream = getattr(ws, "_stream", None)
    if stream is None:
        log.warning("cannot reach the trio-websocket stream to close it (trio-websocket changed?)")
        return
    await trio.aclose_forcefully(stream)
