"""The WebhookServer actor: the ASGI app served over HTTP/1.1 by hypercorn's trio protocol code.

``run`` binds ``host:port`` (port 0 picks a free port), reports the bound port through
``task_status.started(port)`` once the socket listens, and serves until :meth:`stop` (or
:meth:`shutdown`) is called or the enclosing nursery is cancelled.

The server is built for the open internet, where anyone can connect without credentials:

* **Connections are capped** (``max_connections``): at the cap, idle keep-alive connections
  are closed to make room (oldest first); if there are none, new connections wait in the
  kernel's backlog until one closes.
* **A new connection must send a complete request head within** ``header_timeout`` or it is
  closed: that bounds connections that send nothing and heads sent a byte at a time.
* **Keep-alive**: between requests a connection may stay idle ``keep_alive_timeout`` (longer
  than a reverse proxy's usual 60 s, so the proxy closes first and never sends on a connection
  we just closed); hypercorn's timer also bounds the head of a later request.
* **A peer's EOF closes the socket at once** (hypercorn alone would keep it open until its
  keep-alive timer ends, so connections opened and closed in a burst could fill the fd table).
* **Bodies** must arrive within ``body_timeout`` of the head (enforced by the app: 408).
* **Writes** to a peer that does not read are abandoned after ``WRITE_TIMEOUT``.
* **HTTP/1.1 only**: an ``Upgrade: h2c`` header is ignored (the request is answered in HTTP/1.1,
  which the HTTP RFCs allow) and the HTTP/2 preface ``PRI * HTTP/2.0`` is answered 505 by the
  app. Nothing here needs HTTP/2, and every protocol served is attack surface.

hypercorn's ``serve()`` offers no hook for any of this, so this module runs hypercorn's own
per-connection ``TCPServer`` on listeners it wraps itself.

Graceful stop (:meth:`stop`): stop accepting, close idle keep-alive connections, give requests
in flight ``graceful_timeout`` seconds to send their answers whole, then close everything.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config
from hypercorn.events import Updated
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext

from .._logging import LogLimiter
from ..errors import TerminalError

__all__ = ["WRITE_TIMEOUT", "WebhookServer", "port_of_bind"]

log = logging.getLogger("wecom_actors.webhook.server")

#: A write that makes no progress for this long (the peer does not read) closes the connection.
WRITE_TIMEOUT = 10.0
#: When we close a connection, its peer gets this long to read the last answer and close too.
LINGER_TIMEOUT = 1.0


def port_of_bind(bind: str) -> int:
    """``http://127.0.0.1:8080`` or ``http://[::1]:8080`` -> 8080."""
    return int(bind.rsplit(":", 1)[1])


