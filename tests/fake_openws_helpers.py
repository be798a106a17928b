"""Shared helpers for the tests of the bundled fake long-connection server (test_fake_openws_*).

Every test talks to the fake through the raw WebSocket client written here (trio_websocket +
json), never through bot code, and follows the usual minimal conformance scenarios of a
long-connection server (subscribe, heartbeat, streams, events, pushes, uploads, faults).
Tests that depend on time run under the autojump clock: virtual time, exact and instant.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
from Crypto.Cipher import AES
from trio_websocket import open_websocket_url

from wecom_actors.testing import FakeWeCom

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
        assert "cmd" not in ack, ack  # acks carry no cmd
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
    """Media decryption, independently of wecom_actors.crypto: AES-256-CBC, IV = key[:16], PKCS#7 to 32."""
    key = base64.b64decode(aeskey + "=" * (-len(aeskey) % 4))
    assert len(key) == 32 and len(ciphertext) % 32 == 0
    plain = AES.new(key, AES.MODE_CBC, key[:16]).decrypt(ciphertext)
    pad = plain[-1]
    assert 1 <= pad <= 32 and plain[-pad:] == bytes([pad]) * pad
    return plain[:-pad]


async def http_get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(url)
