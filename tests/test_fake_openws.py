"""The bundled fake WeCom long-connection server (wecom_actors.testing), tested from the outside.

Every test talks to the fake through a raw WebSocket client written here (trio_websocket + json),
never through bot code, and follows ws-protocol.md §8 ("Minimal conformance scenarios"). Tests
that depend on time run under the autojump clock: virtual time, exact and instant.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from Crypto.Cipher import AES
from trio_websocket import ConnectionClosed, DisconnectionTimeout, open_websocket_url

from wecom_actors.testing import (
    FakeErrcode,
    FakeWeCom,
    NotConnected,
    open_fake_wecom,
    serve_fake_openws,
)

BOT, SECRET = "fake-bot", "fake-secret"
OK_ACK = {"errcode": 0, "errmsg": "ok"}


class RawClient:
    """A deliberately dumb client: one JSON object per text frame, nothing else."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._n = 0

    def new_id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    async def send(self, cmd: str, body: Any = None, *, req_id: str | None = None) -> str:
        req_id = req_id or self.new_id(cmd)
        frame: dict[str, Any] = {"cmd": cmd, "headers": {"req_id": req_id}}
        if body is not None:
            frame["body"] = body
        await self.ws.send_message(json.dumps(frame))
        return req_id

    async def recv(self) -> dict[str, Any]:
        return json.loads(await self.ws.get_message())

    async def request(self, cmd: str, body: Any = None, *, req_id: str | None = None) -> dict:
        req_id = await self.send(cmd, body, req_id=req_id)
        ack = await self.recv()
        assert "cmd" not in ack, ack  # §2.1: acks carry no cmd
        assert ack["headers"] == {"req_id": req_id}
        return ack

    async def subscribe(self, bot_id: str = BOT, secret: str = SECRET, **extra: Any) -> dict:
        return await self.request("aibot_subscribe", {"bot_id": bot_id, "secret": secret, **extra})

    async def reply(self, req_id: str, body: dict[str, Any]) -> dict:
        return await self.request("aibot_respond_msg", body, req_id=req_id)

    async def stream(self, req_id: str, sid: str, content: str, finish: bool = False) -> dict:
        body = {"msgtype": "stream", "stream": {"id": sid, "finish": finish, "content": content}}
        return await self.reply(req_id, body)

    async def expect_silence(self, seconds: float) -> None:
        with trio.move_on_after(seconds):
            frame = await self.recv()
            pytest.fail(f"unexpected frame {frame}")


@asynccontextmanager
async def connect(fake: FakeWeCom, *, subscribe: bool = True) -> AsyncIterator[RawClient]:
    async with open_websocket_url(fake.url, disconnect_timeout=1) as ws:
        client = RawClient(ws)
        if subscribe:
            assert (await client.subscribe())["errcode"] == 0
        yield client


async def push_text(fake: FakeWeCom, client: RawClient, text: str = "hi", **kw: Any) -> str:
    cb = await fake.send_text(text, **kw)
    frame = await client.recv()
    assert frame["cmd"] == "aibot_msg_callback" and frame["headers"]["req_id"] == cb.req_id
    return cb.req_id


def md(content: str, chatid: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"msgtype": "markdown", "markdown": {"content": content}}
    if chatid is not None:
        body["chatid"] = chatid
    return body


def decrypt(ciphertext: bytes, aeskey: str) -> bytes:
    """§6, independently of wecom_actors.crypto: AES-256-CBC, IV = key[:16], PKCS#7 to 32."""
    key = base64.b64decode(aeskey + "=" * (-len(aeskey) % 4))
    assert len(key) == 32 and len(ciphertext) % 32 == 0
    plain = AES.new(key, AES.MODE_CBC, key[:16]).decrypt(ciphertext)
    pad = plain[-1]
    assert 1 <= pad <= 32 and plain[-pad:] == bytes([pad]) * pad
    return plain[:-pad]


async def http_get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(url)


# --- §8 scenarios 1-4: subscribe, refusal, not subscribed, heartbeat ------------------------------


