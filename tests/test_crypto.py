"""Tests of wecom_actors.crypto: spec vectors, an independent oracle, round trips, negatives.

Synchronous on purpose: the crypto core is sans-IO. Vectors are webhook-protocol.md §9.1-§9.3.
The oracle below uses the ``cryptography`` package (a different AES implementation from the
pycryptodome one under test) with hand-written framing and padding.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from wecom_actors import crypto as crypto_module
from wecom_actors.crypto import (
    WeComCrypto,
    decode_aes_key,
    decrypt_media,
    encrypt_media,
    pkcs7_pad,
    pkcs7_unpad,
)
from wecom_actors.errors import (
    CryptoError,
    DecryptError,
    InvalidKeyError,
    LengthError,
    PaddingError,
    ReceiveIdError,
    SignatureError,
)

# --- constants (spec §9) -------------------------------------------------------------------------

TOKEN = "QDG6eK"
EAK = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
AES_KEY = bytes.fromhex("8d69989bbaabe67328014c194631ad0719b3dca035b64023df292447aab60760")
R16 = b"0123456789abcdef"
TS = 1700000000
NONCE = "1234567890"

V1_RECEIVE_ID = "wx5823bf96d3bd56c7"
V1_SIG = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
V1_TS = "1409659589"
V1_NONCE = "263014780"
V1_ECHOSTR = (
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
)
V1_PLAIN = b"1616140317555161061"

V2_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
V2_EAK = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
V2_RECEIVE_ID = "ww1436e0e65a779aee"
V2_VERIFY = (
    "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    "1476416373",
    "47744683",
    "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
    b"1288432023552776189",
)
V2_POST = (
    "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
    "1476422779",
    "1597212914",
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+",
    "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>".encode(),
)

# §9.2: (name, plaintext, encrypt, msg_signature) with TOKEN/EAK, receiveid "", R16, TS, NONCE.
AIBOT_VECTORS = [
    (
        "A",
        b"1616140317555161061",
        "sKqRbbiSUnDhFHOvPjtUMWzf2R8PrpMiTTPaicBgqZm9eFleDkaZY7LObMBXhUqCcxijQlSKcvc+WpPyowukzA==",
        "7c35e2e353fbb426a5b6263c3ae4d3fb20e7be6c",
    ),
    (
        "B",
        b'{"msgid":"CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=","aibotid":"AIBOTID","chatid":"CHATID","chattype":"group","from":{"userid":"USERID"},"response_url":"RESPONSEURL","msgtype":"text","text":{"content":"@RobotA hello robot"}}',
        "sKqRbbiSUnDhFHOvPjtUMcw0RmRNkLSpAwtrwZiMb9vVnpG3UVwnmBvcI4Hn9HXYXR+P8ZHkMy5J/emUWEvGEoYyLQ1sHR5gbyfkDv1sPJuwYvXryOyuAT2s0y64qmWqSCi+rxqA2c4Jpx9vFsl8xkSwf0JfF0huG2Z6s1AGgFS8S06CLbMIthQ4sKTzaoMOFv4p779b0bgcQh8N8z6Duig8JKjMdbiK06I3TKmPyBsUZOWKQVwVvY5jtDTkLGjve14QqajYP/JdK5l4W/YNtOoMkO1Kc1JL49K8AhBshNK7x2heD1BX/UO0FVbQDYVpjYlo1sJhKmtMpHlzEns7qA==",
        "30f8cfa8911fc0d7090cb5af1d12a0e6f3577cc6",
    ),
    (
        "C",
        b'{"msgid":"CAIQz7/MjQYY/NGagIOAgAMgl8jK/gI=","aibotid":"AIBOTID","chatid":"CHATID","chattype":"group","from":{"userid":"USERID"},"msgtype":"stream","stream":{"id":"STREAMID"}}',
        "sKqRbbiSUnDhFHOvPjtUMSh+kOCSLkuwtnqQ5QnLf7pzJ3ojMkZRY61G4vjapi0fb4ieidAM36URdrM7s9crW47AQ9rUQAirpM9pY/X4OehcWN1IBxm709qq7S2HkDMb4baGB6e8zswxQGW+GwF9hudtot77s50Md0+cEB7IxhUp0fFvaKRpc8Jnk1ji/xaC/HOG75upPKgeX91oql0auRee0AyHpKBpJlgjlkkB9ZxVxQm5ey0H6uQNfhVPEFt2TAKefVzrjF5PRdp1S3Z4ZK4Xd5hfNQyZvsmFt2mjIJ4=",
        "94370a9e6efae8fff7986441a04c64d8a7d6f546",
    ),
    (
        "D",
        b'{"msgid":"CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=","create_time":1700000000,"aibotid":"AIBOTID","from":{"userid":"USERID"},"msgtype":"event","event":{"eventtype":"enter_chat"}}',
        "sKqRbbiSUnDhFHOvPjtUMSBZzmaSmnBlqguEWmcg6dwk2ddheek9XikL1nBvxAhtYY1AZWpXTM3VS0fIKFXHs5pxdnGJpLHF60Np1G1iHkkadkfGgi54qyPChDfXXk0brSIi836vg/HQImJpfOg2zLQ/1204CO+bnnEMP7kvNme1U9gFyyjsU6GhWPb9lkxmjLQ/xtwjVrfkcKTSBDjGYGPSpmleH8fmEnMlw0nXM9udXuSMRbwv8Bk84Yj5caUZ",
        "0875bf87391367febe7e121b256318819a77f231",
    ),
    (
        "E",
        '{"msgtype":"stream","stream":{"id":"STREAMID","finish":false,"content":"你好"}}'.encode(),
        "sKqRbbiSUnDhFHOvPjtUMaxPyklzv/3o68QXhB5rETs8nFUnIAFrId1kn7q8enQJaDWvllx1M7caxYLQFpUCJIlcHyJARh4Rsw5sMj5qoflM94YPdhjs9riLc8tbyht6BSz+XTAonBPhig2lYvUD28x8lY6keEpHo1WiOgw6t08=",
        "28e3673ff7b001fad8093cf8ac5af4f9417007af",
    ),
]
AIBOT_IDS = [v[0] for v in AIBOT_VECTORS]

MEDIA_PLAIN = bytes.fromhex("89504e470d0a1a0a000102030405060708090a0b0c0d0e0f1011121314151617")
MEDIA_CIPHER = base64.b64decode(
    "3hKHD3g0zfH7oBK+G7p5kGpyOt1jJ/3kU4kqegn2GJJZl5bq1LapohI/0l+9eWDYR9mjoIajogCDj0wwKnEZdQ=="
)

OTHER_KEY = bytes(range(32))


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
        EAK[:-1] + "A",  # canonical trailing bits, same 32 bytes (spec §3.1 pitfall)
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


BAD_PADDING = {
    "empty": b"",
    "pad0": b"a" * 31 + b"\x00",
    "pad33": b"a" * 31 + b"\x21" * 33,
    "unequal": b"a" * 27 + b"\x05\x05\x04\x05\x05",
    "pad-beyond-length": b"\x05" * 4,
    "pad255": b"\xff" * 64,
}


@pytest.mark.parametrize("data", BAD_PADDING.values(), ids=BAD_PADDING.keys())
def test_pkcs7_unpad_strict(data):
    with raises_exactly(PaddingError):
        pkcs7_unpad(data)


def test_pkcs7_unpad_accepts_16_aligned():
    # Field note (ws-protocol.md §6): some blobs are padded to 16; a strict pad check still works.
    assert pkcs7_unpad(b"x" * 12 + b"\x04" * 4) == b"x" * 12


# --- signatures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, plain, encrypt, sig", AIBOT_VECTORS, ids=AIBOT_IDS)
def test_aibot_signature(name, plain, encrypt, sig):
    c = bot()
    assert c.signature(TS, NONCE, encrypt) == sig
    assert c.signature(str(TS), NONCE, encrypt) == sig
    assert oracle_signature(TOKEN, str(TS), NONCE, encrypt) == sig
    c.verify_signature(sig, TS, NONCE, encrypt)
    c.verify_signature(sig, str(TS), NONCE, encrypt)


def _flip_hex_digit(sig: str, i: int = 7) -> str:
    return sig[:i] + ("0" if sig[i] != "0" else "1") + sig[i + 1 :]


_, _, _A_ENC, _A_SIG = AIBOT_VECTORS[0]
WRONG_SIGNATURES = {
    "one-digit-flipped": _flip_hex_digit(_A_SIG),
    "last-digit-flipped": _flip_hex_digit(_A_SIG, 39),
    "upper-case": _A_SIG.upper(),
    "empty": "",
    "truncated": _A_SIG[:-1],
    "extended": _A_SIG + "0",
    "non-ascii": "密" * 40,
}


@pytest.mark.parametrize("sig", WRONG_SIGNATURES.values(), ids=WRONG_SIGNATURES.keys())
def test_wrong_signature(sig):
    c = bot()
    with raises_exactly(SignatureError):
        c.verify_signature(sig, TS, NONCE, _A_ENC)
    with raises_exactly(SignatureError):
        c.decrypt_callback(sig, TS, NONCE, _A_ENC)


@pytest.mark.parametrize(
    "ts, nonce, token",
    [(TS + 1, NONCE, TOKEN), (TS, NONCE + "1", TOKEN), (TS, NONCE, TOKEN + "x")],
    ids=["timestamp", "nonce", "token"],
)
def test_signature_binds_every_input(ts, nonce, token):
    with raises_exactly(SignatureError):
        WeComCrypto(token, EAK).verify_signature(_A_SIG, ts, nonce, _A_ENC)


# --- official Tencent vectors (§9.1) --------------------------------------------------------------


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


# --- AI-bot vectors (§9.2) -----------------------------------------------------------------------


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


# --- media (§9.3) --------------------------------------------------------------------------------


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


# --- negative decrypts ---------------------------------------------------------------------------


def _flip(encrypt: str, index: int) -> str:
    raw = bytearray(base64.b64decode(encrypt))
    raw[index] ^= 0x01
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("name, plain, encrypt, sig", AIBOT_VECTORS, ids=AIBOT_IDS)
def test_tampered_ciphertext(name, plain, encrypt, sig):
    c = bot()
    # Byte 0 of block 0 flips byte 16 of the plaintext: the top byte of the length prefix.
    with raises_exactly(LengthError):
        c.decrypt(_flip(encrypt, 0))
    # The last byte of the penultimate block flips the last plaintext byte: the pad length.
    with raises_exactly(PaddingError):
        c.decrypt(_flip(encrypt, -17))
    # Any flip breaks the signature first.
    with raises_exactly(SignatureError):
        c.decrypt_callback(sig, TS, NONCE, _flip(encrypt, 20))


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
    "bad-base64-length": _A_ENC[:-3],
    "inner-space": _A_ENC[:10] + " " + _A_ENC[10:],
    "urlsafe-alphabet": _A_ENC.replace("+", "-").replace("/", "_"),
    "non-ascii": "密文",
    "newline": _A_ENC[:20] + "\n" + _A_ENC[20:],
    "15-bytes": base64.b64encode(b"x" * 15).decode(),
    "17-bytes": base64.b64encode(b"x" * 17).decode(),
    "31-bytes": base64.b64encode(b"x" * 31).decode(),
    "padding-only": "====",
}


@pytest.mark.parametrize("encrypt", NOT_DECRYPTABLE.values(), ids=NOT_DECRYPTABLE.keys())
def test_not_decryptable(encrypt):
    with raises_exactly(DecryptError):
        bot().decrypt(encrypt)


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


# --- no secrets in messages ----------------------------------------------------------------------

SECRET_TOKEN = "TokenThatMustNeverLeak42"


def _all_failures() -> list[BaseException]:
    c = WeComCrypto(SECRET_TOKEN, EAK)
    calls = [
        lambda: c.verify_signature("0" * 40, TS, NONCE, _A_ENC),
        lambda: c.decrypt_callback(_flip_hex_digit(_A_SIG), TS, NONCE, _A_ENC),
        lambda: c.decrypt(V1_ECHOSTR),
        lambda: c.decrypt(_flip(_A_ENC, 0)),
        lambda: c.decrypt(_flip(_A_ENC, -17)),
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


def test_crypto_is_sans_io():
    tree = ast.parse(Path(crypto_module.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & {"trio", "trio_websocket", "httpx", "hypercorn", "anyio"}
