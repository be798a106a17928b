"""WeCom callback and media encryption (sans-IO).

This module implements the message crypto of webhook mode (callbacks, answers, URL
verification) and the media crypto of both modes. It does no I/O and imports no trio, trio_websocket, httpx or hypercorn.

Algorithm
    * ``AESKey = base64decode(EncodingAESKey + "=")`` (32 bytes), ``IV = AESKey[:16]``,
      AES-256-CBC with PKCS#7 padding to a multiple of **32** bytes (not the cipher's 16).
    * Message plaintext: ``random16 || uint32_be(len(msg)) || msg || receiveid``, then
      ``Base64(AES-CBC(PKCS7_32(...)))``.
    * ``msg_signature = lower_hex(sha1("".join(sorted([token, timestamp, nonce, encrypt]))))``.
    * Media blobs are raw AES-CBC ciphertext of ``PKCS7_32(data)``, no framing.

Decisions (documented here because the references disagree)
    * **receiveid rule: Tencent semantics.** The trailer after ``msg`` must equal the configured
      ``receive_id`` exactly, byte for byte. AI bots use ``receive_id=""``, so a payload with a
      non-empty trailer is rejected with :class:`~wecom_actors.errors.ReceiveIdError`. Tencent's
      XML-era vector (V1 of the Tencent vectors in the tests, trailer ``wx5823bf96d3bd56c7``) is therefore *rejected* by
      ``WeComCrypto(token, key)`` and *accepted* by ``WeComCrypto(token, key,
      "wx5823bf96d3bd56c7")``. (The Node SDK skips the check when its receiveId is empty; we do
      not.)
    * **Unpadding is strict** (as the Node SDK): ``1 <= pad <= 32``, ``pad <= len`` and every pad
      byte equal to ``pad``, else :class:`~wecom_actors.errors.PaddingError`. The total length is
      not required to be a multiple of 32, so 16-aligned media blobs still decrypt.
    * **Ciphertext base64 is strict** (``validate=True``): junk raises
      :class:`~wecom_actors.errors.DecryptError`. The EncodingAESKey decode is **lenient**: missing
      ``=`` padding is added and non-canonical trailing bits are accepted (the 43-character
      key has 2 spare bits, and Tencent's own sample key sets them).
    * The random prefix we emit is 16 bytes from ``random_bytes`` (``os.urandom`` by default, as
      the Node SDK); receivers discard it, so any 16 bytes are valid.
    * Signatures are compared in constant time and exactly: an upper-case hex signature does not
      verify (WeCom always sends lower case).

Every failure raises a specific :class:`~wecom_actors.errors.CryptoError` subclass. No message
ever contains the token, the key or decrypted data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from typing import Any

import msgspec
from Crypto.Cipher import AES

from .errors import (
    CryptoError,
    DecryptError,
    InvalidKeyError,
    LengthError,
    PaddingError,
    ReceiveIdError,
    SignatureError,
)

__all__ = [
    "BLOCK_SIZE",
    "WeComCrypto",
    "decode_aes_key",
    "decrypt_media",
    "encrypt_media",
    "pkcs7_pad",
    "pkcs7_unpad",
]

#: PKCS#7 block size WeCom pads to (twice the AES block size).
BLOCK_SIZE = 32
_AES_BLOCK = 16
_KEY_BYTES = 32
_RANDOM_BYTES = 16
_LEN_BYTES = 4
_HEADER = _RANDOM_BYTES + _LEN_BYTES

_json_encode = msgspec.json.Encoder().encode


# --- keys and padding ----------------------------------------------------------------------------


def decode_aes_key(key_b64: str) -> bytes:
    """Decode an EncodingAESKey (43 chars) or a media ``aeskey`` (base64) to 32 raw bytes.

    Lenient on purpose: surrounding whitespace is ignored, missing ``=`` padding is added and
    non-canonical trailing bits are accepted. Anything that is not base64 of exactly 32 bytes
    raises :class:`InvalidKeyError`, whose message never contains the key.
    """
    if isinstance(key_b64, bytes | bytearray):
        try:
            key_b64 = bytes(key_b64).decode("ascii")
        except UnicodeDecodeError:
            raise InvalidKeyError("AES key is not ASCII base64") from None
    if not isinstance(key_b64, str):
        raise InvalidKeyError(f"AES key must be a base64 string, not {type(key_b64).__name__}")
    text = key_b64.strip()
    text += "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        # Never chain: the original message could quote the offending input.
        raise InvalidKeyError(f"AES key is not valid base64 ({len(text)} characters)") from None
    if len(key) != _KEY_BYTES:
        raise InvalidKeyError(f"AES key decodes to {len(key)} bytes, expected {_KEY_BYTES}")
    return key


def _raw_key(key: bytes | str) -> bytes:
    if isinstance(key, str):
        return decode_aes_key(key)
    if isinstance(key, bytes | bytearray | memoryview):
        raw = bytes(key)
        if len(raw) != _KEY_BYTES:
            raise InvalidKeyError(f"raw AES key is {len(raw)} bytes, expected {_KEY_BYTES}")
        return raw
    raise InvalidKeyError(f"AES key must be bytes or a base64 string, not {type(key).__name__}")


def pkcs7_pad(data: bytes, block: int = BLOCK_SIZE) -> bytes:
    """PKCS#7-pad ``data`` to a multiple of ``block`` (1..255); aligned input gains a full block."""
    if not 1 <= block <= 255:
        raise CryptoError(f"PKCS#7 block size must be in 1..255, got {block}")
    pad = block - len(data) % block
    return bytes(data) + bytes([pad]) * pad


