"""The fake WeCom long-connection server: :class:`FakeWeCom` and how to serve it.

Built from the protocol's documentation (summarised in docs/protocol-notes.md), not from any
bot. The rules of the requests live in :mod:`._state`, the handling of each frame the bot sends
(subscribe, acks and their timing) in :mod:`._openws_requests`; this module owns the sockets:
accept, send, close and kick-out, pushes, idle timeout, and the views tests wait on.
"""

from __future__ import annotations

import itertools
import random
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, NoReturn

import msgspec
import trio
import trio_websocket
from trio_websocket import ConnectionClosed

from ._media_server import MediaStore, serve_media
from ._openws_conn import Conn, ControlledStream
from ._openws_drive import DriveMixin
from ._openws_faults import FaultInjector
from ._openws_records import Callback, RecordedFrame
from ._openws_requests import RequestsMixin
from ._openws_tls import FakeTLS
from ._openws_views import ViewsMixin
from ._state import BotState, Rules
from ._wecom_ids import new_msgid

__all__ = [
    "CLOSE_CAUSES",
    "DEFAULT_CLOSE_CODES",
    "FakeWeCom",
    "NotConnected",
    "open_fake_wecom",
    "serve_fake_openws",
]

_encode = msgspec.json.Encoder().encode
_HANDSHAKE_TIMEOUT = 10.0
_CLOSE_TIMEOUT = 5.0
_HISTORY = 1000  # closed connections remembered for connection() / wait_closed()

#: Why the fake closes a connection by itself. WeCom documents no close codes, and its own SDKs
#: do not branch on them; the fake uses 1000 for every cause unless told otherwise.
CLOSE_CAUSES = ("subscribe_refused", "kicked", "idle_timeout")
DEFAULT_CLOSE_CODES: Mapping[str, int] = {cause: 1000 for cause in CLOSE_CAUSES}


def _check_close_code(code: int) -> int:
    # RFC 6455, section 7.4: the codes an endpoint may send in a Close frame.
    if not (code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011)
            or 3000 <= code <= 4999):  # fmt: skip
        raise ValueError(f"{code} is not a close code a server may send (RFC 6455, section 7.4)")
    return code


class NotConnected(RuntimeError):
    """The bot has no live subscribed connection to push a callback to."""


