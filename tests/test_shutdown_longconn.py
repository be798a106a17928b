"""Shutdown loses no reply (long connection): streams still running when the drain time is over
are finished with their text so far plus the interrupted note, over the still-live connection."""

from __future__ import annotations

import signal
from functools import partial

import trio
import trio.testing

from wecom_actors import echo, serve_bot
from wecom_actors.handlers.turn import INTERRUPTED_SUFFIX
from wecom_actors.testing import open_fake_wecom

from .fake_bot import bot_config, cli_env, cli_run, signal_and_wait

WORDS = " ".join(f"w{i}" for i in range(40))


async def test_drain_finishes_every_stream_in_flight(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_wecom() as fake, trio.open_nursery() as nursery:
        bot = await nursery.start(partial(serve_bot, bot_config(fake), echo))
        quick = await fake.send_text("quick one", userid="quick")
        slow = [await fake.send_text(f"/slow 8 {WORDS}", userid=f"user{n}") for n in range(20)]
        for cb in slow:
            await fake.wait_until(lambda cb=cb: (fake.stream(cb.req_id) is not None))
        assert await bot.drain(grace=1.0) is False  # the slow ones could not finish in time
        nursery.cancel_scope.cancel()
    assert fake.stream(quick.req_id).content == "quick one"
    for cb in slow:
        view = fake.stream(cb.req_id)
        assert view is not None and view.finished, cb.req_id
        assert view.content.endswith(INTERRUPTED_SUFFIX)
        said = view.content.removesuffix(INTERRUPTED_SUFFIX)
        assert said and WORDS.startswith(said)  # the text so far, nothing invented


async def test_queued_and_late_messages_get_the_restart_notice_when_interrupted(autojump_clock: trio.testing.MockClock) -> None:
    from wecom_actors.core import RESTART_TEXT

    async with open_fake_wecom() as fake, trio.open_nursery() as nursery:
        bot = await nursery.start(partial(serve_bot, bot_config(fake), echo))
        first = await fake.send_text(f"/slow 8 {WORDS}")
        queued = await fake.send_text("and this one", userid="alice")  # waits behind the first
        await fake.wait_until(lambda: fake.stream(first.req_id) is not None)
        bot.runtime.router.stop_intake()
        bot.runtime.interrupt_handlers()
        late = await fake.send_text("hello?", userid="late")
        assert (await fake.wait_stream_finished(late.req_id)).content == RESTART_TEXT
        assert (await fake.wait_stream_finished(queued.req_id)).content == RESTART_TEXT
        assert (await fake.wait_stream_finished(first.req_id)).content.endswith(INTERRUPTED_SUFFIX)
        nursery.cancel_scope.cancel()


async def test_sigterm_with_50_long_streams_finishes_them_all_and_exits_0_within_5s() -> None:
    # Real time and a real child process: the signal path cannot be faked in-process.
    async with open_fake_wecom() as fake:
        env = cli_env(WECOM_WS_URL=fake.url, WECOM_BOT_ID=fake.bot_id, WECOM_BOT_SECRET=fake.secret,
                      WECOM_LOG_LEVEL="WARNING")  # fmt: skip
        async with cli_run(env) as proc:
            await fake.wait_subscribed()
            slow = [await fake.send_text(f"/slow 8 {WORDS}", userid=f"user{n}") for n in range(50)]
            for cb in slow:
                await fake.wait_until(lambda cb=cb: (fake.stream(cb.req_id) is not None))
            code, took = await signal_and_wait(proc, signal.SIGTERM)
        stderr = (await proc.stderr.receive_some(1 << 20)).decode() if proc.stderr else ""  # type: ignore[union-attr]
        assert code == 0, stderr
        assert took < 5
        # The final frames left before the process exited; the fake (this process) reads them.
        with trio.fail_after(5):
            views = [await fake.wait_stream_finished(cb.req_id) for cb in slow]
        assert all(v.content.endswith(INTERRUPTED_SUFFIX) for v in views)
