"""Webhook shutdown loses no reply: every stream in flight gets a finish, sent whole.

In-process with the bundled fake (virtual time), then the real thing: ``wecom-actors run`` in a
child process, SIGTERM with short and long streams in flight.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing

from wecom_actors import BotConfig, BotHandle, Turn, serve_bot
from wecom_actors.handlers.turn import INTERRUPTED_SUFFIX
from wecom_actors.protocol.inbound import TextMessage, decode_callback
from wecom_actors.testing import FakeWebhookWeCom, open_fake_webhook
from wecom_actors.webhook.streams import Exchange, FinalAnswer, Phase, StreamTable

from .fake_bot import cli_run, signal_and_wait

TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@asynccontextmanager
async def bot_and_fake(handler: Any, **overrides: Any) -> AsyncIterator[tuple[BotHandle, FakeWebhookWeCom]]:
    values: dict[str, Any] = dict(mode="webhook", token=TOKEN, encoding_aes_key=KEY, host="127.0.0.1", port=0)
    values.update(overrides)
    cfg = BotConfig(**values)
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(serve_bot, cfg, handler)
        url = f"http://127.0.0.1:{handle.runtime.port}{cfg.callback_path}"
        async with open_fake_webhook(url, token=TOKEN, encoding_aes_key=KEY, poll_interval=1.0) as fake:
            yield handle, fake
        nursery.cancel_scope.cancel()


async def words(turn: Turn) -> None:
    """``"<seconds> <word> <word> ..."``: one word per step, over ``seconds``."""
    seconds_text, *parts = turn.text.split(" ")
    step = float(seconds_text) / len(parts)
    async with turn.stream() as s:
        for i, part in enumerate(parts):
            await s.append(part if i == 0 else " " + part)
            await trio.sleep(step)


async def deliver_all(fake: FakeWebhookWeCom, texts: list[str], views: dict[str, Any], nursery: trio.Nursery) -> None:
    async def one(i: int, text: str) -> None:
        views[text] = await fake.send_text(text, userid=f"user{i}")

    for i, text in enumerate(texts):
        nursery.start_soon(one, i, text)


async def test_drain_with_short_and_long_streams_finishes_every_one(autojump_clock: trio.testing.MockClock) -> None:
    short = [f"1.5 s{i} a b c" for i in range(10)]
    long = [f"60 l{i} {' '.join('w' * 60)}" for i in range(10)]
    views: dict[str, Any] = {}
    async with bot_and_fake(words) as (handle, fake):
        async with trio.open_nursery() as nursery:
            await deliver_all(fake, short + long, views, nursery)
            await trio.sleep(0.9)  # every POST answered (0.5 s), handlers running
            assert handle.statistics().running_handlers == 20
            start = trio.current_time()
            finished = await handle.drain(3.5)
            took = trio.current_time() - start
        assert not finished  # the long ones were interrupted
        assert took <= 3.5 + 0.1
        for text in short:
            view = views[text]
            assert view.finished and view.content == text.split(" ", 1)[1], view
        for text in long:
            view = views[text]
            assert view.finished, view
            assert view.content.startswith(text.split(" ")[1] + " w") and view.content.endswith(INTERRUPTED_SUFFIX)
            assert len(view.content) < len(text)  # text so far, not all of it
        assert all(not v.errors and not v.timed_out for v in views.values())
        assert handle.runtime.server.connections == 0  # the server stopped after the answers went out


async def test_drain_with_only_short_streams_is_complete(autojump_clock: trio.testing.MockClock) -> None:
    texts = [f"1 s{i} a b" for i in range(10)]
    views: dict[str, Any] = {}
    async with bot_and_fake(words) as (handle, fake):
        async with trio.open_nursery() as nursery:
            await deliver_all(fake, texts, views, nursery)
            await trio.sleep(0.6)
            assert await handle.drain(3.5)
        assert all(views[t].finished and views[t].content == t.split(" ", 1)[1] for t in texts)


async def test_messages_queued_at_the_interrupt_get_the_restart_notice(autojump_clock: trio.testing.MockClock) -> None:
    views: list[Any] = []
    async with bot_and_fake(words) as (handle, fake):
        async with trio.open_nursery() as nursery:

            async def send(text: str) -> None:
                views.append(await fake.send_text(text, userid="same-user"))

            nursery.start_soon(send, "60 first " + "w " * 59 + "w")
            await trio.sleep(0.6)
            nursery.start_soon(send, "1 second a")  # queued behind the first (same session)
            await trio.sleep(0.6)
            assert not await handle.drain(3.5)
        first, second = sorted(views, key=lambda v: v.payload["text"]["content"][0] != "6")
        assert first.finished and first.content.endswith(INTERRUPTED_SUFFIX)
        assert second.finished and "restarting" in second.content


def _message(msgid: str) -> TextMessage:
    raw = b'{"msgid": "%s", "chattype": "single", "from": {"userid": "u"}, "msgtype": "text", "text": {"content": "x"}}'
    message = decode_callback(raw % msgid.encode())
    assert isinstance(message, TextMessage)
    return message


async def test_a_final_answer_counts_as_delivered_when_sent_not_when_built() -> None:
    table = StreamTable()
    ex = Exchange("m1", _message("m1"), stream_id="s1", created=0.0, is_event=False, response_url=None)
    table.add(ex)
    ex.phase = Phase.STREAM
    ex.set_frame("all of it", True)
    answer = table.refresh("s1")
    assert isinstance(answer, FinalAnswer)
    with trio.move_on_after(0.01) as waited:  # built, not sent: still waiting
        await table.wait_streams_delivered()
    assert waited.cancelled_caught and not ex.final_served
    async with trio.open_nursery() as nursery:
        nursery.start_soon(table.wait_streams_delivered)
        await trio.testing.wait_all_tasks_blocked()
        answer.on_sent()  # the HTTP layer: the answer went out whole
    assert ex.final_served


# --- the real process --------------------------------------------------------------------------


def _env(port: int = 0) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    env.update(
        WECOM_MODE="webhook",
        WECOM_TOKEN=TOKEN,
        WECOM_ENCODING_AES_KEY=KEY,
        WECOM_HOST="127.0.0.1",
        WECOM_PORT=str(port),
        WECOM_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    return env


async def _read_port(stderr: trio.abc.ReceiveStream, log: list[bytes]) -> int:
    """The port of the bot's callback URL, once the bot says it is up. The server listens (and
    logs its port) before the bot has mounted its path: a callback in between gets 404."""
    buffer = b""
    marker = b" up (webhook mode, "
    while marker not in buffer or not buffer.endswith(b"\n"):
        chunk = await stderr.receive_some(65536)
        assert chunk, buffer.decode(errors="replace")
        buffer += chunk
    log.append(buffer)
    line = next(line for line in buffer.splitlines() if marker in line)
    url = line.rsplit(b"http://127.0.0.1:", 1)[1]
    return int(url.split(b"/", 1)[0])


async def test_sigterm_with_short_and_long_streams_in_flight_finishes_each_and_exits_0() -> None:
    # Real time and a real child process: the signal path cannot be faked in-process.
    log: list[bytes] = []
    with trio.fail_after(60):
        async with cli_run(_env(), "--mode", "webhook") as proc:
            assert proc.stderr is not None
            port = await _read_port(proc.stderr, log)
            url = f"http://127.0.0.1:{port}/wecom/callback"
            short = [f"/slow 1.2 short{i} a b" for i in range(15)]
            long = [f"/slow 20 long{i} {' '.join('w' * 20)}" for i in range(15)]
            views: dict[str, Any] = {}
            async with open_fake_webhook(url, token=TOKEN, encoding_aes_key=KEY, poll_interval=1.0) as fake:
                announced = trio.Event()
                take_stream = fake._take_stream

                def counting(view: Any, reply: dict[str, Any], *, first: bool) -> None:
                    take_stream(view, reply, first=first)
                    if sum(1 for v in fake.views if v.stream_id) == len(short) + len(long):
                        announced.set()

                fake._take_stream = counting  # type: ignore[method-assign]
                async with trio.open_nursery() as nursery:
                    await deliver_all(fake, short + long, views, nursery)
                    await announced.wait()  # every POST answered with its stream
                    code, took = await signal_and_wait(proc, signal.SIGTERM)
        stderr = b"".join(log) + await proc.stderr.receive_some(1 << 20)  # type: ignore[union-attr]
    assert code == 0, stderr.decode(errors="replace")
    assert took < 3.5 + 1.0  # the drain budget (WECOM_DRAIN_TIMEOUT) and the server's stop
    for text in short:
        assert views[text].finished and views[text].content == text.split(" ", 2)[2], views[text]
    for text in long:
        view = views[text]
        assert view.finished and view.content.endswith(INTERRUPTED_SUFFIX), view
        assert view.content.startswith(text.split(" ")[2])
    assert all(not v.errors and not v.timed_out for v in views.values())
    assert KEY.encode() not in stderr and TOKEN.encode() not in stderr


async def test_a_second_sigterm_during_the_drain_stops_at_once() -> None:
    log: list[bytes] = []
    env = _env()
    env["WECOM_DRAIN_TIMEOUT"] = "30"
    with trio.fail_after(60):
        async with cli_run(env, "--mode", "webhook") as proc:
            assert proc.stderr is not None
            port = await _read_port(proc.stderr, log)
            url = f"http://127.0.0.1:{port}/wecom/callback"
            async with open_fake_webhook(url, token=TOKEN, encoding_aes_key=KEY, poll_interval=1.0, strict=False) as fake:
                announced = trio.Event()
                take_stream = fake._take_stream

                def signal_first(view: Any, reply: dict[str, Any], *, first: bool) -> None:
                    take_stream(view, reply, first=first)
                    announced.set()

                fake._take_stream = signal_first  # type: ignore[method-assign]
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(fake.send_text, "/slow 60 a b c")
                    await announced.wait()
                    proc.send_signal(signal.SIGTERM)
                    buffer = b""
                    while b"draining in-flight replies" not in buffer:  # the first one was seen
                        chunk = await proc.stderr.receive_some(65536)
                        assert chunk, buffer
                        buffer += chunk
                    log.append(buffer)
                    code, took = await signal_and_wait(proc, signal.SIGTERM)
                    nursery.cancel_scope.cancel()
        stderr = b"".join(log) + await proc.stderr.receive_some(1 << 20)  # type: ignore[union-attr]
    assert code == 0, stderr.decode(errors="replace")
    assert took < 2.0  # not the 30 s drain
    assert b"SIGTERM again: stopping now" in stderr