async def test_subscribe_ok_accepts_extra_keys_and_pushes_nothing_before_the_ack() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake, subscribe=False) as c:
            with pytest.raises(NotConnected):
                await fake.send_text("too early")
            ack = await c.request(
                "aibot_subscribe",
                {"bot_id": BOT, "secret": SECRET, "scene": 1, "plug_version": "1.0"},
                req_id="aibot_subscribe_1",
            )
            assert ack == {"headers": {"req_id": "aibot_subscribe_1"}, **OK_ACK}
            await fake.wait_subscribed()
            assert fake.is_subscribed()
            await push_text(fake, c)
            outgoing = [f for f in fake.frames if f.direction == "out"]
            assert [f.cmd for f in outgoing] == [None, "aibot_msg_callback"]
            assert fake.statistics().subscribes_ok == 1


@pytest.mark.parametrize(("bot_id", "secret"), [(BOT, "wrong"), ("other-bot", SECRET)])
async def test_subscribe_refused_then_closed(bot_id: str, secret: str) -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake, subscribe=False) as c:
            ack = await c.subscribe(bot_id, secret)
            assert (ack["errcode"], ack["errmsg"]) == (600041, "invalid secret")
            with pytest.raises(ConnectionClosed):
                await c.recv()
            assert fake.statistics().subscribes_refused == 1
            assert not fake.is_subscribed()


@pytest.mark.parametrize("cmd", ["aibot_send_msg", "ping", "aibot_respond_msg", "nonsense"])
async def test_command_before_subscribe_is_846609(cmd: str) -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake, subscribe=False) as c:
            ack = await c.request(cmd, md("x", "U"), req_id="R1")
            assert ack == {
                "headers": {"req_id": "R1"},
                "errcode": 846609,
                "errmsg": "aibot websocket not subscribed",
            }
            assert (await c.subscribe())["errcode"] == 0  # the socket is still usable


