"""The webhook ASGI app: a plain ASGI callable, no framework (URL verification and callbacks).

Routes
    ``GET  <callback_path>``  URL verification: answer the decrypted ``echostr``, bare, text/plain.
    ``POST <callback_path>``  a callback: verify, decrypt, hand the message to the bot, answer its
                              reply encrypted (text/plain JSON envelope) or with an empty 200.
    ``GET  /healthz``         200 ``ok`` while serving, 503 ``draining`` during shutdown.

Every rejection is answered with a short plain-text reason, logged once (never with the token,
the key or decrypted data) and counted; none affects other requests. Status codes:

=====  ====================================================================================
400    a query parameter is missing or malformed (``timestamp``: 1-12 ASCII digits;
       ``nonce``: 1-64 printable ASCII characters); the body is not JSON or has no string
       ``encrypt``; the ciphertext does not decrypt (not base64, not a block multiple, bad
       padding, length prefix beyond the buffer, non-empty receiveid); the message is not a
       JSON object
403    ``msg_signature`` does not match; the timestamp is outside the freshness window (more
       than ``timestamp_window`` seconds old, or more than ``MAX_FUTURE_SKEW`` ahead)
404    another path;  405 another method;  413 the body is over ``webhook_max_body``
408    the body did not arrive whole within ``body_timeout`` seconds of the request head
503    a new message while the bot drains for shutdown (WeCom may deliver it again later)
505    not HTTP/1.x (the HTTP/2 preface ``PRI * HTTP/2.0``): the server speaks HTTP/1.1 only
=====  ====================================================================================

Rejections are logged at WARNING with the peer's method and path escaped (no control
character or line break of theirs reaches the log) and rate-limited: at most
``REJECTION_LOG_BURST`` lines per ``REJECTION_LOG_PERIOD`` seconds, then one line saying how
many were left out.

The query string is parsed by hand: only ``%XX`` escapes are decoded and ``+`` stays ``+``
(``echostr`` is base64 and WeCom does not always percent-encode its ``+``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import unquote

import msgspec
import trio

from .._asgi import Receive, Scope, Send, respond, serve_lifespan
from .._logging import LogLimiter, escape
from ..crypto import WeComCrypto
from ..errors import CryptoError, FrameError, SignatureError
from ..protocol.inbound import InboundMessage, decode_callback

__all__ = ["MAX_FUTURE_SKEW", "CallbackTarget", "Rejected", "WebhookApp", "parse_query"]

log = logging.getLogger("wecom_actors.webhook.http")


_VERIFY_PARAMS = ("msg_signature", "timestamp", "nonce", "echostr")
_POST_PARAMS = ("msg_signature", "timestamp", "nonce")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII only: str.isdigit() also accepts "¹²³"
_NONCE = re.compile(r"[\x21-\x7e]{1,64}")

#: A timestamp at most this far ahead of our clock is fresh (clock skew); further ahead it is
#: refused, so no request outlives the dedupe record of its msgid (see docs/security.md).
MAX_FUTURE_SKEW = 60.0
#: Rejection log lines: at most this many per period, then one line with the count left out.
REJECTION_LOG_BURST = 20
REJECTION_LOG_PERIOD = 10.0


class Rejected(Exception):
    """A request is refused with ``status``; ``reason`` is logged and sent as the body."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


class _Disconnected(Exception):
    pass


class CallbackTarget(Protocol):
    """What the app needs from the bot."""

    @property
    def serving(self) -> bool: ...

    async def respond(self, message: InboundMessage) -> bytes | None:
        """The plaintext reply to a decrypted callback (``None``: empty answer); may raise
        :class:`Rejected`."""
        ...

    def on_rejected(self, status: int, reason: str) -> None: ...

    def on_verified(self) -> None: ...


class _Envelope(msgspec.Struct):
    encrypt: str


_decode_envelope = msgspec.json.Decoder(_Envelope).decode


def parse_query(raw: bytes) -> dict[str, str]:
    """``a=1&b=%2B+`` -> ``{"a": "1", "b": "++"}``: ``%XX`` decoded, ``+`` kept; first value wins."""
    params: dict[str, str] = {}
    for pair in raw.decode("utf-8", "replace").split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        params.setdefault(unquote(name), unquote(value))
    return params