class FakeWeCom(ViewsMixin, DriveMixin, RequestsMixin):
    """A fake ``wss://openws.work.weixin.qq.com`` for tests, the demo and benchmarks.

    Create it, serve it with :func:`serve_fake_openws` or :func:`open_fake_wecom`, point the bot
    at :attr:`url` with :attr:`bot_id` / :attr:`secret`, then drive users (``send_text`` ...),
    observe what they see (:meth:`conversation`, :meth:`stream`) and break things (:attr:`faults`).
    All timing uses trio's clock, so tests under ``trio.testing.MockClock`` are deterministic.
    """

    def __init__(
        self,
        *,
        bots: Mapping[str, str] | None = None,
        ack_delay: float = 0.0,
        stale_req_ids_after_reconnect: bool = True,
        rate_limit: bool = True,
        record: bool = True,
        media_ttl: float = 300.0,
        idle_timeout: float | None = 90.0,
        seed: int | None = None,
        epoch: float | None = None,
        close_codes: Mapping[str, int] | None = None,
    ) -> None:
        bots = dict(bots) if bots is not None else {"fake-bot": "fake-secret"}
        if not bots:
            raise ValueError("bots must name at least one bot")
        if ack_delay < 0 or (idle_timeout is not None and idle_timeout <= 0):
            raise ValueError("ack_delay must be >= 0 and idle_timeout > 0 (or None)")
        self._bots = {bot_id: BotState(bot_id, secret) for bot_id, secret in bots.items()}
        unknown = set(close_codes or {}) - set(CLOSE_CAUSES)
        if unknown:
            raise ValueError(f"unknown close causes {sorted(unknown)}; known: {CLOSE_CAUSES}")
        #: The close code per cause (see :data:`CLOSE_CAUSES`); change it at any time.
        self.close_codes: dict[str, int] = {
            cause: _check_close_code(code)
            for cause, code in {**DEFAULT_CLOSE_CODES, **(close_codes or {})}.items()
        }
        self.bot_id, self.secret = next(iter(bots.items()))
        self.ack_delay = ack_delay
        self.record = record
        self.idle_timeout = idle_timeout
        self.url = ""
        self.media_base_url = ""
        self.frames: list[RecordedFrame] = []
        self.faults = FaultInjector(self)
        self._rng = random.Random(seed)
        self._epoch = time.time() if epoch is None else epoch
        self._t0 = 0.0
        self._rules = Rules(
            rng=self._rng,
            stale_req_ids_after_reconnect=stale_req_ids_after_reconnect,
            rate_limit=rate_limit,
            wall=self._wall,
        )
        self._media = MediaStore(ttl=media_ttl, rng=self._rng)
        self._conns: dict[int, Conn] = {}
        self._history: dict[int, Conn] = {}  # closed connections, oldest first
        self._client_ssl: ssl.SSLContext | None = None
        self._tls: FakeTLS | None = None
        self._nursery: trio.Nursery | None = None  # the serving nursery (second subscribers)
        self._live: dict[str, Conn] = {}  # bot_id -> the newest subscribed connection
        self._in_flight: set[tuple[str, str]] = set()  # (bot_id, req_id) being processed
        self._conn_ids = itertools.count(1)
        self._msg_ids = itertools.count(1)
        self._changed = trio.Event()
        self._serving = False
        self._connections_total = 0
        self._subscribes_ok = 0
        self._subscribes_refused = 0
        self._frames_in = 0
        self._frames_out = 0
        self._acks: Counter[int] = Counter()
        self._callbacks_pushed = 0

    # --- internals shared with the driver and the fault injector ---------------------------------

    def _bot(self, bot_id: str | None) -> BotState:
        bot = self._bots.get(self.bot_id if bot_id is None else bot_id)
        if bot is None:
            raise KeyError(f"unknown bot {bot_id!r}")
        return bot

    def _wall(self, now: float) -> int:
        """A unix timestamp for trio time ``now`` (create_time, created_at)."""
        return int(self._epoch + now - self._t0)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _live_conn(self, bot_id: str) -> Conn | None:
        conn = self._live.get(bot_id)
        if conn is None or conn.closing or conn.closed or conn.replaced:
            return None
        return conn

    def _open_conns(self, bot_id: str | None) -> list[Conn]:
        bot = self._bot(bot_id)
        return [
            c for c in self._conns.values()
            if c.bot_id == bot.bot_id and c.subscribed and not (c.closing or c.closed)
        ]  # fmt: skip

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """An SSL context trusting the fake's certificate when it serves ``wss://``, else None."""
        return self._client_ssl

    def _new_msgid(self) -> str:
        return new_msgid(self._rng, self._wall(trio.current_time()), next(self._msg_ids))

    async def _push(self, cmd: str, body: dict[str, Any], bot_id: str | None) -> Callback:
        """Push one callback to the bot's live connection."""
        bot = self._bot(bot_id)
        conn = self._live_conn(bot.bot_id)
        if conn is None:
            raise NotConnected(f"bot {bot.bot_id!r} has no live subscribed connection")
        req_id = self._rules.token("cb-")
        # Registered before it is sent: a quick reply must find it.
        self._rules.register_callback(bot, conn.id, cmd, req_id, body, trio.current_time())
        if not await self._send(conn, {"cmd": cmd, "headers": {"req_id": req_id}, "body": body}):
            raise NotConnected(f"the connection of bot {bot.bot_id!r} closed during the push")
        self._callbacks_pushed += 1
        msgid = body.get("msgid")
        return Callback(req_id, msgid if isinstance(msgid, str) else "", body, cmd, conn.id)

    # --- sending ---------------------------------------------------------------------------------

    async def _send(self, conn: Conn, frame: dict[str, Any]) -> bool:
        return await self._send_text(conn, _encode(frame).decode(), frame)

    async def _send_text(self, conn: Conn, text: str, frame: dict[str, Any] | None) -> bool:
        """Send one text frame; ``False`` if the connection is gone.

        One writer at a time, in order. The frame is recorded once the write has ended, as
        ``delivered`` only if its bytes reached the socket (not swallowed by a stalled one, not
        cut off by a close). (Not shielded: a fake may lose a frame on shutdown, and a shielded
        write to a client that stopped reading would never end.)"""
        async with conn.send_lock:
            if conn.closed:
                return False
            started = trio.current_time()
            sent = False
            try:
                await conn.ws.send_message(text)
                sent = True
            except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            finally:
                delivered = sent and not conn.stream.stalled
                self._frames_out += delivered
                if self.record:
                    self.frames.append(RecordedFrame(started, "out", conn.id, text, frame,
                                                     delivered=delivered))  # fmt: skip
                self._notify()
        return sent

    async def _ack(
        self, conn: Conn, req_id: str, errcode: int, errmsg: str, body: Any = None
    ) -> None:
        # Acks echo the request's req_id and carry no cmd.
        frame: dict[str, Any] = {
            "headers": {"req_id": req_id},
            "errcode": errcode,
            "errmsg": errmsg,
        }
        if body is not None:
            frame["body"] = body
        if await self._send(conn, frame):
            self._acks[errcode] += 1

    # --- closing ---------------------------------------------------------------------------------

    def _abort(self, conn: Conn) -> None:
        conn.closing = True
        self._mark_close(conn, 1006, "aborted by the fake")
        conn.close_done.set()  # no close handshake to wait for
        conn.stream.abort()
        self._notify()

    @staticmethod
    def _mark_close(conn: Conn, code: int, reason: str | None) -> None:
        if conn.closed_by is None:
            conn.close_code, conn.close_reason, conn.closed_by = code, reason, "server"

    def _start_close(self, conn: Conn, code: int, reason: str | None) -> None:
        conn.closing = True
        self._mark_close(conn, code, reason)
        conn.nursery.start_soon(self._close, conn, code, reason)
        self._notify()

    async def _close(self, conn: Conn, code: int, reason: str | None) -> None:
        conn.closing = True
        self._mark_close(conn, code, reason)
        self._notify()
        try:
            with trio.move_on_after(_CLOSE_TIMEOUT):
                await conn.ws.aclose(code, reason)
        finally:
            conn.close_done.set()

    def _kick(self, conn: Conn, *, close: bool) -> None:
        """Kick-out: ``disconnected_event`` to ``conn``, then (``close``) close it."""
        conn.replaced = True
        if self._live.get(conn.bot_id or "") is conn:
            del self._live[conn.bot_id or ""]
        close = close and not conn.stream.stalled  # a stalled socket stays open for good
        if close:
            conn.closing = True
        conn.nursery.start_soon(self._send_disconnected, conn, close)
        self._notify()

    async def _send_disconnected(self, conn: Conn, close: bool) -> None:
        body = {
            "msgid": self._new_msgid(),
            "create_time": self._wall(trio.current_time()),
            "aibotid": conn.bot_id,
            "msgtype": "event",
            "event": {"eventtype": "disconnected_event"},
        }
        frame = {"cmd": "aibot_event_callback", "headers": {"req_id": self._rules.token("cb-")},
                 "body": body}  # fmt: skip
        if await self._send(conn, frame):
            self._callbacks_pushed += 1
            if conn.bot_id is not None:
                self._bot(conn.bot_id).kicks_sent += 1
        if close:
            await self._close(conn, self.close_codes["kicked"], "replaced by a new connection")

    # --- connections -----------------------------------------------------------------------------

    async def _handle_tcp(self, tcp: trio.SocketStream) -> None:
        """One accepted TCP connection (the handler of ``trio.serve_tcp``): never raises for a
        misbehaving client, so one bad connection cannot stop the server."""
        tls = self._tls
        stream = ControlledStream(
            tcp if tls is None else trio.SSLStream(tcp, tls.server_context, server_side=True,
                                              https_compatible=True), tcp
        )
        try:
            async with trio.open_nursery() as nursery:
                request = None
                with trio.move_on_after(_HANDSHAKE_TIMEOUT):
                    request = await trio_websocket.wrap_server_stream(nursery, stream)
                if request is None:
                    nursery.cancel_scope.cancel()
                    return
                if request.path not in ("/", ""):  # the endpoint is the bare URL
                    await request.reject(404, body=b"not found")
                    nursery.cancel_scope.cancel()
                    return
                ws = await request.accept()
                conn = Conn(next(self._conn_ids), stream, ws, nursery, trio.current_time())
                await self._serve_conn(conn)
                nursery.cancel_scope.cancel()
        except* (ConnectionClosed, trio_websocket.HandshakeError, trio.BrokenResourceError,
                 trio.ClosedResourceError, ssl.SSLError):  # fmt: skip
            pass  # the client went away: that is its business, not the server's
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _serve_conn(self, conn: Conn) -> None:
        self._conns[conn.id] = conn
        self._connections_total += 1
        self._notify()
        try:
            conn.nursery.start_soon(self._idle_watchdog, conn)
            while True:
                try:
                    message = await conn.ws.get_message()
                except ConnectionClosed:
                    break
                await self._on_message(conn, message)
            if conn.closing:  # let a close handshake we started finish
                with trio.move_on_after(_CLOSE_TIMEOUT):
                    await conn.close_done.wait()
        finally:
            if conn.closed_by is None:
                reason = conn.ws.closed
                conn.closed_by = "client"
                conn.close_code = reason.code if reason is not None else 1006
                conn.close_reason = reason.reason if reason is not None else None
            conn.closed = True
            del self._conns[conn.id]
            self._history[conn.id] = conn
            while len(self._history) > _HISTORY:
                del self._history[next(iter(self._history))]
            if self._live.get(conn.bot_id or "") is conn:
                del self._live[conn.bot_id or ""]
            self._notify()

    async def _idle_watchdog(self, conn: Conn) -> None:
        # WeCom: "若长时间未收到心跳，服务端会主动断开连接"; the timeout is undocumented.
        if self.idle_timeout is None:
            return
        while not conn.closing:
            if conn.stream.stalled:
                await trio.sleep_forever()  # a stalled server is past caring
            deadline = conn.last_frame + self.idle_timeout
            if trio.current_time() >= deadline:
                await self._close(conn, self.close_codes["idle_timeout"], "idle timeout")
                return
            await trio.sleep_until(deadline)


