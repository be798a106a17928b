"""Router under bursts: per-sender order in groups, queues sized for bursts, the bot-wide guard."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from wecom_actors import Turn
from wecom_actors.core import BUSY_TEXT
from wecom_actors.protocol.inbound import Sender, TextContent, TextMessage
from wecom_actors.router import Router
from wecom_actors.testing import open_fake_wecom

from .fake_bot import bot_config, post_to, serve


def group_text(msgid: str, user: str, chat: str = "g1") -> TextMessage:
    return TextMessage(msgid=msgid, chattype="group", chatid=chat, from_=Sender(userid=user), text=TextContent(content=msgid))


@pytest.mark.parametrize(("group_order", "expected_started"), [("sender", ["a0", "b0"]), ("chat", ["a0"])])
async def test_group_members_are_independent_unless_strict_chat_order(
    group_order: str, expected_started: list[str]
) -> None:
    release = trio.Event()
    started: list[str] = []

    async def dispatch(req_id: str, message: TextMessage) -> None:
        started.append(message.msgid)
        await release.wait()

    async def on_busy(req_id: str, message: object) -> None:
        raise AssertionError("nothing is over a bound here")

    router = Router(dispatch=dispatch, on_busy=on_busy, group_order=group_order)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(router.run)
        for msgid, user in [("a0", "alice"), ("a1", "alice"), ("b0", "bob"), ("b1", "bob")]:
            post_to(router, msgid, group_text(msgid, user))
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(started) == expected_started
        release.set()
        await router.wait_idle()
        # each member's own messages always run in order
        assert [m for m in started if m[0] == "a"] == ["a0", "a1"]
        assert [m for m in started if m[0] == "b"] == ["b0", "b1"]
        nursery.cancel_scope.cancel()


def test_group_order_is_checked() -> None:
    with pytest.raises(ValueError, match="group_order"):
        Router(dispatch=None, on_busy=None, group_order="random")  # type: ignore[arg-type]


@pytest.mark.parametrize("bound", ["messages", "bytes"])
async def test_the_bot_wide_guard_answers_busy_and_loses_nothing(bound: str) -> None:
    release = trio.Event()
    handled: list[str] = []
    busy: list[str] = []

    async def dispatch(req_id: str, message: TextMessage) -> None:
        await release.wait()
        handled.append(req_id)

    async def on_busy(req_id: str, message: object) -> None:
        busy.append(req_id)

    limits = {"max_pending": 5} if bound == "messages" else {"max_pending_bytes": 5 * 1000}
    router = Router(dispatch=dispatch, on_busy=on_busy, handler_concurrency=1, **limits)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(router.run)
        post_to(router, "r0", group_text("m0", "alice"), 1000)
        await trio.testing.wait_all_tasks_blocked()  # r0 runs (no longer queued)
        for i in range(1, 8):  # the same user: 5 queued, 2 over the guard
            post_to(router, f"r{i}", group_text(f"m{i}", "alice"), 1000)
        await trio.testing.wait_all_tasks_blocked()
        assert router.statistics().queued == 5
        assert router.statistics().queued_bytes == 5000
        assert sorted(busy) == ["r6", "r7"]
        release.set()
        await router.wait_idle()
        assert handled == [f"r{i}" for i in range(6)]  # every queued message is handled, in order
        stats = router.statistics()
        assert (stats.busy, stats.queued, stats.queued_bytes) == (2, 0, 0)
        nursery.cancel_scope.cancel()


async def test_a_burst_of_2000_messages_gets_2000_answers_and_no_busy(autojump_clock: trio.testing.MockClock) -> None:
    async def echo_later(turn: Turn) -> None:
        await trio.sleep(0.01)
        await turn.reply_text(turn.text)

    async with open_fake_wecom(rate_limit=False) as fake, trio.open_nursery() as nursery:
        bot = await nursery.start(serve, bot_config(fake), echo_later)
        callbacks = []
        for i in range(100):  # 20 users x 100 messages, all pushed at once
            for u in range(20):
                callbacks.append((await fake.send_text(f"u{u} m{i}", userid=f"user{u}"), f"u{u} m{i}"))
        for cb, text in callbacks:
            assert (await fake.wait_stream_finished(cb.req_id)).content == text
        assert bot.statistics().busy_rejections == 0
        assert not any(b.content == BUSY_TEXT for u in range(20) for b in fake.conversation(f"user{u}"))
        # each user's answers came in the order of their messages
        for u in range(20):
            texts = [b.content for b in fake.conversation(f"user{u}")]
            assert texts == [f"u{u} m{i}" for i in range(100)]
        nursery.cancel_scope.cancel()
