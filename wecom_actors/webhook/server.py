"""The WebhookServer actor: the ASGI app served by hypercorn's trio worker.

``run`` binds ``host:port`` (port 0 picks a free port), reports the bound port through
``task_status.started(port)`` once the socket listens, and serves until :meth:`shutdown` is
called (graceful: hypercorn stops accepting, then gives requests in flight ``graceful_timeout``
seconds) or the enclosing nursery is cancelled.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from ..errors import TerminalError

__all__ = ["WebhookServer", "port_of_bind"]

log = logging.getLogger("wecom_actors.webhook.server")


def port_of_bind(bind: str) -> int:
    """``http://127.0.0.1:8080`` or ``http://[::1]:8080`` -> 8080."""
    return int(bind.rsplit(":", 1)[1])


class WebhookServer:
    def __init__(
        self,
        app: Any,
        *,
        host: str,
        port: int,
        graceful_timeout: float = 3.0,
        keep_alive_timeout: float = 75.0,
        backlog: int = 1024,
    ) -> None:
        self.backlog = backlog
        self.app = app
        self.host = host
        self.requested_port = port
        self.graceful_timeout = graceful_timeout
        self.keep_alive_timeout = keep_alive_timeout
        self.port: int | None = None
        self.binds: list[str] = []
        self._stop = trio.Event()

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
        return config

    def _bind_error(self, exc: BaseException) -> BaseException:
        """``Address already in use`` (deep inside hypercorn's nurseries) -> a TerminalError."""
        if isinstance(exc, BaseExceptionGroup):
            matched, rest = exc.split(OSError)
            if matched is None or rest is not None:
                return exc
            while isinstance(matched, BaseExceptionGroup):
                matched = matched.exceptions[0]
            exc = matched
        assert isinstance(exc, OSError)
        return TerminalError(
            f"WECOM_HOST/WECOM_PORT: cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}"
        )

    def shutdown(self) -> None:
        """Stop accepting connections; requests in flight get ``graceful_timeout`` seconds."""
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            try:
                self.binds = await nursery.start(
                    partial(serve, self.app, self.hypercorn_config(), shutdown_trigger=self._stop.wait, mode="asgi")
                )
            except (OSError, BaseExceptionGroup) as exc:
                raise self._bind_error(exc) from None
            self.port = port_of_bind(self.binds[0])  # hypercorn logs "Running on ..." itself
            task_status.started(self.port)