def pkcs7_unpad(data: bytes, block: int = BLOCK_SIZE) -> bytes:
    """Strip PKCS#7 padding strictly: ``1 <= pad <= block``, ``pad <= len``, all pad bytes equal.

    Raises :class:`PaddingError` otherwise (including for empty input).
    """
    if not data:
        raise PaddingError("cannot unpad empty data")
    pad = data[-1]
    if not 1 <= pad <= block:
        raise PaddingError(f"PKCS#7 pad length {pad} not in 1..{block}")
    if pad > len(data):
        raise PaddingError(f"PKCS#7 pad length {pad} exceeds data length {len(data)}")
    if data[-pad:] != bytes([pad]) * pad:
        raise PaddingError(f"PKCS#7 pad bytes are not all equal to {pad}")
    return bytes(data[:-pad])


def _cipher(key: bytes) -> Any:  # pycryptodome's CBC cipher type is private
    return AES.new(key, AES.MODE_CBC, iv=key[:_AES_BLOCK])


def _check_ciphertext(ciphertext: bytes) -> None:
    if not ciphertext:
        raise DecryptError("ciphertext is empty")
    if len(ciphertext) % _AES_BLOCK:
        raise DecryptError(f"ciphertext length {len(ciphertext)} is not a multiple of {_AES_BLOCK}")


def _aes_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    _check_ciphertext(ciphertext)
    plaintext: bytes = _cipher(key).decrypt(ciphertext)
    return plaintext


class _MessageCipher:
    """AES-256-CBC with ``IV = key[:16]`` for every message of one key, without a new cipher
    object per message (making one costs pycryptodome ~20 µs, several times the work on a
    callback of a few hundred bytes). The result is exactly that of a fresh CBC cipher:

    * decryption: CBC decrypts as ``P_i = D(C_i) xor C_(i-1)`` with ``C_0 = IV``, so it is one
      ECB pass over the whole buffer and one XOR with ``IV || C[:-16]``;
    * encryption is sequential: one CBC encryptor is kept and continues from its last output
      block ``L``. A lead block ``D(IV) xor L`` encrypts to exactly ``IV``, after which the
      message encrypts as from a fresh cipher; the lead block is dropped from the output. A
      lock keeps ``L`` right if threads share the object.
    """

    __slots__ = ("_cbc", "_ecb", "_iv", "_iv_decrypted", "_last", "_lock")

    def __init__(self, key: bytes) -> None:
        self._iv = key[:_AES_BLOCK]
        self._ecb = AES.new(key, AES.MODE_ECB)
        self._cbc = _cipher(key)
        self._last = self._iv  # the encryptor's chaining block
        self._iv_decrypted = int.from_bytes(self._ecb.decrypt(self._iv), "big")
        self._lock = threading.Lock()

    def decrypt(self, ciphertext: bytes) -> bytes:
        _check_ciphertext(ciphertext)
        size = len(ciphertext)
        chained = int.from_bytes(self._iv + ciphertext[:-_AES_BLOCK], "big")
        return (int.from_bytes(self._ecb.decrypt(ciphertext), "big") ^ chained).to_bytes(size, "big")

    def encrypt(self, padded: bytes) -> bytes:
        with self._lock:
            lead = (self._iv_decrypted ^ int.from_bytes(self._last, "big")).to_bytes(_AES_BLOCK, "big")
            out: bytes = self._cbc.encrypt(lead + padded)
            self._last = out[-_AES_BLOCK:]
        return out[_AES_BLOCK:]


# --- media ---------------------------------------------------------------------------------------


def encrypt_media(data: bytes, key: bytes | str) -> bytes:
    """Encrypt a media blob as WeCom serves it: AES-256-CBC(PKCS7_32(data)), IV = key[:16].

    ``key`` is 32 raw bytes, or a base64 ``aeskey`` / EncodingAESKey.
    """
    raw = _raw_key(key)
    encrypted: bytes = _cipher(raw).encrypt(pkcs7_pad(bytes(data)))
    return encrypted


def decrypt_media(data: bytes, key: bytes | str) -> bytes:
    """Decrypt a media blob (raw ciphertext, no framing) and strip its padding strictly.

    Raises :class:`DecryptError` when ``data`` is empty or not a multiple of 16 bytes,
    :class:`PaddingError` on bad padding and :class:`InvalidKeyError` on a bad key.
    """
    raw = _raw_key(key)
    return pkcs7_unpad(_aes_decrypt(raw, bytes(data)))


# --- messages ------------------------------------------------------------------------------------


