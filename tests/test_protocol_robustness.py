"""Tests of the sans-IO protocol core (wecom_actors.protocol): malformed and hostile input.

Whatever comes in, the decoders return a result or raise ``FrameError``, and nothing else: named
malformed frames and bodies, numbers and nesting beyond every limit, invalid UTF-8, then property
tests (hypothesis) and pathological sizes. Synchronous on purpose (no event loop).
"""

from __future__ import annotations

import json
import signal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wecom_actors.errors import FrameError
from wecom_actors.protocol import TextMessage, decode_callback, decode_frame

# =================================================================================================
# Malformed input: FrameError and nothing else
# =================================================================================================

BAD_FRAMES = {
    "not-json": b"abc",
    "empty": b"",
    "whitespace": b"  \n ",
    "json-array": b"[]",
    "json-array-of-frame": b'[{"cmd":"ping","headers":{"req_id":"R"}}]',
    "json-string": b'"aibot_msg_callback"',
    "json-number": b"42",
    "json-null": b"null",
    "json-true": b"true",
    "headers-not-object": b'{"cmd":"ping","headers":"R"}',
    "req-id-int": b'{"cmd":"ping","headers":{"req_id":7}}',
    "cmd-int": b'{"cmd":5,"headers":{"req_id":"R"}}',
    "errcode-str": b'{"headers":{"req_id":"R"},"errcode":"0","errmsg":"ok"}',
    "errcode-float": b'{"headers":{"req_id":"R"},"errcode":0.5,"errmsg":"ok"}',
    "errmsg-int": b'{"headers":{"req_id":"R"},"errcode":0,"errmsg":0}',
    "control-char": b'{"cmd":"ping","headers":{"req_id":"R\x01"}}',
    "raw-newline": b'{"cmd":"ping","headers":{"req_id":"R\nS"}}',
    "raw-nul": b'{"cmd":"ping\x00","headers":{"req_id":"R"}}',
    "truncated-1": b'{"cmd":',
    "truncated-2": b'{"cmd":"aibot_msg_callback","headers":{"req_id":"R"},"body":{"msgid":"M"',
    "truncated-3": b'{"cmd":"ping","headers":{"req_id":"R',
    "trailing-garbage": b'{"cmd":"ping"}x',
    "two-objects": b'{"cmd":"ping"}{"cmd":"ping"}',
    "single-quotes": b"{'cmd':'ping'}",
    "nan": b'{"headers":{"req_id":"R"},"errcode":NaN}',
    "huge-float-errcode": b'{"headers":{"req_id":"R"},"errcode":1e400}',
    "huge-exponent-errcode": b'{"headers":{"req_id":"R"},"errcode":1e999999999}',
    "bad-escape": b'{"cmd":"p\\xing"}',
    "bom": "\ufeff{}".encode(),
    "deep-nesting": b"[" * 100_000,  # rejected at the first byte: not an object
}


@pytest.mark.parametrize("as_text", [False, True], ids=["bytes", "str"])
@pytest.mark.parametrize("name", list(BAD_FRAMES))
def test_malformed_frame_raises_frame_error(name: str, as_text: bool) -> None:
    data = BAD_FRAMES[name]
    with pytest.raises(FrameError):
        decode_frame(data.decode() if as_text else data)


_CB = '{"msgid":"M","aibotid":"B","chattype":"single","from":{"userid":"U"},'

