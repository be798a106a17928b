"""Crypto test vectors and hand-made malformed inputs.

The vectors (Tencent's XML-era samples, AI-bot JSON vectors, a media vector) are described in
docs/protocol-notes.md, 'Crypto test vectors'.

Shared by the test_crypto_* modules.
"""

from __future__ import annotations

import base64

# --- constants -----------------------------------------------------------------------------------

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

# AI-bot vectors: (name, plaintext, encrypt, msg_signature) with TOKEN/EAK, receiveid "", R16, TS, NONCE.
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

# The first AI-bot vector, the base of many negative cases.
_, _, A_ENC, A_SIG = AIBOT_VECTORS[0]

# Malformed PKCS#7 paddings (block 32).
BAD_PADDING = {
    "empty": b"",
    "pad0": b"a" * 31 + b"\x00",
    "pad33": b"a" * 31 + b"\x21" * 33,
    "unequal": b"a" * 27 + b"\x05\x05\x04\x05\x05",
    "pad-beyond-length": b"\x05" * 4,
    "pad255": b"\xff" * 64,
}