class _GuardedStream(trio.abc.HalfCloseableStream):
    """A connection: holds one slot of the connection cap until closed; closes at the peer's EOF;
    bounds each write. ``socket`` is what hypercorn reads the peer's address from."""

    def __init__(self, inner: trio.SocketStream, release: Any) -> None:
        self._inner = inner
        self._release = release
        self._closed = False
        self.socket = inner.socket
        self.requests = 0  # request heads parsed so far
        # hypercorn may send EOF while an answer is being written: EOF then waits (no lock: a
        # lock would cost a schedule point on every write of the hot path)
        self._writing = False
        self._written: trio.Event | None = None
        self._eof = False  # our sending side is shut (or being shut): no more writes
        self.idle = True  # no request in progress

    def _close_now(self) -> None:
        if not self._closed:
            self._closed = True
            self._inner.socket.close()
            self._release()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._closed:
            raise trio.ClosedResourceError("the connection is closed")
        try:
            data = await self._inner.receive_some(max_bytes)
        except (trio.BrokenResourceError, OSError):
            self._close_now()
            raise trio.BrokenResourceError("the peer reset the connection") from None
        if not data:
            # The peer is gone (for hypercorn, a half-close ends the request too): free the
            # socket and the slot now rather than when the connection's timers run out.
            self._close_now()
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the connection is closed")
        if self._eof:
            raise trio.BrokenResourceError("the connection is closing")
        with trio.move_on_after(WRITE_TIMEOUT) as scope:
            self._writing = True
            try:
                await self._inner.send_all(data)
            except (trio.BrokenResourceError, OSError):
                self._close_now()
                raise trio.BrokenResourceError("the peer reset the connection") from None
            finally:
                self._writing = False
                if self._written is not None:
                    self._written.set()
                    self._written = None
        if scope.cancelled_caught:
            self._close_now()
            raise trio.BrokenResourceError(f"the peer read nothing for {WRITE_TIMEOUT:g} s")

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the connection is closed")
        await self._shut_sending()

    async def _shut_sending(self) -> None:
        self._eof = True
        await self._wait_written()
        if not self._closed:
            await self._inner.send_eof()

    async def _wait_written(self) -> None:
        while self._writing:
            if self._written is None:
                self._written = trio.Event()
            await self._written.wait()

    async def aclose(self) -> None:
        """Close; after an answer, with a short linger: closing a socket with unread input makes
        the kernel send RST, and the peer then loses the answer it has not read yet (e.g. a 408
        or 505). An idle connection (between requests, or silent) is closed at once."""
        try:
            if not self._closed and not self.idle:
                with trio.move_on_after(LINGER_TIMEOUT):
                    if not self._eof:
                        await self._shut_sending()
                    while await self._inner.receive_some(65536):
                        pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError, OSError):
            pass
        finally:
            self._close_now()


class _Http1Server(TCPServer):
    """hypercorn's connection handler with the switch to HTTP/2 disabled (see the module doc);
    it also tells its stream when a request starts and when the connection is idle again."""

    stream: _GuardedStream  # type: ignore[assignment]
    on_idle: Any = None

    async def protocol_send(self, event: Any) -> None:
        if isinstance(event, Updated):
            if not event.idle:
                self.stream.requests += 1
            self.stream.idle = event.idle
            if self.on_idle is not None:
                self.on_idle(self.stream)
        await super().protocol_send(event)

    async def _read_data(self) -> None:
        inner = self.protocol.protocol
        if isinstance(inner, H11Protocol):
            inner._check_protocol = _stay_on_http1  # type: ignore[method-assign]
        await super()._read_data()


async def _stay_on_http1(event: object) -> None:
    await trio.lowlevel.checkpoint()