async def test_heartbeat_and_idle_timeout(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        async with open_fake_wecom(idle_timeout=90) as fake, connect(fake) as c:
            for _ in range(10):  # §3.2: a ping every 30 s keeps the connection open
                await trio.sleep(30)
                assert await c.request("ping", req_id="ping_x") == {
                    "headers": {"req_id": "ping_x"},
                    **OK_ACK,
                }
            last = trio.current_time()
            with pytest.raises(ConnectionClosed) as exc:
                await c.recv()
            assert trio.current_time() - last == pytest.approx(90)
            assert exc.value.reason.code == 1000
            await fake.wait_until(lambda: fake.statistics().live_connections == 0)


async def test_idle_timeout_none_never_closes(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10_000):
        async with open_fake_wecom(idle_timeout=None) as fake, connect(fake) as c:
            await c.expect_silence(3600)
            assert (await c.request("ping"))["errcode"] == 0


# --- §8 scenario 5: missed pongs ------------------------------------------------------------------


async def test_drop_acks_swallows_ping_acks_only(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        async with open_fake_wecom() as fake, connect(fake) as c:
            fake.faults.drop_acks()  # default: every ping, forever
            await c.send("ping")
            await c.send("ping")
            await c.expect_silence(30)
            init = {"type": "file", "filename": "a", "total_size": 1, "total_chunks": 1}
            assert (await c.request("aibot_upload_media_init", init))["errcode"] == 0
            fake.faults.clear()
            assert (await c.request("ping"))["errcode"] == 0
            fake.faults.drop_acks(count=1)
            await c.send("ping")
            assert (await c.request("ping", req_id="second"))["errcode"] == 0


# --- §8 scenarios 6, 7, 17: streams ---------------------------------------------------------------


async def test_streamed_reply_in_three_chunks_full_replace() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await push_text(fake, c, "hi", user="U")
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
            # the retry after the ack is accepted (§8 scenario 7)
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


# --- §8 scenarios 8, 9: group mixed, duplicate delivery, media ------------------------------------


async def test_group_mixed_message_and_duplicate_delivery() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            image = bytes(range(256)) * 3
            cb = await fake.send_mixed(["@Bot look", image], user="U", chat="G")
            frame = await c.recv()
            body = frame["body"]
            assert frame["cmd"] == "aibot_msg_callback" and body == cb.body
            assert (body["chatid"], body["chattype"], body["from"]) == (
                "G",
                "group",
                {"userid": "U"},
            )
            assert (body["aibotid"], body["msgtype"]) == (BOT, "mixed")
            text_item, image_item = body["mixed"]["msg_item"]
            assert text_item == {"msgtype": "text", "text": {"content": "@Bot look"}}
            url, aeskey = image_item["image"]["url"], image_item["image"]["aeskey"]
            assert url.startswith(fake.media_base_url + "/")
            response = await http_get(url)
            assert response.status_code == 200
            assert decrypt(response.content, aeskey) == image
            again = await fake.send_callback("aibot_msg_callback", cb.body)
            duplicate = await c.recv()
            assert duplicate["body"]["msgid"] == cb.msgid == again.msgid
            assert duplicate["headers"]["req_id"] == again.req_id != cb.req_id
            assert (await c.stream(cb.req_id, "S", "seen", True))["errcode"] == 0
            assert [b.content for b in fake.conversation("G")] == ["seen"]
            assert fake.conversation("U") == []


async def test_media_download_decrypts_and_expires(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        async with open_fake_wecom(idle_timeout=None) as fake, connect(fake) as c:
            payloads = {"image": b"i" * 33, "file": "文件".encode() * 100, "video": b"v" * 32}
            await fake.send_image(payloads["image"])
            await fake.send_file(payloads["file"], filename="报告 1.pdf")
            await fake.send_video(payloads["video"])
            urls = []
            for _ in range(3):
                body = (await c.recv())["body"]
                part = body[body["msgtype"]]
                assert len(part["aeskey"]) == 43  # base64 of 32 bytes, without '=' padding
                response = await http_get(part["url"])
                assert response.status_code == 200
                assert decrypt(response.content, part["aeskey"]) == payloads[body["msgtype"]]
                if body["msgtype"] == "file":
                    disposition = response.headers["content-disposition"]
                    assert "filename*=UTF-8''%E6%8A%A5%E5%91%8A%201.pdf" in disposition
                urls.append(part["url"])
            await trio.sleep(299)
            assert (await http_get(urls[0])).status_code == 200
            await trio.sleep(2)  # §3.3: URLs are valid 5 minutes
            for url in urls:
                assert (await http_get(url)).status_code == 404
            assert (await http_get(fake.media_base_url + "/media/nope")).status_code == 404


# --- §8 scenarios 10, 11: events ------------------------------------------------------------------


async def test_enter_chat_welcome_rules(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100):
        async with open_fake_wecom() as fake, connect(fake) as c:
            ev = await fake.send_enter_chat(user="U")
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
            late = await fake.send_enter_chat(user="U")
            await c.recv()
            await trio.sleep(5.1)
            ack = await c.request("aibot_respond_welcome_msg", welcome, req_id=late.req_id)
            assert ack["errcode"] == 846605
            cb = await push_text(fake, c, user="U")  # a message req_id is no welcome req_id
            ack = await c.request("aibot_respond_welcome_msg", welcome, req_id=cb)
            assert ack["errcode"] == 846605


async def test_card_reply_click_update(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb3 = await push_text(fake, c, user="U")
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
            ev2 = await fake.send_card_click("T1", "ok", user="U")
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


# --- §8 scenarios 12, 13: proactive push and rate limits ------------------------------------------


async def test_proactive_push_needs_a_prior_message() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            ack = await c.request("aibot_send_msg", md("**ping**", "U"))
            assert ack["errcode"] == FakeErrcode.CONVERSATION_NOT_OPEN
            await fake.send_enter_chat(user="U")  # an event is not a message
            await c.recv()
            ack = await c.request("aibot_send_msg", md("**ping**", "U"))
            assert ack["errcode"] == FakeErrcode.CONVERSATION_NOT_OPEN
            await push_text(fake, c, user="U")
            await push_text(fake, c, user="U", chat="G")
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
            cb = await push_text(fake, c, user="U")
            for i in range(5):  # a stream is one message, however many frames
                assert (await c.stream(cb, "S", "x" * (i + 1), finish=i == 4))["errcode"] == 0
            for _ in range(29):
                assert (await c.request("aibot_send_msg", md("p", "U")))["errcode"] == 0
            ack = await c.request("aibot_send_msg", md("31st", "U"))
            assert ack["errcode"] == FakeErrcode.RATE_LIMITED == 45009
            other = await push_text(fake, c, user="V")  # limits are per conversation
            assert (await c.reply(other, md("fine")))["errcode"] == 0
            await trio.sleep(60)
            assert (await c.request("aibot_send_msg", md("later", "U")))["errcode"] == 0
            assert len(fake.conversation("U")) == 31


async def test_rate_limit_per_hour(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100_000):
        async with open_fake_wecom(idle_timeout=None) as fake, connect(fake) as c:
            await push_text(fake, c, user="U")
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
            await push_text(fake, c, user="U")
            for _ in range(40):
                assert (await c.request("aibot_send_msg", md("p", "U")))["errcode"] == 0


# --- §8 scenarios 14, 15: dropped socket, kick-out -------------------------------------------------


@pytest.mark.parametrize("stale", [True, False])
async def test_drop_mid_stream_then_stale_req_id(
    stale: bool, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(100):
        async with open_fake_wecom(stale_req_ids_after_reconnect=stale) as fake:
            async with connect(fake) as a:
                cb1 = await push_text(fake, a, user="U")
                assert (await a.stream(cb1, "ST1", "He"))["errcode"] == 0
                assert fake.faults.drop() == 1
                with pytest.raises(ConnectionClosed) as exc:
                    await a.recv()
                assert exc.value.reason.code == 1006  # no close handshake
            await fake.wait_until(lambda: fake.statistics().live_connections == 0)
            async with connect(fake) as b:
                await fake.wait_subscribed(count=2)
                ack = await b.stream(cb1, "ST1", "Hello", finish=True)
                assert ack["errcode"] == (846605 if stale else 0)
                await b.expect_silence(10)  # CB1 is not redelivered
                view = fake.stream(cb1)
                assert view is not None and view.rejected_frames == (1 if stale else 0)


async def test_second_subscriber_kicks_the_first() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as a:
            async with connect(fake) as b:
                frame = await a.recv()
                assert frame["cmd"] == "aibot_event_callback"
                body = frame["body"]
                assert body["event"] == {"eventtype": "disconnected_event"}
                assert body["aibotid"] == BOT and isinstance(body["create_time"], int)
                assert "from" not in body and "chattype" not in body
                with pytest.raises(ConnectionClosed):
                    await a.recv()
                cb = await fake.send_text("to b")
                assert (await b.recv())["headers"]["req_id"] == cb.req_id
                stats = fake.statistics()
                assert (stats.subscribes_ok, stats.connections_total) == (2, 2)


async def test_kick_without_close_leaves_a_half_alive_socket() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as a:
            cb = await push_text(fake, a, user="U")
            assert fake.faults.kick(close=False) == 1
            assert (await a.recv())["body"]["event"]["eventtype"] == "disconnected_event"
            assert (await a.request("ping"))["errcode"] == 0
            assert (await a.stream(cb, "S", "x"))["errcode"] == 846609
            with pytest.raises(NotConnected):
                await fake.send_text("nobody listens")
            async with connect(fake) as b:
                await fake.wait_subscribed(count=2)
                await push_text(fake, b)


# --- §8 scenario 16: chunked upload + media reply -------------------------------------------------


async def upload(c: RawClient, data: bytes, chunks: int, mtype: str = "image") -> dict:
    size = -(-len(data) // chunks)
    init = {
        "type": mtype,
        "filename": "a.png",
        "total_size": len(data),
        "total_chunks": chunks,
        "md5": hashlib.md5(data).hexdigest(),
    }
    ack = await c.request("aibot_upload_media_init", init)
    assert ack["errcode"] == 0, ack
    upload_id = ack["body"]["upload_id"]
    for i in reversed(range(chunks)):  # out of order on purpose
        part = base64.b64encode(data[i * size : (i + 1) * size]).decode()
        chunk = {"upload_id": upload_id, "chunk_index": i, "base64_data": part}
        assert (await c.request("aibot_upload_media_chunk", chunk))["errcode"] == 0
    return await c.request("aibot_upload_media_finish", {"upload_id": upload_id})


async def test_chunked_upload_and_media_reply() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            data = bytes(range(256)) * 2344 + b"tail"  # 600068 bytes
            ack = await upload(c, data, 2)
            assert ack["errcode"] == 0 and ack["body"]["type"] == "image"
            assert isinstance(ack["body"]["created_at"], str)
            media_id = ack["body"]["media_id"]
            uploaded = fake.media(media_id)
            assert uploaded is not None and uploaded.data == data and uploaded.type == "image"
            cb = await push_text(fake, c, user="U")
            reply = {"msgtype": "image", "image": {"media_id": media_id}}
            assert (await c.reply(cb, reply))["errcode"] == 0
            (bubble,) = fake.conversation("U")
            assert (bubble.kind, bubble.media_id) == ("image", media_id)
            wrong_type = {"msgtype": "file", "file": {"media_id": media_id}}
            assert (await c.reply(cb, wrong_type))["errcode"] == FakeErrcode.INVALID_MEDIA_ID
            unknown = {"msgtype": "image", "image": {"media_id": "nope"}}
            assert (await c.reply(cb, unknown))["errcode"] == FakeErrcode.INVALID_MEDIA_ID
            push = {"chatid": "U", "msgtype": "image", "image": {"media_id": media_id}}
            assert (await c.request("aibot_send_msg", push))["errcode"] == 0


async def test_upload_duplicate_chunk_is_idempotent() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            init = {"type": "file", "filename": "x.txt", "total_size": 6, "total_chunks": 2}
            up = (await c.request("aibot_upload_media_init", init))["body"]["upload_id"]
            for i, part in [(0, b"abc"), (0, b"abc"), (1, b"def")]:
                chunk = {
                    "upload_id": up,
                    "chunk_index": i,
                    "base64_data": base64.b64encode(part).decode(),
                }
                assert (await c.request("aibot_upload_media_chunk", chunk))["errcode"] == 0
            ack = await c.request("aibot_upload_media_finish", {"upload_id": up})
            uploaded = fake.media(ack["body"]["media_id"])
            assert uploaded is not None and (uploaded.data, uploaded.filename) == (
                b"abcdef",
                "x.txt",
            )
            ack = await c.request("aibot_upload_media_finish", {"upload_id": up})
            assert ack["errcode"] == FakeErrcode.INVALID_PARAMETER  # consumed


@pytest.mark.parametrize(
    ("init", "chunk", "errcode"),
    [
        ({"type": "pdf"}, None, 40058),
        ({"total_chunks": 101, "total_size": 101}, None, 40058),
        ({"total_chunks": 0}, None, 40058),
        ({"total_size": 0}, None, 40058),
        ({}, {"chunk_index": 2}, 40058),
        ({}, {"chunk_index": -1}, 40058),
        ({}, {"base64_data": "***"}, 40058),
        (
            {"total_size": 600_000},
            {"base64_data": base64.b64encode(b"x" * 524_289).decode()},
            45002,
        ),
        ({}, {"upload_id": "nope"}, 40058),
    ],
)
async def test_upload_errors(init: dict, chunk: dict | None, errcode: int) -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            base = {"type": "file", "filename": "f", "total_size": 4, "total_chunks": 2, **init}
            ack = await c.request("aibot_upload_media_init", base)
            if chunk is None:
                assert ack["errcode"] == errcode
                return
            assert ack["errcode"] == 0
            body = {
                "upload_id": ack["body"]["upload_id"],
                "chunk_index": 0,
                "base64_data": base64.b64encode(b"ab").decode(),
                **chunk,
            }
            assert (await c.request("aibot_upload_media_chunk", body))["errcode"] == errcode
            assert fake.statistics().acks_by_errcode[errcode] == 1


async def test_upload_finish_errors_and_expiry(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10_000):
        async with open_fake_wecom(idle_timeout=None) as fake, connect(fake) as c:

            async def start(data: bytes, md5: str | None = None) -> str:
                init = {"type": "file", "filename": "f", "total_size": len(data), "total_chunks": 2}
                if md5 is not None:
                    init["md5"] = md5
                return (await c.request("aibot_upload_media_init", init))["body"]["upload_id"]

            async def chunk(up: str, i: int, part: bytes) -> int:
                body = {
                    "upload_id": up,
                    "chunk_index": i,
                    "base64_data": base64.b64encode(part).decode(),
                }
                return (await c.request("aibot_upload_media_chunk", body))["errcode"]

            async def finish(up: str) -> int:
                return (await c.request("aibot_upload_media_finish", {"upload_id": up}))["errcode"]

            up = await start(b"abcd")
            assert await chunk(up, 0, b"ab") == 0
            assert await finish(up) == 40058  # chunk 1 missing
            up = await start(b"abcd", md5=hashlib.md5(b"abcX").hexdigest())
            assert await chunk(up, 0, b"ab") == 0 and await chunk(up, 1, b"cd") == 0
            assert await finish(up) == 40058  # md5 mismatch
            up = await start(b"abcd")
            assert await chunk(up, 0, b"ab") == 0 and await chunk(up, 1, b"c") == 0
            assert await finish(up) == 40058  # total_size mismatch
            up = await start(b"abcd")
            assert await chunk(up, 0, b"ab") == 0
            await trio.sleep(1801)  # §3.9: an upload session lives 30 minutes
            assert await chunk(up, 1, b"cd") == 40058
            assert await finish(up) == 40058
            assert fake.statistics().acks_by_errcode[0] >= 6


async def test_upload_rate_limit_per_bot() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            init = {"type": "file", "filename": "f", "total_size": 1, "total_chunks": 1}
            for _ in range(30):
                assert (await c.request("aibot_upload_media_init", init))["errcode"] == 0
            assert (await c.request("aibot_upload_media_init", init))["errcode"] == 45009
            assert fake.statistics().acks_by_errcode[45009] == 1


async def test_reply_window_is_24_hours(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(200_000):
        async with open_fake_wecom(idle_timeout=None) as fake, connect(fake) as c:
            early, late = await push_text(fake, c), await push_text(fake, c)
            assert (await c.reply(early, md("fine")))["errcode"] == 0
            await trio.sleep(24 * 3600 + 1)
            assert (await c.reply(late, md("too late")))["errcode"] == 846605


# --- §8 scenario 18: junk both ways ---------------------------------------------------------------


async def test_junk_and_oversized_frames_to_the_client() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            assert fake.faults.send_junk("not json \x01") == 1
            assert await c.ws.get_message() == "not json \x01"
            fake.faults.send_oversized(200_000)
            message = await c.ws.get_message()
            assert len(message) == 200_000 and json.loads(message)["cmd"] == "fake_oversized"
            assert (await c.request("ping"))["errcode"] == 0


async def test_client_junk_is_ignored_and_unknown_cmd_answered() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            await c.ws.send_message("this is not json")
            await c.ws.send_message("[1, 2]")
            await c.ws.send_message('{"headers": {"req_id": "no-cmd"}}')
            ack = await c.request("aibot_fly_to_moon", {}, req_id="U1")
            assert (ack["errcode"], ack["errmsg"]) == (
                40058,
                "invalid parameter: unknown cmd 'aibot_fly_to_moon'",
            )
            junk = [f for f in fake.frames if f.direction == "in" and f.cmd is None]
            assert [f.text for f in junk] == [
                "this is not json",
                "[1, 2]",
                '{"headers": {"req_id": "no-cmd"}}',
            ]
            assert junk[0].data is None and junk[2].data == {"headers": {"req_id": "no-cmd"}}
            assert (await c.request("ping"))["errcode"] == 0


# --- fault injectors ------------------------------------------------------------------------------


async def test_fault_close_with_code() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            assert fake.faults.close(4001, reason="bye") == 1
            with pytest.raises(ConnectionClosed) as exc:
                await c.recv()
            assert (exc.value.reason.code, exc.value.reason.reason) == (4001, "bye")
            with pytest.raises(NotConnected):
                await fake.send_text("x")


async def test_fault_stall_is_half_open(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        async with open_fake_wecom(idle_timeout=30) as fake:
            # The client's own close handshake times out too: nothing comes back.
            with pytest.raises(DisconnectionTimeout):
                async with connect(fake) as a:
                    assert fake.faults.stall() == 1
                    await a.send("ping")
                    await fake.send_text("lost")  # pushed into the void
                    await a.expect_silence(300)  # no ack, no idle close either
                    assert fake.frames[-1].delivered is False
                    assert fake.statistics().live_connections == 1
                    async with connect(fake) as b:  # a new connection is served normally
                        await fake.wait_subscribed(count=2)
                        assert (await b.request("ping"))["errcode"] == 0
                        await push_text(fake, b)
                        await a.expect_silence(20)  # replaced, yet not closed by the fake
                        assert fake.statistics().live_connections == 2
            await fake.wait_until(lambda: fake.statistics().live_connections == 0)


async def test_fault_ack_errors_are_not_applied() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await push_text(fake, c, user="U")
            fake.faults.ack_errors(846609, cmd="aibot_send_msg", count=2, errmsg="boom")
            assert (await c.request("ping"))["errcode"] == 0
            assert (await c.stream(cb, "S", "a"))["errcode"] == 0
            for _ in range(2):
                ack = await c.request("aibot_send_msg", md("p", "U"))
                assert (ack["errcode"], ack["errmsg"]) == (846609, "boom")
            assert (await c.request("aibot_send_msg", md("p", "U")))["errcode"] == 0
            fake.faults.ack_errors(6000)  # any command but ping and subscribe
            assert (await c.request("ping"))["errcode"] == 0
            assert (await c.stream(cb, "S", "ab"))["errcode"] == 6000
            view = fake.stream(cb)
            assert view is not None and (view.content, view.rejected_frames) == ("a", 1)
            assert [b.kind for b in fake.conversation("U")] == ["stream", "markdown"]


async def test_fault_delay_acks(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await push_text(fake, c)
            fake.faults.delay_acks(3.0, cmd="aibot_respond_msg")
            start = trio.current_time()
            await c.send("aibot_respond_msg", md("one"), req_id=cb)
            await c.send("aibot_respond_msg", md("two"), req_id=cb)
            assert (await c.recv())["errcode"] == 6000
            assert (await c.recv())["errcode"] == 0
            assert trio.current_time() - start == pytest.approx(3.0)
            assert (await c.reply(cb, md("three")))["errcode"] == 0
            assert trio.current_time() - start == pytest.approx(3.0)  # count=1: back to normal
            assert [b.content for b in fake.conversation("alice")] == ["one", "three"]


async def test_fault_refuse_auth() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake:
            fake.faults.refuse_auth(count=1)
            async with connect(fake, subscribe=False) as c:
                assert (await c.subscribe())["errcode"] == 600041
                with pytest.raises(ConnectionClosed):
                    await c.recv()
            async with connect(fake) as c:
                assert fake.is_subscribed()
            fake.faults.refuse_auth(errcode=12345)
            for _ in range(2):
                async with connect(fake, subscribe=False) as c:
                    assert (await c.subscribe())["errcode"] == 12345
            assert fake.statistics().subscribes_refused == 3


# --- views, statistics, multiple bots, serving -----------------------------------------------------


async def test_statistics_and_recording() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await push_text(fake, c)
            await c.stream(cb, "S", "x", finish=True)
            await c.request("ping")
            stats = fake.statistics()
            assert stats.connections_total == stats.live_connections == 1
            assert (stats.frames_in, stats.frames_out) == (3, 4)
            assert stats.acks_by_errcode == {0: 3} and stats.callbacks_pushed == 1
            assert [(f.direction, f.cmd) for f in fake.frames] == [
                ("in", "aibot_subscribe"),
                ("out", None),
                ("out", "aibot_msg_callback"),
                ("in", "aibot_respond_msg"),
                ("out", None),
                ("in", "ping"),
                ("out", None),
            ]
            ack = fake.frames[4]
            assert (ack.req_id, ack.errcode, ack.body) == (cb, 0, None)
            with pytest.raises(AttributeError):
                stats.frames_in = 0  # type: ignore[misc]


async def test_record_false_keeps_counting() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom(record=False) as fake, connect(fake) as c:
            await c.request("ping")
            assert fake.frames == []
            assert fake.statistics().frames_in == 2


async def test_wait_until_rechecks_on_state_changes() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await push_text(fake, c)
            seen: list[str] = []

            async def watcher() -> None:
                await fake.wait_until(lambda: len(fake.conversation("alice")) == 1)
                seen.append("bubble")
                view = await fake.wait_stream_finished(cb)
                seen.append(view.content)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watcher)
                await trio.testing.wait_all_tasks_blocked()
                assert seen == []
                await c.stream(cb, "S", "a")
                await c.stream(cb, "S", "done", finish=True)
            assert seen == ["bubble", "done"]


async def test_two_bots_are_independent() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom(bots={"b1": "s1", "b2": "s2"}) as fake:
            assert (fake.bot_id, fake.secret) == ("b1", "s1")
            async with open_websocket_url(fake.url) as ws1, open_websocket_url(fake.url) as ws2:
                c1, c2 = RawClient(ws1), RawClient(ws2)
                assert (await c1.subscribe("b1", "s1"))["errcode"] == 0
                assert (await c2.subscribe("b2", "s2"))["errcode"] == 0
                await c1.expect_silence(0.1)  # no kick across bots
                cb = await fake.send_text("for b2", bot_id="b2")
                frame = await c2.recv()
                assert frame["body"]["aibotid"] == "b2"
                assert (await c1.stream(frame["headers"]["req_id"], "S", "x"))["errcode"] == 846605
                assert (await c2.stream(cb.req_id, "S", "x", True))["errcode"] == 0
                assert fake.conversation("alice", bot_id="b2")[0].content == "x"
                assert fake.conversation("alice") == []


async def test_serve_fake_openws_in_a_nursery_and_wrong_path() -> None:
    with trio.fail_after(10):
        fake = FakeWeCom(seed=1)
        async with trio.open_nursery() as nursery:
            assert await nursery.start(serve_fake_openws, fake) is fake
            assert fake.url.startswith("ws://127.0.0.1:")
            assert fake.media_base_url.startswith("http://127.0.0.1:")
            with pytest.raises(RuntimeError):
                await nursery.start(serve_fake_openws, fake)
            with pytest.raises(Exception, match="404"):
                async with open_websocket_url(fake.url + "/cgi-bin/wsagent?access_token=x"):
                    pass  # pragma: no cover
            nursery.cancel_scope.cancel()


async def test_misbehaving_clients_do_not_stop_the_fake() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake:
            host, port = fake.url.removeprefix("ws://").split(":")
            stream = await trio.open_tcp_stream(host, int(port))
            await stream.aclose()  # connect and vanish
            stream = await trio.open_tcp_stream(host, int(port))
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # no upgrade
            async with connect(fake) as c:
                assert (await c.request("ping"))["errcode"] == 0
                await c.ws.aclose()
            await stream.aclose()
            async with connect(fake) as c:
                assert (await c.request("ping"))["errcode"] == 0
