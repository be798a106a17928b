"""Tests of wecom_actors.crypto: AES key decoding and PKCS#7 padding (sans-IO, synchronous).

Shared vectors are in crypto_vectors.py, the independent oracle and helpers in crypto_oracle.py.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wecom_actors.crypto import (
    WeComCrypto,
    decode_aes_key,
    decrypt_media,
    encrypt_media,
    pkcs7_pad,
    pkcs7_unpad,
)
from wecom_actors.errors import InvalidKeyError, PaddingError

from .crypto_oracle import raises_exactly
from .crypto_vectors import AES_KEY, BAD_PADDING, EAK, MEDIA_CIPHER, MEDIA_PLAIN, OTHER_KEY, TOKEN

# --- keys ----------------------------------------------------------------------------------------


def test_sample_key_and_iv():
    key = decode_aes_key(EAK)
    assert key == AES_KEY
    assert key[:16].hex() == "8d69989bbaabe67328014c194631ad07"


@pytest.mark.parametrize(
    "text",
    [
        EAK,
        EAK + "=",  # already padded
        f"  {EAK}\n",  # whitespace from an env file
        EAK[:-1] + "A",  # canonical trailing bits, same 32 bytes (a 43-character key has 2 spare bits)
        EAK.encode(),  # bytes are accepted too
    ],
    ids=["43", "44-padded", "whitespace", "canonical", "bytes"],
)
def test_decode_aes_key_lenient(text):
    assert decode_aes_key(text) == AES_KEY


def test_decode_aes_key_media_aeskey_44():
    aeskey = base64.b64encode(OTHER_KEY).decode()
    assert len(aeskey) == 44
    assert decode_aes_key(aeskey) == OTHER_KEY
    assert decode_aes_key(aeskey.rstrip("=")) == OTHER_KEY


BAD_KEYS = [
    EAK[:42],  # 31 bytes
    EAK + "A",  # 44 chars without '=': 33 bytes
    EAK[:41],  # 41 chars: impossible base64 length
    "",
    "!!!!not-a-key!!!!",
    EAK[:20] + "*" + EAK[21:],
    EAK[:20] + "密" + EAK[21:],
    "AAAA" * 16,  # 48 bytes
    b"\xff" * 43,
    12345,
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: f"{type(k).__name__}-{len(str(k))}")
def test_decode_aes_key_invalid(key):
    with raises_exactly(InvalidKeyError) as info:
        decode_aes_key(key)
    assert str(key) not in str(info.value) or str(key) == ""
    assert EAK not in str(info.value)


@pytest.mark.parametrize("key", [b"", b"x" * 31, b"x" * 33, "short"])
def test_media_key_invalid(key):
    with raises_exactly(InvalidKeyError):
        decrypt_media(MEDIA_CIPHER, key)
    with raises_exactly(InvalidKeyError):
        encrypt_media(MEDIA_PLAIN, key)


@pytest.mark.parametrize("key", [EAK[:42], EAK + "A", "garbage!"])
def test_wecomcrypto_invalid_key(key):
    with raises_exactly(InvalidKeyError):
        WeComCrypto(TOKEN, key)


# --- padding -------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 15, 16, 31, 32, 33, 63, 64])
def test_pkcs7_pad_to_32(length):
    padded = pkcs7_pad(b"\x01" * length)
    n = 32 - length % 32
    assert len(padded) == length + n and len(padded) % 32 == 0
    assert padded[length:] == bytes([n]) * n


def test_pkcs7_pad_aligned_adds_full_block():
    assert pkcs7_pad(b"a" * 32) == b"a" * 32 + b"\x20" * 32


@given(st.binary(max_size=300), st.sampled_from([16, 32, 255]))
def test_pkcs7_round_trip(data, block):
    padded = pkcs7_pad(data, block)
    assert len(padded) % block == 0 and len(padded) > len(data)
    assert pkcs7_unpad(padded, block) == data


@pytest.mark.parametrize("data", BAD_PADDING.values(), ids=BAD_PADDING.keys())
def test_pkcs7_unpad_strict(data):
    with raises_exactly(PaddingError):
        pkcs7_unpad(data)


def test_pkcs7_unpad_accepts_16_aligned():
    # Field note: some blobs are padded to 16; a strict pad check still works.
    assert pkcs7_unpad(b"x" * 12 + b"\x04" * 4) == b"x" * 12
