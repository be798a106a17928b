"""Shared by the tests that run our bot against the bundled fake WeCom."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from wecom_actors import BotConfig, BotHandle, serve_bot
from wecom_actors.router import DEFAULT_MESSAGE_SIZE, Router
from wecom_actors.testing import FakeWeCom


def bot_config(fake: FakeWeCom, **changes: Any) -> BotConfig:
    """A long-connection config for ``fake``: media from loopback allowed, no backoff jitter."""
    return BotConfig(
        mode="long-connection",
        bot_id=fake.bot_id,
        bot_secret=fake.secret,
        ws_url=fake.url,
        media_allow_private=True,
        reconnect_jitter=0.0,
    ).replace(**changes)


async def serve(config: BotConfig, handler: Any, *, task_status: trio.TaskStatus[BotHandle]) -> None:
    """``serve_bot`` with a seeded RNG, for ``nursery.start(serve, config, handler)``."""
    await serve_bot(config, handler, task_status=task_status, rng=random.Random(7))


def cli_env(**wecom: str) -> dict[str, str]:
    """This process's environment without any WECOM_* setting, plus ``wecom``, unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    env.update(wecom, PYTHONUNBUFFERED="1")
    return env


@asynccontextmanager
async def cli_run(env: dict[str, str], *args: str) -> AsyncIterator[trio.Process]:
    """``python -m wecom_actors.cli run ARGS`` as a child process with its stderr piped; killed on
    the way out if it is still running."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "wecom_actors.cli", "run", *args], env=env, stderr=subprocess.PIPE
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def signal_and_wait(proc: trio.Process, signum: int) -> tuple[int, float]:
    """Send ``signum``; return the exit code and the seconds the process took to exit."""
    sent = trio.current_time()
    proc.send_signal(signum)
    code = await proc.wait()
    return code, trio.current_time() - sent


def post_to(router: Router, req_id: str, message: object, size: int = DEFAULT_MESSAGE_SIZE) -> None:
    """What the Reader and the webhook server do: post to the Router's mailbox."""
    router.mailbox.send_nowait([(req_id, message, size)])  # type: ignore[list-item]