class WeComCrypto:
    """Signature and message crypto of one bot (token + EncodingAESKey + receiveid).

    ``receive_id`` is ``""`` for AI bots; the decrypted trailer must equal it exactly (see the
    module docstring). ``random_bytes`` supplies the 16-byte random prefix and is injectable for
    deterministic tests.
    """

    __slots__ = ("_cipher", "_key", "_random_bytes", "_receive_id", "_receive_id_bytes", "_token")

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receive_id: str = "",
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._token = token
        self._key = decode_aes_key(encoding_aes_key)
        self._cipher = _MessageCipher(self._key)
        self._receive_id = receive_id
        self._receive_id_bytes = receive_id.encode("utf-8")
        self._random_bytes = random_bytes

    def __repr__(self) -> str:
        return f"WeComCrypto(receive_id={self._receive_id!r})"

    @property
    def receive_id(self) -> str:
        return self._receive_id

    # signatures

    def signature(self, timestamp: str | int, nonce: str, encrypt: str) -> str:
        """``msg_signature``: lowercase hex SHA-1 of token, timestamp, nonce, encrypt sorted."""
        parts = sorted([self._token, str(timestamp), nonce, encrypt])
        return hashlib.sha1("".join(parts).encode("utf-8", "surrogatepass")).hexdigest()

    def verify_signature(
        self, signature: str, timestamp: str | int, nonce: str, encrypt: str
    ) -> None:
        """Raise :class:`SignatureError` unless ``signature`` matches (constant-time, exact)."""
        expected = self.signature(timestamp, nonce, encrypt).encode("ascii")
        given = signature.encode("utf-8", "surrogatepass") if isinstance(signature, str) else b""
        if not hmac.compare_digest(expected, given):
            raise SignatureError("msg_signature does not match")

    # encryption

    def encrypt(self, plaintext: bytes, *, random16: bytes | None = None) -> str:
        """Encrypt ``plaintext`` into the base64 ``encrypt`` field.

        The plaintext layout: 16 random bytes, the length (4 bytes, big-endian), msg, receive id.

        ``random16`` fixes the random prefix (tests and vectors); by default it comes from
        ``random_bytes(16)``.
        """
        prefix = self._random_bytes(_RANDOM_BYTES) if random16 is None else bytes(random16)
        if len(prefix) != _RANDOM_BYTES:
            raise CryptoError(f"random prefix must be {_RANDOM_BYTES} bytes, got {len(prefix)}")
        msg = bytes(plaintext)
        if len(msg) >= 1 << 32:
            raise CryptoError("message too long for the 4-byte length prefix")
        framed = prefix + len(msg).to_bytes(_LEN_BYTES, "big") + msg + self._receive_id_bytes
        ciphertext = self._cipher.encrypt(pkcs7_pad(framed))
        return base64.b64encode(ciphertext).decode("ascii")

    def decrypt(self, encrypt: str) -> bytes:
        """Decrypt an ``encrypt`` field (or echostr) and return the message bytes.

        Raises :class:`DecryptError` (not base64, empty, not a block multiple),
        :class:`PaddingError`, :class:`LengthError` (length prefix beyond the buffer) or
        :class:`ReceiveIdError` (trailer differs from ``receive_id``).
        """
        try:
            ciphertext = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise DecryptError("encrypt is not valid base64") from None
        framed = pkcs7_unpad(self._cipher.decrypt(ciphertext))
        if len(framed) < _HEADER:
            raise LengthError(
                f"decrypted buffer is {len(framed)} bytes, shorter than the {_HEADER}-byte header"
            )
        msg_len = int.from_bytes(framed[_RANDOM_BYTES:_HEADER], "big")
        end = _HEADER + msg_len
        if end > len(framed):
            raise LengthError(
                f"length prefix {msg_len} exceeds the {len(framed) - _HEADER} bytes available"
            )
        trailer = framed[end:]
        if trailer != self._receive_id_bytes:
            raise ReceiveIdError(
                f"receiveid trailer ({len(trailer)} bytes) does not match the configured "
                f"receive_id ({len(self._receive_id_bytes)} bytes)"
            )
        return framed[_HEADER:end]

    def decrypt_callback(
        self, signature: str, timestamp: str | int, nonce: str, encrypt: str
    ) -> bytes:
        """Verify ``msg_signature`` and then decrypt (GET echostr or POST ``encrypt``)."""
        self.verify_signature(signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt_reply(self, plaintext: bytes, *, nonce: str, timestamp: str | int) -> bytes:
        """Build the encrypted passive-reply envelope (``encrypt``, ``msgsignature``,
        ``timestamp``, ``nonce``) as JSON bytes.

        ``timestamp`` is emitted as given: an ``int`` becomes a JSON number, a ``str`` a JSON
        string (WeCom accepts both). Use the nonce of the callback being answered.
        """
        encrypt = self.encrypt(plaintext)
        return _json_encode(
            {
                "encrypt": encrypt,
                "msgsignature": self.signature(timestamp, nonce, encrypt),
                "timestamp": timestamp,
                "nonce": nonce,
            }
        )
