"""The long-connection frame envelope and command names (sans-IO).

Stage one of two-stage decoding: :func:`decode_frame` turns one WebSocket text message into an
:class:`Envelope` whose ``body`` stays an undecoded :class:`msgspec.Raw`. Acks have no ``cmd``;
callbacks have ``cmd`` and a body that :func:`wecom_actors.protocol.inbound.decode_callback`
decodes only when it is needed.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import msgspec

from ..errors import FrameError

__all__ = [
    "Ack",
    "Cmd",
    "Envelope",
    "Headers",
    "Request",
    "decode_frame",
    "encode_request",
]


class Cmd(enum.StrEnum):
    """Every command name of the long-connection protocol (see docs/protocol-notes.md, 'Long-connection details')."""

    SUBSCRIBE = "aibot_subscribe"
    PING = "ping"
    MSG_CALLBACK = "aibot_msg_callback"
    EVENT_CALLBACK = "aibot_event_callback"
    RESPOND_WELCOME = "aibot_respond_welcome_msg"
    RESPOND_MSG = "aibot_respond_msg"
    RESPOND_UPDATE = "aibot_respond_update_msg"
    SEND_MSG = "aibot_send_msg"
    UPLOAD_INIT = "aibot_upload_media_init"
    UPLOAD_CHUNK = "aibot_upload_media_chunk"
    UPLOAD_FINISH = "aibot_upload_media_finish"


#: Commands whose ``headers.req_id`` must be the req_id of the callback they answer.
REPLY_COMMANDS = frozenset({Cmd.RESPOND_WELCOME, Cmd.RESPOND_MSG, Cmd.RESPOND_UPDATE})
#: Commands WeCom pushes to the client.
CALLBACK_COMMANDS = frozenset({Cmd.MSG_CALLBACK, Cmd.EVENT_CALLBACK})


#: Integers on the wire are bounded to int64: larger ones are a malformed frame.
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class Headers(msgspec.Struct, frozen=True):
    req_id: str = ""


_EMPTY_RAW = msgspec.Raw()


class Envelope(msgspec.Struct, frozen=True):
    """One frame in either direction, body undecoded.

    ``cmd`` is ``None`` for acks. ``errcode``/``errmsg`` are set on acks only. An empty ``body``
    (``len(body) == 0``) means the frame had none.
    """

    headers: Headers = Headers()
    cmd: str | None = None
    body: msgspec.Raw = _EMPTY_RAW
    errcode: Int64 | None = None
    errmsg: str | None = None

    @property
    def req_id(self) -> str:
        return self.headers.req_id

    @property
    def is_ack(self) -> bool:
        return self.cmd is None


class Ack(msgspec.Struct, frozen=True):
    """The decoded outcome of one request: ``errcode`` 0 is success; ``body`` is raw or empty."""

    req_id: str
    errcode: int
    errmsg: str
    body: msgspec.Raw = _EMPTY_RAW

    @property
    def ok(self) -> bool:
        return self.errcode == 0


class Request(msgspec.Struct, frozen=True, omit_defaults=True):
    """An outgoing request frame. ``body`` is any msgspec-encodable value (``None`` is omitted)."""

    cmd: str
    headers: Headers
    body: Any = None


class _AckFrame(msgspec.Struct, frozen=True, omit_defaults=True):
    headers: Headers
    errcode: int
    errmsg: str
    body: Any = None


_envelope_decoder = msgspec.json.Decoder(Envelope)
_encoder = msgspec.json.Encoder()


def decode_frame(data: str | bytes) -> Envelope:
    """Decode one frame. Raises :class:`FrameError` for anything that is not a JSON object
    with a well-typed envelope (unknown keys and unknown commands are fine)."""
    try:
        return _envelope_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:  # ValidationError included
        raise FrameError(f"malformed frame: {type(exc).__name__}: {exc}") from None


def ack_of(env: Envelope) -> Ack:
    """The :class:`Ack` carried by an ack envelope (``errcode`` missing counts as 0)."""
    return Ack(
        req_id=env.headers.req_id,
        errcode=env.errcode if env.errcode is not None else 0,
        errmsg=env.errmsg or "",
        body=env.body,
    )


def encode_request(cmd: str, req_id: str, body: Any = None) -> bytes:
    """Encode a client request frame to UTF-8 JSON bytes."""
    return _encoder.encode(Request(cmd=cmd, headers=Headers(req_id), body=body))


def encode_ack(req_id: str, errcode: int = 0, errmsg: str = "ok", body: Any = None) -> bytes:
    """Encode a server ack frame (used by the bundled fake WeCom)."""
    return _encoder.encode(_AckFrame(headers=Headers(req_id), errcode=errcode, errmsg=errmsg, body=body))


def encode_push(cmd: str, req_id: str, body: Any) -> bytes:
    """Encode a server push frame (callback); used by the bundled fake WeCom."""
    return _encoder.encode(Request(cmd=cmd, headers=Headers(req_id), body=body))
