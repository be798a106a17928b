"""An independent crypto oracle and shared helpers for the test_crypto_* modules.

The oracle uses the ``cryptography`` package (a different AES implementation from the
pycryptodome one under test) with hand-written framing and padding.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wecom_actors.crypto import WeComCrypto

from .crypto_vectors import AES_KEY, EAK, TOKEN


def bot(receive_id: str = "", **kwargs) -> WeComCrypto:
    return WeComCrypto(TOKEN, EAK, receive_id, **kwargs)


def raises_exactly(cls: type[BaseException]):
    """pytest.raises that also rejects subclasses (DecryptError must not be a PaddingError...)."""

    class _Exact:
        def __enter__(self):
            self._cm = pytest.raises(cls)
            self.info = self._cm.__enter__()
            return self.info

        def __exit__(self, *exc_info):
            suppress = self._cm.__exit__(*exc_info)
            assert type(self.info.value) is cls, (
                f"{type(self.info.value).__name__} is not {cls.__name__}"
            )
            return suppress

    return _Exact()


# --- independent oracle (cryptography package, manual framing and padding) ------------------------


def oracle_aes(key: bytes, data: bytes, *, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


def oracle_pad32(data: bytes) -> bytes:
    n = 32 - len(data) % 32
    return data + bytes([n] * n)


def oracle_unpad32(data: bytes) -> bytes:
    n = data[-1]
    assert 1 <= n <= 32 and data[-n:] == bytes([n] * n)
    return data[:-n]


def oracle_encrypt(key: bytes, msg: bytes, receive_id: bytes, r16: bytes) -> str:
    framed = r16 + struct.pack(">I", len(msg)) + msg + receive_id
    return base64.b64encode(oracle_aes(key, oracle_pad32(framed), encrypt=True)).decode()


def oracle_decrypt(key: bytes, encrypt: str) -> tuple[bytes, bytes]:
    framed = oracle_unpad32(oracle_aes(key, base64.b64decode(encrypt), encrypt=False))
    (n,) = struct.unpack(">I", framed[16:20])
    return framed[20 : 20 + n], framed[20 + n :]


def oracle_signature(token: str, ts: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, ts, nonce, encrypt])).encode()).hexdigest()


def raw_encrypt_b64(plain: bytes, key: bytes = AES_KEY) -> str:
    """Encrypt already block-aligned bytes with no padding at all: lets tests forge bad padding."""
    return base64.b64encode(oracle_aes(key, plain, encrypt=True)).decode()


# --- tampering ------------------------------------------------------------------------------------


def flip_hex_digit(sig: str, i: int = 7) -> str:
    return sig[:i] + ("0" if sig[i] != "0" else "1") + sig[i + 1 :]


def flip_bit(encrypt: str, index: int) -> str:
    raw = bytearray(base64.b64decode(encrypt))
    raw[index] ^= 0x01
    return base64.b64encode(raw).decode()
