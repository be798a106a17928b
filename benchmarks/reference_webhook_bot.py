"""A minimal webhook echo bot on aiohttp: the baseline of ``bench_webhook.py``.

    benchmarks/.venv-ref-webhook/bin/python benchmarks/reference_webhook_bot.py

Runs in its own venv (aiohttp + pycryptodome, created by the benchmark on first run) and reads
the same settings as ours: WECOM_TOKEN, WECOM_ENCODING_AES_KEY, WECOM_HOST, WECOM_PORT,
WECOM_CALLBACK_PATH. It does only what a webhook echo needs and nothing else: the SHA-1
signature check, AES-256-CBC decryption and encryption, and an in-memory stream table (stream
id -> the text, dropped six minutes after its message). No validation beyond what the crypto
needs, no timestamp window, no dedupe, no handler concurrency, no logging.

The echo is the same as ours: the POST is answered with a stream carrying the first half of the
text (``finish: false``), the first refresh poll with the whole text (``finish: true``).
Unknown stream ids get ``finish: true`` with empty content; any other callback gets an empty
answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time

from aiohttp import web
from Crypto.Cipher import AES

TOKEN = os.environ["WECOM_TOKEN"]
KEY = base64.b64decode(os.environ["WECOM_ENCODING_AES_KEY"] + "=")
PATH = os.environ.get("WECOM_CALLBACK_PATH", "/wecom/callback")
WINDOW = 360.0  # WeCom polls a stream for six minutes

streams: dict[str, tuple[float, str]] = {}  # stream id -> (created, text)
last_sweep = time.monotonic()


def signature(timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted((TOKEN, timestamp, nonce, encrypt))).encode()).hexdigest()


def decrypt(encrypt: str) -> bytes:
    raw = AES.new(KEY, AES.MODE_CBC, iv=KEY[:16]).decrypt(base64.b64decode(encrypt))
    pad = raw[-1]
    if not 1 <= pad <= 32:
        raise ValueError("bad padding")
    size = int.from_bytes(raw[16:20], "big")
    return raw[20 : 20 + size]


def encrypt(plaintext: bytes) -> str:
    framed = secrets.token_bytes(16) + len(plaintext).to_bytes(4, "big") + plaintext
    pad = 32 - len(framed) % 32
    framed += bytes([pad]) * pad
    return base64.b64encode(AES.new(KEY, AES.MODE_CBC, iv=KEY[:16]).encrypt(framed)).decode()


def answer(reply: dict, nonce: str) -> web.Response:
    timestamp = str(int(time.time()))
    enc = encrypt(json.dumps(reply, ensure_ascii=False).encode())
    body = {"encrypt": enc, "msgsignature": signature(timestamp, nonce, enc), "timestamp": int(timestamp), "nonce": nonce}
    return web.Response(text=json.dumps(body), content_type="text/plain")


def sweep() -> None:
    global last_sweep
    now = time.monotonic()
    if now - last_sweep > 30.0:
        last_sweep = now
        for sid in [s for s, (created, _) in streams.items() if now - created > WINDOW]:
            del streams[sid]


async def verify(request: web.Request) -> web.Response:
    q = request.query
    echostr = q.get("echostr", "")
    if not hmac.compare_digest(signature(q.get("timestamp", ""), q.get("nonce", ""), echostr), q.get("msg_signature", "")):
        return web.Response(status=403, text="bad signature")
    return web.Response(body=decrypt(echostr), content_type="text/plain")


async def callback(request: web.Request) -> web.Response:
    q = request.query
    nonce = q.get("nonce", "")
    try:
        enc = (await request.json())["encrypt"]
    except (ValueError, KeyError, TypeError):
        return web.Response(status=400, text="bad body")
    if not hmac.compare_digest(signature(q.get("timestamp", ""), nonce, enc), q.get("msg_signature", "")):
        return web.Response(status=403, text="bad signature")
    try:
        msg = json.loads(decrypt(enc))
    except ValueError:
        return web.Response(status=400, text="does not decrypt")
    kind = msg.get("msgtype")
    if kind == "stream":
        sid = msg["stream"]["id"]
        entry = streams.get(sid)
        return answer({"msgtype": "stream", "stream": {"id": sid, "finish": True, "content": entry[1] if entry else ""}}, nonce)
    if kind == "text":
        sweep()
        text = msg["text"]["content"]
        sid = secrets.token_hex(8)
        streams[sid] = (time.monotonic(), text)
        half = text[: max(1, len(text) // 2)]
        return answer({"msgtype": "stream", "stream": {"id": sid, "finish": False, "content": half}}, nonce)
    return web.Response(text="")


def main() -> None:
    app = web.Application()
    app.router.add_get(PATH, verify)
    app.router.add_post(PATH, callback)
    web.run_app(
        app,
        host=os.environ.get("WECOM_HOST", "127.0.0.1"),
        port=int(os.environ["WECOM_PORT"]),
        access_log=None,
        print=None,
        handle_signals=True,
    )


if __name__ == "__main__":
    main()