class WebhookApp:
    """The ASGI application of one bot."""

    def __init__(
        self,
        target: CallbackTarget,
        crypto: WeComCrypto,
        *,
        path: str,
        max_body: int,
        timestamp_window: float,
        body_timeout: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.target = target
        self.crypto = crypto
        self.path = path
        self.max_body = max_body
        self.timestamp_window = timestamp_window
        self.body_timeout = body_timeout
        self.wall_clock = wall_clock
        self.log_limiter = LogLimiter(REJECTION_LOG_BURST, REJECTION_LOG_PERIOD)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await serve_lifespan(receive, send)
            return
        if kind != "http":  # websocket: refuse the handshake
            await send({"type": "websocket.close", "code": 1008})
            return
        method, path = scope["method"], scope["path"]
        try:
            if scope.get("http_version") not in ("1.0", "1.1"):
                raise Rejected(505, "HTTP/1.1 only")
            if path == "/healthz" and method in ("GET", "HEAD"):
                serving = self.target.serving
                await respond(send, 200 if serving else 503, b"ok\n" if serving else b"draining\n")
            elif path != self.path:
                raise Rejected(404, "not found")
            elif method == "GET":
                await self._verify(scope, send)
            elif method == "POST":
                await self._callback(scope, receive, send)
            else:
                raise Rejected(405, f"method {escape(method, 20)} not allowed")
        except Rejected as exc:
            self.target.on_rejected(exc.status, exc.reason)
            self._log_rejection(method, path, exc)
            headers = [(b"allow", b"GET, POST")] if exc.status == 405 else []
            if exc.status in (408, 413, 505):  # the rest of the request is not read: close
                headers.append((b"connection", b"close"))
            await respond(send, exc.status, exc.reason.encode() + b"\n", headers=headers)
        except _Disconnected:
            log.info("%s %s: the client went away before its body was read", escape(method, 20), escape(path))

    def _log_rejection(self, method: str, path: str, exc: Rejected) -> None:
        allowed, left_out = self.log_limiter.allow(trio.current_time())
        if not allowed:
            return
        note = f" ({left_out} rejections before this one were not logged)" if left_out else ""
        log.warning("%s %s rejected with %d: %s%s", escape(method, 20), escape(path), exc.status, exc.reason, note)

    # --- GET: URL verification -----------------------------------------------------------------

    async def _verify(self, scope: Scope, send: Send) -> None:
        q = _params(scope, _VERIFY_PARAMS)
        try:
            self.crypto.verify_signature(q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"])
        except SignatureError:
            raise Rejected(403, "URL verification: msg_signature does not match") from None
        try:
            plaintext = self.crypto.decrypt(q["echostr"])
        except CryptoError as exc:
            raise Rejected(400, f"URL verification: echostr does not decrypt ({type(exc).__name__})") from None
        self.target.on_verified()
        await respond(send, 200, plaintext)  # bare: no quotes, BOM or newline

    # --- POST: callbacks -----------------------------------------------------------------------

    async def _callback(self, scope: Scope, receive: Receive, send: Send) -> None:
        q = _params(scope, _POST_PARAMS)
        body = await self._read_body(scope, receive)
        try:
            encrypt = _decode_envelope(body).encrypt
        except msgspec.ValidationError:
            raise Rejected(400, "the body has no string 'encrypt' field") from None
        except msgspec.DecodeError:
            raise Rejected(400, "the body is not JSON") from None
        timestamp, nonce = q["timestamp"], q["nonce"]
        try:
            self.crypto.verify_signature(q["msg_signature"], timestamp, nonce, encrypt)
        except SignatureError:
            raise Rejected(403, "msg_signature does not match") from None
        self._check_fresh(timestamp)
        try:
            plaintext = self.crypto.decrypt(encrypt)
        except CryptoError as exc:
            raise Rejected(400, f"encrypt does not decrypt ({type(exc).__name__})") from None
        try:
            message = decode_callback(plaintext)
        except FrameError:
            raise Rejected(400, "the decrypted message is not a JSON callback object") from None
        answer = await self.target.respond(message)
        if answer is None:
            await respond(send, 200, b"")
            return
        # Answer with the callback's own nonce (docs/protocol-notes.md, 'Envelopes') and its timestamp, as a JSON number.
        await respond(send, 200, self.crypto.encrypt_reply(answer, nonce=nonce, timestamp=int(timestamp)))
        on_sent = getattr(answer, "on_sent", None)
        if on_sent is not None:  # a final stream answer counts as delivered once sent whole
            on_sent()

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isascii() or not declared.isdigit():
                raise Rejected(400, "Content-Length is not a number")
            if len(declared) > 12 or int(declared) > self.max_body:  # no int() of 5,000 digits
                size = f"{declared} bytes" if len(declared) <= 12 else f"a {len(declared)}-digit length"
                raise Rejected(413, f"the body ({size}) is over the {self.max_body}-byte limit")
        with trio.move_on_after(self.body_timeout):
            return await self._receive_body(receive)
        raise Rejected(408, f"the body did not arrive within {self.body_timeout:g} s")

    async def _receive_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                raise _Disconnected
            chunk = event.get("body", b"")
            total += len(chunk)
            if total > self.max_body:  # stop reading: the rest is never buffered
                raise Rejected(413, f"the body is over the {self.max_body}-byte limit")
            chunks.append(chunk)
            if not event.get("more_body", False):
                return b"".join(chunks)

    def _check_fresh(self, timestamp: str) -> None:
        if self.timestamp_window <= 0:
            return
        age = self.wall_clock() - int(timestamp)  # _params checked: 1-12 ASCII digits
        if age > self.timestamp_window:
            raise Rejected(403, f"timestamp is {age:.0f} s old (window {self.timestamp_window:g} s)")
        if -age > MAX_FUTURE_SKEW:
            raise Rejected(403, f"timestamp is {-age:.0f} s in the future (at most {MAX_FUTURE_SKEW:g} s)")


def _params(scope: Scope, names: tuple[str, ...]) -> dict[str, str]:
    q = parse_query(scope.get("query_string", b""))
    missing = [name for name in names if not q.get(name)]
    if missing:
        raise Rejected(400, "missing query parameter " + ", ".join(missing))
    if not _TIMESTAMP.fullmatch(q["timestamp"]):
        raise Rejected(400, "timestamp is not 1-12 ASCII digits")
    if not _NONCE.fullmatch(q["nonce"]):
        raise Rejected(400, "nonce is not 1-64 printable ASCII characters")
    return q


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1").strip()
    return None


