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


async def _raw_server(nursery: trio.Nursery, after_upgrade: bytes, seen: list[bytes]) -> int:
    """A hand-made WebSocket server: the 101 response and ``after_upgrade`` in one write, then
    it records what the client sends until the client closes."""
    from wsproto.utilities import generate_accept_token

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def serve() -> None:
        async with listeners[0], await listeners[0].accept() as conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += await conn.receive_some(4096)
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            await conn.send_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + generate_accept_token(key) + b"\r\n\r\n" + after_upgrade
            )
            while data := await conn.receive_some(4096):
                seen.append(data)

    nursery.start_soon(serve)
    return listeners[0].socket.getsockname()[1]


def _client_frames(data: bytes) -> list[tuple[int, bytes]]:
    from wsproto.frame_protocol import FrameDecoder

    decoder = FrameDecoder(client=False)
    decoder.receive_bytes(data)
    out = []
    while (frame := decoder.process_buffer()) is not None:
        out.append((int(frame.opcode), bytes(frame.payload)))
    return out


async def test_frames_sent_with_the_upgrade_response_are_not_lost() -> None:
    seen: list[bytes] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _raw_server(nursery, b"\x81\x05early\x89\x02hi\x81\x04next", seen)
            url = f"ws://127.0.0.1:{port}/"
            # the server never answers the close: a short grace
            async with open_wsproto_transport(url, connect_timeout=5, max_message_size=100, disconnect_timeout=0.2) as t:
                assert await t.receive() == "early"
                assert await t.receive() == "next"
            frames = _client_frames(b"".join(seen))
            assert frames[0] == (0xA, b"hi")  # the pong
            assert frames[-1] == (0x8, (1000).to_bytes(2, "big"))  # our close on the way out


async def test_a_protocol_error_closes_with_its_code() -> None:
    seen: list[bytes] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _raw_server(nursery, b"\x81\x02\xff\xfe", seen)  # not UTF-8
            with pytest.raises(ConnectionLost, match="not valid UTF-8"):
                async with open_wsproto_transport(f"ws://127.0.0.1:{port}/", connect_timeout=5, max_message_size=100) as t:
                    await t.receive()
            frames = _client_frames(b"".join(seen))
            assert [op for op, _ in frames] == [0x8]  # one close frame, nothing after it
            assert frames[0][1][:2] == (1007).to_bytes(2, "big")


async def test_wss_through_tls_on_the_raw_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """TLS (trio.SSLStream) over the raw socket stream: subscribe, and a frame larger than
    one TLS record both ways."""
    import json

    from wecom_actors.longconn import wsproto_transport
    from wecom_actors.protocol.frames import encode_request
    from wecom_actors.testing import FakeTLS, open_fake_wecom

    from .fake_openws_helpers import BOT, SECRET

    tls = FakeTLS.create()
    with trio.fail_after(10):
        async with open_fake_wecom(tls=tls) as fake:
            monkeypatch.setattr(wsproto_transport, "client_context", fake.client_ssl_context)
            assert fake.url.startswith("wss://")
            async with open_wsproto_transport(fake.url, connect_timeout=5, max_message_size=1 << 20) as t:
                await t.send_many([encode_request("aibot_subscribe", "s1", {"bot_id": BOT, "secret": SECRET})])
                ack = json.loads(await t.receive())
                assert ack["headers"]["req_id"] == "s1" and ack["errcode"] == 0
                big = "长" * 20_000  # 60 KB of UTF-8: several TLS records
                await t.send_many([encode_request("aibot_send_msg", "p1", {"chatid": "U", "msgtype": "markdown", "markdown": {"content": big}})])
                ack = json.loads(await t.receive())
                assert ack["headers"]["req_id"] == "p1"
