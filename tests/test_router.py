"""Router policies: per-conversation order, bounded queues, busy answers, drain, dedupe cache."""

from __future__ import annotations

import trio
import trio.testing

from wecom_actors import Turn
from wecom_actors.core import BUSY_TEXT, RESTART_TEXT
from wecom_actors.protocol.inbound import TextMessage
from wecom_actors.router import Router
from wecom_actors.testing import open_fake_wecom

from .fake_bot import bot_config, post_to, serve


async def test_one_conversation_runs_in_order_and_a_full_queue_answers_busy(autojump_clock: trio.testing.MockClock) -> None:
    release = trio.Event()
    order: list[str] = []

    async def gated(turn: Turn) -> None:
        order.append(turn.text)
        await release.wait()
        await turn.reply_text(f"done {turn.text}")

    with trio.fail_after(60):
        async with open_fake_wecom(rate_limit=False) as fake:
            async with trio.open_nursery() as nursery:
                bot = await nursery.start(serve, bot_config(fake, session_queue_size=2), gated)
                for i in range(4):  # 1 running + 2 queued + 1 over the bound
                    await fake.send_text(f"m{i}")
                await fake.wait_until(lambda: any(b.content == BUSY_TEXT for b in fake.conversation("alice")))
                assert order == ["m0"]  # the rest wait their turn
                release.set()
                await fake.wait_until(lambda: len(fake.conversation("alice")) == 4)
                assert order == ["m0", "m1", "m2"]
                contents = [b.content for b in fake.conversation("alice")]
                assert contents == [BUSY_TEXT, "done m0", "done m1", "done m2"]
                await trio.sleep(0.1)  # the idle session worker exits
                stats = bot.statistics()
                assert (stats.busy_rejections, stats.sessions, stats.queued_messages) == (1, 0, 0)
                nursery.cancel_scope.cancel()


async def test_a_slow_conversation_does_not_hold_up_others(autojump_clock: trio.testing.MockClock) -> None:
    async def handler(turn: Turn) -> None:
        if turn.conversation == "slowpoke":
            await trio.sleep(100)
        await turn.reply_text(turn.text)

    with trio.fail_after(300):
        async with open_fake_wecom() as fake:
            async with trio.open_nursery() as nursery:
                await nursery.start(serve, bot_config(fake), handler)
                await fake.send_text("zzz", userid="slowpoke")
                t0 = trio.current_time()
                cb = await fake.send_text("quick", userid="bob")
                await fake.wait_stream_finished(cb.req_id)
                assert trio.current_time() - t0 < 1
                nursery.cancel_scope.cancel()


async def test_messages_during_a_drain_get_a_restart_notice(autojump_clock: trio.testing.MockClock) -> None:
    async def slow(turn: Turn) -> None:
        await trio.sleep(2)
        await turn.reply_text("finished")

    with trio.fail_after(60):
        async with open_fake_wecom() as fake:
            async with trio.open_nursery() as nursery:
                bot = await nursery.start(serve, bot_config(fake), slow)
                await fake.send_text("first", userid="u1")
                await trio.sleep(0.5)
                drained: list[bool] = []

                async def drain() -> None:
                    drained.append(await bot.drain(10))

                nursery.start_soon(drain)
                await trio.sleep(0.1)
                await fake.send_text("late", userid="u2")
                await fake.wait_until(lambda: bool(drained))
                assert drained == [True]
                assert [b.content for b in fake.conversation("u1")] == ["finished"]
                assert [b.content for b in fake.conversation("u2")] == [RESTART_TEXT]
                nursery.cancel_scope.cancel()


def _msg(msgid: str) -> TextMessage:
    return TextMessage(msgid=msgid)


async def test_dedupe_cache_is_bounded_in_time_and_size(autojump_clock: trio.testing.MockClock) -> None:
    async def nothing(req_id: str, message: object) -> None:
        return None

    router = Router(dispatch=nothing, on_busy=nothing, dedupe_ttl=60, dedupe_max=100)  # type: ignore[arg-type]
    assert not router.is_duplicate("a")
    assert router.is_duplicate("a")
    await trio.sleep(61)
    assert not router.is_duplicate("a")  # expired
    for i in range(500):
        router.is_duplicate(f"m{i}")
    assert router.statistics().dedupe_cache <= 100
    assert not router.is_duplicate("")  # no msgid: never a duplicate
    assert not router.is_duplicate("")


async def test_events_beyond_the_bound_are_dropped_and_counted(mock_clock: trio.testing.MockClock) -> None:
    from wecom_actors.protocol.inbound import EnterChatEvent

    release = trio.Event()
    started: list[str] = []

    async def dispatch(req_id: str, message: object) -> None:
        started.append(req_id)
        await release.wait()

    async def on_busy(req_id: str, message: object) -> None:
        raise AssertionError("events get no busy answer")

    router = Router(dispatch=dispatch, on_busy=on_busy, max_pending=3)  # type: ignore[arg-type]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(router.run)
            for i in range(5):
                post_to(router, f"E{i}", EnterChatEvent(msgid=f"m{i}"))
            await trio.testing.wait_all_tasks_blocked()
            assert sorted(started) == ["E0", "E1", "E2"]  # events run at once, in any order
            assert router.statistics().busy == 2
            release.set()
            await router.wait_idle()
            nursery.cancel_scope.cancel()
