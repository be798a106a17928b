"""Webhook mode end to end: the echo bot on 127.0.0.1:0 driven by the bundled fake WeCom.

Everything runs under the autojump clock: refresh polls every virtual second, the six-minute
window and the sweeper cost no real time. The echo contract and the webhook fake's scenarios (docs/webhook.md).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from wecom_actors import BotConfig, BotHandle, RequestError, StaleReply, Turn, echo, serve_bot
from wecom_actors.handlers.echo import long_text
from wecom_actors.protocol.limits import RESPONSE_URL_TTL_SECONDS
from wecom_actors.protocol.replies import MainTitle, TemplateCard
from wecom_actors.render import msg_item_image
from wecom_actors.sessions import CONTINUED_NOTE
from wecom_actors.testing._webhook import (
    FakeWebhookWeCom,
    open_fake_webhook,
    webhook_demo_transcript,
)
from wecom_actors.webhook.streams import KEEP_SECONDS, TOMBSTONE_SECONDS

TOKEN = "webhookTestToken"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
PNG = bytes.fromhex("89504e470d0a1a0a000102030405060708090a0b0c0d0e0f1011121314151617")


@asynccontextmanager
async def bot_and_fake(
    handler: Any = "echo", *, poll_interval: float = 1.0, **overrides: Any
) -> AsyncIterator[tuple[BotHandle, FakeWebhookWeCom]]:
    values: dict[str, Any] = dict(
        mode="webhook", token=TOKEN, encoding_aes_key=KEY, host="127.0.0.1", port=0, media_allow_private=True
    )
    values.update(overrides)
    cfg = BotConfig(**values)
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(serve_bot, cfg, handler)
        url = f"http://127.0.0.1:{handle.runtime.port}{cfg.callback_path}"
        async with open_fake_webhook(url, token=TOKEN, encoding_aes_key=KEY, poll_interval=poll_interval) as fake:
            yield handle, fake
        nursery.cancel_scope.cancel()


class Seen(list[str]):
    """The msgids a handler was called with; ``wait_for(n)`` until there are ``n``."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = trio.Event()

    def add(self, msgid: str) -> None:
        self.append(msgid)
        self.changed.set()
        self.changed = trio.Event()

    async def wait_for(self, n: int) -> None:
        while len(self) < n:
            await self.changed.wait()


def counting(handler: Any) -> tuple[Any, Seen]:
    seen = Seen()

    async def wrapped(turn: Turn) -> None:
        seen.add(turn.message.msgid)
        await handler(turn)

    return wrapped, seen


# --- echo through refresh polling -------------------------------------------------------------------


