"""The fake's control API (HTTP + JSON + Server-Sent Events), driven with plain httpx against
our echo bot: in long-connection mode and in webhook mode (the fake polls the bot)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio

from wecom_actors import BotConfig, serve_bot
from wecom_actors.demo import tiny_png
from wecom_actors.errors import KickedOut
from wecom_actors.testing import (
    LongConnSimulator,
    WebhookSimulator,
    open_fake_webhook,
    open_fake_wecom,
    serve_control_api,
)

from .fake_bot import bot_config, serve

TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@asynccontextmanager
async def longconn(**fake_kwargs: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with open_fake_wecom(**fake_kwargs) as fake, trio.open_nursery() as nursery:
        sim = LongConnSimulator(fake, bot_name="EchoBot")
        url = await nursery.start(serve_control_api, sim)
        await nursery.start(serve_until_kicked, bot_config(fake))
        await fake.wait_subscribed(timeout=10)
        async with httpx.AsyncClient(base_url=url + "/api/v1", timeout=10) as http:
            yield fake, http
        nursery.cancel_scope.cancel()


async def serve_until_kicked(config: BotConfig, *, task_status: trio.TaskStatus[Any]) -> None:
    try:
        await serve(config, "echo", task_status=task_status)
    except KickedOut:
        pass  # a kick-out test: our bot stops for good, as it should


async def wait_for(http: httpx.AsyncClient, conv: str, predicate: Any) -> list[dict[str, Any]]:
    """Poll the conversation over the API until ``predicate(messages)`` (at most 10 s)."""
    with trio.fail_after(10):
        while True:
            r = await http.get(f"/conversations/{conv}")
            if r.status_code == 200 and predicate(r.json()["messages"]):
                return r.json()["messages"]
            await trio.sleep(0.02)


def bot(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["from"] == "bot"]


async def test_text_stream_card_welcome_and_media_over_the_api() -> None:
    async with longconn() as (_fake, http):
        r = await http.post("/enter_chat", json={"userid": "ann"})
        assert r.status_code == 202 and r.json()["conversation"] == "ann"
        msgs = await wait_for(http, "ann", lambda m: any(b["kind"] == "text" for b in bot(m)))
        assert msgs[0] == {**msgs[0], "from": "event", "kind": "enter_chat"}

        r = await http.post("/messages", json={"type": "text", "userid": "ann", "text": "hello"})
        assert r.status_code == 202, r.text
        assert r.json()["msgid"].startswith("CAIQ") and r.json()["req_id"]
        msgs = await wait_for(http, "ann", lambda m: bot(m)[-1]["kind"] == "stream" and bot(m)[-1]["finished"])
        assert [m["content"] for m in msgs[-2:]] == ["hello", "hello"]
        assert msgs[-2]["from"] == "user"

        await http.post("/messages", json={"type": "text", "userid": "ann", "text": "/card"})
        msgs = await wait_for(http, "ann", lambda m: any(b["kind"] == "template_card" for b in bot(m)))
        card = next(b for b in bot(msgs) if b["kind"] == "template_card")["card"]
        r = await http.post("/card_click", json={"userid": "ann", "task_id": card["task_id"], "event_key": "yes"})
        assert r.status_code == 202, r.text
        msgs = await wait_for(http, "ann", lambda m: any(b["kind"] == "template_card" and b["updates"] for b in bot(m)))
        updated = next(b for b in bot(msgs) if b["kind"] == "template_card")
        assert updated["card"] != card and updated["card"]["task_id"] == card["task_id"]

        png = tiny_png()
        r = await http.post("/messages", json={"type": "image", "userid": "ann",
                                               "data_base64": base64.b64encode(png).decode()})
        assert r.status_code == 202, r.text
        msgs = await wait_for(http, "ann", lambda m: m[-1]["from"] == "bot" and m[-1]["finished"]
                              and m[-2]["kind"] == "image")  # fmt: skip
        shown = await http.get(f"/media/user/{msgs[-2]['media']}")
        assert shown.content == png and shown.headers["content-type"] == "image/png"

        frames = (await http.get("/frames", params={"since": 0})).json()["frames"]
        assert {f["direction"] for f in frames} == {"in", "out"}
        assert any(f["cmd"] == "aibot_respond_msg" for f in frames)
        subscribe = next(f for f in frames if f["cmd"] == "aibot_subscribe")
        assert _fake.secret not in subscribe["text"] and '"secret":"***"' in subscribe["text"]


async def test_group_chat_with_members_and_a_mention() -> None:
    async with longconn() as (_fake, http):
        for user, text in (("bob", "hi all"), ("cy", "@EchoBot me too")):
            r = await http.post("/messages", json={"type": "text", "userid": user, "chatid": "G1", "text": text})
            assert r.status_code == 202, r.text
        msgs = await wait_for(http, "G1", lambda m: len([b for b in bot(m) if b["finished"]]) == 2)
        users = [m for m in msgs if m["from"] == "user"]
        assert [(m["userid"], m["content"]) for m in users] == [("bob", "@EchoBot hi all"), ("cy", "@EchoBot me too")]
        convs = (await http.get("/conversations")).json()["conversations"]
        assert {"id": "G1", "type": "group", "members": ["bob", "cy"]} in convs


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/messages", b"{not json", 400, "malformed JSON"),
        ("/messages", b"[]", 400, "Expected `object`"),
        ("/messages", b'{"type": "sticker"}', 400, "$.type"),
        ("/messages", b'{"type": "text", "text": "x", "extra": 1}', 400, "unknown field"),
        ("/messages", b'{"type": "text"}', 400, "non-empty text"),
        ("/messages", b'{"type": "image", "data_base64": "!!!"}', 400, "not valid base64"),
        ("/messages", b'{"type": "image"}', 400, "needs data_base64"),
        ("/messages", b'{"type": "image", "chatid": "G", "data_base64": "AA=="}', 400, "single chats only"),
        ("/messages", b'{"type": "text", "text": "x", "userid": "a b"}', 400, "$.userid"),
        ("/card_click", b'{"task_id": "T", "event_key": "k", "userid": "nobody"}', 404, "unknown conversation"),
        ("/feedback", b'{"feedback_id": "f", "userid": "nobody"}', 404, "unknown conversation"),
        ("/faults", b'{"kind": "explode"}', 400, "$.kind"),
        ("/faults", b'{"kind": "ack_errors"}', 400, "needs an errcode"),
    ],
)
async def test_bad_input_is_a_4xx_json_error_and_changes_nothing(
    path: str, body: bytes, status: int, needle: str
) -> None:
    async with longconn() as (fake, http):
        before = ((await http.get("/conversations")).json(), len(fake.frames), fake.statistics())
        r = await http.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == status, r.text
        assert needle in r.json()["error"]
        after = ((await http.get("/conversations")).json(), len(fake.frames), fake.statistics())
        assert after == before


async def test_other_refusals() -> None:
    async with longconn() as (_fake, http):
        assert (await http.get("/conversations/nobody")).status_code == 404
        r = await http.post("/messages", content=b'{"type":"text","text":"x"}', headers={"content-type": "text/plain"})
        assert r.status_code == 415
        assert (await http.get("/messages")).status_code == 405
        assert (await http.get("/nope")).json() == {"error": "no such endpoint: /api/v1/nope"}
        r = await http.get("/status", headers={"host": "evil.example:80"})
        assert r.status_code == 403
        r = await http.post("/messages", content=b"x" * (17 * 1024 * 1024), headers={"content-type": "application/json"})
        assert r.status_code == 413


async def test_a_message_to_a_bot_that_is_not_connected_is_409() -> None:
    async with open_fake_wecom() as fake, trio.open_nursery() as nursery:
        url = await nursery.start(serve_control_api, LongConnSimulator(fake))
        async with httpx.AsyncClient(base_url=url + "/api/v1", timeout=10) as http:
            r = await http.post("/messages", json={"type": "text", "text": "anyone?"})
            assert r.status_code == 409 and "not connected" in r.json()["error"]
            assert (await http.get("/conversations")).json() == {"conversations": []}
            assert (await http.get("/status")).json()["subscribed"] is False
        nursery.cancel_scope.cancel()


async def test_faults_over_the_api_and_status() -> None:
    async with longconn() as (fake, http):
        status = (await http.get("/status")).json()
        assert status["mode"] == "long-connection" and status["subscribed"] and status["subscribes"] == 1
        r = await http.post("/faults", json={"kind": "drop"})
        assert r.json() == {"ok": True, "connections_hit": 1}
        await fake.wait_subscribed(count=2, timeout=10)  # the bot came back
        r = await http.post("/faults", json={"kind": "kick_second_subscriber"})
        assert r.status_code == 200 and r.json()["intruder_connection"] > 0
        status = (await http.get("/status")).json()
        assert status["live_connection"] == r.json()["intruder_connection"]
        r = await http.post("/faults", json={"kind": "ack_errors", "errcode": 45009, "cmd": "aibot_respond_msg"})
        assert r.status_code == 200


async def test_the_event_feed_streams_a_growing_reply() -> None:
    async with longconn() as (_fake, http):
        seen: list[dict[str, Any]] = []
        async with trio.open_nursery() as nursery:

            async def listen() -> None:
                async with http.stream("GET", "/events", timeout=None) as r:
                    assert r.headers["content-type"].startswith("text/event-stream")
                    async for line in r.aiter_lines():
                        if line.startswith("data: "):
                            event = json.loads(line[6:])
                            seen.append(event)
                            msg = event.get("message") or {}
                            if msg.get("from") == "bot" and msg.get("finished"):
                                nursery.cancel_scope.cancel()

            nursery.start_soon(listen)
            r = await http.post("/messages", json={"type": "text", "userid": "dee", "text": "/slow 1 a b c d e"})
            assert r.status_code == 202
            with trio.fail_after(10):
                await trio.sleep_forever()
        contents = [e["message"]["content"] for e in seen if e["type"] == "message" and e["message"]["from"] == "bot"]
        assert contents[-1] == "a b c d e" and len(contents) >= 2  # it grew, then finished
        assert any(e["type"] == "frame" for e in seen)


async def test_webhook_mode_the_fake_polls_the_bot() -> None:
    config = BotConfig(mode="webhook", token=TOKEN, encoding_aes_key=KEY, host="127.0.0.1", port=0,
                       media_allow_private=True)  # fmt: skip
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(serve_bot, config, "echo")
        bot_url = f"http://127.0.0.1:{handle.runtime.port}{config.callback_path}"
        async with open_fake_webhook(bot_url, token=TOKEN, encoding_aes_key=KEY, poll_interval=0.05) as fake:
            sim = WebhookSimulator(fake, bot_name="EchoBot")
            url = await nursery.start(serve_control_api, sim)
            async with httpx.AsyncClient(base_url=url + "/api/v1", timeout=10) as http:
                assert (await http.get("/status")).json()["mode"] == "webhook"
                r = await http.post("/enter_chat", json={"userid": "eve"})
                assert r.status_code == 202
                await wait_for(http, "eve", lambda m: any(b["kind"] == "text" for b in bot(m)))
                r = await http.post("/messages", json={"type": "text", "userid": "eve", "text": "/slow 1 x y z"})
                assert r.status_code == 202
                msgs = await wait_for(http, "eve", lambda m: bot(m)[-1]["kind"] == "stream" and bot(m)[-1]["finished"])
                assert msgs[-1]["content"] == "x y z"
                await http.post("/messages", json={"type": "text", "userid": "eve", "text": "/card"})
                msgs = await wait_for(http, "eve", lambda m: any(b["kind"] == "template_card" for b in bot(m)))
                card = next(b for b in bot(msgs) if b["kind"] == "template_card")["card"]
                r = await http.post("/card_click", json={"userid": "eve", "task_id": card["task_id"], "event_key": "yes"})
                assert r.status_code == 202
                await wait_for(http, "eve", lambda m: any(b.get("updates") for b in bot(m) if b["kind"] == "template_card"))
                frames = (await http.get("/frames")).json()["frames"]
                assert {f["cmd"] for f in frames} >= {"callback", "answer"}
                first = json.loads(next(f["text"] for f in frames if f["cmd"] == "callback" and '"text"' in f["text"]))
                assert first["msgid"].startswith("CAIQ")
                assert "/cgi-bin/aibot/response?response_code=" in first["response_url"]
                assert (await http.post("/faults", json={"kind": "drop"})).status_code == 400
        nursery.cancel_scope.cancel()


async def test_every_message_type_and_feedback_reach_the_bot_as_wecom_shapes_them() -> None:
    async with longconn() as (fake, http):
        png = base64.b64encode(tiny_png()).decode()
        sent = [
            {"type": "voice", "userid": "fay", "text": "spoken words"},
            {"type": "video", "userid": "fay", "data_base64": png},
            {"type": "file", "userid": "fay", "data_base64": png, "filename": "pic.bin"},
            {"type": "mixed", "userid": "fay", "items": [{"type": "text", "text": "look"},
                                                         {"type": "image", "data_base64": png}]},
            {"type": "mixed", "userid": "fay", "chatid": "G2", "items": [{"type": "text", "text": "@EchoBot here"}]},
        ]  # fmt: skip
        for body in sent:
            r = await http.post("/messages", json=body)
            assert r.status_code == 202, r.text
        r = await http.post("/feedback", json={"userid": "fay", "feedback_id": "fb-9", "type": 2, "content": "meh"})
        assert r.status_code == 202, r.text
        pushed = [f.body for f in fake.frames if f.direction == "out" and f.cmd in ("aibot_msg_callback", "aibot_event_callback")]
        kinds = [b["msgtype"] for b in pushed]
        assert kinds == ["voice", "video", "file", "mixed", "mixed", "event"]
        assert pushed[0]["voice"] == {"content": "spoken words"}
        assert set(pushed[1]["video"]) == {"url", "aeskey"}
        assert pushed[4]["chatid"] == "G2" and pushed[4]["chattype"] == "group"
        assert pushed[5]["event"]["feedback_event"] == {"id": "fb-9", "type": 2, "content": "meh"}
        msgs = await wait_for(http, "fay", lambda m: len(m) >= 5)
        users = [m for m in msgs if m["from"] != "bot"]
        assert [m["kind"] for m in users] == ["voice", "video", "file", "mixed", "feedback_event"]
        assert users[2]["content"] == "pic.bin" and users[3]["parts"][0] == "look"


async def test_the_feed_resumes_after_a_given_event_id() -> None:
    async with longconn() as (_fake, http):
        await http.post("/messages", json={"type": "text", "userid": "gus", "text": "one"})
        await wait_for(http, "gus", lambda m: bot(m) and bot(m)[-1]["finished"])

        async def read_ids(headers: dict[str, str]) -> list[int]:
            ids: list[int] = []
            with trio.move_on_after(1):
                async with http.stream("GET", "/events", headers=headers) as r:
                    async for line in r.aiter_lines():
                        if line.startswith("id: "):
                            ids.append(int(line[4:]))
            return ids

        everything = await read_ids({})
        assert everything == sorted(everything) and everything[0] == 1
        resumed = await read_ids({"last-event-id": str(everything[-3])})
        assert resumed[:2] == everything[-2:]


async def test_redelivery_of_a_callback_in_long_connection_mode() -> None:
    async with longconn() as (fake, http):
        first = await post_ok(http, "/messages", {"type": "text", "userid": "hal", "text": "once"})
        await fake.wait_stream_finished(first["req_id"], timeout=10)
        r = await http.post("/faults", json={"kind": "redeliver", "msgid": first["msgid"]})
        assert r.status_code == 200, r.text
        again = r.json()["redelivered"]
        assert again["msgid"] == first["msgid"] and again["req_id"] != first["req_id"]
        bodies = [f.body for f in fake.frames if f.direction == "out" and f.cmd == "aibot_msg_callback"]
        assert [b["msgid"] for b in bodies].count(first["msgid"]) == 2
        assert bodies[-1]["text"] == {"content": "once"}
        r = await http.post("/faults", json={"kind": "redeliver", "msgid": "CAIQnope"})
        assert r.status_code == 404
        assert (await http.post("/faults", json={"kind": "media", "media": "not-found"})).status_code == 400


async def post_ok(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await http.post(path, json=body)
    assert r.status_code in (200, 202), r.text
    return r.json()


async def test_webhook_faults_media_and_redelivery() -> None:
    config = BotConfig(mode="webhook", token=TOKEN, encoding_aes_key=KEY, host="127.0.0.1", port=0,
                       media_allow_private=True)  # fmt: skip
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(serve_bot, config, "echo")
        bot_url = f"http://127.0.0.1:{handle.runtime.port}{config.callback_path}"
        async with open_fake_webhook(bot_url, token=TOKEN, encoding_aes_key=KEY, poll_interval=0.05) as fake:
            url = await nursery.start(serve_control_api, WebhookSimulator(fake))
            async with httpx.AsyncClient(base_url=url + "/api/v1", timeout=10) as http:
                assert (await post_ok(http, "/faults", {"kind": "media", "media": "not-found"}))["next_media"] == "not-found"
                png = base64.b64encode(tiny_png()).decode()
                sent = await post_ok(http, "/messages", {"type": "image", "userid": "ivy", "data_base64": png})
                await wait_for(http, "ivy", lambda m: bool(bot(m)) and bot(m)[-1]["finished"])
                payload = next(v.payload for v in fake.views if v.msgid == sent["msgid"])
                async with httpx.AsyncClient(timeout=10) as plain:
                    assert (await plain.get(payload["image"]["url"])).status_code == 404
                # the fault was used up: the next image is served
                sent2 = await post_ok(http, "/messages", {"type": "image", "userid": "ivy", "data_base64": png})
                await wait_for(http, "ivy", lambda m: sum(b["finished"] for b in bot(m)) >= 2)
                payload2 = next(v.payload for v in fake.views if v.msgid == sent2["msgid"])
                async with httpx.AsyncClient(timeout=10) as plain:
                    assert (await plain.get(payload2["image"]["url"])).status_code == 200
                again = await post_ok(http, "/faults", {"kind": "redeliver", "msgid": sent2["msgid"]})
                assert again["redelivered"]["msgid"] == sent2["msgid"]
                with trio.fail_after(10):
                    while True:  # the redelivery runs in the background: poll the fake
                        if [v.msgid for v in fake.views].count(sent2["msgid"]) == 2:
                            break
                        await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
