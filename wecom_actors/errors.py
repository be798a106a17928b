"""The exception hierarchy of wecom_actors.

Every error the library raises on purpose derives from :class:`WeComError`. The sans-IO layers
(``protocol``, ``crypto``) raise :class:`ProtocolError` and :class:`CryptoError` subclasses; the
runtime raises the terminal errors below out of ``serve_bot`` as bare exceptions (never wrapped in
an ``ExceptionGroup`` by us; the caller's nursery wraps them as usual).
"""

from __future__ import annotations


class WeComError(Exception):
    """Base class of every error raised by wecom_actors."""


# --- configuration -------------------------------------------------------------------------------


class ConfigError(WeComError):
    """A setting is missing or invalid. ``setting`` names it (e.g. ``WECOM_BOT_ID``)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


# --- sans-IO protocol ----------------------------------------------------------------------------


class ProtocolError(WeComError):
    """A peer sent something that does not follow the protocol."""


class FrameError(ProtocolError):
    """A frame is not valid JSON, not a JSON object, or has a malformed envelope or body."""


class CryptoError(ProtocolError):
    """Base class of signature and encryption failures."""


class SignatureError(CryptoError):
    """The msg_signature does not match."""


class InvalidKeyError(CryptoError):
    """The EncodingAESKey or media aeskey does not decode to 32 bytes."""


class DecryptError(CryptoError):
    """The ciphertext is not base64, not a multiple of the block size, or does not decrypt."""


class PaddingError(DecryptError):
    """PKCS#7 padding is invalid (pad not in 1..32, or pad bytes not all equal)."""


class LengthError(DecryptError):
    """The 4-byte length prefix points outside the decrypted buffer."""


class ReceiveIdError(DecryptError):
    """The receiveid trailer after the message does not match the expected one ("" for AI bots)."""


# --- runtime -------------------------------------------------------------------------------------


class TerminalError(WeComError):
    """The bot stopped for a reason that restarting cannot fix."""

    exit_code = 1


class AuthError(TerminalError):
    """WeCom refused ``aibot_subscribe`` on every attempt (wrong bot id or secret)."""

    exit_code = 3


class KickedOut(TerminalError):
    """Another connection subscribed with the same bot id; this instance was replaced.

    Reconnecting would kick the other instance in turn, so the bot stops instead.
    """

    exit_code = 4


class RestartIntensityExceeded(TerminalError):
    """The connection failed more often than the restart intensity allows."""

    exit_code = 1


class ConnectionLost(WeComError):
    """The live connection died (closed, half-open, or heartbeat acks missing)."""


class RequestError(WeComError):
    """A request to WeCom failed. ``errcode``/``errmsg`` are WeCom's when it answered."""

    def __init__(self, message: str, *, errcode: int | None = None, errmsg: str = "") -> None:
        super().__init__(message)
        self.errcode = errcode
        self.errmsg = errmsg


class AckError(RequestError):
    """WeCom acknowledged a request with a non-zero errcode."""


class AckTimeout(RequestError):
    """No ack arrived within the ack timeout."""


class OutcomeUnknown(RequestError):
    """The connection died after a non-idempotent request was sent and before its ack.

    WeCom may or may not have acted on it; it is not resent (that could duplicate it).
    """


class Overloaded(RequestError):
    """A bounded queue is full; the request was refused rather than queued without limit."""


class UploadError(WeComError, ValueError):
    """The media cannot be uploaded or sent as given (kind, size, chunking); nothing was sent."""


class MediaError(WeComError):
    """A media download failed: refused address, too large, timeout, HTTP error, bad payload."""


class StaleReply(RequestError):
    """WeCom no longer accepts replies on this req_id (846605, e.g. after a reconnect) or the
    event's reply window has passed."""


class ReplyFailed(WeComError):
    """A reply could not be delivered after the bounded retries; it is logged and counted."""
