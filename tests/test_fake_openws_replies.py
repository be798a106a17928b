"""The fake WeCom long-connection server (wecom_actors.testing) from the outside: replies.

Streams and the 6000 conflict, events (welcome, cards, feedback), proactive push,
rate limits and the reply window.

Raw client and helpers live in fake_openws_helpers.py; see its docstring for the ground rules.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
import trio
import trio.testing

from wecom_actors.testing import FakeErrcode, open_fake_wecom

from .fake_openws_helpers import OK_ACK, connect, md, push_text

# --- streams ---------------------------------------------------------------


async def test_streamed_reply_in_three_chunks_full_replace() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await push_text(fake, c, "hi", userid="U")
            for content, finish in [("He", False), ("Hello", False), ("Hello world", True)]:
                ack = await c.stream(cb, "ST1", content, finish)
                assert ack == {"headers": {"req_id": cb}, **OK_ACK}
            view = await fake.wait_stream_finished(cb)
            assert (view.id, view.content, view.finished) == ("ST1", "Hello world", True)
            assert (view.accepted_frames, view.rejected_frames) == (3, 0)
            late = await c.stream(cb, "ST1", "more", True)
            assert late["errcode"] == FakeErrcode.STREAM_CLOSED
            (bubble,) = fake.conversation("U")
            assert (bubble.kind, bubble.stream_id, bubble.content) == (
                "stream",
                "ST1",
                "Hello world",
            )
            assert bubble.finished and bubble.updates == 2 and bubble.req_id == cb
            assert fake.stream(cb).rejected_frames == 1  # type: ignore[union-attr]


async def test_stream_rules() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await push_text(fake, c)
            too_long = "字" * 6827  # 20481 bytes
            assert (await c.stream(cb, "S", too_long))["errcode"] == FakeErrcode.CONTENT_TOO_LONG
            assert fake.stream(cb) is None  # a rejected first frame creates nothing
            assert (await c.stream(cb, "S", "x" * 20480))["errcode"] == 0
            image = b"\x89PNG fake"
            item = {
                "msgtype": "image",
                "image": {
                    "base64": base64.b64encode(image).decode(),
                    "md5": hashlib.md5(image).hexdigest(),
                },
            }
            frame = {"id": "S", "finish": False, "content": "x", "msg_item": [item]}
            ack = await c.reply(cb, {"msgtype": "stream", "stream": frame})
            assert ack["errcode"] == FakeErrcode.INVALID_PARAMETER  # msg_item only on finish
            frame["finish"] = True
            assert (await c.reply(cb, {"msgtype": "stream", "stream": frame}))["errcode"] == 0
            view = fake.stream(cb)
            assert view is not None and view.msg_items == (item,) and view.rejected_frames == 1
            # a stream id belongs to one message
            other = await push_text(fake, c)
            assert (await c.stream(other, "S", "y"))["errcode"] == FakeErrcode.INVALID_PARAMETER
            # markdown content limit
            ack = await c.reply(other, md("x" * 20481))
            assert ack["errcode"] == FakeErrcode.CONTENT_TOO_LONG
            # text is not a respond_msg type
            ack = await c.reply(other, {"msgtype": "text", "text": {"content": "x"}})
            assert ack["errcode"] == FakeErrcode.INVALID_MSGTYPE
            assert (await c.reply(other, md("fine")))["errcode"] == 0
            assert [b.kind for b in fake.conversation("alice")] == ["stream", "markdown"]


async def test_stream_with_template_card_card_once() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await push_text(fake, c)
            card = {"card_type": "text_notice", "main_title": {"title": "t"}, "task_id": "T9"}

            def frame(content: str, finish: bool, with_card: bool) -> dict[str, Any]:
                body: dict[str, Any] = {
                    "msgtype": "stream_with_template_card",
                    "stream": {"id": "SC", "finish": finish, "content": content},
                }
                if with_card:
                    body["template_card"] = card
                return body

            assert (await c.reply(cb, frame("a", False, False)))["errcode"] == 0
            assert (await c.reply(cb, frame("ab", False, True)))["errcode"] == 0
            ack = await c.reply(cb, frame("abc", True, True))
            assert ack["errcode"] == FakeErrcode.INVALID_PARAMETER
            assert (await c.reply(cb, frame("abc", True, False)))["errcode"] == 0
            (bubble,) = fake.conversation("alice")
            assert (bubble.content, bubble.card, bubble.finished) == ("abc", card, True)


async def test_concurrent_frames_get_6000(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100):
        async with open_fake_wecom(ack_delay=0.5) as fake, connect(fake) as c:
            cb = await push_text(fake, c)
            start = trio.current_time()
            body1 = {"msgtype": "stream", "stream": {"id": "S", "finish": False, "content": "a"}}
            body2 = {"msgtype": "stream", "stream": {"id": "S", "finish": False, "content": "ab"}}
            await c.send("aibot_respond_msg", body1, req_id=cb)
            await c.send("aibot_respond_msg", body2, req_id=cb)
            conflict = await c.recv()
            assert conflict == {
                "headers": {"req_id": cb},
                "errcode": 6000,
                "errmsg": "more than one callers at the same time, data version conflict",
            }
            assert trio.current_time() == start  # answered at once
            first = await c.recv()
            assert first == {"headers": {"req_id": cb}, **OK_ACK}
            assert trio.current_time() - start == pytest.approx(0.5)
            assert fake.stream(cb).content == "a"  # type: ignore[union-attr]
            # the retry after the ack is accepted (one frame per req_id at a time)
            assert (await c.request("aibot_respond_msg", body2, req_id=cb))["errcode"] == 0
            view = fake.stream(cb)
            assert view is not None and (view.content, view.accepted_frames) == ("ab", 2)
            assert view.rejected_frames == 0  # the stream did not exist when the 6000 came
            assert fake.statistics().acks_by_errcode[6000] == 1


async def test_stream_expires_after_six_minutes(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10_000):
        async with open_fake_wecom(idle_timeout=None) as fake, connect(fake) as c:
            cb = await push_text(fake, c)
            assert (await c.stream(cb, "S", "a"))["errcode"] == 0
            await trio.sleep(359)
            assert (await c.stream(cb, "S", "ab"))["errcode"] == 0
            await trio.sleep(2)
            ack = await c.stream(cb, "S", "abc", finish=True)
            assert ack["errcode"] == 846608
            view = fake.stream(cb)
            assert view is not None and (view.content, view.finished) == ("ab", False)


# --- events ------------------------------------------------------------------


async def test_enter_chat_welcome_rules(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100):
        async with open_fake_wecom() as fake, connect(fake) as c:
            ev = await fake.send_enter_chat(userid="U")
            frame = await c.recv()
            assert frame["cmd"] == "aibot_event_callback"
            body = frame["body"]
            assert body["event"] == {"eventtype": "enter_chat"} and body["from"] == {"userid": "U"}
            assert isinstance(body["create_time"], int) and "chatid" not in body
            assert (await c.reply(ev.req_id, md("x")))["errcode"] == 846605
            wrong = {"msgtype": "markdown", "markdown": {"content": "x"}}
            ack = await c.request("aibot_respond_welcome_msg", wrong, req_id=ev.req_id)
            assert ack["errcode"] == FakeErrcode.INVALID_MSGTYPE
            await trio.sleep(4.9)
            welcome = {"msgtype": "text", "text": {"content": "欢迎"}}
            ack = await c.request("aibot_respond_welcome_msg", welcome, req_id=ev.req_id)
            assert ack == {"headers": {"req_id": ev.req_id}, **OK_ACK}
            ack = await c.request("aibot_respond_welcome_msg", welcome, req_id=ev.req_id)
            assert ack["errcode"] == 846605  # one welcome per event
            (bubble,) = fake.conversation("U")
            assert (bubble.kind, bubble.content) == ("text", "欢迎")
            late = await fake.send_enter_chat(userid="U")
            await c.recv()
            await trio.sleep(5.1)
            ack = await c.request("aibot_respond_welcome_msg", welcome, req_id=late.req_id)
            assert ack["errcode"] == 846605
            cb = await push_text(fake, c, userid="U")  # a message req_id is no welcome req_id
            ack = await c.request("aibot_respond_welcome_msg", welcome, req_id=cb)
            assert ack["errcode"] == 846605


async def test_card_reply_click_update(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb3 = await push_text(fake, c, userid="U")
            card = {
                "card_type": "button_interaction",
                "main_title": {"title": "Confirm?"},
                "button_list": [{"text": "OK", "key": "ok", "style": 1}],
                "task_id": "T1",
            }
            assert (await c.reply(cb3, {"msgtype": "template_card", "template_card": card})) == {
                "headers": {"req_id": cb3},
                **OK_ACK,
            }
            ev2 = await fake.send_card_click("T1", "ok", userid="U")
            frame = await c.recv()
            event = frame["body"]["event"]
            assert event == {
                "eventtype": "template_card_event",
                "template_card_event": {
                    "card_type": "button_interaction",
                    "event_key": "ok",
                    "task_id": "T1",
                },
            }
            assert frame["body"]["chattype"] == "single"
            assert (await c.stream(ev2.req_id, "S", "x"))["errcode"] == 846605
            new_card = {
                "card_type": "text_notice",
                "main_title": {"title": "Confirmed"},
                "card_action": {"type": 1, "url": "https://example.com"},
                "task_id": "T1",
            }
            update = {"response_type": "update_template_card", "template_card": new_card}
            wrong = {**update, "template_card": {**new_card, "task_id": "T2"}}
            ack = await c.request("aibot_respond_update_msg", wrong, req_id=ev2.req_id)
            assert ack["errcode"] == FakeErrcode.INVALID_PARAMETER
            await trio.sleep(4)
            ack = await c.request("aibot_respond_update_msg", update, req_id=ev2.req_id)
            assert ack == {"headers": {"req_id": ev2.req_id}, **OK_ACK}
            (bubble,) = fake.conversation("U")
            assert (bubble.kind, bubble.card, bubble.updates) == ("template_card", new_card, 1)
            ack = await c.request("aibot_respond_update_msg", update, req_id=cb3)
            assert ack["errcode"] == 846605  # a message req_id is no card-event req_id
            await trio.sleep(1.5)
            ack = await c.request("aibot_respond_update_msg", update, req_id=ev2.req_id)
            assert ack["errcode"] == 846605  # more than 5 s after the event
            # task_id is unique per bot for new cards
            again = await c.reply(cb3, {"msgtype": "template_card", "template_card": card})
            assert again["errcode"] == FakeErrcode.INVALID_PARAMETER


async def test_feedback_event_shape() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await fake.send_feedback("FB1", type=2, content="more please")
            body = (await c.recv())["body"]
            assert body["event"] == {
                "eventtype": "feedback_event",
                "feedback_event": {"id": "FB1", "type": 2, "content": "more please"},
            }
            assert (await c.reply(cb.req_id, md("x")))["errcode"] == 846605


# --- proactive push and rate limits ------------------------------------------


async def test_proactive_push_needs_a_prior_message() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            ack = await c.request("aibot_send_msg", md("**ping**", "U"))
            assert ack["errcode"] == FakeErrcode.CONVERSATION_NOT_OPEN
            await fake.send_enter_chat(userid="U")  # an event is not a message
            await c.recv()
            ack = await c.request("aibot_send_msg", md("**ping**", "U"))
            assert ack["errcode"] == FakeErrcode.CONVERSATION_NOT_OPEN
            await push_text(fake, c, userid="U")
            await push_text(fake, c, userid="U", chatid="G")
            ack = await c.request("aibot_send_msg", md("**ping**", "U"), req_id="aibot_send_msg_1")
            assert ack == {"headers": {"req_id": "aibot_send_msg_1"}, **OK_ACK}
            assert (await c.request("aibot_send_msg", md("group", "G")))["errcode"] == 0
            stream = {"msgtype": "stream", "stream": {"id": "S", "content": "x"}, "chatid": "U"}
            ack = await c.request("aibot_send_msg", stream)
            assert ack["errcode"] == FakeErrcode.INVALID_MSGTYPE
            assert [b.content for b in fake.conversation("U")] == ["**ping**"]
            assert [b.content for b in fake.conversation("G")] == ["group"]


async def test_rate_limit_per_minute(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await push_text(fake, c, userid="U")
            for i in range(5):  # a stream is one message, however many frames
                assert (await c.stream(cb, "S", "x" * (i + 1), finish=i == 4))["errcode"] == 0
            for _ in range(29):
                assert (await c.request("aibot_send_msg", md("p", "U")))["errcode"] == 0
            ack = await c.request("aibot_send_msg", md("31st", "U"))
            assert ack["errcode"] == FakeErrcode.RATE_LIMITED == 45009
            other = await push_text(fake, c, userid="V")  # limits are per conversation
            assert (await c.reply(other, md("fine")))["errcode"] == 0
            await trio.sleep(60)
            assert (await c.request("aibot_send_msg", md("later", "U")))["errcode"] == 0
            assert len(fake.conversation("U")) == 31


async def test_rate_limit_per_hour(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100_000):
        async with open_fake_wecom(idle_timeout=None) as fake, connect(fake) as c:
            await push_text(fake, c, userid="U")
            sent = 0
            while sent < 1000:
                for _ in range(30):
                    await c.send("aibot_send_msg", md("p", "U"))
                for _ in range(30):
                    if (await c.recv())["errcode"] == 0:
                        sent += 1
                await trio.sleep(60)
            assert sent == 1000
            assert (await c.request("aibot_send_msg", md("p", "U")))["errcode"] == 45009


async def test_rate_limit_off() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom(rate_limit=False) as fake, connect(fake) as c:
            await push_text(fake, c, userid="U")
            for _ in range(40):
                assert (await c.request("aibot_send_msg", md("p", "U")))["errcode"] == 0


async def test_reply_window_is_24_hours(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(200_000):
        async with open_fake_wecom(idle_timeout=None) as fake, connect(fake) as c:
            early, late = await push_text(fake, c), await push_text(fake, c)
            assert (await c.reply(early, md("fine")))["errcode"] == 0
            await trio.sleep(24 * 3600 + 1)
            assert (await c.reply(late, md("too late")))["errcode"] == 846605
