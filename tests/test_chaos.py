"""Chaos: random connection drops during a steady stream of messages, some of them slow streams.

Every message must be answered exactly once: by an accepted finish frame with its whole text,
or by the documented fallback (the whole text as one proactive message to the same chat, when
WeCom no longer accepts the old req_id). Nothing lost, nothing duplicated.
"""

from __future__ import annotations

import random
from functools import partial

import pytest
import trio
import trio.testing

from wecom_actors import echo, serve_bot
from wecom_actors.testing import NotConnected, open_fake_wecom

from .fake_bot import bot_config


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("transport", ["wsproto", "trio-websocket"])
async def test_random_drops_lose_and_duplicate_nothing(
    autojump_clock: trio.testing.MockClock, seed: int, transport: str
) -> None:
    rng = random.Random(seed)
    users = [f"user{i}" for i in range(30)]
    sent: dict[str, list[str]] = {u: [] for u in users}  # the expected final text per message
    async with open_fake_wecom() as fake, trio.open_nursery() as nursery:
        config = bot_config(fake, transport=transport)
        bot = await nursery.start(partial(serve_bot, config, echo, rng=random.Random(seed)))

        async def chaos() -> None:
            for _ in range(3):
                await trio.sleep(rng.uniform(1.0, 1.8))
                fake.faults.drop()

        nursery.start_soon(chaos)
        for n in range(300):  # 300 messages over ~6 s of virtual time
            user = rng.choice(users)
            if rng.random() < 0.2:
                words = " ".join(f"s{n}w{k}" for k in range(5))
                text, expected = f"/slow {rng.uniform(0.3, 1.5):.2f} {words}", words
            else:
                text = expected = f"message {n} from {user}"
            while True:
                try:
                    await fake.send_text(text, userid=user)
                    break
                except NotConnected:
                    await trio.sleep(0.05)  # WeCom holds it until the bot is back
            sent[user].append(expected)
            await trio.sleep(0.02)

        def settled() -> bool:
            return all(
                sum(b.content == text and (b.finished or b.kind == "markdown") for b in fake.conversation(u))
                >= 1
                for u, texts in sent.items()
                for text in texts
            )

        with trio.fail_after(120):
            await fake.wait_until(settled)
        await trio.sleep(10)  # anything late (a resend, a duplicate) would arrive by now
        reconnects = bot.statistics().reconnects
        nursery.cancel_scope.cancel()

    assert reconnects == 3
    lost, duplicated = [], []
    for user, texts in sent.items():
        bubbles = fake.conversation(user)
        for text in texts:
            answers = [b for b in bubbles if b.content == text and (b.finished or b.kind == "markdown")]
            if not answers:
                lost.append(text)
            elif len(answers) > 1:
                duplicated.append(text)
    assert (lost, duplicated) == ([], [])


async def test_stream_timers_return_to_zero_once_streams_finish(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_wecom() as fake, trio.open_nursery() as nursery:
        bot = await nursery.start(partial(serve_bot, bot_config(fake), echo, rng=random.Random(1)))
        slow = await fake.send_text("/slow 30 a b c d e f")
        await fake.wait_until(lambda: (fake.stream(slow.req_id) is not None))
        # A stream in flight holds its 6-minute window timer (and maybe a coalescing pause).
        assert bot.statistics().pending_timers >= 1
        callbacks = [await fake.send_text(f"quick {n}", userid=f"u{n % 7}") for n in range(200)]
        for cb in [*callbacks, slow]:
            await fake.wait_stream_finished(cb.req_id)
        await trio.testing.wait_all_tasks_blocked()
        assert bot.statistics().pending_timers == 0
        nursery.cancel_scope.cancel()
