"""Webhook mode at the HTTP boundary: the AI-bot crypto vectors and every bad input, over real HTTP.

The bot listens on 127.0.0.1 port 0; requests are made with a plain httpx client, so nothing
here depends on the bundled fake. Virtual time (autojump) keeps the first-reply waits instant.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import trio
import trio.testing
from Crypto.Cipher import AES

from wecom_actors import BotConfig, BotHandle, TerminalError, serve_bot
from wecom_actors.crypto import WeComCrypto, pkcs7_pad
from wecom_actors.webhook import parse_query

TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
TS, NONCE = "1700000000", "1234567890"
A_ENC = "sKqRbbiSUnDhFHOvPjtUMWzf2R8PrpMiTTPaicBgqZm9eFleDkaZY7LObMBXhUqCcxijQlSKcvc+WpPyowukzA=="
A_SIG = "7c35e2e353fbb426a5b6263c3ae4d3fb20e7be6c"
B_ENC = "sKqRbbiSUnDhFHOvPjtUMcw0RmRNkLSpAwtrwZiMb9vVnpG3UVwnmBvcI4Hn9HXYXR+P8ZHkMy5J/emUWEvGEoYyLQ1sHR5gbyfkDv1sPJuwYvXryOyuAT2s0y64qmWqSCi+rxqA2c4Jpx9vFsl8xkSwf0JfF0huG2Z6s1AGgFS8S06CLbMIthQ4sKTzaoMOFv4p779b0bgcQh8N8z6Duig8JKjMdbiK06I3TKmPyBsUZOWKQVwVvY5jtDTkLGjve14QqajYP/JdK5l4W/YNtOoMkO1Kc1JL49K8AhBshNK7x2heD1BX/UO0FVbQDYVpjYlo1sJhKmtMpHlzEns7qA=="
B_SIG = "30f8cfa8911fc0d7090cb5af1d12a0e6f3577cc6"
C_ENC = "sKqRbbiSUnDhFHOvPjtUMSh+kOCSLkuwtnqQ5QnLf7pzJ3ojMkZRY61G4vjapi0fb4ieidAM36URdrM7s9crW47AQ9rUQAirpM9pY/X4OehcWN1IBxm709qq7S2HkDMb4baGB6e8zswxQGW+GwF9hudtot77s50Md0+cEB7IxhUp0fFvaKRpc8Jnk1ji/xaC/HOG75upPKgeX91oql0auRee0AyHpKBpJlgjlkkB9ZxVxQm5ey0H6uQNfhVPEFt2TAKefVzrjF5PRdp1S3Z4ZK4Xd5hfNQyZvsmFt2mjIJ4="
C_SIG = "94370a9e6efae8fff7986441a04c64d8a7d6f546"
D_ENC = "sKqRbbiSUnDhFHOvPjtUMSBZzmaSmnBlqguEWmcg6dwk2ddheek9XikL1nBvxAhtYY1AZWpXTM3VS0fIKFXHs5pxdnGJpLHF60Np1G1iHkkadkfGgi54qyPChDfXXk0brSIi836vg/HQImJpfOg2zLQ/1204CO+bnnEMP7kvNme1U9gFyyjsU6GhWPb9lkxmjLQ/xtwjVrfkcKTSBDjGYGPSpmleH8fmEnMlw0nXM9udXuSMRbwv8Bk84Yj5caUZ"
D_SIG = "0875bf87391367febe7e121b256318819a77f231"

CRYPTO = WeComCrypto(TOKEN, KEY)
AES_KEY = base64.b64decode(KEY + "=")


def config(**overrides: Any) -> BotConfig:
    values: dict[str, Any] = dict(
        mode="webhook", token=TOKEN, encoding_aes_key=KEY, host="127.0.0.1", port=0, media_allow_private=True
    )
    values.update(overrides)
    return BotConfig(**values)


@asynccontextmanager
async def webhook_bot(**overrides: Any) -> AsyncIterator[tuple[BotHandle, str, httpx.AsyncClient]]:
    cfg = config(**overrides)
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(serve_bot, cfg, "echo")
        base = f"http://127.0.0.1:{handle.runtime.port}"
        async with httpx.AsyncClient(base_url=base) as client:
            yield handle, cfg.callback_path, client
        nursery.cancel_scope.cancel()


def signed_query(encrypt: str, *, ts: str = TS, nonce: str = NONCE, **extra: str) -> str:
    sig = CRYPTO.signature(ts, nonce, encrypt)
    params = {"msg_signature": sig, "timestamp": ts, "nonce": nonce, **extra}
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


def raw_aes(framed_plain: bytes) -> str:
    """Encrypt bytes that are already padded (or deliberately not) with the bot's key."""
    return base64.b64encode(AES.new(AES_KEY, AES.MODE_CBC, iv=AES_KEY[:16]).encrypt(framed_plain)).decode()


