"""One WeComCrypto answers many callbacks with one cipher object per key: every message must
still encrypt and decrypt exactly as with a fresh AES-256-CBC cipher (IV = key[:16]), in any
order, with any lengths, and from several threads at once. The oracle is the ``cryptography``
package, a different AES implementation."""

from __future__ import annotations

import base64
import random
import threading

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wecom_actors.crypto import WeComCrypto, pkcs7_pad
from wecom_actors.errors import DecryptError

from .crypto_vectors import AES_KEY, EAK, TOKEN


def fresh_encrypt(padded: bytes) -> bytes:
    enc = Cipher(algorithms.AES(AES_KEY), modes.CBC(AES_KEY[:16])).encryptor()
    return enc.update(padded) + enc.finalize()


def fresh_decrypt(ciphertext: bytes) -> bytes:
    dec = Cipher(algorithms.AES(AES_KEY), modes.CBC(AES_KEY[:16])).decryptor()
    return dec.update(ciphertext) + dec.finalize()


def framed(random16: bytes, msg: bytes) -> bytes:
    return pkcs7_pad(random16 + len(msg).to_bytes(4, "big") + msg)


def test_many_messages_in_a_row_match_a_fresh_cipher_each() -> None:
    rng = random.Random(7)
    crypto = WeComCrypto(TOKEN, EAK)
    for _ in range(300):
        msg = rng.randbytes(rng.choice([0, 1, 11, 12, 15, 16, 31, 32, 33, 300, 2000]))
        prefix = rng.randbytes(16)
        if rng.random() < 0.5:
            out = base64.b64decode(crypto.encrypt(msg, random16=prefix))
            assert out == fresh_encrypt(framed(prefix, msg))
        else:
            ciphertext = fresh_encrypt(framed(prefix, msg))
            assert crypto.decrypt(base64.b64encode(ciphertext).decode()) == msg


@pytest.mark.parametrize("blocks", [1, 2, 3, 17])
def test_decryption_of_arbitrary_blocks_matches(blocks: int) -> None:
    crypto = WeComCrypto(TOKEN, EAK)
    rng = random.Random(blocks)
    for _ in range(20):
        ciphertext = rng.randbytes(16 * blocks)
        assert crypto._cipher.decrypt(ciphertext) == fresh_decrypt(ciphertext)


def test_bad_ciphertext_lengths_are_still_refused() -> None:
    crypto = WeComCrypto(TOKEN, EAK)
    for bad in (b"", b"x" * 15, b"x" * 33):
        with pytest.raises(DecryptError):
            crypto._cipher.decrypt(bad)


def test_threads_sharing_one_instance_get_correct_ciphertexts() -> None:
    crypto = WeComCrypto(TOKEN, EAK)
    failures: list[int] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(200):
            msg, prefix = rng.randbytes(rng.randrange(0, 200)), rng.randbytes(16)
            if base64.b64decode(crypto.encrypt(msg, random16=prefix)) != fresh_encrypt(framed(prefix, msg)):
                failures.append(seed)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