async def serve_fake_openws(
    fake: FakeWeCom,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    media_port: int = 0,
    tls: FakeTLS | None = None,
    task_status: trio.TaskStatus[FakeWeCom] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve ``fake``: the WebSocket endpoint and the media HTTP server. ``started()`` with the
    fake once both listen (``fake.url`` and ``fake.media_base_url`` set). Runs until cancelled.

    With ``tls`` (see :class:`FakeTLS`) the endpoint is ``wss://`` and
    :meth:`FakeWeCom.client_ssl_context` trusts it; the media server stays plain HTTP."""
    if fake._serving:
        raise RuntimeError("this FakeWeCom is already being served")
    fake._serving = True
    try:
        async with trio.open_nursery() as nursery:
            fake._nursery = nursery
            fake._tls = tls
            fake._client_ssl = None if tls is None else tls.client_context
            fake._t0 = trio.current_time()
            # One listener: a name resolving to several addresses would get several ports.
            listeners = await trio.open_tcp_listeners(port, host=host)
            for extra in listeners[1:]:
                await extra.aclose()
            listeners = listeners[:1]
            await nursery.start(trio.serve_listeners, fake._handle_tcp, listeners)
            ws_port = listeners[0].socket.getsockname()[1]
            fake.media_base_url = await nursery.start(
                partial(serve_media, fake._media, host=host, port=media_port)
            )
            scheme = "ws" if tls is None else "wss"
            fake.url = f"{scheme}://[{host}]:{ws_port}" if ":" in host else f"{scheme}://{host}:{ws_port}"
            task_status.started(fake)
            await trio.sleep_forever()
    finally:
        fake._serving = False
        fake._nursery = None
    raise AssertionError("unreachable")  # pragma: no cover


@asynccontextmanager
async def open_fake_wecom(
    *, host: str = "127.0.0.1", port: int = 0, media_port: int = 0, tls: FakeTLS | None = None,
    **kwargs: Any,
) -> AsyncIterator[FakeWeCom]:
    """A served :class:`FakeWeCom` (``kwargs`` go to its constructor); stopped on exit."""
    fake = FakeWeCom(**kwargs)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(serve_fake_openws, fake, host=host, port=port, media_port=media_port, tls=tls)
        )
        try:
            yield fake
        finally:
            nursery.cancel_scope.cancel()
