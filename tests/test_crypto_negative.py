"""Tests of wecom_actors.crypto: negative decrypts and no secrets in errors or reprs.

Tampered, forged and undecryptable inputs must fail with exactly the documented error class.
"""

from __future__ import annotations

import base64

import pytest

from wecom_actors.crypto import WeComCrypto, decode_aes_key, decrypt_media, pkcs7_pad
from wecom_actors.errors import (
    CryptoError,
    DecryptError,
    LengthError,
    PaddingError,
    ReceiveIdError,
    SignatureError,
)

from .crypto_oracle import bot, flip_bit, flip_hex_digit, raises_exactly, raw_encrypt_b64
from .crypto_vectors import (
    A_ENC,
    A_SIG,
    AES_KEY,
    AIBOT_IDS,
    AIBOT_VECTORS,
    EAK,
    MEDIA_CIPHER,
    NONCE,
    OTHER_KEY,
    R16,
    TOKEN,
    TS,
    V1_ECHOSTR,
)

# --- negative decrypts ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, plain, encrypt, sig", AIBOT_VECTORS, ids=AIBOT_IDS)
def test_tampered_ciphertext(name, plain, encrypt, sig):
    c = bot()
    # Byte 0 of block 0 flips byte 16 of the plaintext: the top byte of the length prefix.
    with raises_exactly(LengthError):
        c.decrypt(flip_bit(encrypt, 0))
    # The last byte of the penultimate block flips the last plaintext byte: the pad length.
    with raises_exactly(PaddingError):
        c.decrypt(flip_bit(encrypt, -17))
    # Any flip breaks the signature first.
    with raises_exactly(SignatureError):
        c.decrypt_callback(sig, TS, NONCE, flip_bit(encrypt, 20))


@pytest.mark.parametrize("name, plain, encrypt, sig", AIBOT_VECTORS, ids=AIBOT_IDS)
def test_wrong_key(name, plain, encrypt, sig):
    other = WeComCrypto(TOKEN, base64.b64encode(OTHER_KEY).decode())
    with raises_exactly(PaddingError):
        other.decrypt(encrypt)


def _framed(msg: bytes, *, length: int | None = None, trailer: bytes = b"") -> bytes:
    n = len(msg) if length is None else length
    return R16 + n.to_bytes(4, "big") + msg + trailer


FORGED = {
    "pad0": (_framed(b"hello") + b"\x00" * 7, PaddingError),
    "pad33": (_framed(b"h" * 44) + b"\x21" * 32, PaddingError),
    "unequal-pad": (_framed(b"hello") + b"\x07" * 5 + b"\x06\x07", PaddingError),
    "pad-beyond-buffer": (b"\x20" * 16, PaddingError),
    "length-one-beyond": (pkcs7_pad(_framed(b"hello", length=6)), LengthError),
    "length-max": (pkcs7_pad(_framed(b"hello", length=0xFFFFFFFF)), LengthError),
    "shorter-than-header": (pkcs7_pad(R16 + b"\x00\x00"), LengthError),
    "only-random": (pkcs7_pad(R16), LengthError),
    "length-one-short": (pkcs7_pad(_framed(b"hello", length=4)), ReceiveIdError),
    "trailer": (pkcs7_pad(_framed(b"hello", trailer=b"corp")), ReceiveIdError),
}


@pytest.mark.parametrize("plain, exc", FORGED.values(), ids=FORGED.keys())
def test_forged_plaintexts(plain, exc):
    assert len(plain) % 16 == 0
    with raises_exactly(exc):
        bot().decrypt(raw_encrypt_b64(plain))


def test_forged_control_decrypts():
    assert bot().decrypt(raw_encrypt_b64(pkcs7_pad(_framed(b"hello")))) == b"hello"
    assert bot("corp").decrypt(raw_encrypt_b64(pkcs7_pad(_framed(b"hi", trailer=b"corp")))) == b"hi"


NOT_DECRYPTABLE = {
    "empty": "",
    "not-base64": "not base64 at all!",
    "bad-base64-length": A_ENC[:-3],
    "inner-space": A_ENC[:10] + " " + A_ENC[10:],
    "urlsafe-alphabet": A_ENC.replace("+", "-").replace("/", "_"),
    "non-ascii": "密文",
    "newline": A_ENC[:20] + "\n" + A_ENC[20:],
    "15-bytes": base64.b64encode(b"x" * 15).decode(),
    "17-bytes": base64.b64encode(b"x" * 17).decode(),
    "31-bytes": base64.b64encode(b"x" * 31).decode(),
    "padding-only": "====",
}


@pytest.mark.parametrize("encrypt", NOT_DECRYPTABLE.values(), ids=NOT_DECRYPTABLE.keys())
def test_not_decryptable(encrypt):
    with raises_exactly(DecryptError):
        bot().decrypt(encrypt)


# --- no secrets in messages ----------------------------------------------------------------------

SECRET_TOKEN = "TokenThatMustNeverLeak42"


def _all_failures() -> list[BaseException]:
    c = WeComCrypto(SECRET_TOKEN, EAK)
    calls = [
        lambda: c.verify_signature("0" * 40, TS, NONCE, A_ENC),
        lambda: c.decrypt_callback(flip_hex_digit(A_SIG), TS, NONCE, A_ENC),
        lambda: c.decrypt(V1_ECHOSTR),
        lambda: c.decrypt(flip_bit(A_ENC, 0)),
        lambda: c.decrypt(flip_bit(A_ENC, -17)),
        lambda: c.decrypt("junk!"),
        lambda: c.decrypt(""),
        lambda: c.decrypt(base64.b64encode(b"x" * 17).decode()),
        lambda: c.encrypt(b"", random16=b"short"),
        lambda: decrypt_media(b"x" * 17, EAK),
        lambda: decrypt_media(MEDIA_CIPHER, OTHER_KEY),
        lambda: decrypt_media(MEDIA_CIPHER, EAK[:42]),
        lambda: decode_aes_key(EAK[:42]),
        lambda: decode_aes_key(EAK + "A"),
        lambda: decode_aes_key(EAK[:20] + "*" + EAK[21:]),
        lambda: decode_aes_key(EAK[:41]),
        lambda: WeComCrypto(SECRET_TOKEN, EAK[:42]),
    ]
    errors = []
    for call in calls:
        with pytest.raises(CryptoError) as info:
            call()
        errors.append(info.value)
    return errors


def test_no_secret_in_errors_or_repr():
    secrets = [
        SECRET_TOKEN,
        EAK,
        EAK[:20],
        EAK[:42],
        EAK[20:],
        AES_KEY.hex(),
        AES_KEY[:16].hex(),
        repr(AES_KEY),
        base64.b64encode(OTHER_KEY).decode()[:20],
    ]
    c = WeComCrypto(SECRET_TOKEN, EAK)
    texts = [repr(c), str(c)]
    for exc in _all_failures():
        texts += [str(exc), repr(exc), *(str(a) for a in exc.args)]
        cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        if cause is not None:
            texts += [str(cause), repr(cause)]
    for text in texts:
        for secret in secrets:
            assert secret not in text, (secret, text)
    assert repr(c) == "WeComCrypto(receive_id='')"
