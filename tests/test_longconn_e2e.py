"""The long-connection bot with the echo handler against the bundled fake WeCom on 127.0.0.1.

Everything runs in one trio program under an autojump MockClock: virtual time, real sockets.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from wecom_actors import AuthError, BotConfig, BotHandle, KickedOut, echo, serve_bot
from wecom_actors.handlers.echo import long_text
from wecom_actors.testing import FakeWeCom, open_fake_wecom

from .fake_bot import bot_config as shared_bot_config

_transport = ["trio-websocket"]


@pytest.fixture(autouse=True, params=["trio-websocket", "wsproto"])
def transport(request: pytest.FixtureRequest) -> str:
    """Every test here runs over both WebSocket engines."""
    _transport[0] = request.param
    return request.param


def bot_config(fake: FakeWeCom, **changes: object) -> BotConfig:
    return shared_bot_config(fake, transport=_transport[0], **changes)


@asynccontextmanager
async def echo_bot(**fake_kwargs: object) -> AsyncIterator[tuple[FakeWeCom, BotHandle, trio.Nursery]]:
    async with open_fake_wecom(**fake_kwargs) as fake:  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            bot = await nursery.start(_serve, bot_config(fake), echo)
            yield fake, bot, nursery
            nursery.cancel_scope.cancel()


async def _serve(config: BotConfig, handler: object, *, task_status: trio.TaskStatus[BotHandle]) -> None:
    await serve_bot(config, handler, task_status=task_status, rng=random.Random(7))  # type: ignore[arg-type]


def accepted_finals(fake: FakeWeCom, req_id: str) -> list[dict[str, object]]:
    """Final stream frames for ``req_id`` that the fake acked with errcode 0 (call it after a
    short sleep: a stream counts as finished before its last ack is recorded)."""
    out = []
    frames = fake.frames
    for i, f in enumerate(frames):
        data = f.data or {}
        body = data.get("body") or {}
        if f.direction == "in" and data.get("cmd") == "aibot_respond_msg" and f.req_id == req_id:
            stream = body.get("stream") or {}
            if stream.get("finish"):
                ack = next(
                    (a for a in frames[i + 1 :] if a.direction == "out" and a.req_id == req_id and a.cmd is None),
                    None,
                )
                if ack is not None and ack.errcode == 0:
                    out.append(stream)
    return out


async def test_text_is_echoed_in_two_frames_with_the_exact_final_text(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with echo_bot() as (fake, _bot, _):
            cb = await fake.send_text("你好, wecom actors!")
            view = await fake.wait_stream_finished(cb.req_id)
            assert view.content == "你好, wecom actors!"
            assert view.accepted_frames >= 2 and view.rejected_frames == 0
            await trio.sleep(1)
            assert [s["content"] for s in accepted_finals(fake, cb.req_id)] == ["你好, wecom actors!"]
            # A group message: the bot's mention is stripped and the session is the chat.
            cb = await fake.send_text("@EchoBot hi all", chatid="G1", userid="bob")
            view = await fake.wait_stream_finished(cb.req_id)
            assert view.content == "hi all"
            assert [b.content for b in fake.conversation("G1")] == ["hi all"]


async def test_slow_stream_is_coalesced_and_exact(autojump_clock: trio.testing.MockClock) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    with trio.fail_after(60):
        async with echo_bot() as (fake, _, _):
            start = trio.current_time()
            cb = await fake.send_text(f"/slow 2 {words}")
            view = await fake.wait_stream_finished(cb.req_id)
            assert view.content == words
            frames = [f for f in fake.frames if f.direction == "in" and f.req_id == cb.req_id]
            assert 3 <= len(frames) <= 2 * 10 + 1  # at most 10 frames a second, plus the final
            times = [f.time for f in frames]
            assert all(b - a >= 0.1 - 1e-9 for a, b in itertools.pairwise(times[:-1]))  # the final may follow at once
            assert trio.current_time() - start == pytest.approx(2.0, abs=0.01)
            contents = [f.data["body"]["stream"]["content"] for f in frames if f.data]
            assert all(words.startswith(c) for c in contents)  # every frame is the text so far


async def test_events_welcome_card_update_and_feedback(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with echo_bot() as (fake, _, _):
            await fake.send_enter_chat(userid="carol")
            await fake.wait_until(lambda: any(b.kind == "text" for b in fake.conversation("carol")))
            welcome = [b for b in fake.conversation("carol") if b.kind == "text"]
            assert welcome and welcome[0].time_first < 5
            cb = await fake.send_text("/card", userid="carol")
            await fake.wait_until(lambda: any(b.kind == "template_card" for b in fake.conversation("carol")))
            card = next(b for b in fake.conversation("carol") if b.kind == "template_card").card
            assert card is not None and [b["key"] for b in card["button_list"]] == ["yes", "no"]
            await fake.send_card_click(card["task_id"], "yes", userid="carol")
            await fake.wait_until(
                lambda: next(b for b in fake.conversation("carol") if b.kind == "template_card").updates == 1
            )
            updated = next(b for b in fake.conversation("carol") if b.kind == "template_card")
            assert updated.card is not None and updated.card["task_id"] == card["task_id"]
            assert "yes" in updated.card["main_title"]["title"]
            before = len(fake.frames)
            await fake.send_feedback("fb-1", userid="carol")
            await trio.sleep(1)
            assert not [f for f in fake.frames[before:] if f.direction == "in" and f.cmd != "ping"]
            del cb


async def test_media_is_downloaded_decrypted_and_hashed(autojump_clock: trio.testing.MockClock) -> None:
    import hashlib

    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    doc = b"%PDF-1.4 " + b"z" * 5000
    with trio.fail_after(60):
        async with echo_bot() as (fake, _, _):
            for send, data in ((fake.send_image, png), (fake.send_file, doc), (fake.send_video, doc[:999])):
                cb = await send(data)
                view = await fake.wait_stream_finished(cb.req_id)
                assert hashlib.md5(data).hexdigest() in view.content
            cb = await fake.send_mixed(["look", png, doc[:100]])
            view = await fake.wait_stream_finished(cb.req_id)
            assert hashlib.md5(png).hexdigest() in view.content
            assert hashlib.md5(doc[:100]).hexdigest() in view.content
            assert "look" in view.content


async def test_push_and_long_replies(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with echo_bot() as (fake, _, _):
            cb = await fake.send_text("/push **hello** there", userid="dave")
            await fake.wait_until(lambda: any(b.kind == "markdown" for b in fake.conversation("dave")))
            kinds = [(b.kind, b.content) for b in fake.conversation("dave")]
            assert ("stream", "ok") in kinds and ("markdown", "**hello** there") in kinds
            cb = await fake.send_text("/long 45000", userid="erin")
            await fake.wait_stream_finished(cb.req_id)
            await fake.wait_until(lambda: len(fake.conversation("erin")) == 3)
            parts = [b.content for b in fake.conversation("erin")]
            assert "".join(parts) == long_text(45000)
            assert all(len(p.encode()) <= 20480 for p in parts)


async def test_duplicate_delivery_is_answered_once(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with echo_bot() as (fake, bot, _):
            first = await fake.send_text("once", msgid="M-dup")
            await fake.send_text("once", msgid="M-dup")
            await fake.wait_stream_finished(first.req_id)
            await trio.sleep(1)
            assert [b.content for b in fake.conversation("alice")] == ["once"]
            assert bot.statistics().duplicates == 1


async def test_200_messages_from_50_users_each_answered_exactly_once(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        async with echo_bot() as (fake, bot, _):
            sent: dict[str, str] = {}
            async with trio.open_nursery() as users:
                for u in range(50):

                    async def user(u: int = u) -> None:
                        for m in range(4):
                            cb = await fake.send_text(f"u{u} m{m}", userid=f"user{u}")
                            sent[cb.req_id] = f"u{u} m{m}"

                    users.start_soon(user)
            for req_id, text in sent.items():
                view = await fake.wait_stream_finished(req_id)
                assert view.content == text
            await trio.sleep(1)
            for req_id in sent:
                assert len(accepted_finals(fake, req_id)) == 1
            for u in range(50):
                assert sorted(b.content for b in fake.conversation(f"user{u}")) == [f"u{u} m{m}" for m in range(4)]
            stats = bot.statistics()
            assert (stats.received, stats.duplicates, stats.busy_rejections, stats.replies_failed) == (200, 0, 0, 0)
            assert (stats.request_lanes, stats.sessions, stats.running_handlers) == (0, 0, 0)


async def test_ack_errors_are_retried_and_one_final_frame_is_accepted(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with echo_bot() as (fake, _, _):
            fake.faults.ack_errors(50001, cmd="aibot_respond_msg", count=2, errmsg="system busy")
            fake.faults.ack_errors(6000, cmd="aibot_respond_msg", count=1)
            cb = await fake.send_text("retry me")
            view = await fake.wait_stream_finished(cb.req_id)
            assert view.content == "retry me"
            await trio.sleep(1)
            assert [s["content"] for s in accepted_finals(fake, cb.req_id)] == ["retry me"]


async def test_drop_mid_stream_resubscribes_and_the_reply_arrives_once(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        async with echo_bot() as (fake, bot, _):
            cb = await fake.send_text("/slow 3 one two three four five six")
            await fake.wait_until(lambda: (fake.stream(cb.req_id) or _none).accepted_frames >= 1)
            fake.faults.drop()
            await fake.wait_subscribed(count=2)
            # The old req_id is stale on the new connection (846605): the whole text goes out
            # once as a proactive message to the same chat.
            await fake.wait_until(
                lambda: any(b.content == "one two three four five six" for b in fake.conversation("alice"))
            )
            await trio.sleep(5)
            finals = [b for b in fake.conversation("alice") if b.content == "one two three four five six"]
            assert len(finals) == 1
            assert bot.statistics().reconnects == 1


class _None:
    accepted_frames = 0


_none = _None()


async def test_stalled_connection_is_detected_and_replaced(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(300):
        async with open_fake_wecom() as fake:
            async with trio.open_nursery() as nursery:
                cfg = bot_config(fake, heartbeat_interval=30, ack_timeout=5)
                await nursery.start(_serve, cfg, echo)
                stalled = trio.current_time()
                fake.faults.stall()
                await fake.wait_subscribed(count=2)
                # 2 intervals + the ack timeout to notice, + 1 s backoff (+ at most 0.1 s to abort the socket).
                assert trio.current_time() - stalled == pytest.approx(2 * 30 + 5 + 1, abs=0.15)
                cb = await fake.send_text("still here")
                assert (await fake.wait_stream_finished(cb.req_id)).content == "still here"
                nursery.cancel_scope.cancel()


async def test_kick_out_stops_the_bot_without_reconnecting(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with open_fake_wecom() as fake:
            with pytest.RaisesGroup(KickedOut):
                async with trio.open_nursery() as nursery:
                    await nursery.start(_serve, bot_config(fake), echo)
                    fake.faults.kick(close=False)
                    await trio.sleep(30)
            await trio.sleep(30)
            assert fake.statistics().connections_total == 1


async def test_auth_refused_gives_up_after_bounded_attempts(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(300):
        async with open_fake_wecom() as fake:
            fake.faults.refuse_auth()
            with pytest.RaisesGroup(AuthError):
                async with trio.open_nursery() as nursery:
                    await nursery.start(_serve, bot_config(fake, auth_max_attempts=3), echo)
            stats = fake.statistics()
            assert (stats.subscribes_refused, stats.subscribes_ok) == (3, 0)


async def test_junk_and_oversized_frames_do_not_break_the_bot(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with echo_bot() as (fake, bot, _):
            fake.faults.send_junk("this is not json")
            fake.faults.send_junk('{"cmd": "aibot_msg_callback", "headers": {"req_id": "x"}, "body": 7}')
            await trio.sleep(1)
            cb = await fake.send_text("after junk")
            assert (await fake.wait_stream_finished(cb.req_id)).content == "after junk"
            assert bot.statistics().junk_frames == 2
            fake.faults.send_oversized(2 * 1024 * 1024)
            await fake.wait_subscribed(count=2)  # trio-websocket closes on a too-large message
            cb = await fake.send_text("after oversized")
            assert (await fake.wait_stream_finished(cb.req_id)).content == "after oversized"


async def test_half_open_with_a_reply_in_flight_is_found_by_the_probe_and_answered_once(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(300):
        async with open_fake_wecom() as fake:
            async with trio.open_nursery() as nursery:
                cfg = bot_config(fake, heartbeat_interval=30, ack_timeout=5)
                bot = await nursery.start(_serve, cfg, echo)
                cb = await fake.send_text("/slow 2 one two three")
                await fake.wait_until(lambda: (fake.stream(cb.req_id) or _none).accepted_frames >= 1)
                stalled = trio.current_time()
                fake.faults.stall()  # half-open while frames of this reply are in flight
                await fake.wait_subscribed(count=2)
                # The late ack (5 s) and the probe that follows (5 s) find it, not 2 heartbeats.
                assert trio.current_time() - stalled <= 5 + 5 + 1 + 0.5
                await fake.wait_until(lambda: any(b.content == "one two three" for b in fake.conversation("alice")))
                await trio.sleep(5)
                assert [b.content for b in fake.conversation("alice")].count("one two three") == 1
                assert bot.statistics().replies_failed == 0
                nursery.cancel_scope.cancel()
