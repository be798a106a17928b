"""Many bots in one process: :func:`serve_fleet` and the ``wecom-actors run`` loop around it.

::

    serve_fleet ┬─ admin listener       HttpRoutes on host:admin_port (if admin_port)
                ├─ webhook server       one hypercorn server for every webhook bot, path by bot
                └─ one task per bot ─── serve_bot in a nursery of its own

Each bot runs in its own nursery: a terminal error of one bot (authentication refused, kicked
out) stops that bot only; it is logged, shown in ``/readyz`` and the metrics, and the others go
on. :func:`serve_fleet` returns when it is cancelled, and raises the last bot's terminal error
(bare) when no bot is left. The listeners are bound before any bot starts, so a port in use fails
at once with a message that names the setting.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from .bot import BotHandle, serve_bot, terminal_of
from .config import BotConfig
from .errors import TerminalError
from .fleet_config import FleetBot, FleetConfig
from .runner import drain_until_second_signal

if TYPE_CHECKING:  # imported when a fleet runs: `import wecom_actors` stays light
    from prometheus_client import CollectorRegistry

    from .admin import HttpRoutes
    from .webhook.server import WebhookServer

__all__ = ["BotSlot", "FleetBot", "FleetConfig", "FleetHandle", "run_fleet_until_signal", "serve_fleet"]

log = logging.getLogger("wecom_actors.fleet")

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class BotSlot:
    """One bot of a running fleet: its handle once started, its terminal error once stopped."""

    def __init__(self, bot: FleetBot) -> None:
        self.name = bot.name
        self.config: BotConfig = bot.config
        self.handler = bot.handler
        self.mode = bot.config.mode
        self.handle: BotHandle | None = None
        self.started = False
        self.error: TerminalError | None = None
        self.stopped = False

    def state(self) -> str:
        if self.error is not None:
            return "stopped"
        if self.stopped:
            return "stopped"
        if self.handle is None:
            return "starting"
        return self.handle.statistics().state  # before started too: connecting, backoff, ...


class FleetHandle:
    """What :func:`serve_fleet` hands back once every bot has started (or failed to)."""

    def __init__(self, slots: list[BotSlot], cancel_scope: trio.CancelScope) -> None:
        self.slots = slots
        self._cancel_scope = cancel_scope
        self.admin_port: int | None = None
        self.webhook_port: int | None = None
        self._left = len(slots)
        self._all_stopped = trio.Event()
        self._servers: list[WebhookServer] = []
        self._routes: list[HttpRoutes] = []
        #: The terminal error of the bot that stopped last (None while none has).
        self.last_error: TerminalError | None = None

    @property
    def bots(self) -> dict[str, BotHandle]:
        """The running bots' handles, by name."""
        return {s.name: s.handle for s in self.slots if s.handle is not None and s.started and not s.stopped}

    @property
    def errors(self) -> dict[str, TerminalError]:
        """The bots stopped by a terminal error, by name."""
        return {s.name: s.error for s in self.slots if s.error is not None}

    def ready(self) -> bool:
        """True while every bot is subscribed (long connection) or serving (webhook)."""
        from .admin import readiness

        return readiness(self.slots)[0]

    async def drain(self, grace: float | None = None) -> bool:
        """Drain every running bot at once (each within ``grace``, default its drain_timeout),
        then stop the shared webhook server gracefully. True if every bot finished in time."""
        results: list[bool] = []
        for routes in self._routes:
            routes.draining = True

        async def one(handle: BotHandle) -> None:
            results.append(await handle.drain(grace))

        async with trio.open_nursery() as nursery:
            for slot in self.slots:  # started, or just starting (its handle exists already)
                if slot.handle is not None and not slot.stopped:
                    nursery.start_soon(one, slot.handle)
        for server in self._servers:
            server.shutdown()
        return all(results)

    def stop(self) -> None:
        """Cancel every bot and listener (without draining)."""
        self._cancel_scope.cancel()

    def _bot_stopped(self) -> None:
        self._left -= 1
        if self._left == 0:
            self._all_stopped.set()


class _Seat:
    """A webhook bot's place on the shared server: what the bot would otherwise bind itself."""

    def __init__(self, routes: HttpRoutes, path: str, app: Any, server: WebhookServer) -> None:
        self._routes, self._path, self._app, self._server = routes, path, app, server
        self._stop = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        self._routes.mount(self._path, self._app)
        try:
            assert self._server.port is not None
            task_status.started(self._server.port)
            await self._stop.wait()
        finally:
            self._routes.unmount(self._path)

    @property
    def graceful_timeout(self) -> float:
        return self._server.graceful_timeout

    def shutdown(self) -> None:
        self._routes.unmount(self._path)
        self._stop.set()

    async def stop(self) -> None:
        """This bot leaves the shared server (which keeps serving the other bots)."""
        self.shutdown()
        await trio.lowlevel.checkpoint()


