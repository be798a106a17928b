"""The bundled fake webhook WeCom (wecom_actors.testing._webhook), tested from the outside.

Its crypto is cross-checked with the AI-bot crypto vector E (docs/protocol-notes.md) and with wecom_actors.crypto; its
response_url and media endpoints are hit with plain httpx; and it is pointed at small
misbehaving "bots" (ASGI apps written here) to show that strict mode catches each violation.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.trio import serve

from wecom_actors.crypto import WeComCrypto, decrypt_media
from wecom_actors.errors import PaddingError
from wecom_actors.testing._webhook import (
    FakeWebhookErrcode,
    FakeWebhookWeCom,
    WebhookConformanceError,
    open_fake_webhook,
)

TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CRYPTO = WeComCrypto(TOKEN, KEY)
E_ENVELOPE = json.dumps(
    {
        "encrypt": "sKqRbbiSUnDhFHOvPjtUMaxPyklzv/3o68QXhB5rETs8nFUnIAFrId1kn7q8enQJaDWvllx1M7caxYLQFpUCJIlcHyJARh4Rsw5sMj5qoflM94YPdhjs9riLc8tbyht6BSz+XTAonBPhig2lYvUD28x8lY6keEpHo1WiOgw6t08=",
        "msgsignature": "28e3673ff7b001fad8093cf8ac5af4f9417007af",
        "timestamp": "1700000000",
        "nonce": "1234567890",
    }
).encode()


def test_vector_e_and_empty_answers_open_in_the_fake() -> None:
    fake = FakeWebhookWeCom("http://bot.invalid/cb", token=TOKEN, encoding_aes_key=KEY)
    assert fake.open_reply(E_ENVELOPE, "1234567890") == {
        "msgtype": "stream",
        "stream": {"id": "STREAMID", "finish": False, "content": "你好"},
    }
    with pytest.raises(ValueError, match="nonce"):
        fake.open_reply(E_ENVELOPE, "999")
    tampered = E_ENVELOPE.replace(b"28e3673f", b"28e3673e")
    with pytest.raises(ValueError, match="msgsignature"):
        fake.open_reply(tampered, "1234567890")
    assert fake.open_reply(b"", "n") is None
    assert fake.open_reply(b"success", "n") is None
    assert fake.open_reply(CRYPTO.encrypt_reply(b"{}", nonce="n", timestamp=1), "n") is None


def test_fake_crypto_interoperates_with_the_bot_crypto() -> None:
    fake = FakeWebhookWeCom("http://bot.invalid/cb", token=TOKEN, encoding_aes_key=KEY, seed=7)
    for msg in (b"", b"x", "中文 and more".encode() * 9, bytes(range(256))):
        encrypt = fake._encrypt(msg)
        assert CRYPTO.decrypt(encrypt) == msg
        envelope = CRYPTO.encrypt_reply(json.dumps({"m": msg.hex()}).encode(), nonce="42", timestamp="17")
        assert fake.open_reply(envelope, "42") == {"m": msg.hex()}


# --- the fake's own endpoints ------------------------------------------------------------------------


async def test_response_url_accepts_one_post_and_refuses_the_rest(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10_000):
        async with open_fake_webhook("http://bot.invalid/cb", token=TOKEN, encoding_aes_key=KEY) as fake:
            # callbacks to a dead bot are fine here: only their response_urls are used
            fake.strict = False
            single = await fake.deliver(fake.message("u", "text", {"text": {"content": "x"}}))
            group = await fake.deliver(fake.message("u", "text", {"text": {"content": "x"}}, chatid="g"))
            other = await fake.deliver(fake.message("u", "text", {"text": {"content": "x"}}))
            assert single.errors and single.response_url and group.response_url and other.response_url

            async def post(url: str, body: Any) -> int:
                async with httpx.AsyncClient() as client:
                    return int((await client.post(url, json=body)).json()["errcode"])

            md = {"msgtype": "markdown", "markdown": {"content": "hi"}}
            card = {"msgtype": "template_card", "template_card": {"card_type": "text_notice"}}
            assert await post(single.response_url, {"msgtype": "text"}) == FakeWebhookErrcode.INVALID_PARAMETER
            too_long = {"msgtype": "markdown", "markdown": {"content": "x" * 20481}}
            assert await post(single.response_url, too_long) == FakeWebhookErrcode.CONTENT_TOO_LONG
            assert await post(single.response_url, md) == 0
            assert await post(single.response_url, md) == FakeWebhookErrcode.RESPONSE_URL_USED
            assert await post(group.response_url, card) == FakeWebhookErrcode.CARD_NOT_ALLOWED
            assert await post(fake.base_url + "/cgi-bin/aibot/response?response_code=nope", md) == FakeWebhookErrcode.RESPONSE_URL_UNKNOWN
            await trio.sleep(3601)
            assert await post(other.response_url, md) == FakeWebhookErrcode.RESPONSE_URL_EXPIRED
            assert single.pushes == [md] and other.pushes == []
            assert [p.accepted for p in fake.posts].count(True) == 1


async def test_media_is_served_encrypted_then_expires(autojump_clock: trio.testing.MockClock) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(100)
    with trio.fail_after(1000):
        async with open_fake_webhook("http://bot.invalid/cb", token=TOKEN, encoding_aes_key=KEY) as fake:
            url = fake.add_media(data, filename="pic.png")
            bad = fake.add_media(data, fault="bad-padding")
            async with httpx.AsyncClient() as client:
                r = await client.get(url)
                assert r.status_code == 200 and decrypt_media(r.content, KEY) == data
                assert "pic.png" in r.headers["content-disposition"]
                with pytest.raises(PaddingError):
                    decrypt_media((await client.get(bad)).content, KEY)
                assert (await client.get(fake.add_media(data, fault="not-found"))).status_code == 404
                await trio.sleep(301)
                assert (await client.get(url)).status_code == 404


# --- misbehaving bots ---------------------------------------------------------------------------------

Behaviour = Callable[[dict[str, Any], str, str], Awaitable[tuple[int, bytes]]]


@asynccontextmanager
async def scripted_bot(behaviour: Behaviour) -> AsyncIterator[str]:
    """An ASGI 'bot' whose answer to each decrypted callback is ``behaviour(msg, nonce, ts)``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        q = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&"))
        msg = json.loads(CRYPTO.decrypt(json.loads(body)["encrypt"]))
        status, answer = await behaviour(msg, q["nonce"], q["timestamp"])
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": answer})

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, config, mode="asgi"))
        yield binds[0] + "/cb"
        nursery.cancel_scope.cancel()


