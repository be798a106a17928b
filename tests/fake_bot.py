"""Shared by the tests that run our bot against the bundled fake WeCom."""

from __future__ import annotations

import random
from typing import Any

import trio

from wecom_actors import BotConfig, BotHandle, serve_bot
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
