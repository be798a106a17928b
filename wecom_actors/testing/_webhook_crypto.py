"""The fake webhook WeCom's crypto, independent of wecom_actors.crypto.

Written from the spec, not from the bot, so the fake can check a bot without trusting the bot's
own code: AES-256-CBC with the EncodingAESKey (IV = its first 16 bytes), PKCS#7 padding to 32
bytes, a 16-byte random prefix and a 4-byte length before the message, and SHA-1 signatures.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from Crypto.Cipher import AES

__all__ = ["aes_key", "cbc", "decrypt_msg", "encrypt_msg", "pad32", "sign"]


def aes_key(encoding_aes_key: str) -> bytes:
    key = base64.b64decode(encoding_aes_key + "=" * (-len(encoding_aes_key) % 4))
    if len(key) != 32:
        raise ValueError("the EncodingAESKey must decode to 32 bytes (43 characters)")
    return key


def pad32(data: bytes) -> bytes:
    n = 32 - len(data) % 32
    return data + bytes([n]) * n


def cbc(key: bytes) -> Any:
    return AES.new(key, AES.MODE_CBC, iv=key[:16])


def sign(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def encrypt_msg(key: bytes, msg: bytes, random16: bytes) -> str:
    framed = random16 + len(msg).to_bytes(4, "big") + msg  # receiveid "" for AI bots
    return base64.b64encode(cbc(key).encrypt(pad32(framed))).decode()


def decrypt_msg(key: bytes, encrypt: str) -> bytes:
    raw: bytes = cbc(key).decrypt(base64.b64decode(encrypt, validate=True))
    n = raw[-1] if raw else 0
    if not 1 <= n <= 32 or raw[-n:] != bytes([n]) * n:
        raise ValueError("bad PKCS#7 padding")
    framed = raw[:-n]
    size = int.from_bytes(framed[16:20], "big")
    if 20 + size != len(framed):
        raise ValueError("length prefix does not match (or the receiveid is not empty)")
    return framed[20:]