def enc(obj: Any, nonce: str, ts: str) -> bytes:
    return CRYPTO.encrypt_reply(json.dumps(obj).encode(), nonce=nonce, timestamp=ts)


def stream(sid: str, content: str, finish: bool, **extra: Any) -> dict[str, Any]:
    return {"msgtype": "stream", "stream": {"id": sid, "content": content, "finish": finish, **extra}}


async def wrong_nonce(msg: dict[str, Any], nonce: str, ts: str) -> tuple[int, bytes]:
    return 200, enc(stream("s", "x", True), "0" + nonce, ts)


async def switches_stream(msg: dict[str, Any], nonce: str, ts: str) -> tuple[int, bytes]:
    sid = "s2" if msg["msgtype"] == "stream" else "s1"
    return 200, enc(stream(sid, "x", msg["msgtype"] == "stream"), nonce, ts)


async def image_too_early(msg: dict[str, Any], nonce: str, ts: str) -> tuple[int, bytes]:
    item = {"msgtype": "image", "image": {"base64": base64.b64encode(b"img").decode(), "md5": "0" * 32}}
    return 200, enc(stream("s", "x", False, msg_item=[item]), nonce, ts)


async def text_to_a_message(msg: dict[str, Any], nonce: str, ts: str) -> tuple[int, bytes]:
    return 200, enc({"msgtype": "text", "text": {"content": "not allowed here"}}, nonce, ts)


