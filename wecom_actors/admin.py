"""HTTP routes of a fleet: ``/metrics``, ``/healthz``, ``/readyz``, and webhook paths by bot.

:class:`HttpRoutes` is one plain ASGI app. On the admin listener (``admin_port``) it serves only
the admin routes; on the webhook server it also sends each bot's ``callback_path`` to that bot's
own webhook app, so every webhook bot of a fleet shares one hypercorn server.

* ``GET /healthz``: 200 ``ok`` while the process serves, 503 ``draining`` once it shuts down.
* ``GET /readyz``: 200 while every bot is subscribed (long connection), serving (webhook) or a
  standby replica, else 503; the JSON body has each bot's mode, state, connects, reconnects,
  its ``lease`` (with ``redis_url``: state, fencing token, counters, last Redis error) and, for
  a bot stopped by a terminal error, the error and its exit code.
* ``GET /metrics``: the Prometheus text format (see :mod:`.metrics`).

A path of a stopped webhook bot answers 503 (WeCom retries later); any other path 404.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from ._asgi import JSON as _JSON
from ._asgi import TEXT as _TEXT
from ._asgi import Receive, Scope, Send, respond, serve_lifespan

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .fleet import BotSlot

#: Bot states that count as ready (``/readyz``, the ``up`` metric): subscribed (long connection),
#: serving (webhook), or a standby replica waiting for its bot's lease (healthy; it takes over
#: when the holder goes).
READY_STATES = frozenset({"subscribed", "serving", "standby"})

__all__ = ["HttpRoutes", "readiness"]

App = Callable[[Scope, Receive, Send], Awaitable[None]]



def readiness(slots: list[BotSlot]) -> tuple[bool, dict[str, Any]]:
    """(every bot ready?, the JSON document of ``/readyz``)."""
    bots: dict[str, Any] = {}
    for slot in slots:
        state = slot.state()
        entry: dict[str, Any] = {"mode": slot.mode, "state": state, "ready": state in READY_STATES}
        if slot.handle is not None:
            stats = slot.handle.statistics()
            entry.update(connects=stats.connects, reconnects=stats.reconnects, sessions=stats.sessions)
            if stats.lease is not None:  # replicas: this replica's view of the bot's lease
                entry["lease"] = msgspec.structs.asdict(stats.lease)
            entry["last_ack_age_seconds"] = stats.last_ack_age
        if slot.error is not None:
            entry.update(error=type(slot.error).__name__, exit_code=slot.error.exit_code)
        bots[slot.name] = entry
    ready = bool(slots) and all(entry["ready"] for entry in bots.values())
    return ready, {"ready": ready, "bots": bots}


class HttpRoutes:
    """The admin routes, plus webhook paths mounted by :meth:`mount`."""

    def __init__(
        self, slots: Callable[[], list[BotSlot]], registry: Callable[[], CollectorRegistry], *, admin: bool = True
    ) -> None:
        """``registry`` is called once, at the first ``/metrics`` request: a process nobody
        scrapes never loads the metrics library (about 2 MB)."""
        self._slots = slots
        self._registry_factory = registry
        self._registry: CollectorRegistry | None = None
        self._admin = admin
        self._paths: dict[str, App] = {}
        self._stopped: set[str] = set()
        #: Set when the process shuts down: ``/healthz`` answers 503 from then on.
        self.draining = False

    def mount(self, path: str, app: App) -> None:
        self._paths[path] = app
        self._stopped.discard(path)

    def unmount(self, path: str) -> None:
        if self._paths.pop(path, None) is not None:
            self._stopped.add(path)

    def _starting(self, path: str) -> bool:
        """Is ``path`` the callback path of a webhook bot that has not mounted it yet?"""
        return any(
            slot.mode == "webhook" and slot.config.callback_path == path and slot.error is None and not slot.stopped
            for slot in self._slots()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await serve_lifespan(receive, send)
            return
        if kind != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        path, method = scope["path"], scope["method"]
        app = self._paths.get(path)
        if app is not None:
            await app(scope, receive, send)
        elif self._admin and path in ("/healthz", "/readyz", "/metrics"):
            if method not in ("GET", "HEAD"):
                await respond(send, 405, b"method not allowed\n", _TEXT, [(b"allow", b"GET, HEAD")])
            elif path == "/healthz":
                if self.draining:
                    await respond(send, 503, b"draining\n", _TEXT)
                else:
                    await respond(send, 200, b"ok\n", _TEXT)
            elif path == "/readyz":
                ready, doc = readiness(self._slots())
                await respond(send, 200 if ready else 503, json.dumps(doc).encode() + b"\n", _JSON)
            else:
                from prometheus_client import CONTENT_TYPE_LATEST

                from .metrics import render_metrics

                if self._registry is None:
                    self._registry = self._registry_factory()
                body = render_metrics(self._registry)
                await respond(send, 200, body, CONTENT_TYPE_LATEST.encode())
        elif path in self._stopped:
            await respond(send, 503, b"this bot has stopped\n", _TEXT)
        elif self._starting(path):
            # The server listens before the bots mount their paths: a callback in between is
            # refused as retryable, not as an unknown path.
            await respond(send, 503, b"this bot is starting\n", _TEXT, [(b"retry-after", b"1")])
        else:
            await respond(send, 404, b"not found\n", _TEXT)