BAD_CALLBACKS = {
    "not-json": "abc",
    "empty": "",
    "json-array": "[]",
    "json-string": '"text"',
    "json-number": "1",
    "json-null": "null",
    "msgtype-int": '{"msgtype":1}',
    "text-not-object": _CB + '"msgtype":"text","text":"hi"}',
    "text-int": _CB + '"msgtype":"text","text":5}',
    "content-int": _CB + '"msgtype":"text","text":{"content":5}}',
    "from-string": '{"msgid":"M","from":"U","msgtype":"text","text":{"content":"x"}}',
    "userid-int": '{"msgid":"M","from":{"userid":1},"msgtype":"text","text":{"content":"x"}}',
    "msgid-int": '{"msgid":1,"msgtype":"text","text":{"content":"x"}}',
    "chattype-int": _CB.replace('"single"', "2") + '"msgtype":"text","text":{"content":"x"}}',
    "image-url-list": _CB + '"msgtype":"image","image":{"url":["u"]}}',
    "mixed-items-object": _CB + '"msgtype":"mixed","mixed":{"msg_item":{"msgtype":"text"}}}',
    "mixed-item-without-msgtype": _CB
    + '"msgtype":"mixed","mixed":{"msg_item":[{"text":{"content":"x"}}]}}',
    "quote-string": _CB + '"msgtype":"text","text":{"content":"x"},"quote":"q"}',
    "stream-id-int": _CB + '"msgtype":"stream","stream":{"id":1}}',
    "create-time-str": _CB + '"create_time":"1700000000","msgtype":"text","text":{"content":"x"}}',
    "create-time-float": _CB + '"create_time":1.5,"msgtype":"text","text":{"content":"x"}}',
    "create-time-huge-float": _CB + '"create_time":1e400,"msgtype":"text","text":{"content":"x"}}',
    # AstrBot's webhook branch read ``event`` as a string; the wire has an object
    "event-string": '{"msgid":"M","msgtype":"event","event":"enter_chat"}',
    "eventtype-int": '{"msgid":"M","msgtype":"event","event":{"eventtype":1}}',
    "feedback-reasons-str": '{"msgid":"M","msgtype":"event","event":{"eventtype":"feedback_event","feedback_event":{"id":"F","inaccurate_reason_list":["2"]}}}',
    "feedback-not-object": '{"msgid":"M","msgtype":"event","event":{"eventtype":"feedback_event","feedback_event":[]}}',
    "card-selected-wrong": '{"msgid":"M","msgtype":"event","event":{"eventtype":"template_card_event","template_card_event":{"selected_items":{"selected_item":"x"}}}}',
    "card-flat-key-int": '{"msgid":"M","msgtype":"event","event":{"eventtype":"template_card_event","event_key":3}}',
    "unknown-msgtype-bad-base": '{"msgid":5,"msgtype":"location"}',
    "unknown-event-bad-base": '{"msgid":"M","create_time":"x","msgtype":"event","event":{"eventtype":"zz"}}',
    "control-char": _CB + '"msgtype":"text","text":{"content":"a\x07b"}}',
    "raw-tab": _CB + '"msgtype":"text","text":{"content":"a\tb"}}',
    "truncated": _CB + '"msgtype":"text","text":{"content":"x"',
    "truncated-peek": '{"msgtype":"te',
    "trailing-garbage": _CB + '"msgtype":"text","text":{"content":"x"}}]',
    "deep-nesting": "[" * 100_000,
}


@pytest.mark.parametrize("kind", ["bytes", "raw"])
@pytest.mark.parametrize("name", list(BAD_CALLBACKS))
def test_malformed_callback_raises_frame_error(name: str, kind: str) -> None:
    data = BAD_CALLBACKS[name].encode()
    with pytest.raises(FrameError):
        decode_callback(data if kind == "bytes" else msgspec.Raw(data))


@pytest.mark.parametrize("name", list(BAD_CALLBACKS))
def test_malformed_callback_str_raises_frame_error(name: str) -> None:
    with pytest.raises(FrameError):
        decode_callback(BAD_CALLBACKS[name])


def test_huge_floats_raise_frame_error() -> None:
    """Numbers beyond float range are out of range for every typed field, never inf."""
    with pytest.raises(FrameError):
        decode_frame(b'{"headers":{"req_id":"R"},"errcode":-1e400}')
    with pytest.raises(FrameError):
        decode_callback((_CB + '"create_time":1e400,"msgtype":"text"}').encode())
    with pytest.raises(FrameError):
        decode_callback(
            b'{"msgtype":"event","event":{"eventtype":"feedback_event","feedback_event":{"type":1e400}}}'
        )


