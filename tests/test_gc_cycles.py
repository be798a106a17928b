"""The per-message path frees by reference counting alone: no reference cycles for the collector.

Cycles (closures stored on the objects they capture, bound methods held by other objects,
exceptions kept with their tracebacks) defer freeing to the garbage collector, whose pauses then
set the tail latency. Here 2,000 echo messages go through the bundled fake with the collector
off; one ``gc.collect()`` afterwards must find (almost) nothing unreachable.
"""

from __future__ import annotations

import gc
import random
from collections import Counter
from collections.abc import Iterator
from functools import partial

import pytest
import trio
import trio.testing

from wecom_actors import echo, serve_bot
from wecom_actors.testing import open_fake_wecom

from .fake_bot import bot_config

MESSAGES = 2000
USERS = 20


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept in gc.garbage, to be named
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.parametrize("transport", ["wsproto", "trio-websocket"])
async def test_echo_messages_leave_no_cyclic_garbage(
    autojump_clock: trio.testing.MockClock, collector_off: None, transport: str
) -> None:
    async with open_fake_wecom(rate_limit=False) as fake, trio.open_nursery() as nursery:
        config = bot_config(fake, transport=transport)
        await nursery.start(partial(serve_bot, config, echo, rng=random.Random(3)))
        for i in range(20):  # warm-up: first-use allocations and caches
            await fake.wait_stream_finished((await fake.send_text(f"warm {i}")).req_id)
        gc.collect()
        gc.garbage.clear()

        async def user(u: int) -> None:
            for i in range(MESSAGES // USERS):
                cb = await fake.send_text(f"message {i} from {u}", userid=f"user{u}")
                assert (await fake.wait_stream_finished(cb.req_id)).content == f"message {i} from {u}"

        async with trio.open_nursery() as users:
            for u in range(USERS):
                users.start_soon(user, u)
        unreachable = gc.collect()
        kinds = Counter(type(o).__qualname__ for o in gc.garbage).most_common(8)
        nursery.cancel_scope.cancel()
    assert unreachable / MESSAGES < 0.05, f"{unreachable} unreachable objects, most common: {kinds}"
