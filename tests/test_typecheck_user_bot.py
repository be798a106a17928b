"""The typed user file (checked by ``mypy --strict`` in CI) also runs as written."""

from __future__ import annotations

import trio
import trio.testing

import wecom_actors
from tests.typecheck import user_bot
from wecom_actors.testing import open_fake_wecom


async def test_the_typed_user_bot_works(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_wecom(bots={"bot-a": "secret-a", "bot-b": "secret-b"}) as fake:
        a = wecom_actors.BotConfig(mode="long-connection", bot_id="bot-a", bot_secret="secret-a", ws_url=fake.url)
        b = a.replace(bot_id="bot-b", bot_secret="secret-b")
        assert await user_bot.run_one(a) == "bo…: pushed=False"  # 846607: nobody never wrote
        assert await user_bot.run_many(a, b) == ["a", "b"]
        async with wecom_actors.open_bot(a, user_bot.handler):
            cb = await fake.send_text("two words", userid="alice", bot_id="bot-a")
            assert (await fake.wait_stream_finished(cb.req_id)).content.strip() == "two words"
            await fake.send_text("/card", userid="alice", bot_id="bot-a")
            await fake.wait_until(lambda: len(fake.conversation("alice", bot_id="bot-a")) == 2)
            card = fake.conversation("alice", bot_id="bot-a")[1].card
            assert card is not None
            await fake.send_card_click(card["task_id"], "yes", userid="alice", bot_id="bot-a")
            await fake.wait_until(
                lambda: (fake.conversation("alice", bot_id="bot-a")[1].card or {}).get("main_title")
                == {"title": "You chose yes"}
            )
