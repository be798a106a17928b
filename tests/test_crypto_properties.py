"""Tests of wecom_actors.crypto: property-based round trips, oracle cross-checks, fuzzing.

The oracle (crypto_oracle.py) uses the ``cryptography`` package, a different AES implementation
from the pycryptodome one under test. Also checks that the crypto core stays sans-IO.
"""

from __future__ import annotations

import ast
import base64
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from wecom_actors import crypto as crypto_module
from wecom_actors.crypto import WeComCrypto, decode_aes_key, decrypt_media, encrypt_media
from wecom_actors.errors import CryptoError, DecryptError, ReceiveIdError

from .crypto_oracle import (
    bot,
    oracle_aes,
    oracle_decrypt,
    oracle_encrypt,
    oracle_pad32,
    oracle_signature,
    oracle_unpad32,
    raises_exactly,
)
from .crypto_vectors import EAK, TOKEN

# --- property tests ------------------------------------------------------------------------------

receive_ids = st.one_of(st.just(""), st.text(max_size=40))


@given(st.binary(max_size=2048), receive_ids)
def test_round_trip(msg, receive_id):
    c = bot(receive_id)
    encrypt = c.encrypt(msg)
    assert c.decrypt(encrypt) == msg
    if receive_id:
        with raises_exactly(ReceiveIdError):
            bot("").decrypt(encrypt)


@given(
    st.binary(max_size=1024),
    receive_ids,
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=32, max_size=32),
)
def test_oracle_cross_check(msg, receive_id, r16, key):
    c = WeComCrypto(TOKEN, base64.b64encode(key).decode(), receive_id)
    rid = receive_id.encode()
    ours = c.encrypt(msg, random16=r16)
    theirs = oracle_encrypt(key, msg, rid, r16)
    assert ours == theirs
    assert oracle_decrypt(key, ours) == (msg, rid)
    assert c.decrypt(theirs) == msg


@given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=200), st.integers(0, 2**40))
def test_signature_matches_oracle(token, nonce, encrypt, ts):
    c = WeComCrypto(token, EAK)
    assert c.signature(ts, nonce, encrypt) == oracle_signature(token, str(ts), nonce, encrypt)
    c.verify_signature(oracle_signature(token, str(ts), nonce, encrypt), ts, nonce, encrypt)


@given(st.binary(max_size=4096), st.binary(min_size=32, max_size=32))
def test_media_round_trip_and_oracle(data, key):
    blob = encrypt_media(data, key)
    assert len(blob) % 32 == 0
    assert blob == oracle_aes(key, oracle_pad32(data), encrypt=True)
    assert decrypt_media(blob, key) == data
    assert decrypt_media(blob, base64.b64encode(key).decode()) == data
    assert oracle_unpad32(oracle_aes(key, blob, encrypt=False)) == data


@given(st.binary(max_size=200))
def test_fuzz_ciphertext_only_specific_errors(raw):
    try:
        result = bot().decrypt(base64.b64encode(raw).decode())
    except DecryptError:
        return
    assert isinstance(result, bytes)


@given(st.text(max_size=200))
def test_fuzz_text_only_specific_errors(text):
    for call in (bot().decrypt, decode_aes_key):
        try:
            call(text)
        except CryptoError:
            pass


def test_crypto_is_sans_io():
    tree = ast.parse(Path(crypto_module.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & {"trio", "trio_websocket", "httpx", "hypercorn", "anyio"}
