"""Reply streams near WeCom's 6-minute window and after a handler error, against the fake."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from wecom_actors import Turn
from wecom_actors.handlers.turn import ERROR_SUFFIX
from wecom_actors.sessions import CONTINUED_NOTE, WINDOW_MARGIN
from wecom_actors.testing import open_fake_wecom

from .fake_bot import bot_config, serve


async def slow_thinker(turn: Turn) -> None:
    async with turn.stream() as s:
        await s.append("start")
        await s.flush()
        await trio.sleep(400)  # longer than the 6-minute window
        await s.append(" end")


async def test_a_stream_is_finished_before_the_window_and_the_rest_follows(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        async with open_fake_wecom() as fake:
            async with trio.open_nursery() as nursery:
                bot = await nursery.start(serve, bot_config(fake, heartbeat_interval=30), slow_thinker)
                t0 = trio.current_time()
                cb = await fake.send_text("think hard")
                view = await fake.wait_stream_finished(cb.req_id)
                assert trio.current_time() - t0 == pytest.approx(360 - WINDOW_MARGIN, abs=0.05)
                assert view.content == "start" + CONTINUED_NOTE and view.rejected_frames == 0
                await fake.wait_until(lambda: len(fake.conversation("alice")) == 2)
                rest = fake.conversation("alice")[1]
                assert (rest.kind, rest.content) == ("markdown", " end")
                assert trio.current_time() - t0 == pytest.approx(400, abs=0.05)
                await trio.testing.wait_all_tasks_blocked()  # the last ack reaches the stream
                assert (bot.statistics().stream_window_cuts, bot.statistics().replies_sent) == (1, 1)
                nursery.cancel_scope.cancel()


async def broken(turn: Turn) -> None:
    async with turn.stream() as s:
        await s.append("partial answer")
        await s.flush()
        raise RuntimeError("the model fell over")


async def test_a_handler_error_still_finishes_the_stream_with_a_note(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with open_fake_wecom() as fake:
            async with trio.open_nursery() as nursery:
                bot = await nursery.start(serve, bot_config(fake, heartbeat_interval=30), broken)
                cb = await fake.send_text("hi")
                view = await fake.wait_stream_finished(cb.req_id)
                assert view.content == "partial answer" + ERROR_SUFFIX
                await trio.sleep(1)
                assert bot.statistics().handler_errors == 1
                cb = await fake.send_text("again")  # the bot keeps serving
                assert (await fake.wait_stream_finished(cb.req_id)).content.startswith("partial answer")
                nursery.cancel_scope.cancel()


async def silent_failure(turn: Turn) -> None:
    raise ValueError("nothing was said")


async def test_a_handler_that_fails_before_replying_gets_a_short_answer(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with open_fake_wecom() as fake:
            async with trio.open_nursery() as nursery:
                await nursery.start(serve, bot_config(fake, heartbeat_interval=30), silent_failure)
                cb = await fake.send_text("hi")
                view = await fake.wait_stream_finished(cb.req_id)
                assert "went wrong" in view.content
                nursery.cancel_scope.cancel()


async def late_welcome(turn: Turn) -> None:
    await trio.sleep(6)
    await turn.welcome("too late")


async def test_a_welcome_after_its_window_is_dropped_with_a_log(autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(60):
        async with open_fake_wecom() as fake:
            async with trio.open_nursery() as nursery:
                bot = await nursery.start(serve, bot_config(fake, heartbeat_interval=30), late_welcome)
                await fake.send_enter_chat()
                await trio.sleep(10)
                assert fake.conversation("alice") == []
                assert not [f for f in fake.frames if f.cmd == "aibot_respond_welcome_msg"]
                assert bot.statistics().handler_errors == 0
                assert any("window has passed" in r.getMessage() for r in caplog.records)
                nursery.cancel_scope.cancel()


async def test_feedback_id_on_the_first_frame_and_bot_name_stripping(autojump_clock: trio.testing.MockClock) -> None:
    async def rate_me(turn: Turn) -> None:
        async with turn.stream(feedback_id="fb-42") as s:
            await s.append(turn.text)
            await s.flush()
            await s.append("!")

    with trio.fail_after(60):
        async with open_fake_wecom() as fake:
            async with trio.open_nursery() as nursery:
                await nursery.start(serve, bot_config(fake, heartbeat_interval=30).replace(bot_name="EchoBot"), rate_me)
                cb = await fake.send_text("@Alice @EchoBot hello", chatid="G7")
                view = await fake.wait_stream_finished(cb.req_id)
                assert view.content == "@Alice hello!"  # only the bot's own mention goes
                assert view.feedback_id == "fb-42"
                frames = [f.data for f in fake.frames if f.direction == "in" and f.req_id == cb.req_id and f.data]
                assert "feedback" in frames[0]["body"]["stream"]
                assert all("feedback" not in f["body"]["stream"] for f in frames[1:])
                nursery.cancel_scope.cancel()