async def serve_fleet(
    fleet: FleetConfig,
    *,
    task_status: trio.TaskStatus[FleetHandle] = trio.TASK_STATUS_IGNORED,
    on_handle: Callable[[FleetHandle], None] | None = None,
    **serve_kwargs: Any,
) -> None:
    """Run every bot of ``fleet``; ``started(FleetHandle)`` once each bot has started or failed.

    ``on_handle`` gets the handle before the bots start (a signal handler can drain the bots
    that have started while others still connect). ``serve_kwargs`` go to every
    :func:`~wecom_actors.serve_bot` call (e.g. ``transport_factory``).
    """
    from .admin import HttpRoutes
    from .webhook.server import WebhookServer

    slots = [BotSlot(bot) for bot in fleet.bots]
    process = fleet.process

    def registry() -> CollectorRegistry:
        from .metrics import fleet_registry

        return fleet_registry(lambda: slots)

    exhausted = False
    try:
        async with trio.open_nursery() as nursery:
            handle = FleetHandle(slots, nursery.cancel_scope)
            if on_handle is not None:
                on_handle(handle)
            if process.admin_port:
                admin_routes = HttpRoutes(lambda: slots, registry)
                handle._routes.append(admin_routes)
                admin = WebhookServer(admin_routes, host=process.host, port=process.admin_port)
                handle.admin_port = await nursery.start(_run_admin, admin)
            seat_factory = None
            if any(slot.mode == "webhook" for slot in slots):
                routes = HttpRoutes(lambda: slots, registry)
                handle._routes.append(routes)
                server = WebhookServer(routes, host=process.host, port=process.port)
                handle.webhook_port = await nursery.start(server.run)
                handle._servers.append(server)
                seat_factory = partial(_seat, routes, server)
            async with trio.open_nursery() as starting:
                for slot in slots:
                    starting.start_soon(
                        nursery.start, partial(_run_bot, slot, handle, seat_factory, serve_kwargs)
                    )
            task_status.started(handle)
            await handle._all_stopped.wait()
            exhausted = True
            nursery.cancel_scope.cancel()  # the listeners: no bot is left
    except BaseExceptionGroup as eg:
        terminal = terminal_of(eg)
        if terminal is None:
            raise
        raise terminal from None
    if exhausted and handle.last_error is not None:
        raise handle.last_error


def _seat(routes: HttpRoutes, server: WebhookServer, app: Any, path: str) -> _Seat:
    return _Seat(routes, path, app, server)


async def _run_admin(server: WebhookServer, *, task_status: trio.TaskStatus[int]) -> None:
    try:
        await server.run(task_status=task_status)
    except (TerminalError, BaseExceptionGroup) as exc:
        terminal = terminal_of(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if terminal is None:
            raise
        reason = str(terminal).partition(": cannot listen on ")[2] or str(terminal)
        raise TerminalError(f"WECOM_ADMIN_PORT: cannot listen on {reason}") from None


async def _run_bot(
    slot: BotSlot,
    fleet: FleetHandle,
    seat_factory: Any,
    kwargs: dict[str, Any],
    *,
    task_status: trio.TaskStatus[None],
) -> None:
    started = False
    try:
        async with trio.open_nursery() as nursery:
            webhook = {"webhook_server": seat_factory} if slot.mode == "webhook" else {}
            def keep(handle: BotHandle) -> None:
                slot.handle = handle

            await nursery.start(
                partial(serve_bot, slot.config, slot.handler, name=slot.name, on_handle=keep, **webhook, **kwargs)
            )
            started = slot.started = True
            task_status.started()
    except BaseExceptionGroup as eg:
        terminal = terminal_of(eg)
        if terminal is None:
            raise
        slot.error = fleet.last_error = terminal
        left = sum(1 for s in fleet.slots if not s.stopped and s is not slot)
        log.error(
            "bot %s stopped: %s: %s (exit code %d); %d other bot(s) still running",
            slot.name, type(terminal).__name__, terminal, terminal.exit_code, left,
            extra={"bot": slot.name},
        )
    finally:
        slot.stopped = True
        fleet._bot_stopped()
    if not started:
        task_status.started()


async def run_fleet_until_signal(fleet: FleetConfig, **serve_kwargs: Any) -> int:
    """Serve ``fleet`` until SIGINT/SIGTERM (drain, then stop: returns 0) or until no bot is
    left (raises the last bot's terminal error, bare, for its exit code)."""
    handle: FleetHandle | None = None
    try:
        with trio.open_signal_receiver(*SHUTDOWN_SIGNALS) as signals:
            async with trio.open_nursery() as nursery:

                async def watch() -> None:
                    async for signum in signals:
                        log.info("%s: draining in-flight replies, then stopping", signal.Signals(signum).name)
                        if handle is not None:
                            await drain_until_second_signal(handle.drain, signals)
                        nursery.cancel_scope.cancel()
                        return

                def keep(fleet_handle: FleetHandle) -> None:
                    nonlocal handle
                    handle = fleet_handle

                nursery.start_soon(watch)
                await nursery.start(partial(serve_fleet, fleet, on_handle=keep, **serve_kwargs))
    except BaseExceptionGroup as eg:
        terminal = terminal_of(eg)
        if terminal is None:
            raise
        raise terminal from None
    log.info("stopped")
    return 0