async def too_slow(msg: dict[str, Any], nonce: str, ts: str) -> tuple[int, bytes]:
    await trio.sleep(6)
    return 200, b""


async def server_error(msg: dict[str, Any], nonce: str, ts: str) -> tuple[int, bytes]:
    return 500, b"oops"


@pytest.mark.parametrize(
    ("behaviour", "problem"),
    [
        (wrong_nonce, "nonce"),
        (switches_stream, "refresh answered with stream"),
        (image_too_early, "msg_item is allowed only"),
        (text_to_a_message, "not a valid answer to a message"),
        (too_slow, "no answer within 5 s"),
        (server_error, "HTTP 500"),
    ],
)
async def test_strict_mode_catches_a_misbehaving_bot(
    autojump_clock: trio.testing.MockClock, behaviour: Behaviour, problem: str
) -> None:
    with trio.fail_after(60):
        async with scripted_bot(behaviour) as url:
            # a short polling window: a never-finished stream is polled for 10 s, not 6 minutes
            async with open_fake_webhook(url, token=TOKEN, encoding_aes_key=KEY, stream_window=10) as fake:
                with pytest.raises(WebhookConformanceError, match=problem):
                    await fake.send_text("hi")
                fake.strict = False
                view = await fake.send_text("hi")
                assert any(problem in e for e in view.errors)


async def test_events_answers_are_checked(autojump_clock: trio.testing.MockClock) -> None:
    async def chatty(msg: dict[str, Any], nonce: str, ts: str) -> tuple[int, bytes]:
        if msg["event"]["eventtype"] == "template_card_event":
            return 200, enc({"response_type": "update_template_card", "template_card": {"task_id": "other"}}, nonce, ts)
        return 200, enc({"msgtype": "text", "text": {"content": "thanks!"}}, nonce, ts)

    with trio.fail_after(60):
        async with scripted_bot(chatty) as url:
            async with open_fake_webhook(url, token=TOKEN, encoding_aes_key=KEY) as fake:
                assert (await fake.send_enter_chat()).welcome == {"msgtype": "text", "text": {"content": "thanks!"}}
                with pytest.raises(WebhookConformanceError, match="feedback_event"):
                    await fake.send_feedback(feedback_id="f")
                with pytest.raises(WebhookConformanceError, match="task_id"):
                    await fake.send_card_click(task_id="mine", event_key="k")


async def test_at_most_three_messages_of_a_user_in_flight(autojump_clock: trio.testing.MockClock) -> None:
    async def never_finishes(msg: dict[str, Any], nonce: str, ts: str) -> tuple[int, bytes]:
        return 200, enc(stream("s-" + msg.get("msgid", ""), "thinking", False), nonce, ts)

    with trio.fail_after(1000):
        async with scripted_bot(never_finishes) as url:
            async with open_fake_webhook(url, token=TOKEN, encoding_aes_key=KEY, strict=False, stream_window=30) as fake:
                views: list[Any] = []
                async with trio.open_nursery() as nursery:
                    for _ in range(3):
                        nursery.start_soon(lambda: _append(views, fake.send_text("q")))
                    await trio.sleep(2)
                    with pytest.raises(RuntimeError, match="3 messages in flight"):
                        await fake.send_text("one too many")
                    assert (await fake.send_text("another user", userid="lisi")).stream_id
                assert len(views) == 3 and all(v.timed_out and not v.finished for v in views)
                assert all(28 <= len(v.refreshes) <= 30 for v in views)  # polled until the window ended


async def _append(views: list[Any], coro: Awaitable[Any]) -> None:
    views.append(await coro)
