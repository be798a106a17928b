"""Tests of wecom_actors.crypto against the test vectors: signatures, Tencent, AI-bot and media vectors.

Synchronous on purpose: the crypto core is sans-IO. Vectors are in crypto_vectors.py
(described in docs/protocol-notes.md, 'Crypto test vectors'), cross-checked with the independent oracle in crypto_oracle.py.
"""

from __future__ import annotations

import json

import pytest

from wecom_actors.crypto import WeComCrypto, decrypt_media, encrypt_media
from wecom_actors.errors import (
    CryptoError,
    DecryptError,
    PaddingError,
    ReceiveIdError,
    SignatureError,
)

from .crypto_oracle import (
    bot,
    flip_hex_digit,
    oracle_aes,
    oracle_decrypt,
    oracle_encrypt,
    oracle_pad32,
    oracle_signature,
    raises_exactly,
)
from .crypto_vectors import (
    A_ENC,
    A_SIG,
    AES_KEY,
    AIBOT_IDS,
    AIBOT_VECTORS,
    BAD_PADDING,
    EAK,
    MEDIA_CIPHER,
    MEDIA_PLAIN,
    NONCE,
    OTHER_KEY,
    R16,
    TOKEN,
    TS,
    V1_ECHOSTR,
    V1_NONCE,
    V1_PLAIN,
    V1_RECEIVE_ID,
    V1_SIG,
    V1_TS,
    V2_EAK,
    V2_POST,
    V2_RECEIVE_ID,
    V2_TOKEN,
    V2_VERIFY,
)

# --- signatures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, plain, encrypt, sig", AIBOT_VECTORS, ids=AIBOT_IDS)
def test_aibot_signature(name, plain, encrypt, sig):
    c = bot()
    assert c.signature(TS, NONCE, encrypt) == sig
    assert c.signature(str(TS), NONCE, encrypt) == sig
    assert oracle_signature(TOKEN, str(TS), NONCE, encrypt) == sig
    c.verify_signature(sig, TS, NONCE, encrypt)
    c.verify_signature(sig, str(TS), NONCE, encrypt)


WRONG_SIGNATURES = {
    "one-digit-flipped": flip_hex_digit(A_SIG),
    "last-digit-flipped": flip_hex_digit(A_SIG, 39),
    "upper-case": A_SIG.upper(),
    "empty": "",
    "truncated": A_SIG[:-1],
    "extended": A_SIG + "0",
    "non-ascii": "密" * 40,
}


@pytest.mark.parametrize("sig", WRONG_SIGNATURES.values(), ids=WRONG_SIGNATURES.keys())
def test_wrong_signature(sig):
    c = bot()
    with raises_exactly(SignatureError):
        c.verify_signature(sig, TS, NONCE, A_ENC)
    with raises_exactly(SignatureError):
        c.decrypt_callback(sig, TS, NONCE, A_ENC)


@pytest.mark.parametrize(
    "ts, nonce, token",
    [(TS + 1, NONCE, TOKEN), (TS, NONCE + "1", TOKEN), (TS, NONCE, TOKEN + "x")],
    ids=["timestamp", "nonce", "token"],
)
def test_signature_binds_every_input(ts, nonce, token):
    with raises_exactly(SignatureError):
        WeComCrypto(token, EAK).verify_signature(A_SIG, ts, nonce, A_ENC)


# --- official Tencent vectors --------------------------------------------------------------------


def test_v1_rejected_with_empty_receive_id():
    c = bot()
    c.verify_signature(V1_SIG, V1_TS, V1_NONCE, V1_ECHOSTR)
    with raises_exactly(ReceiveIdError):
        c.decrypt_callback(V1_SIG, V1_TS, V1_NONCE, V1_ECHOSTR)


def test_v1_accepted_with_its_receive_id():
    c = bot(V1_RECEIVE_ID)
    assert c.decrypt_callback(V1_SIG, V1_TS, V1_NONCE, V1_ECHOSTR) == V1_PLAIN
    assert oracle_decrypt(AES_KEY, V1_ECHOSTR) == (V1_PLAIN, V1_RECEIVE_ID.encode())


@pytest.mark.parametrize(
    "receive_id", [V1_RECEIVE_ID[:-1], V1_RECEIVE_ID + "x", "WX5823BF96D3BD56C7"]
)
def test_v1_rejected_with_other_receive_id(receive_id):
    with raises_exactly(ReceiveIdError):
        bot(receive_id).decrypt(V1_ECHOSTR)