def open_answer(response: httpx.Response, nonce: str = NONCE) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    env = response.json()
    assert env["nonce"] == nonce
    CRYPTO.verify_signature(env["msgsignature"], env["timestamp"], env["nonce"], env["encrypt"])
    return json.loads(CRYPTO.decrypt(env["encrypt"]))


# --- the AI-bot crypto vectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("encoded", [True, False], ids=["percent-encoded", "raw-plus"])
async def test_vector_a_verification_returns_the_bare_plaintext(autojump_clock: trio.testing.MockClock, encoded: bool) -> None:
    echostr = quote(A_ENC, safe="") if encoded else A_ENC  # raw: '+' must not become a space
    with trio.fail_after(10):
        async with webhook_bot(webhook_timestamp_window=0) as (handle, path, client):
            r = await client.get(f"{path}?msg_signature={A_SIG}&timestamp={TS}&nonce={NONCE}&echostr={echostr}")
            assert r.status_code == 200
            assert r.content == b"1616140317555161061"  # no quotes, BOM or newline
            assert r.headers["content-type"].startswith("text/plain")
            assert handle.runtime.webhook_statistics().verifications == 1


async def test_vectors_b_c_d_are_accepted_and_handled(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        async with webhook_bot(webhook_timestamp_window=0) as (handle, path, client):
            # B: a group text "@RobotA hello robot" -> a stream; the mention is stripped.
            r = await client.post(f"{path}?msg_signature={B_SIG}&timestamp={TS}&nonce={NONCE}", content=json.dumps({"encrypt": B_ENC}))
            b = open_answer(r)
            assert b["msgtype"] == "stream" and b["stream"]["id"]
            assert "hello robot".startswith(b["stream"]["content"]) and b["stream"]["content"]
            assert r.json()["timestamp"] == 1700000000
            # C: a refresh of the unknown stream STREAMID -> finish with empty content (docs/webhook.md).
            r = await client.post(f"{path}?msg_signature={C_SIG}&timestamp={TS}&nonce={NONCE}", content=json.dumps({"encrypt": C_ENC}))
            assert open_answer(r) == {"msgtype": "stream", "stream": {"id": "STREAMID", "finish": True, "content": ""}}
            # B again (a redelivery): the same stream, no second handler run.
            r = await client.post(f"{path}?msg_signature={B_SIG}&timestamp={TS}&nonce={NONCE}", content=json.dumps({"encrypt": B_ENC}))
            assert open_answer(r)["stream"]["id"] == b["stream"]["id"]
            stats = handle.statistics()
            assert (stats.frames_in, stats.junk_frames, stats.received) == (3, 0, 1)
        # D reuses B's placeholder msgid (the doc examples do), so it goes to a fresh bot: on the
        # same bot it is, correctly, a redelivery of B.
        async with webhook_bot(webhook_timestamp_window=0) as (handle, path, client):
            # D: enter_chat -> an encrypted text welcome.
            r = await client.post(f"{path}?msg_signature={D_SIG}&timestamp={TS}&nonce={NONCE}", content=json.dumps({"encrypt": D_ENC}))
            d = open_answer(r)
            assert d["msgtype"] == "text" and d["text"]["content"].startswith("Hello!")
            assert handle.statistics().received == 1


def test_parse_query_keeps_plus_and_decodes_percent() -> None:
    assert parse_query(b"a=1+2&b=%2B%2F%3D&c=&a=9&d") == {"a": "1+2", "b": "+/=", "c": "", "d": ""}


# --- bad input ------------------------------------------------------------------------------------

GOOD_ECHO = CRYPTO.encrypt(b"12345")
MSG = json.dumps({"msgid": "m-bad", "chattype": "single", "from": {"userid": "u"}, "msgtype": "text", "text": {"content": "x"}}).encode()
GOOD_ENC = CRYPTO.encrypt(MSG)
HEADER = bytes(16) + len(MSG).to_bytes(4, "big")


def _post(encrypt: str, **q: str) -> tuple[str, str, bytes]:
    return "POST", signed_query(encrypt, **q), json.dumps({"encrypt": encrypt}).encode()


BAD = {
    "get-missing-echostr": ("GET", "", b"", 400),  # query built in the test
    "get-bad-signature": ("GET", signed_query(GOOD_ECHO, echostr=GOOD_ECHO).replace("msg_signature=", "msg_signature=0"), b"", 403),
    "get-undecryptable": ("GET", signed_query("bm90IGNpcGhlcg==", echostr="bm90IGNpcGhlcg=="), b"", 400),
    "post-missing-nonce": ("POST", f"msg_signature=abc&timestamp={TS}", json.dumps({"encrypt": GOOD_ENC}).encode(), 400),
    "post-not-json": ("POST", signed_query(GOOD_ENC), b"abc", 400),
    "post-no-encrypt": ("POST", signed_query(GOOD_ENC), b'{"Encrypt": "x"}', 400),
    "post-encrypt-not-string": ("POST", signed_query(GOOD_ENC), b'{"encrypt": 5}', 400),
    "post-json-array": ("POST", signed_query(GOOD_ENC), b"[1]", 400),
    "post-bad-signature": ("POST", signed_query(GOOD_ENC).replace("msg_signature=", "msg_signature=f"), json.dumps({"encrypt": GOOD_ENC}).encode(), 403),
    "post-not-base64": (*_post("!!!not base64!!!")[:2], json.dumps({"encrypt": "!!!not base64!!!"}).encode(), 400),
    "post-not-block-multiple": (*_post(base64.b64encode(bytes(20)).decode()), 400),
    "post-bad-padding": (*_post(raw_aes(HEADER + MSG + bytes(32 - (len(HEADER) + len(MSG)) % 32))), 400),
    "post-length-beyond-buffer": (*_post(raw_aes(pkcs7_pad(bytes(16) + (10_000).to_bytes(4, "big") + MSG))), 400),
    "post-receiveid-not-empty": (*_post(raw_aes(pkcs7_pad(HEADER + MSG + b"wx5823bf96d3bd56c7"))), 400),
    "post-msg-not-json": (*_post(CRYPTO.encrypt(b"not json at all")), 400),
    "post-msg-not-object": (*_post(CRYPTO.encrypt(b"[1, 2]")), 400),
    "post-timestamp-not-integer": (*_post(GOOD_ENC, ts="soon"), 400),
    "post-timestamp-stale": (*_post(GOOD_ENC, ts=str(int(time.time()) - 3600)), 403),
}


@pytest.mark.parametrize("case", list(BAD))
async def test_every_bad_request_is_refused_and_the_server_keeps_serving(
    autojump_clock: trio.testing.MockClock, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    method, query, body, status = BAD[case]
    if case == "get-missing-echostr":
        query = "&".join(p for p in signed_query(GOOD_ECHO, echostr=GOOD_ECHO).split("&") if not p.startswith("echostr"))
    with trio.fail_after(10):
        # The fixed 2023 timestamp of the vectors is only fresh with the check off.
        window = 600.0 if "timestamp" in case else 0.0
        async with webhook_bot(webhook_timestamp_window=window) as (handle, path, client):
            r = await client.request(method, f"{path}?{query}", content=body)
            assert r.status_code == status, r.text
            assert b"1616" not in r.content and b"12345" not in r.content  # no plaintext leaks
            rejections = [rec for rec in caplog.records if "rejected with" in rec.getMessage()]
            assert len(rejections) == 1 and KEY not in rejections[0].getMessage() and TOKEN not in rejections[0].getMessage()
            # ... and the server still serves.
            assert (await client.get("/healthz")).status_code == 200
            ok = await client.get(f"{path}?{signed_query(GOOD_ECHO, echostr=GOOD_ECHO)}")
            assert ok.status_code == 200 and ok.content == b"12345"
            stats = handle.statistics()
            assert stats.junk_frames == 1 and stats.received == 0
            assert handle.runtime.webhook_statistics().rejected_by_status == {status: 1}


async def test_fresh_timestamp_is_accepted_and_window_zero_disables_the_check(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        async with webhook_bot() as (_, path, client):
            now = str(int(time.time()))
            r = await client.post(f"{path}?{signed_query(GOOD_ENC, ts=now)}", content=json.dumps({"encrypt": GOOD_ENC}))
            assert open_answer(r)["msgtype"] == "stream"
        async with webhook_bot(webhook_timestamp_window=0) as (_, path, client):
            r = await client.post(f"{path}?{signed_query(GOOD_ENC, ts='12')}", content=json.dumps({"encrypt": GOOD_ENC}))
            assert open_answer(r)["msgtype"] == "stream"


async def test_body_cap_413_with_and_without_content_length(autojump_clock: trio.testing.MockClock) -> None:
    big = b'{"encrypt": "' + b"A" * 5000 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    with trio.fail_after(10):
        async with webhook_bot(webhook_max_body=2048) as (handle, path, client):
            r = await client.post(f"{path}?{signed_query('A')}", content=big)
            assert r.status_code == 413
            r = await client.post(f"{path}?{signed_query('A')}", content=chunks())  # chunked
            assert r.status_code == 413
            assert (await client.get("/healthz")).status_code == 200
            assert handle.runtime.webhook_statistics().rejected_by_status == {413: 2}


async def test_paths_methods_and_healthz(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        async with webhook_bot(callback_path="/hooks/wecom") as (handle, path, client):
            assert path == "/hooks/wecom"
            health = await client.get("/healthz")
            assert (health.status_code, health.text) == (200, "ok\n")
            assert (await client.get("/wecom/callback")).status_code == 404
            r = await client.put(path)
            assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
            assert handle.statistics().state == "serving"


async def test_a_port_in_use_is_a_clear_terminal_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with trio.fail_after(10), pytest.RaisesGroup(pytest.RaisesExc(TerminalError, match="cannot listen on 127.0.0.1")):
            async with trio.open_nursery() as nursery:
                await nursery.start(serve_bot, config(port=port), "echo")