async def test_text_echo_through_refresh_polls(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with bot_and_fake() as (handle, fake):
            assert (await fake.verify_url()).ok
            view = await fake.send_text("hello webhook world")
            assert view.status == 200 and view.errors == []
            assert view.finished and view.content == "hello webhook world"
            assert view.latency < 0.5  # the first half was there before the first-reply wait ended
            assert {a["stream"]["id"] for a in view.answers} == {view.stream_id}
            assert view.first_reply is not None and not view.first_reply["stream"]["finish"]
            assert view.first_reply["stream"]["content"] == "hello web"  # the first half
            # the POST's answer served the first half, so the echo finishes on the first refresh
            assert view.refreshes == ["hello webhook world"]
            # group chat: the @mention is not echoed
            group = await fake.send_text("@EchoBot hi all", chatid="grp1")
            assert group.finished and group.content == "hi all"
            voice = await fake.send_voice("spoken words")
            assert voice.content == "spoken words"
            stats = handle.statistics()
            assert (stats.received, stats.duplicates, stats.handler_errors, stats.replies_failed) == (3, 0, 0, 0)


async def test_slow_snapshots_grow(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with bot_and_fake() as (_, fake):
            start = trio.current_time()
            view = await fake.send_text("/slow 4 one two three four five")
            assert view.finished and view.content == "one two three four five"
            distinct = list(dict.fromkeys(view.refreshes))
            assert len(distinct) >= 4
            for shorter, longer in itertools.pairwise(distinct):
                assert longer.startswith(shorter)  # cumulative, never a delta
            assert 4 <= trio.current_time() - start <= 7


async def test_media_md5_image_file_mixed_and_a_bad_blob(autojump_clock: trio.testing.MockClock) -> None:
    other = b"\xff\xd8\xff" + bytes(range(200))
    with trio.fail_after(60):
        async with bot_and_fake() as (_, fake):
            image = await fake.send_image(PNG)
            assert image.finished and hashlib.md5(PNG).hexdigest() in image.content
            assert image.first_reply is not None and image.first_reply["stream"]["content"].startswith("Received image")
            file = await fake.send_file(other, filename="report.bin")
            assert hashlib.md5(other).hexdigest() in file.content and "report.bin" in file.content
            mixed = await fake.send_mixed(["look", PNG, other], chatid="grp")
            assert hashlib.md5(PNG).hexdigest() in mixed.content and hashlib.md5(other).hexdigest() in mixed.content
            bad = await fake.send_image(PNG, fault="bad-padding")
            assert bad.finished and "download failed" in bad.content
            gone = await fake.send_image(PNG, fault="not-found")
            assert gone.finished and "HTTP 404" in gone.content


async def test_media_from_loopback_is_refused_unless_allowed(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with bot_and_fake(media_allow_private=False) as (_, fake):
            view = await fake.send_image(PNG)
            assert view.finished and "refused" in view.content and "loopback" in view.content


# --- dedupe -----------------------------------------------------------------------------------------


async def test_duplicate_msgid_same_stream_one_handler_run(autojump_clock: trio.testing.MockClock) -> None:
    handler, seen = counting(echo)
    with trio.fail_after(60):
        async with bot_and_fake(handler) as (handle, fake):
            payload = fake.message("u1", "text", {"text": {"content": "/slow 3 a b c"}}, msgid="m-dup")
            views = []

            async def deliver(p: dict[str, Any]) -> None:
                views.append(await fake.deliver(p))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(deliver, payload)
                await trio.sleep(1.5)
                nursery.start_soon(deliver, copy.deepcopy(payload))  # redelivered while live
            assert seen == ["m-dup"]
            assert views[0].stream_id == views[1].stream_id
            assert views[0].content == views[1].content == "a b c"
            # A refresh that reuses the message's msgid is still a refresh (docs/protocol-notes.md, 'Polling').
            refresh = fake.message("u1", "stream", {"stream": {"id": views[0].stream_id}}, msgid="m-dup")
            again = await fake.deliver(refresh)
            assert again.finished and again.content == "a b c" and seen == ["m-dup"]
            assert handle.runtime.webhook_statistics().redeliveries == 1


async def test_hundred_users_concurrently_each_answered_once(autojump_clock: trio.testing.MockClock) -> None:
    handler, seen = counting(echo)
    views = {}
    with trio.fail_after(120):
        async with bot_and_fake(handler) as (handle, fake):

            async def user(i: int) -> None:
                views[i] = await fake.send_text(f"message number {i}", userid=f"user{i}")

            real_start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for i in range(100):
                    nursery.start_soon(user, i)
            elapsed = time.perf_counter() - real_start
            assert sorted(seen) == sorted(v.msgid for v in views.values())
            assert len(set(seen)) == 100
            for i, view in views.items():
                assert view.finished and view.content == f"message number {i}" and not view.errors
            stats = handle.statistics()
            assert (stats.received, stats.duplicates, stats.frames_in) == (100, 0, sum(1 + len(v.refreshes) for v in views.values()))
            callbacks = stats.frames_in
            print(f"\n100 users: {callbacks} callbacks in {elapsed:.2f} s real time = {callbacks / elapsed:.0f} callbacks/s")


# --- events -----------------------------------------------------------------------------------------


async def test_enter_chat_card_click_and_feedback(autojump_clock: trio.testing.MockClock) -> None:
    handler, seen = counting(echo)
    with trio.fail_after(60):
        async with bot_and_fake(handler) as (handle, fake):
            enter = await fake.send_enter_chat(userid="newbie")
            assert enter.welcome is not None and enter.welcome["text"]["content"].startswith("Hello!")
            assert enter.latency < 5
            card = await fake.send_text("/card")
            assert card.card is not None and card.stream_id is None  # the card alone answered the POST
            assert [b["key"] for b in card.card["button_list"]] == ["yes", "no"]
            click = await fake.send_card_click(task_id=card.card["task_id"], event_key="no")
            assert click.update is not None and click.update["response_type"] == "update_template_card"
            assert click.update["template_card"]["task_id"] == card.card["task_id"]
            assert "no" in click.update["template_card"]["main_title"]["title"]
            feedback = await fake.send_feedback(feedback_id="fb1", type=2, content="more detail please")
            assert feedback.status == 200 and feedback.first_reply is None
            with trio.fail_after(1):
                await seen.wait_for(4)  # the feedback still reached the handler (for its log)
            assert handle.statistics().handler_errors == 0


async def test_a_late_welcome_is_stale_and_the_event_answered_empty(autojump_clock: trio.testing.MockClock) -> None:
    errors: list[BaseException] = []

    async def sleepy(turn: Turn) -> None:
        await trio.sleep(6)
        try:
            await turn.welcome("too late")
        except StaleReply as exc:
            errors.append(exc)

    with trio.fail_after(60):
        async with bot_and_fake(sleepy) as (handle, fake):
            view = await fake.send_enter_chat()
            assert view.status == 200 and view.first_reply is None
            assert 4 <= view.latency < 5  # waited EVENT_WAIT for the handler, then answered empty
            assert await handle.drain(10)
            assert len(errors) == 1


# --- response_url -------------------------------------------------------------------------------------


async def test_push_and_long_go_through_response_url(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with bot_and_fake() as (handle, fake):
            push = await fake.send_text("/push hello there")
            assert push.content == "ok" and push.finished
            await fake.wait_pushes(push)
            assert push.pushes == [{"msgtype": "markdown", "markdown": {"content": "hello there"}}]
            long = await fake.send_text("/long 25000")
            await fake.wait_pushes(long)
            assert len(long.content) == 20480 and long.content + long.push_text == long_text(25000)
            longer = await fake.send_text("/long 50000")
            await fake.wait_pushes(longer)
            text = longer.push_text
            assert len(text.encode()) <= 20480 and "cut" in text.splitlines()[-1]
            head = text.rsplit("\n\n", 1)[0]
            assert long_text(50000).startswith(longer.content + head)
            assert handle.statistics().replies_failed == 0
            # the proactive API: most recent unused response_url of the chat, once each
            hello = await fake.send_text("hi", userid="solo")
            await handle.send_markdown("solo", "proactive")
            assert hello.pushes == [{"msgtype": "markdown", "markdown": {"content": "proactive"}}]
            with pytest.raises(StaleReply, match="no usable response_url"):
                await handle.send_markdown("solo", "again")
            assert [p.errcode for p in fake.posts] == [0, 0, 0, 0]


async def test_stream_still_running_at_six_minutes_is_finished_and_completed_by_response_url(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def marathon(turn: Turn) -> None:
        async with turn.stream() as s:
            for i in range(8):
                await s.append(f"part{i} ")
                await trio.sleep(60)

    with trio.fail_after(900):
        async with bot_and_fake(marathon, poll_interval=5) as (handle, fake):
            start = trio.current_time()
            view = await fake.send_text("go")
            assert view.finished and not view.timed_out
            # ReplyStream finishes 330 s after its first frame, within WeCom's 360 s of polling
            assert 330 <= trio.current_time() - start <= 336
            assert view.content == "part0 part1 part2 part3 part4 part5 " + CONTINUED_NOTE
            await fake.wait_pushes(view)
            assert view.push_text == "part6 part7 "
            assert handle.runtime.webhook_statistics().table.cut_off == 0


async def test_a_stream_starting_late_is_cut_off_by_the_poll_safety_net(autojump_clock: trio.testing.MockClock) -> None:
    async def queued_then_slow(turn: Turn) -> None:
        await trio.sleep(100)  # e.g. queued behind other messages of the session
        async with turn.stream() as s:
            for i in range(6):
                await s.append(f"part{i} ")
                await trio.sleep(60)

    with trio.fail_after(900):
        async with bot_and_fake(queued_then_slow, poll_interval=5) as (handle, fake):
            start = trio.current_time()
            view = await fake.send_text("go")
            assert view.finished and not view.timed_out
            assert 350 <= trio.current_time() - start < 360  # the poll-time cutoff, before 360 s
            assert view.content == "part0 part1 part2 part3 part4 "
            await fake.wait_pushes(view)
            assert view.push_text.startswith("part0 part1 part2 part3 part4 part5 ")
            assert handle.runtime.webhook_statistics().table.cut_off == 1


async def test_state_is_evicted_after_the_window(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(6000):
        async with bot_and_fake() as (handle, fake):
            views = [await fake.send_text(f"m{i}", userid=f"u{i}") for i in range(20)]
            table = handle.runtime.table
            assert len(table) == 20
            await trio.sleep(KEEP_SECONDS + 60)
            stats = handle.runtime.webhook_statistics().table
            assert (stats.exchanges, stats.streams, stats.evicted) == (0, 0, 20)
            assert stats.tombstones == 20
            # a late redelivery of an evicted msgid is answered empty, and not handled again
            late = await fake.deliver(copy.deepcopy(views[0].payload))
            assert late.status == 200 and late.first_reply is None
            # a refresh of an evicted stream: finish with empty content (docs/webhook.md)
            refresh = fake.message("u0", "stream", {"stream": {"id": views[0].stream_id}})
            gone = await fake.deliver(refresh)
            assert gone.finished and gone.content == ""
            await trio.sleep(TOMBSTONE_SECONDS)
            stats = handle.runtime.webhook_statistics()
            assert stats.table.tombstones == 0
            assert stats.response_urls == 20  # unused response_urls stay usable for an hour
            await trio.sleep(RESPONSE_URL_TTL_SECONDS)
            assert handle.runtime.webhook_statistics().response_urls == 0
            assert handle.statistics().received == 20


# --- failures and shutdown ------------------------------------------------------------------------------


async def test_handler_error_is_answered_in_the_stream(autojump_clock: trio.testing.MockClock) -> None:
    async def broken(turn: Turn) -> None:
        raise RuntimeError("boom")

    with trio.fail_after(60):
        async with bot_and_fake(broken) as (handle, fake):
            view = await fake.send_text("hi")
            assert view.finished and "something went wrong" in view.content
            assert handle.statistics().handler_errors == 1


def _all_tasks() -> set[trio.lowlevel.Task]:
    tasks, stack = set(), [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        tasks.add(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return tasks


async def test_drain_finishes_streams_then_cancel_leaves_no_task(autojump_clock: trio.testing.MockClock) -> None:
    before = _all_tasks()
    with trio.fail_after(60):
        async with bot_and_fake() as (handle, fake):
            views: list[Any] = []

            async def slow() -> None:
                views.append(await fake.send_text("/slow 3 x y z"))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow)
                await trio.sleep(1)
                drained = trio.Event()

                async def drain() -> None:
                    assert await handle.drain(10)
                    drained.set()

                nursery.start_soon(drain)
                await trio.sleep(0.5)
                async with httpx.AsyncClient() as client:
                    base = f"http://127.0.0.1:{handle.runtime.port}"
                    assert (await client.get(f"{base}/healthz")).status_code == 503
                late = fake.message("late", "text", {"text": {"content": "too late"}})
                fake.strict = False
                refused = await fake.deliver(late)
                fake.strict = True
                assert refused.status == 503
                await drained.wait()
            assert views[0].finished and views[0].content == "x y z"
            assert handle.statistics().state == "draining"
    assert _all_tasks() == before


# --- reply kinds ------------------------------------------------------------------------------------

CARD = TemplateCard(card_type="text_notice", main_title=MainTitle(title="Notice"), task_id="t-1")


async def test_stream_with_card_and_inline_image(autojump_clock: trio.testing.MockClock) -> None:
    async def pictured(turn: Turn) -> None:
        async with turn.stream(feedback_id="fb-1") as s:
            s.attach_card(CARD)
            await s.append("here is a picture")
            await s.flush()
            s.msg_items.append(msg_item_image(PNG))
            await s.append(" and more")

    with trio.fail_after(60):
        async with bot_and_fake(pictured) as (_, fake):
            view = await fake.send_text("show me")
            assert view.finished and view.content == "here is a picture and more"
            assert view.card == {"card_type": "text_notice", "main_title": {"title": "Notice"}, "task_id": "t-1"}
            assert [a["msgtype"] for a in view.answers].count("stream_with_template_card") == 1
            assert view.msg_items[0]["image"]["md5"] == hashlib.md5(PNG).hexdigest()
            assert all("msg_item" not in a["stream"] for a in view.answers[:-1])
            assert view.first_reply is not None and view.first_reply["stream"]["feedback"] == {"id": "fb-1"}


async def test_markdown_card_and_media_replies(autojump_clock: trio.testing.MockClock) -> None:
    outcomes: list[str] = []

    async def varied(turn: Turn) -> None:
        text = turn.text
        if text == "md":
            await turn.reply_markdown("**bold** answer")
        elif text == "late card":
            await trio.sleep(2)  # after the first-reply wait: the card rides on a refresh answer
            await turn.reply_card(CARD)
        elif text == "two":
            await turn.reply_text("first")
            await turn.reply_markdown("second")  # the stream is taken: goes by response_url
        elif text == "file":
            try:
                await turn.reply_media("file", "media-id")
            except RequestError as exc:
                outcomes.append(str(exc))

    with trio.fail_after(60):
        async with bot_and_fake(varied) as (handle, fake):
            md = await fake.send_text("md")
            assert md.finished and md.content == "**bold** answer" and md.refreshes == []
            late = await fake.send_text("late card")
            assert late.finished and late.content == "" and late.card is not None
            assert late.answers[-1]["msgtype"] == "stream_with_template_card"
            two = await fake.send_text("two")
            await fake.wait_pushes(two)
            assert two.content == "first" and two.push_text == "second"
            file = await fake.send_text("file")
            assert file.status == 200 and file.first_reply is None  # nothing to show: empty answer
            assert outcomes and "webhook mode cannot send" in outcomes[0]
            assert handle.statistics().handler_errors == 0


async def test_response_url_to_a_private_address_is_refused_unless_allowed(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(60):
        async with bot_and_fake(media_allow_private=False) as (handle, fake):
            view = await fake.send_text("/push secret")
            assert view.content == "ok"
            assert await handle.drain(5)
            assert view.pushes == [] and fake.posts == []
            assert handle.statistics().replies_failed == 1
            assert any("refused" in r.getMessage() and "loopback" in r.getMessage() for r in caplog.records)


async def test_webhook_demo_transcript(autojump_clock: trio.testing.MockClock) -> None:
    lines: list[str] = []
    with trio.fail_after(120):
        assert await webhook_demo_transcript(print_fn=lines.append) == 0
    text = "\n".join(lines)
    assert "[verify] GET echostr -> HTTP 200" in text and "welcome 'Hello!" in text
    assert "final (finish): 'a b c d'" in text and "md5 7d5441e64dbbe1065ed12e88470e0de0" in text
    assert "bot via response_url: 'hi'" in text and "(4520 bytes)" in text
    assert lines[-1] == "demo OK"
