"""Signal handling for the command line: serve until SIGINT/SIGTERM, drain, then stop.

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
from typing import Any

import trio

from .config import BotConfig

__all__ = ["run_cancellable_until_signal", "run_until_signal", "serve_until_signal"]

log = logging.getLogger("wecom_actors.run")

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve_until_signal(config: BotConfig, handler: Callable[..., Any], **kwargs: Any) -> int:
    """Serve one bot until SIGINT/SIGTERM, then drain and stop; returns the exit code (0). The
    same path as ``wecom-actors run``: one bot is a fleet of one."""
    from .fleet import run_fleet_until_signal
    from .fleet_config import FleetConfig

    return await run_fleet_until_signal(FleetConfig.single(config, handler), **kwargs)


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
