"""The proactive send API of the handle (markdown, template card, media) against the bundled fake,
through the per-conversation rate limiter; and what webhook mode says instead."""

from __future__ import annotations

import random
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from wecom_actors import (
    AckError,
    BotConfig,
    BotHandle,
    CardError,
    Overloaded,
    cards,
    echo,
    serve_bot,
)
from wecom_actors.testing import FakeWeCom, open_fake_wecom

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture
def io_clock() -> trio.testing.MockClock:
    """Autojump after 20 ms of real idleness: uploads move real bytes over loopback."""
    return trio.testing.MockClock(autojump_threshold=0.02)


@asynccontextmanager
async def echo_bot(**fake_kwargs: Any) -> AsyncIterator[tuple[FakeWeCom, BotHandle]]:
    async with open_fake_wecom(**fake_kwargs) as fake, trio.open_nursery() as nursery:
        config = BotConfig(
            mode="long-connection",
            bot_id=fake.bot_id,
            bot_secret=fake.secret,
            ws_url=fake.url,
            media_allow_private=True,
            reconnect_jitter=0.0,
        )
        bot = await nursery.start(_serve, config)
        yield fake, bot
        nursery.cancel_scope.cancel()


async def _serve(config: BotConfig, *, task_status: trio.TaskStatus[BotHandle]) -> None:
    await serve_bot(config, echo, task_status=task_status, rng=random.Random(3))


async def user_writes(fake: FakeWeCom, user: str = "alice", *, chat: str | None = None) -> None:
    """The precondition of every push: the chat has written to the bot."""
    cb = await fake.send_text("hi", userid=user, chatid=chat)
    await fake.wait_stream_finished(cb.req_id)


def pushes(fake: FakeWeCom) -> list[Any]:
    return [f for f in fake.frames if f.direction == "in" and f.cmd == "aibot_send_msg"]


async def test_markdown_card_and_media_reach_the_chat(io_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with echo_bot() as (fake, bot):
            await user_writes(fake)
            await user_writes(fake, "bob", chat="G1")
            await bot.send_markdown("alice", "**hello**")
            card = cards.button_interaction(
                main_title="Approve?", button_list=[cards.Button("OK", "ok", style=1)], task_id=bot.new_task_id("push")
            )
            await bot.send_card("G1", card)
            media_id = await bot.upload_media("image", "a.png", PNG)
            await bot.send_media("alice", "image", media_id)
            video_id = await bot.upload_media("video", "v.mp4", b"\x00\x00\x00\x18ftypmp42" + b"v" * 5000)
            await bot.send_media("alice", "video", video_id, title="标题" * 30, description="d" * 600)

            seen = [(b.kind, b.content, b.media_id) for b in fake.conversation("alice")]
            assert seen[1:3] == [("markdown", "**hello**", None), ("image", "", media_id)]
            assert seen[3][0] == "video" and seen[3][2] == video_id
            group = fake.conversation("G1")
            assert group[-1].kind == "template_card" and group[-1].card == {
                "card_type": "button_interaction",
                "main_title": {"title": "Approve?"},
                "button_list": [{"text": "OK", "key": "ok", "style": 1}],
                "task_id": card.task_id,
            }
            assert fake.media(media_id).data == PNG  # type: ignore[union-attr]
            video = pushes(fake)[-1].body["video"]
            assert video["title"] == "标题" * 21 and len(video["title"].encode()) == 126
            assert video["description"] == "d" * 512
            assert bot.runtime.limiter.statistics().acquired == 4  # type: ignore[attr-defined]


async def test_a_push_to_a_chat_that_never_wrote_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with echo_bot() as (fake, bot):
            with pytest.raises(AckError) as info:
                await bot.send_markdown("stranger", "hello?")
            assert info.value.errcode == 846607
            card = cards.text_notice(main_title="t", card_action=cards.CardAction(type=1, url="https://example.com"))
            with pytest.raises(AckError) as info:
                await bot.send_card("stranger", card)
            assert info.value.errcode == 846607
            assert fake.conversation("stranger") == []


async def test_invalid_cards_and_media_are_refused_before_sending(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with echo_bot() as (fake, bot):
            await user_writes(fake)
            bad = cards.TemplateCard(card_type="button_interaction", main_title=cards.MainTitle("t"), task_id="bad id!")
            with pytest.raises(CardError, match="task_id"):
                await bot.send_card("alice", bad)
            with pytest.raises(ValueError, match="kind"):
                await bot.send_media("alice", "sticker", "m")
            assert pushes(fake) == []


async def test_pushes_wait_for_the_conversation_budget(autojump_clock: trio.testing.MockClock) -> None:
    # WeCom counts replies and pushes together (30 a minute per conversation): the reply to "hi" uses one of the 30.
    with trio.fail_after(300):
        async with echo_bot() as (fake, bot):
            await user_writes(fake)
            replied = trio.current_time()
            for i in range(30):
                await bot.send_markdown("alice", f"push {i}")
            times = [f.time for f in pushes(fake)]
            assert times[:29] == [replied] * 29
            assert times[29] == replied + 60  # the 31st message waited for the window
            rejected = [f for f in fake.frames if f.direction == "out" and f.errcode == 45009]
            assert rejected == []
            assert [b.content for b in fake.conversation("alice")][-1] == "push 29"
            # Past the bound it fails clearly, at once, instead of queueing for long.
            for _ in range(29):
                await bot.send_markdown("alice", "more")
            bot.runtime.limiter.max_wait = 30  # type: ignore[attr-defined]
            before = trio.current_time()
            with pytest.raises(Overloaded, match="no room for 60 s"):
                await bot.send_markdown("alice", "one too many")
            assert trio.current_time() == before
            assert len(pushes(fake)) == 59


async def test_echo_push_waits_for_the_budget_its_replies_used(autojump_clock: trio.testing.MockClock) -> None:
    def markdowns() -> list[str]:
        return [b.content for b in fake.conversation("alice") if b.kind == "markdown"]

    with trio.fail_after(300):
        async with echo_bot() as (fake, _):
            start = trio.current_time()
            for i in range(14):  # 14 replies "ok" + 14 pushes
                await fake.send_text(f"/push n{i}")
                await fake.wait_until(lambda i=i: len(markdowns()) == i + 1)
            await user_writes(fake)  # the 29th message of the minute
            await fake.send_text("/push last")  # its "ok" is the 30th; the push must wait
            await fake.wait_until(lambda: "last" in markdowns())
            assert trio.current_time() - start == 60
            assert [f for f in fake.frames if f.direction == "out" and f.errcode == 45009] == []


class _WebhookRuntime:
    """What a runtime without the long-connection capabilities looks like to the handle."""

    mode = "webhook"
    config = types.SimpleNamespace()


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("send_card", ("chat", cards.TemplateCard(card_type="text_notice"))),
        ("send_media", ("chat", "file", "m")),
        ("upload_media", ("file", "f.txt", b"x")),
    ],
)
async def test_webhook_mode_says_it_cannot(method: str, args: tuple[Any, ...]) -> None:
    handle = BotHandle(_WebhookRuntime(), trio.CancelScope())  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError, match=f"{method} is not available in webhook mode"):
        await getattr(handle, method)(*args)
