"""Codec benchmark: the hot per-frame work of the sans-IO core, in operations per second.

    python benchmarks/bench_codec.py [--seconds S] [--repeats N] [--json PATH]

Rows:
  * decode a long-connection callback frame (envelope + text-message body), msgspec (our
    two-stage decoders) against the stdlib ``json`` module doing the same dict-based work;
  * encode a stream reply frame (request envelope + StreamReply), msgspec against stdlib;
  * decrypt + verify a webhook callback (signature check, base64, AES-256-CBC, unpad, framing)
    of a ~300-byte JSON message, like AI-bot crypto vector B (tests/crypto_vectors.py);
  * encrypt + sign a passive reply (``WeComCrypto.encrypt_reply``).

The ratio column is ops/s of msgspec divided by ops/s of the stdlib for the same operation. Every
pair is checked to produce the same result before it is timed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import _common
from _common import Row

from wecom_actors.crypto import WeComCrypto
from wecom_actors.protocol import (
    Cmd,
    StreamBody,
    StreamReply,
    TextMessage,
    decode_callback,
    decode_frame,
    encode_body,
    encode_request,
)

DEFAULT_JSON = _common.RESULTS_DIR / "codec.json"
DEFAULT_SECONDS = 2.0  # per row; six rows => about 14 s with warm-up and calibration

# --- inputs ---------------------------------------------------------------------------------------

REQ_ID = "aibot_msg_callback_1700000000123_9f8e7d6c"
CALLBACK_BODY = {
    "msgid": "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=",
    "create_time": 1700000000,
    "aibotid": "aib9Xk2Lm7Qp4Rt8Vw1Yz3Bc5Df",
    "chatid": "wrkSFfCgAAm6cFq3DyBz2ZoJ8Kx1Nq4A",
    "chattype": "group",
    "from": {"userid": "zhangsan"},
    "msgtype": "text",
    "text": {"content": "@RobotA 请帮我查一下明天广州的天气，顺便提醒我下午三点开会"},
}
# trio-websocket hands text messages over as str
CALLBACK_FRAME = json.dumps(
    {"cmd": "aibot_msg_callback", "headers": {"req_id": REQ_ID}, "body": CALLBACK_BODY},
    ensure_ascii=False,
    separators=(",", ":"),
)

STREAM_ID = "stream_7f3a9c2e41b8"
STREAM_CONTENT = (
    "**广州明日天气**：多云转小雨，22–27°C，降雨概率 60%，东南风 2 级。\n\n"
    "- 出门记得带伞\n- 下午 15:00 的会议已加入提醒\n\n"
    "> 数据来源：中国气象局，更新于 08:00。如需逐小时预报，请回复“逐小时”。"
)

TOKEN = "QDG6eK"
ENCODING_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"  # the key of the AI-bot crypto vectors
TIMESTAMP = "1700000000"
NONCE = "1234567890"
WEBHOOK_PLAINTEXT = json.dumps(
    {
        "msgid": "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=",
        "aibotid": "AIBOTID",
        "chatid": "CHATID",
        "chattype": "group",
        "from": {"userid": "USERID"},
        "response_url": "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RC",
        "msgtype": "text",
        "text": {"content": "@RobotA hello robot, 明天广州天气如何？"},
    },
    ensure_ascii=False,
    separators=(",", ":"),
).encode()

# --- the operations -------------------------------------------------------------------------------


def decode_msgspec(frame: str = CALLBACK_FRAME) -> tuple[str, str, str, str]:
    env = decode_frame(frame)
    msg = decode_callback(env.body)
    if not isinstance(msg, TextMessage):
        raise AssertionError(type(msg))
    return env.req_id, msg.msgid, msg.conversation, msg.text.content


def decode_stdlib(frame: str = CALLBACK_FRAME) -> tuple[str, str, str, str]:
    env = json.loads(frame)
    if not isinstance(env, dict) or env.get("cmd") != "aibot_msg_callback":
        raise AssertionError(env)
    body = env["body"]
    if body.get("msgtype") != "text":
        raise AssertionError(body)
    conversation = (
        body["chatid"]
        if body.get("chattype") == "group" and body.get("chatid")
        else body["from"]["userid"]
    )
    return env["headers"]["req_id"], body["msgid"], conversation, body["text"]["content"]


def encode_msgspec(content: str = STREAM_CONTENT) -> bytes:
    reply = StreamReply(stream=StreamBody(id=STREAM_ID, finish=False, content=content))
    return encode_request(Cmd.RESPOND_MSG, REQ_ID, reply)


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_stdlib(content: str = STREAM_CONTENT) -> bytes:
    frame = {
        "cmd": "aibot_respond_msg",
        "headers": {"req_id": REQ_ID},
        "body": {
            "msgtype": "stream",
            "stream": {"id": STREAM_ID, "finish": False, "content": content},
        },
    }
    return _dumps(frame).encode("utf-8")


def crypto_ops() -> tuple[WeComCrypto, str, str]:
    crypto = WeComCrypto(TOKEN, ENCODING_AES_KEY)
    encrypt = crypto.encrypt(WEBHOOK_PLAINTEXT, random16=b"0123456789abcdef")
    signature = crypto.signature(TIMESTAMP, NONCE, encrypt)
    return crypto, encrypt, signature


def check_equivalence(crypto: WeComCrypto, encrypt: str, signature: str, reply: bytes) -> None:
    """Each timed pair must do the same work; fail loudly before timing if it does not."""
    if decode_msgspec() != decode_stdlib():
        raise AssertionError("decode variants disagree")
    if json.loads(encode_msgspec()) != json.loads(encode_stdlib()):
        raise AssertionError("encode variants disagree")
    if crypto.decrypt_callback(signature, TIMESTAMP, NONCE, encrypt) != WEBHOOK_PLAINTEXT:
        raise AssertionError("decrypt_callback does not return the plaintext")
    envelope = json.loads(crypto.encrypt_reply(reply, nonce=NONCE, timestamp=TIMESTAMP))
    if (
        crypto.decrypt_callback(
            envelope["msgsignature"], envelope["timestamp"], envelope["nonce"], envelope["encrypt"]
        )
        != reply
    ):
        raise AssertionError("encrypt_reply does not round-trip")


def main(argv: list[str] | None = None) -> int:
    parser = _common.argument_parser(__doc__.splitlines()[0], DEFAULT_JSON, DEFAULT_SECONDS)
    args = parser.parse_args(argv)
    crypto, encrypt, signature = crypto_ops()
    reply = encode_body(
        StreamReply(stream=StreamBody(id=STREAM_ID, finish=False, content=STREAM_CONTENT))
    )
    check_equivalence(crypto, encrypt, signature, reply)

    def timed(*fns: Callable[[], object]) -> list[_common.Timing]:
        return _common.measure_all(fns, seconds=args.seconds, repeats=args.repeats)

    rows: list[Row] = []
    frame_bytes = len(CALLBACK_FRAME.encode())
    for operation, fast, slow, size in [
        ("decode callback frame", decode_msgspec, decode_stdlib, frame_bytes),
        ("encode stream reply frame", encode_msgspec, encode_stdlib, len(encode_msgspec())),
    ]:
        t_fast, t_slow = timed(fast, slow)  # interleaved, so the ratio survives load changes
        ratio = t_fast.ops_per_s / t_slow.ops_per_s
        rows.append(Row(operation, "msgspec", t_fast, ratio, {"frame_bytes": size}))
        rows.append(Row(operation, "stdlib json", t_slow, 1.0, {"frame_bytes": size}))
    rows.append(
        Row(
            "decrypt + verify webhook callback",
            "pycryptodome + hashlib",
            timed(lambda: crypto.decrypt_callback(signature, TIMESTAMP, NONCE, encrypt))[0],
            extra={"plaintext_bytes": len(WEBHOOK_PLAINTEXT), "encrypt_chars": len(encrypt)},
        )
    )
    rows.append(
        Row(
            "encrypt + sign reply",
            "pycryptodome + hashlib",
            timed(lambda: crypto.encrypt_reply(reply, nonce=NONCE, timestamp=TIMESTAMP))[0],
            extra={"plaintext_bytes": len(reply)},
        )
    )

    print(_common.rows_table(rows))
    machine = _common.machine_info()
    print(
        f"\n{machine['python']} on {machine['platform']}, {machine['cpu_count']} CPUs; median of {args.repeats} repeats"
    )
    path = _common.write_results(
        args.json,
        benchmark="codec",
        settings={"seconds_per_row": args.seconds, "repeats": args.repeats},
        rows=rows,
        packages={
            **_common.package_versions("wecom-actors", "msgspec", "pycryptodome"),
            "json (stdlib)": json.__version__,
            "json C accelerator": json.decoder.c_scanstring is not None,
        },
    )
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
