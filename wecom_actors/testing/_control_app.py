"""The control API of the fake WeCom (HTTP + JSON) and the simulator page, as one ASGI app served
by hypercorn's trio worker. The API is documented in ``docs/testing-control-api.md``.

Every answer is JSON (``{"error": ...}`` with a 4xx status for a bad request, which changes
nothing) except the page, its assets, media bytes and the Server-Sent Events feed.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from importlib import resources
from typing import Any, NoReturn
from urllib.parse import parse_qs, unquote

import msgspec
import trio

from ._control_schema import (
    MAX_BODY,
    BadRequest,
    CardClickIn,
    EnterChatIn,
    FaultIn,
    FeedbackIn,
    MessageIn,
    decode_body,
)
from ._control_sims import Simulator

__all__ = ["API", "ControlApp", "serve_control_api"]

logger = logging.getLogger("wecom_actors.testing.control")

API = "/api/v1"
_ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
_KEEPALIVE = 15.0  # seconds between SSE comments on an idle feed
_POSTS = {
    "messages": (MessageIn, "send_message"),
    "enter_chat": (EnterChatIn, "enter_chat"),
    "card_click": (CardClickIn, "card_click"),
    "feedback": (FeedbackIn, "feedback"),
}
_encode = msgspec.json.Encoder().encode


def _asset(name: str) -> bytes:
    return (resources.files("wecom_actors.testing") / "simulator" / name).read_bytes()


class ControlApp:
    """The ASGI app over one :class:`Simulator`. ``loopback_only`` refuses requests whose Host
    header is not a loopback name (DNS rebinding)."""

    def __init__(self, sim: Simulator, *, loopback_only: bool = True) -> None:
        self.sim = sim
        self.loopback_only = loopback_only

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        try:
            await self._route(scope, receive, send)
        except BadRequest as exc:
            await _json(send, exc.status, {"error": exc.message})

    async def _route(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.loopback_only:
            if _hostname(headers.get("host", "")) not in _LOOPBACK_HOSTS:
                raise BadRequest(403, "the control API answers loopback host names only")
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if path in _ASSETS:
            _allow(method, "GET")
            name, ctype = _ASSETS[path]
            await _raw(send, 200, _asset(name), ctype)
            return
        if not path.startswith(API + "/"):
            raise BadRequest(404, f"no such endpoint: {path}")
        route = path[len(API) + 1:]
        sim = self.sim
        if route in _POSTS or route == "faults":
            _allow(method, "POST")
            if not headers.get("content-type", "").startswith("application/json"):
                raise BadRequest(415, "POST bodies must be sent as Content-Type: application/json")
            raw = await _body(receive)
            if route == "faults":
                fault = decode_body(raw, FaultIn)
                kw = {f: getattr(fault, f) for f in fault.__struct_fields__ if f != "kind"}
                await _json(send, 200, {"ok": True, **await sim.fault(fault.kind, **kw)})
                return
            type_, op = _POSTS[route]
            result = await getattr(sim, op)(decode_body(raw, type_))  # type: ignore[arg-type]
            await _json(send, 202, {"ok": True, **result})
            return
        _allow(method, "GET")
        if route == "status":
            await _json(send, 200, sim.status())
        elif route == "conversations":
            await _json(send, 200, {"conversations": sim.conversations()})
        elif route.startswith("conversations/"):
            await _json(send, 200, sim.conversation(unquote(route[len("conversations/"):])))
        elif route == "frames":
            since, limit = _int(query, "since", 0), min(_int(query, "limit", 500), 5000)
            await _json(send, 200, {"frames": sim.frames(since, limit)})
        elif route.startswith("media/user/") or route.startswith("media/bot/"):
            who, _, key = route[len("media/"):].partition("/")
            item = sim.user_media(key) if who == "user" else sim.bot_media(unquote(key))
            if item is None:
                raise BadRequest(404, f"unknown media {key!r}")
            await _raw(send, 200, item[0], item[1])
        elif route == "events":
            last = headers.get("last-event-id")
            since = int(last) if last and last.isdigit() else _int(query, "since", 0)
            await self._events(send, receive, since)
        else:
            raise BadRequest(404, f"no such endpoint: {path}")

    async def _events(self, send: Any, receive: Any, since: int) -> None:
        """Server-Sent Events: every event of the log after ``since``, then live ones."""
        log = self.sim.events
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"),
        ]})  # fmt: skip
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
            seq = since
            events = log.since(seq)
            if seq and events and events[0][0] > seq + 1:
                chunk = b"event: reset\ndata: {}\n\n"  # the reader missed events: reload
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            while True:
                chunk = b"".join(
                    b"id: %d\nevent: %s\ndata: %s\n\n" % (n, e["type"].encode(), _encode(e))
                    for n, e in log.since(seq)
                )
                seq = log.last
                await send({"type": "http.response.body", "body": chunk or b": keepalive\n\n",
                            "more_body": True})  # fmt: skip
                with trio.move_on_after(_KEEPALIVE):
                    await log.wait_after(seq)


async def _cancel_on_disconnect(receive: Any, scope: trio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _allow(method: str, allowed: str) -> None:
    if method != allowed and not (allowed == "GET" and method == "HEAD"):
        raise BadRequest(405, f"method {method} not allowed here (use {allowed})")


def _int(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    if not values[0].isdigit():
        raise BadRequest(400, f"{name} must be a non-negative integer")
    return int(values[0])


async def _body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            raise BadRequest(400, "the client went away")
        chunk = event.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BadRequest(413, f"the request body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
        if not event.get("more_body"):
            return b"".join(chunks)


async def _raw(send: Any, status: int, body: bytes, ctype: str) -> None:
    headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Any, status: int, data: Any) -> None:
    await _raw(send, status, json.dumps(data, ensure_ascii=False).encode(), "application/json")


async def serve_control_api(
    sim: Simulator,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve the control API and the simulator page for ``sim`` (and run ``sim``'s watcher).
    ``started()`` with the base URL, e.g. ``http://127.0.0.1:8765``. Runs until cancelled."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logger
    loopback = host in ("127.0.0.1", "localhost", "::1")
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.run)
        app = ControlApp(sim, loopback_only=loopback)
        binds: list[str] = await nursery.start(partial(serve, app, config, mode="asgi"))  # type: ignore[arg-type]
        task_status.started(binds[0])
        await trio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover
