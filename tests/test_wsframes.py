"""The client-side WebSocket framing (sans-IO): FrameParser against frames wsproto's server builds,
in every chunking, and the protocol errors it must raise."""

from __future__ import annotations

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.frame_protocol import FrameDecoder, Opcode

from wecom_actors.longconn.wsframes import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    FrameParser,
    ProtocolError,
    WsEvent,
    close_payload,
    masked_frame,
)


def _server_bytes(*events: object) -> bytes:
    """What a wsproto server connection sends for ``events`` (unmasked frames)."""
    server = Connection(ConnectionType.SERVER)
    return b"".join(server.send(e) for e in events)  # type: ignore[arg-type]


def _frame(first: int, payload: bytes, *, length_bytes: bytes | None = None) -> bytes:
    """A raw server frame: ``first`` is the FIN/RSV/opcode byte."""
    if length_bytes is None:
        return bytes((first, len(payload))) + payload
    return bytes((first,)) + length_bytes + payload


SAMPLE = [
    TextMessage(data='{"cmd":"aibot_msg_callback","body":{}}'),
    Ping(payload=b"p1"),
    TextMessage(data="ü" * 70),  # 140 bytes: 16-bit length
    BytesMessage(data=b"\x00\x01"),
    TextMessage(data="x" * 70_000),  # 64-bit length
    TextMessage(data="frag-", message_finished=False),
    Ping(payload=b"between fragments"),
    TextMessage(data="ment", message_finished=True),
    TextMessage(data=""),
    CloseConnection(code=1000, reason="bye"),
]
EXPECTED = [
    WsEvent(TEXT, '{"cmd":"aibot_msg_callback","body":{}}'),
    WsEvent(PING, b"p1"),
    WsEvent(TEXT, "ü" * 70),
    WsEvent(BINARY, b"\x00\x01"),
    WsEvent(TEXT, "x" * 70_000),
    WsEvent(PING, b"between fragments"),
    WsEvent(TEXT, "frag-ment"),
    WsEvent(TEXT, ""),
    WsEvent(CLOSE, "bye", 1000),
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 126, 4096, 1 << 20])
def test_frames_in_any_chunking(chunk: int) -> None:
    data = _server_bytes(*SAMPLE)
    parser = FrameParser(max_message_size=1 << 20)
    events: list[WsEvent] = []
    for i in range(0, len(data), chunk):
        events += parser.feed(data[i : i + chunk])
    assert events == EXPECTED


def test_nothing_is_parsed_after_a_close_frame() -> None:
    parser = FrameParser(1000)
    events = parser.feed(_server_bytes(CloseConnection(code=4001)) + _frame(0x81, b"late"))
    assert events == [WsEvent(CLOSE, "", 4001)]
    assert parser.feed(_frame(0x81, b"later")) == []


def test_a_close_frame_without_status_is_1005_and_bytearrays_are_taken() -> None:
    assert FrameParser(10).feed(bytearray(_frame(0x88, b""))) == [WsEvent(CLOSE, "", 1005)]


@pytest.mark.parametrize(
    ("data", "code", "match"),
    [
        (_frame(0x81, b"") [:1] + bytes((0x80 | 2,)) + b"abcdxy", 1002, "masked"),
        (_frame(0xC1, b"hi"), 1002, "reserved bit"),
        (_frame(0x09, b"ping"), 1002, "control frame"),  # a fragmented ping
        (_frame(0x89, b"p" * 126, length_bytes=bytes((126,)) + (126).to_bytes(2, "big")), 1002, "control frame"),
        (_frame(0x80, b"cont"), 1002, "continuation frame outside"),
        (_frame(0x01, b"a") + _frame(0x81, b"b"), 1002, "new message inside"),
        (_frame(0x83, b""), 1002, "unknown opcode"),
        (_frame(0x8B, b""), 1002, "unknown opcode"),
        (_frame(0x81, b"\xff\xfe"), 1007, "UTF-8"),
        (_frame(0x88, b"\x03"), 1002, "1-byte"),
        (_frame(0x88, (1005).to_bytes(2, "big")), 1002, "invalid code 1005"),
        (_frame(0x88, (999).to_bytes(2, "big")), 1002, "invalid code 999"),
        (_frame(0x88, (2000).to_bytes(2, "big")), 1002, "invalid code 2000"),
        (_frame(0x88, (1000).to_bytes(2, "big") + b"\xff"), 1007, "UTF-8"),
    ],
)
def test_protocol_errors(data: bytes, code: int, match: str) -> None:
    with pytest.raises(ProtocolError, match=match) as info:
        FrameParser(1000).feed(data)
    assert info.value.code == code


