"""What ``wecom-actors run`` does once the settings are valid: one trio program per bot.

SIGINT/SIGTERM: stop taking new messages, give in-flight replies ``drain_timeout`` seconds to
finish, then cancel (final frames are still sent, shielded and bounded), so the process exits 0
within 5 s of the signal. In webhook mode the drain itself interrupts the handlers still running
and waits until their final answers have been sent (``WebhookBot.drain``), so the cancel finds
nothing left to lose. A second signal during the drain stops at once. A terminal error (auth
refused, kicked out) is raised bare for the CLI to turn into its exit code.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from .bot import BotHandle, serve_bot, terminal_of

__all__ = ["run_cancellable_until_signal", "run_until_signal", "serve_until_signal"]

log = logging.getLogger("wecom_actors.run")

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve_until_signal(
    config: Any,
    handler: Callable[..., Any],
    *,
    on_started: Callable[[BotHandle], None] | None = None,
    **kwargs: Any,
) -> int:
    """Serve one bot until SIGINT/SIGTERM, then drain and stop. Returns the exit code (0)."""
    handle: BotHandle | None = None
    try:
        with trio.open_signal_receiver(*SHUTDOWN_SIGNALS) as signals:
            async with trio.open_nursery() as nursery:

                async def watch() -> None:
                    async for signum in signals:
                        log.info("%s: draining in-flight replies, then stopping", signal.Signals(signum).name)
                        if handle is not None:
                            await drain_until_second_signal(partial(handle.drain, config.drain_timeout), signals)
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(watch)
                handle = await nursery.start(_serve, config, handler, kwargs)
                if on_started is not None:
                    on_started(handle)
    except BaseExceptionGroup as eg:
        terminal = terminal_of(eg)
        if terminal is None:
            raise
        raise terminal from None
    log.info("stopped")
    return 0


async def drain_until_second_signal(drain: Callable[[], Awaitable[bool]], signals: Any) -> None:
    """``await drain()``, cut short by another signal from ``signals``."""
    async with trio.open_nursery() as nursery:

        async def second_signal() -> None:
            async for signum in signals:
                log.warning("%s again: stopping now", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                return

        nursery.start_soon(second_signal)
        if not await drain():
            log.warning("drain time over: replies still running were interrupted")
        nursery.cancel_scope.cancel()


async def _serve(
    config: Any, handler: Callable[..., Any], kwargs: dict[str, Any], *, task_status: trio.TaskStatus[BotHandle]
) -> None:
    await serve_bot(config, handler, task_status=task_status, **kwargs)


async def run_cancellable_until_signal(main: Callable[[], Any]) -> int:
    """Run ``main()`` until it returns or SIGINT/SIGTERM cancels it (then return 0)."""
    with trio.open_signal_receiver(*SHUTDOWN_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(watch)
            result = await main()
            nursery.cancel_scope.cancel()
            return int(result or 0)
    return 0


def run_until_signal(config: Any, handler: Callable[..., Any]) -> int:
    return trio.run(serve_until_signal, config, handler)