def test_huge_numbers_in_unknown_fields_are_skipped() -> None:
    env = decode_frame(
        b'{"cmd":"ping","headers":{"req_id":"R"},"x":1e999999,"y":' + b"9" * 5000 + b"}"
    )
    assert env.cmd == "ping"
    msg = decode_callback((_CB + '"msgtype":"text","z":123456789012345678901234567890}').encode())
    assert isinstance(msg, TextMessage)


@pytest.mark.parametrize(
    ("decoder", "data"),
    [
        (decode_frame, b'{"headers":{"req_id":"R"},"errcode":123456789012345678901234567890}'),
        (
            decode_callback,
            (_CB + '"create_time":123456789012345678901234567890,"msgtype":"text"}').encode(),
        ),
    ],
    ids=["errcode", "create_time"],
)
def test_integers_beyond_int64_raise_frame_error(decoder: Any, data: bytes) -> None:
    with pytest.raises(FrameError):
        decoder(data)


INVALID_UTF8 = {
    "ff-in-value": b'{"msgid":"\xff","msgtype":"text","text":{"content":"x"}}',
    "surrogate-in-value": b'{"msgid":"M","msgtype":"text","text":{"content":"\xed\xa0\x80"}}',
    "truncated-seq-in-key": b'{"msgtype":"text","text":{"content":"\xe4\xbd"}}',
    "overlong": b'{"msgtype":"text","text":{"content":"\xc0\xaf"}}',
}


@pytest.mark.parametrize("name", list(INVALID_UTF8))
def test_invalid_utf8_in_callback_raises_frame_error(name: str) -> None:
    with pytest.raises(FrameError):
        decode_callback(INVALID_UTF8[name])


def test_invalid_utf8_in_frame_raises_frame_error() -> None:
    with pytest.raises(FrameError):
        decode_frame(b'{"cmd":"ping","headers":{"req_id":"\xff"}}')


@pytest.mark.parametrize("decoder", [decode_frame, decode_callback], ids=["frame", "callback"])
def test_lone_surrogate_str_raises_frame_error(decoder: Any) -> None:
    with pytest.raises(FrameError):
        decoder('{"msgid":"\ud800","msgtype":"text"}')


DEEP = 5_000
DEEP_INPUTS = {
    "unknown-field": b'{"x":' + b"[" * DEEP + b"]" * DEEP + b"}",
    "body": b'{"body":' + b"[" * DEEP + b"]" * DEEP + b"}",
    "objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "truncated": b'{"x":' + b"[" * DEEP,
}


@pytest.mark.parametrize("decoder", [decode_frame, decode_callback], ids=["frame", "callback"])
@pytest.mark.parametrize("name", list(DEEP_INPUTS))
def test_deep_nesting_raises_frame_error(name: str, decoder: Any) -> None:
    with pytest.raises(FrameError):
        decoder(DEEP_INPUTS[name])


# ---- property tests: whatever comes in, only FrameError or a result ------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
# Objects whose keys are the protocol's own, so values of the wrong type reach the typed decoders.
_KEYS = [
    "cmd",
    "headers",
    "req_id",
    "body",
    "errcode",
    "errmsg",
    "msgid",
    "aibotid",
    "chatid",
    "chattype",
    "from",
    "userid",
    "corpid",
    "create_time",
    "response_url",
    "msgtype",
    "text",
    "content",
    "image",
    "url",
    "aeskey",
    "mixed",
    "msg_item",
    "voice",
    "file",
    "video",
    "stream",
    "id",
    "quote",
    "event",
    "eventtype",
    "event_type",
    "template_card_event",
    "event_key",
    "task_id",
    "card_type",
    "selected_items",
    "selected_item",
    "option_ids",
    "option_id",
    "feedback_event",
    "type",
    "inaccurate_reason_list",
]
_MSGTYPES = ["text", "image", "mixed", "voice", "file", "video", "stream", "event", "other"]
_EVENTTYPES = ["enter_chat", "template_card_event", "feedback_event", "disconnected_event", "x"]
protocolish = st.recursive(
    _json_scalars | st.sampled_from(_MSGTYPES + _EVENTTYPES),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(_KEYS), children, max_size=6)
    ),
    max_leaves=25,
)


