"""WebSocket framing for the client side of the long connection (RFC 6455, section 5), sans-IO.

:class:`FrameParser` turns the bytes a client reads into messages and control frames;
:func:`masked_frame` builds a frame a client sends (masked, final, unfragmented). No extension is
ever negotiated (the handshake offers none), so a frame with a reserved bit set is an error.

Why not wsproto's parser (it still does the HTTP upgrade): it runs each frame through a chain of
generators, an extension hook and an incremental UTF-8 decoder, about 70 µs per small frame on
the benchmark machine, the largest single cost of reading an ack (docs/benchmarks.md). Frames
from WeCom are small, final text frames; this parser takes each one with a header check and one
``bytes.decode``, and keeps the general cases (fragments, control frames interleaved with them,
frames split across reads) correct.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "CLOSE",
    "PING",
    "PONG",
    "FrameParser",
    "ProtocolError",
    "WsEvent",
    "close_payload",
    "masked_frame",
]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

#: Close codes a peer may send (RFC 6455, section 7.4): 1000-1003, 1007-1011 and 3000-4999.
_VALID_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011))


class ProtocolError(Exception):
    """The peer broke the framing rules: close the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WsEvent(NamedTuple):
    """A complete message or control frame. ``opcode`` is TEXT (``data`` a str), BINARY,
    PING or PONG (``data`` bytes), or CLOSE (``code``: the status, 1005 when none was given,
    ``data``: the reason, a str)."""

    opcode: int
    data: str | bytes
    code: int = 0


class FrameParser:
    """Frames a WebSocket server sends (unmasked), from bytes in any chunking.

    ``max_message_size`` bounds a message's payload (all its fragments, bytes): a longer one is a
    :class:`ProtocolError` with code 1009 as soon as its header says so, before its payload is
    buffered. After a close frame nothing more is parsed.
    """

    __slots__ = ("_buffer", "_closed", "_fragments", "_max", "_message_opcode", "_message_size")

    def __init__(self, max_message_size: int) -> None:
        self._max = max_message_size
        self._buffer = b""  # an incomplete frame from earlier reads
        self._fragments: list[bytes] = []  # the message in progress (a non-final first frame)
        self._message_opcode = 0  # TEXT or BINARY while a fragmented message is in progress
        self._message_size = 0
        self._closed = False

    def feed(self, data: bytes | bytearray) -> list[WsEvent]:
        """The events the frames completed by ``data`` carry, in order; raises ProtocolError."""
        if self._closed:
            return []
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        elif type(data) is not bytes:
            data = bytes(data)
        events: list[WsEvent] = []
        end = len(data)
        pos = 0
        while end - pos >= 2:
            b0 = data[pos]
            b1 = data[pos + 1]
            if b1 & 0x80:
                raise ProtocolError(1002, "the server sent a masked frame")
            if b0 & 0x70:
                raise ProtocolError(1002, "a frame with a reserved bit set (no extension was negotiated)")
            length = b1 & 0x7F
            start = pos + 2
            if length == 126:
                start = pos + 4
                if start > end:
                    break
                length = int.from_bytes(data[pos + 2 : start], "big")
            elif length == 127:
                start = pos + 10
                if start > end:
                    break
                length = int.from_bytes(data[pos + 2 : start], "big")
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode >= CLOSE:
                if not fin or length > 125:
                    raise ProtocolError(1002, "a fragmented or oversized control frame")
            elif self._message_size + length > self._max:
                raise ProtocolError(1009, f"a message larger than {self._max} bytes")
            stop = start + length
            if stop > end:
                break
            payload = data[start:stop]
            pos = stop
            if opcode == TEXT or opcode == BINARY:
                if self._message_opcode:
                    raise ProtocolError(1002, "a new message inside a fragmented one")
                if fin:
                    events.append(WsEvent(opcode, _text(payload) if opcode == TEXT else payload))
                else:
                    self._message_opcode = opcode
                    self._fragments.append(payload)
                    self._message_size = length
            elif opcode == CONTINUATION:
                if not self._message_opcode:
                    raise ProtocolError(1002, "a continuation frame outside a fragmented message")
                self._fragments.append(payload)
                self._message_size += length
                if fin:
                    whole = b"".join(self._fragments)
                    kind = self._message_opcode
                    self._fragments.clear()
                    self._message_opcode = self._message_size = 0
                    events.append(WsEvent(kind, _text(whole) if kind == TEXT else whole))
            elif opcode == PING or opcode == PONG:
                events.append(WsEvent(opcode, payload))
            elif opcode == CLOSE:
                events.append(_close_event(payload))
                self._closed = True
                return events
            else:
                raise ProtocolError(1002, f"unknown opcode {opcode:#x}")
        if pos < end:
            self._buffer = data[pos:]
        return events


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(1007, "a text message that is not valid UTF-8") from None


def _close_event(payload: bytes) -> WsEvent:
    if not payload:
        return WsEvent(CLOSE, "", 1005)
    if len(payload) == 1:
        raise ProtocolError(1002, "a close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if code not in _VALID_CLOSE_CODES and not 3000 <= code <= 4999:
        raise ProtocolError(1002, f"a close frame with the invalid code {code}")
    return WsEvent(CLOSE, _text(payload[2:]), code)


def masked_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """One final frame a client sends (RFC 6455, section 5.2): ``payload`` masked with the
    4-byte ``mask``."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    # XOR with the repeated 4-byte key as one big-integer operation (C speed).
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")
    return header + mask + masked


def close_payload(code: int, reason: str = "") -> bytes:
    """The payload of a close frame: the status code, then the reason (UTF-8, cut to fit)."""
    cut = reason.encode("utf-8")[:123].decode("utf-8", "ignore")  # never half a character
    return code.to_bytes(2, "big") + cut.encode("utf-8")