def test_an_oversized_message_fails_on_its_header_before_its_payload() -> None:
    parser = FrameParser(max_message_size=100)
    assert parser.feed(_frame(0x81, b"y" * 100)) == [WsEvent(TEXT, "y" * 100)]  # the limit is allowed
    header = bytes((0x81, 127)) + (10**9).to_bytes(8, "big")
    with pytest.raises(ProtocolError, match="larger than 100 bytes") as info:
        parser.feed(header)  # nothing of the gigabyte was sent, or buffered
    assert info.value.code == 1009


def test_fragments_count_together_against_the_bound() -> None:
    parser = FrameParser(max_message_size=10)
    assert parser.feed(_frame(0x01, b"123456")) == []
    with pytest.raises(ProtocolError, match="larger than 10") as info:
        parser.feed(_frame(0x80, b"78901"))
    assert info.value.code == 1009


def test_pongs_and_control_frames_between_fragments() -> None:
    parser = FrameParser(100)
    data = _frame(0x02, b"ab") + _frame(0x8A, b"pong") + _frame(0x80, b"cd")
    assert parser.feed(data) == [WsEvent(PONG, b"pong"), WsEvent(BINARY, b"abcd")]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70_000])
@pytest.mark.parametrize("opcode", [TEXT, CLOSE, PING])
def test_masked_frames_parse_as_rfc6455_client_frames(size: int, opcode: int) -> None:
    if opcode != TEXT and size > 125:
        return  # control frames carry at most 125 bytes
    payload = bytes(i % 251 for i in range(size)) if opcode == PING else b"a" * size
    if opcode == CLOSE:
        payload = close_payload(1000, "r" * max(0, size - 2)) if size >= 2 else b""
    decoder = FrameDecoder(client=False)  # a server decoding what a client sends
    decoder.receive_bytes(masked_frame(opcode, payload, b"\x01\x02\x03\xfe"))
    frame = decoder.process_buffer()
    assert frame is not None
    assert frame.opcode == Opcode(opcode) and frame.message_finished
    assert frame.payload == payload  # unmasked again


def test_a_close_reason_is_cut_to_fit_on_a_character_boundary() -> None:
    payload = close_payload(1001, "é" * 100)  # 200 bytes of reason
    assert len(payload) <= 125
    assert payload[:2] == (1001).to_bytes(2, "big")
    assert payload[2:].decode("utf-8") == "é" * 61


def test_wsproto_agrees_on_the_sample() -> None:
    """The sample is what wsproto's own client parser sees too (the reference for EXPECTED)."""
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(_server_bytes(*SAMPLE))
    seen = []
    partial = ""
    for event in client.events():
        if isinstance(event, TextMessage):
            partial += event.data
            if event.message_finished:
                seen.append(WsEvent(TEXT, partial))
                partial = ""
        elif isinstance(event, Message):
            seen.append(WsEvent(BINARY, bytes(event.data)))
        elif isinstance(event, Ping):
            seen.append(WsEvent(PING, bytes(event.payload)))
        elif isinstance(event, CloseConnection):
            seen.append(WsEvent(CLOSE, event.reason or "", event.code))
    assert seen == EXPECTED