@st.composite
def callback_like(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(st.dictionaries(st.sampled_from(_KEYS), protocolish, max_size=6))
    body["msgtype"] = draw(st.sampled_from(_MSGTYPES))
    if body["msgtype"] == "event" and draw(st.booleans()):
        event = draw(st.dictionaries(st.sampled_from(_KEYS), protocolish, max_size=4))
        event["eventtype"] = draw(st.sampled_from(_EVENTTYPES))
        body["event"] = event
    return body


def _only_frame_error(fn: Any, data: object) -> None:
    try:
        fn(data)
    except FrameError:
        pass


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_JSON = settings(FUZZ, max_examples=150)  # generating nested JSON is the slow part


@FUZZ
@given(st.binary(max_size=200))
def test_decode_frame_arbitrary_bytes(data: bytes) -> None:
    _only_frame_error(decode_frame, data)


@FUZZ
@given(st.text(max_size=200))
def test_decode_frame_arbitrary_text(data: str) -> None:
    _only_frame_error(decode_frame, data)


@FUZZ
@given(st.binary(max_size=200))
def test_decode_callback_arbitrary_bytes(data: bytes) -> None:
    _only_frame_error(decode_callback, data)
    _only_frame_error(decode_callback, msgspec.Raw(data))


@FUZZ_JSON
@given(json_values | protocolish)
def test_decode_frame_arbitrary_json(value: object) -> None:
    data = json.dumps(value)
    _only_frame_error(decode_frame, data)
    _only_frame_error(decode_frame, data.encode())


@FUZZ_JSON
@given(json_values | protocolish | callback_like())
def test_decode_callback_arbitrary_json(value: object) -> None:
    _only_frame_error(decode_callback, json.dumps(value).encode())


@FUZZ_JSON
@given(
    st.dictionaries(st.sampled_from(["cmd", "headers", "body", "errcode", "errmsg"]), protocolish)
)
def test_decoded_frame_body_feeds_decode_callback(value: dict[str, Any]) -> None:
    try:
        env = decode_frame(json.dumps(value).encode())
    except FrameError:
        return
    if len(env.body):
        _only_frame_error(decode_callback, env.body)


@settings(FUZZ, report_multiple_bugs=False)
@given(callback_like())
def test_decode_callback_arbitrary_json_as_str(value: dict[str, Any]) -> None:
    _only_frame_error(decode_callback, json.dumps(value))


@settings(FUZZ, report_multiple_bugs=False)
@given(st.binary(min_size=1, max_size=8).filter(lambda b: b'"' not in b and b"\\" not in b))
def test_decode_callback_arbitrary_bytes_in_strings(chunk: bytes) -> None:
    _only_frame_error(decode_callback, b'{"msgtype":"text","text":{"content":"' + chunk + b'"}}')


class _Timeout(Exception):
    pass


def test_decoders_never_hang_on_pathological_input() -> None:
    """Big, deep and repetitive inputs finish quickly (guarded by a 5-second alarm)."""

    def on_alarm(signum: int, frame: object) -> None:
        raise _Timeout

    inputs = [
        b"[" * 1_000_000,
        b'"' + b"\\u0000" * 200_000 + b'"',
        b'{"msgtype":"text","text":{"content":"' + "字".encode() * 1_000_000 + b'"}}',
        b"1" * 1_000_000,
        b" " * 1_000_000,
    ]
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 5.0)
    try:
        for data in inputs:
            _only_frame_error(decode_frame, data)
            _only_frame_error(decode_callback, data)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