class WebhookServer:
    def __init__(
        self,
        app: Any,
        *,
        host: str,
        port: int,
        graceful_timeout: float = 1.0,
        header_timeout: float = 5.0,
        keep_alive_timeout: float = 75.0,
        max_connections: int = 512,
        backlog: int = 1024,
    ) -> None:
        self.backlog = backlog
        self.app = app
        self.host = host
        self.requested_port = port
        self.graceful_timeout = graceful_timeout
        self.header_timeout = header_timeout
        self.keep_alive_timeout = keep_alive_timeout
        self.max_connections = max_connections
        self.port: int | None = None
        self.binds: list[str] = []
        self.connections = 0
        self.evicted = 0  # idle keep-alive connections closed to make room at the cap
        self.timed_out = 0  # connections closed for not sending a request head in time
        self._idle: dict[_GuardedStream, None] = {}  # keep-alive idle, oldest first
        self._slots = trio.Semaphore(max_connections)
        self._stop = trio.Event()
        self._stopped = trio.Event()
        self._accept_errors = LogLimiter(1, 10.0)

    def hypercorn_config(self) -> Config:
        config = Config()
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        config.bind = [f"{host}:{self.requested_port}"]
        config.accesslog = None
        config.errorlog = log
        config.graceful_timeout = self.graceful_timeout
        # WeCom opens a connection per callback in bursts; hypercorn's default of 100 pending
        # connections overflows under a burst and the client waits for a SYN retransmit (1-3 s).
        config.backlog = self.backlog
        # Longer than the usual reverse-proxy idle timeout (60 s), so the proxy closes first.
        config.keep_alive_timeout = self.keep_alive_timeout
        config.read_timeout = None  # the app waits for the body itself (body_timeout)
        return config

    def _bind_error(self, exc: OSError) -> TerminalError:
        return TerminalError(
            f"WECOM_HOST/WECOM_PORT: cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}"
        )

    def shutdown(self) -> None:
        """Start a graceful stop (see :meth:`stop`) without waiting for it."""
        self._stop.set()

    async def stop(self) -> None:
        """Stop accepting, close idle connections, let requests in flight send their answers
        (at most ``graceful_timeout`` s), and return once the server has stopped."""
        self._stop.set()
        await self._stopped.wait()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        config = self.hypercorn_config()
        try:
            sockets = config.create_sockets().insecure_sockets
            for sock in sockets:
                sock.listen(config.backlog)
        except OSError as exc:
            raise self._bind_error(exc) from None
        listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(sock)) for sock in sockets]
        context = WorkerContext(None)
        app = ASGIWrapper(self.app)

        def handler(stream: _GuardedStream) -> _Http1Server:
            server = _Http1Server(app, config, context, {}, stream)  # type: ignore[arg-type]
            server.on_idle = self._on_idle
            return server

        try:
            async with trio.open_nursery() as connections:
                async with trio.open_nursery() as acceptors:
                    for listener in listeners:
                        acceptors.start_soon(self._accept_loop, listener, handler, connections)
                    self.binds = [_bind_url(listener) for listener in listeners]
                    self.port = port_of_bind(self.binds[0])
                    log.info("listening on %s", ", ".join(self.binds))
                    task_status.started(self.port)
                    await self._stop.wait()
                    acceptors.cancel_scope.cancel()
                # Idle keep-alive connections close now; answers in flight get the grace period.
                await context.terminated.set()
                connections.cancel_scope.deadline = trio.current_time() + self.graceful_timeout
        finally:
            for listener in listeners:
                listener.socket.close()
            self._stopped.set()

    async def _accept_loop(self, listener: trio.SocketListener, handler: Any, nursery: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:  # EMFILE and friends: back off a moment, keep serving
                logged, left_out = self._accept_errors.allow(trio.current_time())
                if logged:
                    more = f" ({left_out} more since the last report)" if left_out else ""
                    log.error("accepting a connection failed: %s%s", exc.strerror or exc, more)
                await trio.sleep(0.1)
                continue
            try:
                self._slots.acquire_nowait()
            except trio.WouldBlock:
                # At the cap: close the oldest idle keep-alive connection (that frees its slot
                # at once), else hold this one (and stop accepting) until a connection closes.
                if self._idle:
                    self.evicted += 1
                    next(iter(self._idle))._close_now()
                else:
                    log.warning("%d connections open (the cap): new ones wait until one closes", self.max_connections)
                try:
                    await self._slots.acquire()
                except BaseException:
                    await stream.aclose()
                    raise
            self.connections += 1
            nursery.start_soon(self._serve_one, handler, stream)

    async def _serve_one(self, handler: Any, stream: trio.SocketStream) -> None:
        guarded = _GuardedStream(stream, partial(self._release, None))
        guarded._release = partial(self._release, guarded)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._header_deadline, guarded)
                await handler(guarded)
                nursery.cancel_scope.cancel()
        finally:
            guarded._close_now()

    async def _header_deadline(self, stream: _GuardedStream) -> None:
        await trio.sleep(self.header_timeout)
        if not stream.requests:
            self.timed_out += 1
            stream._close_now()  # hypercorn's read fails and the connection task ends

    def _on_idle(self, stream: _GuardedStream) -> None:
        if stream.idle and stream.requests:
            self._idle[stream] = None
        else:
            self._idle.pop(stream, None)

    def _release(self, stream: _GuardedStream | None) -> None:
        self._idle.pop(stream, None)  # type: ignore[arg-type]
        self.connections -= 1
        self._slots.release()


def _bind_url(listener: trio.SocketListener) -> str:
    host, port = listener.socket.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
