"""A trio stream over a plain non-blocking socket, without trio's extra schedule points.

trio's ``SocketStream`` makes every successful ``send()`` and ``recv()`` a schedule point, and
reads by trying ``recv()`` first and waiting only after a ``BlockingIOError``. On a quiet
long connection (one frame at a time) that costs, per frame written, a second wake-up of the
Writer after the socket took the data, and per frame read, a failed ``recv()`` system call (a
raised and caught exception) before each wait.

:class:`RawSocketStream` keeps trio's semantics where they matter (cancellation, the I/O waits,
a closed stream's errors) and drops those two costs:

* ``receive_some`` waits for readability first when the last read drained the socket (then the
  wait is the call's one schedule point and the ``recv()`` after it succeeds), and tries
  ``recv()`` first after a read that filled the buffer (more is probably waiting), with a
  schedule point of its own. Every call is a checkpoint, so a reader loop stays fair.
* ``send_all`` is a cancel point but yields only while the socket buffer is full: when the kernel
  takes the whole buffer at once it returns without a wake-up. Its caller's own loop provides the
  schedule point (the Writer waits on its mailbox between batches).

Only the long connection's WebSocket transport uses it (TLS goes on top, in ``trio.SSLStream``).
"""

from __future__ import annotations

import errno
import socket

import trio

__all__ = ["RawSocketStream", "open_raw_tcp_stream"]

#: Bytes asked of ``recv()`` when the caller gives no size.
DEFAULT_RECEIVE_SIZE = 65536


class RawSocketStream(trio.abc.HalfCloseableStream):
    """A connected, non-blocking stream socket (owned: closed by :meth:`aclose`)."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._closed = False
        self._eof_sent = False
        self._drained = True  # the last read emptied the socket: wait before the next recv()
        self._sending = False
        self._receiving = False

    @property
    def socket(self) -> socket.socket:
        return self._sock

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        size = DEFAULT_RECEIVE_SIZE if max_bytes is None else max_bytes
        if size < 1:
            raise ValueError("max_bytes must be >= 1")
        self._check_open()
        if self._receiving:
            raise trio.BusyResourceError("another task is reading from this stream")
        self._receiving = True
        try:
            sock = self._sock
            if self._drained:
                await trio.lowlevel.wait_readable(sock)
            else:
                await trio.lowlevel.checkpoint()
            while True:
                self._check_open()
                try:
                    data = sock.recv(size)
                except BlockingIOError:  # a spurious wake-up
                    await trio.lowlevel.wait_readable(sock)
                    continue
                except OSError as exc:
                    raise _broken(exc) from exc
                self._drained = len(data) < size
                return data
        finally:
            self._receiving = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._check_open()
        if self._eof_sent:
            raise trio.ClosedResourceError("can't send data after sending EOF")
        if self._sending:
            raise trio.BusyResourceError("another task is writing to this stream")
        self._sending = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            sock = self._sock
            with memoryview(data) as view:
                total = len(view)
                if not total:
                    await trio.lowlevel.checkpoint()
                    return
                sent = 0
                while True:
                    self._check_open()
                    try:
                        sent += sock.send(view[sent:])
                    except BlockingIOError:
                        pass
                    except OSError as exc:
                        raise _broken(exc) from exc
                    if sent >= total:
                        return
                    await trio.lowlevel.wait_writable(sock)
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        self._check_open()
        await trio.lowlevel.wait_writable(self._sock)

    async def send_eof(self) -> None:
        self._check_open()
        await trio.lowlevel.checkpoint()
        if self._eof_sent:
            return
        self._eof_sent = True
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise _broken(exc) from exc

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            # wake any task waiting on the socket with ClosedResourceError, then close
            trio.lowlevel.notify_closing(self._sock)
            self._sock.close()
        await trio.lowlevel.checkpoint()


def _broken(exc: OSError) -> trio.BrokenResourceError | trio.ClosedResourceError:
    if exc.errno == errno.EBADF:
        return trio.ClosedResourceError("the stream is closed")
    return trio.BrokenResourceError(f"socket error: {exc}")


async def open_raw_tcp_stream(host: str, port: int) -> RawSocketStream:
    """Connect like ``trio.open_tcp_stream`` (its address resolution, happy eyeballs and
    ``TCP_NODELAY``), then take the connected socket over."""
    stream = await trio.open_tcp_stream(host, port)
    try:
        tsock = stream.socket
        family, kind, proto = tsock.family, tsock.type, tsock.proto
        fd = tsock.detach()
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return RawSocketStream(socket.socket(family, kind, proto, fileno=fd))