@pytest.mark.parametrize("vector", [V2_VERIFY, V2_POST], ids=["verify", "post"])
def test_v2(vector):
    sig, ts, nonce, encrypt, plain = vector
    c = WeComCrypto(V2_TOKEN, V2_EAK, V2_RECEIVE_ID)
    assert c.decrypt_callback(sig, ts, nonce, encrypt) == plain
    with raises_exactly(ReceiveIdError):
        WeComCrypto(V2_TOKEN, V2_EAK).decrypt_callback(sig, ts, nonce, encrypt)


# --- AI-bot vectors -----------------------------------------------------------------------------


@pytest.mark.parametrize("name, plain, encrypt, sig", AIBOT_VECTORS, ids=AIBOT_IDS)
def test_aibot_decrypt(name, plain, encrypt, sig):
    assert bot().decrypt_callback(sig, TS, NONCE, encrypt) == plain
    assert bot().decrypt_callback(sig, str(TS), NONCE, encrypt) == plain


@pytest.mark.parametrize("name, plain, encrypt, sig", AIBOT_VECTORS, ids=AIBOT_IDS)
def test_aibot_encrypt_reproduces_vector(name, plain, encrypt, sig):
    assert bot().encrypt(plain, random16=R16) == encrypt
    assert bot(random_bytes=lambda n: R16[:n]).encrypt(plain) == encrypt
    assert oracle_encrypt(AES_KEY, plain, b"", R16) == encrypt


@pytest.mark.parametrize(
    "ts, expected_ts_json", [(str(TS), '"1700000000"'), (TS, "1700000000")], ids=["str", "int"]
)
def test_encrypt_reply_vector_e(ts, expected_ts_json):
    _, plain, encrypt, sig = AIBOT_VECTORS[4]
    body = bot(random_bytes=lambda n: R16).encrypt_reply(plain, nonce=NONCE, timestamp=ts)
    assert (
        body
        == (
            f'{{"encrypt":"{encrypt}","msgsignature":"{sig}",'
            f'"timestamp":{expected_ts_json},"nonce":"{NONCE}"}}'
        ).encode()
    )
    assert json.loads(body)["timestamp"] == ts


def test_encrypt_reply_round_trip_random():
    c = bot()
    body = json.loads(c.encrypt_reply(b'{"msgtype":"text"}', nonce="n1", timestamp="42"))
    assert list(body) == ["encrypt", "msgsignature", "timestamp", "nonce"]
    assert c.decrypt_callback(
        body["msgsignature"], body["timestamp"], body["nonce"], body["encrypt"]
    ) == (b'{"msgtype":"text"}')


def test_default_random_prefix_differs():
    c = bot()
    assert c.encrypt(b"same") != c.encrypt(b"same")


@pytest.mark.parametrize("random16", [b"", b"x" * 15, b"x" * 17])
def test_random_prefix_must_be_16(random16):
    with raises_exactly(CryptoError):
        bot().encrypt(b"msg", random16=random16)


# --- media --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [EAK, EAK + "=", AES_KEY], ids=["eak", "padded", "raw"])
def test_media_vector(key):
    assert decrypt_media(MEDIA_CIPHER, key) == MEDIA_PLAIN
    assert encrypt_media(MEDIA_PLAIN, key) == MEDIA_CIPHER
    assert oracle_aes(AES_KEY, oracle_pad32(MEDIA_PLAIN), encrypt=True) == MEDIA_CIPHER


@pytest.mark.parametrize("size", [0, 15, 17, 31, 63])
def test_media_bad_length(size):
    with raises_exactly(DecryptError):
        decrypt_media(b"\x00" * size, AES_KEY)


@pytest.mark.parametrize(
    "plain", [v for k, v in BAD_PADDING.items() if k not in ("empty", "pad-beyond-length")]
)
def test_media_bad_padding(plain):
    with raises_exactly(PaddingError):
        decrypt_media(oracle_aes(AES_KEY, plain, encrypt=True), AES_KEY)


def test_media_wrong_key():
    with raises_exactly(PaddingError):
        decrypt_media(MEDIA_CIPHER, OTHER_KEY)
