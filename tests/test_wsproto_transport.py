"""The wsproto transport against a trio-websocket server on 127.0.0.1."""

from __future__ import annotations

from functools import partial

import pytest
import trio
import trio_websocket

from wecom_actors.errors import ConnectionLost
from wecom_actors.longconn.wsproto_transport import open_wsproto_transport


async def _server(handler, nursery: trio.Nursery) -> int:  # type: ignore[no-untyped-def]
    server = await nursery.start(partial(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, ssl_context=None))
    return server.port


async def test_messages_pings_binary_and_close() -> None:
    got: list[str] = []
    pong = trio.Event()

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.ping(b"hi")  # answered by the transport while the client reads
        pong.set()
        await ws.send_message(b"\x00binary is skipped")
        await ws.send_message("first")
        await ws.send_message("x" * 70000)  # larger than one read
        got.append(await ws.get_message())
        await ws.aclose(1000, "bye")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _server(handler, nursery)
            async with open_wsproto_transport(f"ws://127.0.0.1:{port}/", connect_timeout=5, max_message_size=1 << 20) as t:
                assert await t.receive() == "first"
                assert await t.receive() == "x" * 70000
                await t.send_many([b'{"a":1}'])
                with pytest.raises(ConnectionLost, match="code 1000"):
                    await t.receive()
            assert pong.is_set() and got == ['{"a":1}']
            nursery.cancel_scope.cancel()


async def test_oversized_message_and_refused_handshake() -> None:
    async def big(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message("y" * 5000)
        await trio.sleep_forever()

    async def refuse(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(404)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _server(big, nursery)
            with pytest.raises(ConnectionLost, match="larger than 1000"):
                async with open_wsproto_transport(f"ws://127.0.0.1:{port}/", connect_timeout=5, max_message_size=1000) as t:
                    await t.receive()
            port = await _server(refuse, nursery)
            with pytest.raises(ConnectionLost, match="HTTP 404"):
                async with open_wsproto_transport(f"ws://127.0.0.1:{port}/x", connect_timeout=5, max_message_size=1000):
                    pass
            with pytest.raises(ConnectionLost, match="not a ws"):
                async with open_wsproto_transport("http://127.0.0.1/", connect_timeout=5, max_message_size=1000):
                    pass
            nursery.cancel_scope.cancel()


async def test_connect_failures_are_connection_lost() -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    with trio.fail_after(10):
        with pytest.raises(ConnectionLost, match=r"connecting to 127\.0\.0\.1"):
            async with open_wsproto_transport(f"ws://127.0.0.1:{port}/", connect_timeout=5, max_message_size=1000):
                pass


@pytest.mark.parametrize("size", [0, 1, 5, 125, 126, 127, 65535, 65536, 70000])
def test_our_text_frames_parse_as_rfc6455_frames(size: int) -> None:
    from wsproto.frame_protocol import FrameProtocol, Opcode

    from wecom_actors.longconn.wsproto_transport import masked_text_frame

    payload = ("中文 {json} " * (size // 10 + 1)).encode()[:size]
    payload = payload.decode("utf-8", errors="ignore").encode()  # whole characters only
    server = FrameProtocol(client=False, extensions=[])
    server.receive_bytes(masked_text_frame(payload, b"\x01\x02\x03\xfe"))
    frames = list(server.received_frames())
    assert frames[0].opcode is Opcode.TEXT and frames[-1].message_finished
    assert "".join(f.payload for f in frames).encode() == payload
