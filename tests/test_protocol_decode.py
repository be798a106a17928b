"""Tests of the sans-IO protocol core (wecom_actors.protocol): decoding every example of the specs.

Synchronous on purpose (no event loop): bytes or text in, records out. The examples are in
:mod:`tests.protocol_examples`; malformed input is in ``test_protocol_robustness``.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from wecom_actors.protocol import (
    Ack,
    Cmd,
    DisconnectedEvent,
    Envelope,
    EventMessage,
    TemplateCardEvent,
    TextMessage,
    UnknownEvent,
    UnknownMessage,
    ack_of,
    decode_callback,
    decode_frame,
)
from wecom_actors.protocol.frames import CALLBACK_COMMANDS, REPLY_COMMANDS
from wecom_actors.protocol.replies import UploadFinishResult, UploadInitResult

from .protocol_examples import CALLBACKS, parsed
from .protocol_examples_webhook import MSGID, WH_TEXT
from .protocol_examples_ws import WS_FRAMES


def dig(obj: object, path: str) -> object:
    """``dig(x, "a.b.0.c")`` is ``x.a.b[0].c``: attributes, or indices for digits."""
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)  # type: ignore[index]
    return obj


# =================================================================================================
# Frames (stage one): every frame example of the long-connection docs
# =================================================================================================


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
@pytest.mark.parametrize("name", list(WS_FRAMES))
def test_decode_every_spec_frame(name: str, as_bytes: bool) -> None:
    f = WS_FRAMES[name]
    env = decode_frame(f.text.encode() if as_bytes else f.text)
    expected = parsed(f.text)
    assert isinstance(env, Envelope)
    assert env.cmd == f.cmd
    assert env.req_id == env.headers.req_id == f.req_id
    assert env.is_ack is (f.cmd is None)
    assert env.errcode == f.errcode
    assert env.errmsg == f.errmsg
    if "body" in expected:
        assert len(env.body) > 0
        assert msgspec.json.decode(env.body) == expected["body"]
    else:
        assert len(env.body) == 0


@pytest.mark.parametrize("name", [n for n, f in WS_FRAMES.items() if f.cmd is None])
def test_ack_of_every_spec_ack(name: str) -> None:
    f = WS_FRAMES[name]
    ack = ack_of(decode_frame(f.text))
    assert isinstance(ack, Ack)
    assert (ack.req_id, ack.errcode, ack.errmsg) == (f.req_id, f.errcode, f.errmsg)
    assert ack.ok is (f.errcode == 0)
    expected = parsed(f.text)
    if "body" in expected:
        assert msgspec.json.decode(ack.body) == expected["body"]
    else:
        assert len(ack.body) == 0


def test_ack_without_errcode_counts_as_success() -> None:
    ack = ack_of(decode_frame('{"headers":{"req_id":"R"}}'))
    assert (ack.req_id, ack.errcode, ack.errmsg, ack.ok) == ("R", 0, "", True)


@pytest.mark.parametrize(
    ("text", "result_type", "expected"),
    [
        (WS_FRAMES["upload-init-ack"].text, UploadInitResult, UploadInitResult("UPLOADID")),
        (
            WS_FRAMES["upload-finish-ack"].text,
            UploadFinishResult,
            UploadFinishResult(
                media_id="1G6nrLmr5EC3MMb_-zK1dDdzmd0p7cNliYu9V5w7o8K0",
                type="file",
                created_at="1380000000",
            ),
        ),
        (WS_FRAMES["s16-init-ack"].text, UploadInitResult, UploadInitResult("UP1")),
        (
            WS_FRAMES["s16-finish-ack"].text,
            UploadFinishResult,
            UploadFinishResult(media_id="MID", type="image", created_at="1380000000"),
        ),
    ],
    ids=["init", "finish", "s16-init", "s16-finish"],
)
def test_upload_ack_bodies_decode(text: str, result_type: type, expected: object) -> None:
    assert msgspec.json.decode(ack_of(decode_frame(text)).body, type=result_type) == expected


def test_spec_frame_commands_are_all_known() -> None:
    known = {c.value for c in Cmd}
    assert {f.cmd for f in WS_FRAMES.values() if f.cmd} <= known
    assert REPLY_COMMANDS <= known and CALLBACK_COMMANDS <= known
    assert {Cmd.MSG_CALLBACK, Cmd.EVENT_CALLBACK} == CALLBACK_COMMANDS


@pytest.mark.parametrize(
    "cmd",
    ["aibot_get_mcp_config", "aibot_callback", "ww_ai_robot_enter_event", "brand_new_cmd", ""],
)
def test_unknown_cmd_decodes_to_an_envelope_with_that_cmd(cmd: str) -> None:
    text = json.dumps({"cmd": cmd, "headers": {"req_id": "R9"}, "body": {"x": [1, 2]}})
    env = decode_frame(text)
    assert env.cmd == cmd
    assert env.req_id == "R9"
    assert msgspec.json.decode(env.body) == {"x": [1, 2]}
    assert not env.is_ack


def test_unknown_envelope_fields_are_ignored() -> None:
    env = decode_frame(
        '{"cmd":"ping","headers":{"req_id":"R","trace":"t"},"extra":{"a":[1e999999]}}'
    )
    assert (env.cmd, env.req_id) == ("ping", "R")


def test_frame_without_headers_has_empty_req_id() -> None:
    env = decode_frame("{}")
    assert (env.cmd, env.req_id, len(env.body)) == (None, "", 0)


# =================================================================================================
# Callback bodies (stage two): every message and event example of both specs
# =================================================================================================


@pytest.mark.parametrize("kind", ["bytes", "raw"])
@pytest.mark.parametrize("name", list(CALLBACKS))
def test_decode_every_spec_callback(name: str, kind: str) -> None:
    c = CALLBACKS[name]
    data = c.text.encode()
    msg = decode_callback(data if kind == "bytes" else msgspec.Raw(data))
    assert type(msg) is c.cls
    for path, expected in c.checks.items():
        assert dig(msg, path) == expected, path
    if isinstance(msg, EventMessage):
        assert msg.msgtype == "event"
        assert msg.eventtype == parsed(c.text)["event"]["eventtype"]
    else:
        assert msg.msgtype == parsed(c.text)["msgtype"]


@pytest.mark.parametrize("name", [n for n, f in WS_FRAMES.items() if f.cmd in CALLBACK_COMMANDS])
def test_callback_frames_decode_in_two_stages(name: str) -> None:
    env = decode_frame(WS_FRAMES[name].text)
    msg = decode_callback(env.body)
    expected_event = env.cmd == Cmd.EVENT_CALLBACK
    assert isinstance(msg, EventMessage) is expected_event
    assert msg.msgid == parsed(WS_FRAMES[name].text)["body"]["msgid"]


def test_decode_callback_accepts_str() -> None:
    msg = decode_callback(CALLBACKS["ws-text-group"].text)
    assert isinstance(msg, TextMessage)
    assert msg.text.content == "@RobotA hello robot"


def test_msgid_json_escapes_are_unescaped() -> None:
    msg = decode_callback(WH_TEXT.encode())
    assert msg.msgid == MSGID
    assert "\\" not in msg.msgid
    assert decode_frame(r'{"headers":{"req_id":"a\/b"},"cmd":"x\/y"}').req_id == "a/b"


@pytest.mark.parametrize(
    ("chattype", "chatid", "expected"),
    [
        ("group", "CHATID", "CHATID"),
        ("single", None, "USERID"),
        ("single", "CHATID", "USERID"),  # a stray chatid in a single chat is not the conversation
        (None, None, "USERID"),  # enter_chat and other events without chattype
        ("group", None, "USERID"),  # a malformed group callback falls back to the sender
    ],
)
def test_conversation_is_chatid_for_group_userid_for_single(
    chattype: str | None, chatid: str | None, expected: str
) -> None:
    body: dict[str, Any] = {"msgid": "M", "from": {"userid": "USERID"}, "msgtype": "text"}
    if chattype is not None:
        body["chattype"] = chattype
    if chatid is not None:
        body["chatid"] = chatid
    msg = decode_callback(json.dumps(body).encode())
    assert msg.conversation == expected
    assert msg.is_group is (chattype == "group")


# ---- quotes of every msgtype -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("quote", "path", "expected"),
    [
        ({"msgtype": "text", "text": {"content": "q"}}, "text.content", "q"),
        ({"msgtype": "image", "image": {"url": "U"}}, "image.url", "U"),
        (
            {
                "msgtype": "mixed",
                "mixed": {"msg_item": [{"msgtype": "text", "text": {"content": "m"}}]},
            },
            "mixed.msg_item.0.text.content",
            "m",
        ),
        ({"msgtype": "voice", "voice": {"content": "v"}}, "voice.content", "v"),
        ({"msgtype": "file", "file": {"url": "F"}}, "file.url", "F"),
        ({"msgtype": "video", "video": {"url": "V", "aeskey": "K"}}, "video.aeskey", "K"),
    ],
    ids=lambda v: v["msgtype"] if isinstance(v, dict) else None,
)
@pytest.mark.parametrize("outer", ["text", "mixed"])
def test_quote_of_every_msgtype(outer: str, quote: dict, path: str, expected: str) -> None:
    body: dict[str, Any] = {
        "msgid": "M",
        "chattype": "single",
        "from": {"userid": "U"},
        "msgtype": outer,
    }
    body[outer] = {"content": "x"} if outer == "text" else {"msg_item": []}
    body["quote"] = quote
    msg = decode_callback(json.dumps(body).encode())
    assert msg.quote is not None
    assert msg.quote.msgtype == quote["msgtype"]
    assert dig(msg.quote, path) == expected


# ---- template_card_event: nested placement first, flat placement as fallback --------------------


def _card_event(event: dict[str, Any]) -> TemplateCardEvent:
    body = {"msgid": "M", "from": {"userid": "U"}, "msgtype": "event", "event": event}
    msg = decode_callback(json.dumps(body).encode())
    assert isinstance(msg, TemplateCardEvent)
    return msg


def test_card_event_nested_wins_over_flat() -> None:
    msg = _card_event(
        {
            "eventtype": "template_card_event",
            "event_key": "flat_key",
            "task_id": "flat_task",
            "card_type": "text_notice",
            "template_card_event": {
                "event_key": "nested_key",
                "task_id": "nested_task",
                "card_type": "vote_interaction",
            },
        }
    )
    assert (msg.event_key, msg.task_id, msg.card_type) == (
        "nested_key",
        "nested_task",
        "vote_interaction",
    )


def test_card_event_falls_back_field_by_field() -> None:
    msg = _card_event(
        {
            "eventtype": "template_card_event",
            "event_key": "flat_key",
            "selected_items": {"selected_item": [{"question_key": "q"}]},
            "template_card_event": {"task_id": "nested_task"},
        }
    )
    assert (msg.event_key, msg.task_id, msg.card_type) == ("flat_key", "nested_task", None)
    assert msg.selected_items is not None
    assert msg.selected_items.selected_item[0].question_key == "q"


def test_card_event_with_neither_placement_has_none() -> None:
    msg = _card_event({"eventtype": "template_card_event"})
    assert (msg.event_key, msg.task_id, msg.card_type, msg.selected_items) == (
        None,
        None,
        None,
        None,
    )


def test_legacy_event_type_spelling_is_accepted() -> None:
    body = (
        b'{"msgid":"M","aibotid":"B","msgtype":"event","event":{"event_type":"disconnected_event"}}'
    )
    assert isinstance(decode_callback(body), DisconnectedEvent)


# ---- unknown variants -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bytes", "raw"])
@pytest.mark.parametrize("msgtype", ["location", "markdown", "", "TEXT"])
def test_unknown_msgtype_is_kept_with_its_raw_bytes(msgtype: str, kind: str) -> None:
    data = json.dumps(
        {
            "msgid": "M",
            "aibotid": "B",
            "chatid": "G",
            "chattype": "group",
            "from": {"userid": "U"},
            "msgtype": msgtype,
            msgtype or "x": {"lat": 1.5, "nested": [1, {"a": None}]},
        },
        ensure_ascii=False,
    ).encode()
    msg = decode_callback(data if kind == "bytes" else msgspec.Raw(data))
    assert type(msg) is UnknownMessage
    assert msg.msgtype == msgtype
    assert msg.raw == data
    assert (msg.msgid, msg.aibotid, msg.conversation, msg.userid) == ("M", "B", "G", "U")


def test_body_without_msgtype_is_an_unknown_message() -> None:
    msg = decode_callback(b"{}")
    assert type(msg) is UnknownMessage
    assert (msg.msgtype, msg.raw) == ("", b"{}")


@pytest.mark.parametrize("eventtype", ["eventtype_name", "kf_msg_or_event", ""])
def test_unknown_eventtype_is_an_unknown_event(eventtype: str) -> None:
    data = json.dumps(
        {
            "msgid": "M",
            "create_time": 1,
            "aibotid": "B",
            "from": {"userid": "U"},
            "msgtype": "event",
            "event": {"eventtype": eventtype, eventtype or "x": {"k": "v"}},
        }
    ).encode()
    msg = decode_callback(data)
    assert type(msg) is UnknownEvent
    assert isinstance(msg, EventMessage)
    assert msg.eventtype == msg.unknown_eventtype == eventtype
    assert msg.raw == data
    assert (msg.msgid, msg.create_time, msg.userid) == ("M", 1, "U")


def test_event_without_event_object_is_an_unknown_event() -> None:
    msg = decode_callback(b'{"msgid":"M","msgtype":"event"}')
    assert type(msg) is UnknownEvent
    assert msg.eventtype == ""


@pytest.mark.parametrize(
    "text",
    ['{"msgtype":"location"}', '{"msgtype":"event","event":{"eventtype":"zz"}}'],
    ids=["msgtype", "eventtype"],
)
def test_unknown_variant_from_str_body(text: str) -> None:
    msg = decode_callback(text)
    assert isinstance(msg, UnknownMessage | UnknownEvent)
    assert msg.raw == text.encode()
