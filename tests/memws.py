"""An in-memory transport and a scriptable WeCom peer for unit tests of the long-connection actors.

No sockets: frames move over trio memory channels, so tests run under MockClock with exact
virtual times.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import trio

from wecom_actors.errors import ConnectionLost


class MemTransport:
    def __init__(self, send: trio.MemorySendChannel[bytes], recv: trio.MemoryReceiveChannel[bytes]) -> None:
        self._send, self._recv = send, recv

    async def receive(self) -> bytes:
        try:
            return await self._recv.receive()
        except (trio.EndOfChannel, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionLost("memory peer closed") from exc

    async def send(self, data: bytes) -> None:
        try:
            await self._send.send(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionLost("memory peer closed") from exc

    async def send_many(self, frames: list[bytes]) -> None:
        for frame in frames:
            await self.send(frame)


class Peer:
    """The server side of one in-memory connection."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.to_client, self._client_recv = trio.open_memory_channel[bytes](1000)
        self._client_send, self.from_client = trio.open_memory_channel[bytes](1000)
        self.transport = MemTransport(self._client_send, self._client_recv)
        self.received: list[dict[str, Any]] = []

    async def recv(self) -> dict[str, Any]:
        frame = msgspec.json.decode(await self.from_client.receive())
        self.received.append(frame)
        return frame

    async def send(self, frame: dict[str, Any] | str) -> None:
        data = frame if isinstance(frame, str) else msgspec.json.encode(frame).decode()
        await self.to_client.send(data.encode() if isinstance(data, str) else data)

    async def ack(self, req_id: str, errcode: int = 0, errmsg: str = "ok", body: Any = None) -> None:
        frame: dict[str, Any] = {"headers": {"req_id": req_id}, "errcode": errcode, "errmsg": errmsg}
        if body is not None:
            frame["body"] = body
        await self.send(frame)

    def close(self) -> None:
        self.to_client.close()
        self.from_client.close()


class MemWeCom:
    """Hands out connections; each dial shows up in ``accept()``."""

    def __init__(self) -> None:
        self.peers: list[Peer] = []
        self._new_send, self._new_recv = trio.open_memory_channel[Peer](100)
        self.dial_times: list[float] = []

    @asynccontextmanager
    async def factory(self, url: str, **kwargs: Any) -> AsyncIterator[MemTransport]:
        self.dial_times.append(trio.current_time())
        peer = Peer(len(self.peers))
        self.peers.append(peer)
        self._new_send.send_nowait(peer)
        try:
            yield peer.transport
        finally:
            peer.close()

    async def accept(self) -> Peer:
        return await self._new_recv.receive()

    async def accept_subscribed(self) -> Peer:
        """Accept a connection and ack its subscribe."""
        peer = await self.accept()
        frame = await peer.recv()
        assert frame["cmd"] == "aibot_subscribe", frame
        await peer.ack(frame["headers"]["req_id"])
        return peer
