"""Frames that WeCom sends before (or in the same read as) the subscribe ack are handled, not lost.

The peer here is a minimal raw WebSocket server (wsproto over a trio TCP stream on 127.0.0.1),
so the callback and the ack can be written in ONE ``send_all``: the same TCP segment, as a busy
WeCom may do right after a reconnect.
"""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import msgspec
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage

from wecom_actors import BotConfig, serve_bot


def _callback(req_id: str, msgid: str, text: str) -> dict[str, Any]:
    return {
        "cmd": "aibot_msg_callback",
        "headers": {"req_id": req_id},
        "body": {
            "msgid": msgid,
            "aibotid": "bot",
            "chattype": "single",
            "from": {"userid": "alice"},
            "msgtype": "text",
            "text": {"content": text},
        },
    }


class RawPeer:
    """One server-side WebSocket connection; records every frame the bot sends."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        self.frames: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []

    async def handshake(self) -> None:
        while True:
            self.ws.receive_data(await self.stream.receive_some(65536))
            for event in self.ws.events():
                if isinstance(event, Request):
                    await self.stream.send_all(self.ws.send(AcceptConnection()))
                    return

    async def recv(self) -> dict[str, Any]:
        while not self._pending:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, TextMessage):
                    frame = msgspec.json.decode(event.data)
                    self.frames.append(frame)
                    self._pending.append(frame)
                elif isinstance(event, CloseConnection):
                    raise EOFError
        return self._pending.pop(0)

    async def send_together(self, *frames: dict[str, Any]) -> None:
        data = b"".join(self.ws.send(Message(data=msgspec.json.encode(f).decode())) for f in frames)
        await self.stream.send_all(data)  # one write: one TCP segment on loopback


def _ack(req_id: str) -> dict[str, Any]:
    return {"headers": {"req_id": req_id}, "errcode": 0, "errmsg": "ok"}


@pytest.mark.parametrize("order", ["callback-then-ack", "ack-then-callback"])
async def test_a_callback_in_the_same_segment_as_the_subscribe_ack_is_answered(order: str) -> None:
    peers: list[RawPeer] = []
    finished = trio.Event()

    async def serve_one(stream: trio.SocketStream) -> None:
        peer = RawPeer(stream)
        peers.append(peer)
        await peer.handshake()
        subscribe = await peer.recv()
        assert subscribe["cmd"] == "aibot_subscribe"
        frames = [_callback("cb-1", "msg-early", "hello early"), _ack(subscribe["headers"]["req_id"])]
        if order == "ack-then-callback":
            frames.reverse()
        await peer.send_together(*frames)
        while True:
            frame = await peer.recv()
            await peer.send_together(_ack(frame["headers"]["req_id"]))
            stream_body = frame.get("body", {}).get("stream", {})
            if frame.get("cmd") == "aibot_respond_msg" and stream_body.get("finish"):
                finished.set()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve_one, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        config = BotConfig(
            mode="long-connection",
            bot_id="bot",
            bot_secret="secret-value",
            ws_url=f"ws://127.0.0.1:{port}/",
            heartbeat_interval=600,
            reconnect_jitter=0.0,
        )
        await nursery.start(partial(serve_bot, config, "echo", rng=random.Random(1)))
        await finished.wait()
        nursery.cancel_scope.cancel()

    replies = [f for f in peers[0].frames if f.get("cmd") == "aibot_respond_msg"]
    assert {f["headers"]["req_id"] for f in replies} == {"cb-1"}
    final = [f for f in replies if f["body"]["stream"]["finish"]]
    assert len(final) == 1
    assert final[0]["body"]["stream"]["content"] == "hello early"
