"""Tests of the sans-IO protocol core (wecom_actors.protocol): decoding and encoding.

Synchronous on purpose (no event loop): bytes in, records out, records in, bytes out.

The test data are the JSON examples of ``shared/spec/ws-protocol.md`` (``WS §``) and
``shared/spec/webhook-protocol.md`` (``WH §``), copied from the spec text. Where the spec shows only
a fragment (``"event": {...}``) it is wrapped in the smallest complete body, and ``…``/``...``
placeholders are replaced by concrete values; everything else is verbatim.
"""

from __future__ import annotations

import json
import signal
from typing import Any, NamedTuple

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wecom_actors.errors import FrameError
from wecom_actors.protocol import (
    Ack,
    Cmd,
    DisconnectedEvent,
    EnterChatEvent,
    Envelope,
    EventMessage,
    FeedbackEvent,
    FileMessage,
    ImageMessage,
    MixedMessage,
    StreamRefresh,
    TemplateCardEvent,
    TextMessage,
    UnknownEvent,
    UnknownMessage,
    VideoMessage,
    VoiceMessage,
    ack_of,
    decode_callback,
    decode_frame,
    encode_body,
    encode_request,
)
from wecom_actors.protocol.frames import CALLBACK_COMMANDS, REPLY_COMMANDS, encode_ack, encode_push
from wecom_actors.protocol.replies import (
    Button,
    CardAction,
    Feedback,
    FileReply,
    ImageReply,
    MainTitle,
    MarkdownBody,
    MarkdownReply,
    MediaId,
    MsgItem,
    MsgItemImage,
    SendMsgBody,
    StreamBody,
    StreamReply,
    StreamWithCardReply,
    SubscribeBody,
    TemplateCard,
    TemplateCardReply,
    TextBody,
    TextReply,
    UpdateCardReply,
    UploadChunkBody,
    UploadFinishBody,
    UploadFinishResult,
    UploadInitBody,
    UploadInitResult,
    VideoMediaId,
    VideoReply,
    VoiceReply,
)

# A Reply of any msgtype, as the peer (or the bundled fake) decodes it.
AnyReply = (
    StreamReply
    | MarkdownReply
    | TextReply
    | TemplateCardReply
    | StreamWithCardReply
    | FileReply
    | ImageReply
    | VoiceReply
    | VideoReply
)

MSGID_ESCAPED = r"CAIQ16HMjQYY\/NGagIOAgAMgq4KM0AI="
MSGID = "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI="


def parsed(data: bytes | str) -> Any:
    """The JSON value of ``data``, parsed by the stdlib (an independent parser)."""
    return json.loads(data)


def dig(obj: object, path: str) -> object:
    """``dig(x, "a.b.0.c")`` is ``x.a.b[0].c``: attributes, or indices for digits."""
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)  # type: ignore[index]
    return obj


# =================================================================================================
# 1. Frames (stage one): every frame example of ws-protocol.md
# =================================================================================================


class F(NamedTuple):
    text: str
    cmd: str | None
    req_id: str
    errcode: int | None = None
    errmsg: str | None = None


WS_FRAMES: dict[str, F] = {
    # WS §2.1
    "ack-generic": F(
        '{ "headers": { "req_id": "<echo of request req_id>" }, "errcode": 0, "errmsg": "ok" }',
        None,
        "<echo of request req_id>",
        0,
        "ok",
    ),
    # WS §3.1
    "subscribe": F(
        """{ "cmd": "aibot_subscribe", "headers": { "req_id": "REQUEST_ID" },
  "body": { "bot_id": "BOTID", "secret": "SECRET" } }""",
        "aibot_subscribe",
        "REQUEST_ID",
    ),
    "subscribe-ok": F(
        '{"headers":{"req_id":"REQUEST_ID"},"errcode":0,"errmsg":"ok"}', None, "REQUEST_ID", 0, "ok"
    ),
    # WS §3.2
    "ping": F('{"cmd":"ping","headers":{"req_id":"REQUEST_ID"}}', "ping", "REQUEST_ID"),
    # WS §3.3
    "msg-callback": F(
        """{ "cmd": "aibot_msg_callback", "headers": { "req_id": "REQUEST_ID" },
  "body": { "msgid": "MSGID", "aibotid": "AIBOTID", "chatid": "CHATID", "chattype": "group",
            "from": { "userid": "USERID" }, "msgtype": "text", "text": { "content": "@RobotA hello robot" } } }""",
        "aibot_msg_callback",
        "REQUEST_ID",
    ),
    # WS §3.4
    "event-callback": F(
        """{ "cmd": "aibot_event_callback", "headers": { "req_id": "REQUEST_ID" },
  "body": { "msgid": "MSGID", "create_time": 1700000000, "aibotid": "AIBOTID",
            "from": { "userid": "USERID" }, "msgtype": "event",
            "event": { "eventtype": "enter_chat" } } }""",
        "aibot_event_callback",
        "REQUEST_ID",
    ),
    # WS §3.4.4
    "disconnected-event": F(
        """{ "cmd": "aibot_event_callback", "headers": { "req_id": "REQUEST_ID" },
  "body": { "msgid": "MSGID", "create_time": 1700000000, "aibotid": "AIBOTID",
            "msgtype": "event", "event": { "eventtype": "disconnected_event" } } }""",
        "aibot_event_callback",
        "REQUEST_ID",
    ),
    # WS §3.5
    "welcome": F(
        """{ "cmd": "aibot_respond_welcome_msg", "headers": { "req_id": "<enter_chat callback req_id>" },
  "body": { "msgtype": "text", "text": { "content": "您好！我是智能助手，有什么可以帮您的吗？" } } }""",
        "aibot_respond_welcome_msg",
        "<enter_chat callback req_id>",
    ),
    # WS §3.7
    "update": F(
        """{ "cmd": "aibot_respond_update_msg", "headers": { "req_id": "<template_card_event req_id>" },
  "body": { "response_type": "update_template_card",
            "userids": ["USERID1"],
            "template_card": { "card_type": "button_interaction",
              "main_title": { "title": "xx系统告警", "desc": "服务器CPU使用率超过90%" },
              "button_list": [ {"text":"确认中","style":1,"key":"confirm"}, {"text":"误报","style":2,"key":"false_alarm"} ],
              "task_id": "TASK_ID", "feedback": { "id": "FEEDBACKID" } } } }""",
        "aibot_respond_update_msg",
        "<template_card_event req_id>",
    ),
    # WS §3.8
    "send-msg": F(
        """{ "cmd": "aibot_send_msg", "headers": { "req_id": "REQUEST_ID" },
  "body": { "chatid": "CHATID", "chat_type": 1, "msgtype": "markdown",
            "markdown": { "content": "这是一条**主动推送**的消息" } } }""",
        "aibot_send_msg",
        "REQUEST_ID",
    ),
    # WS §3.9
    "upload-init": F(
        """{ "cmd": "aibot_upload_media_init", "headers": {"req_id": "REQUEST_ID"},
  "body": { "type": "file", "filename": "test.pdf", "total_size": 2333, "total_chunks": 124, "md5": "0123456789abcdef0123456789abcdef" } }""",
        "aibot_upload_media_init",
        "REQUEST_ID",
    ),
    "upload-init-ack": F(
        '{ "headers": {"req_id": "REQUEST_ID"}, "body": { "upload_id": "UPLOADID" }, "errcode": 0, "errmsg": "ok" }',
        None,
        "REQUEST_ID",
        0,
        "ok",
    ),
    "upload-chunk": F(
        """{ "cmd": "aibot_upload_media_chunk", "headers": {"req_id": "REQUEST_ID"},
  "body": { "upload_id": "UPLOADID", "chunk_index": 1, "base64_data": "JGNEIOGJGE" } }""",
        "aibot_upload_media_chunk",
        "REQUEST_ID",
    ),
    "upload-chunk-ack": F(
        '{ "headers": {"req_id": "REQUEST_ID"}, "errcode": 0, "errmsg": "ok" }',
        None,
        "REQUEST_ID",
        0,
        "ok",
    ),
    "upload-finish": F(
        '{ "cmd": "aibot_upload_media_finish", "headers": {"req_id": "REQUEST_ID"}, "body": { "upload_id": "UPLOADID" } }',
        "aibot_upload_media_finish",
        "REQUEST_ID",
    ),
    "upload-finish-ack": F(
        """{ "headers": {"req_id": "REQUEST_ID"},
  "body": { "type": "file", "media_id": "1G6nrLmr5EC3MMb_-zK1dDdzmd0p7cNliYu9V5w7o8K0", "created_at": "1380000000" },
  "errcode": 0, "errmsg": "ok" }""",
        None,
        "REQUEST_ID",
        0,
        "ok",
    ),
    # WS §8 scenarios
    "s1-subscribe": F(
        '{"cmd":"aibot_subscribe","headers":{"req_id":"aibot_subscribe_1"},"body":{"bot_id":"B","secret":"S"}}',
        "aibot_subscribe",
        "aibot_subscribe_1",
    ),
    "s1-subscribe-ack": F(
        '{"headers":{"req_id":"aibot_subscribe_1"},"errcode":0,"errmsg":"ok"}',
        None,
        "aibot_subscribe_1",
        0,
        "ok",
    ),
    "s2-bad-secret": F(
        '{"headers":{"req_id":"aibot_subscribe_2"},"errcode":600041,"errmsg":"invalid secret"}',
        None,
        "aibot_subscribe_2",
        600041,
        "invalid secret",
    ),
    "s3-send-before-subscribe": F(
        '{"cmd":"aibot_send_msg","headers":{"req_id":"R1"},"body":{"chatid":"U","msgtype":"markdown","markdown":{"content":"x"}}}',
        "aibot_send_msg",
        "R1",
    ),
    "s3-not-subscribed": F(
        '{"headers":{"req_id":"R1"},"errcode":846609,"errmsg":"aibot websocket not subscribed"}',
        None,
        "R1",
        846609,
        "aibot websocket not subscribed",
    ),
    "s4-ping": F('{"cmd":"ping","headers":{"req_id":"ping_1"}}', "ping", "ping_1"),
    "s6-callback": F(
        '{"cmd":"aibot_msg_callback","headers":{"req_id":"CB1"},"body":{"msgid":"M1","aibotid":"B","chattype":"single","from":{"userid":"U"},"msgtype":"text","text":{"content":"hi"}}}',
        "aibot_msg_callback",
        "CB1",
    ),
    "s6-stream-1": F(
        '{"cmd":"aibot_respond_msg","headers":{"req_id":"CB1"},"body":{"msgtype":"stream","stream":{"id":"ST1","finish":false,"content":"He"}}}',
        "aibot_respond_msg",
        "CB1",
    ),
    "s6-stream-3": F(
        '{"cmd":"aibot_respond_msg","headers":{"req_id":"CB1"},"body":{"msgtype":"stream","stream":{"id":"ST1","finish":true,"content":"Hello world"}}}',
        "aibot_respond_msg",
        "CB1",
    ),
    "s7-conflict": F(
        '{"headers":{"req_id":"CB1"},"errcode":6000,"errmsg":"more than one callers at the same time, data version conflict"}',
        None,
        "CB1",
        6000,
        "more than one callers at the same time, data version conflict",
    ),
    "s8-mixed": F(
        '{"cmd":"aibot_msg_callback","headers":{"req_id":"CB2"},"body":{"msgid":"M2","aibotid":"B","chatid":"G","chattype":"group","from":{"userid":"U"},"msgtype":"mixed","mixed":{"msg_item":[{"msgtype":"text","text":{"content":"@Bot look"}},{"msgtype":"image","image":{"url":"https://…","aeskey":"K"}}]}}}',
        "aibot_msg_callback",
        "CB2",
    ),
    "s10-enter-chat": F(
        '{"cmd":"aibot_event_callback","headers":{"req_id":"EV1"},"body":{"msgid":"M3","create_time":1700000000,"aibotid":"B","from":{"userid":"U"},"msgtype":"event","event":{"eventtype":"enter_chat"}}}',
        "aibot_event_callback",
        "EV1",
    ),
    "s10-welcome": F(
        '{"cmd":"aibot_respond_welcome_msg","headers":{"req_id":"EV1"},"body":{"msgtype":"text","text":{"content":"欢迎"}}}',
        "aibot_respond_welcome_msg",
        "EV1",
    ),
    "s11-card-event": F(
        '{"cmd":"aibot_event_callback","headers":{"req_id":"EV2"},"body":{"msgid":"M4","create_time":1700000001,"aibotid":"B","from":{"userid":"U"},"chattype":"single","msgtype":"event","event":{"eventtype":"template_card_event","template_card_event":{"card_type":"button_interaction","event_key":"ok","task_id":"T1"}}}}',
        "aibot_event_callback",
        "EV2",
    ),
    "s11-update": F(
        '{"cmd":"aibot_respond_update_msg","headers":{"req_id":"EV2"},"body":{"response_type":"update_template_card","template_card":{"card_type":"text_notice","main_title":{"title":"Confirmed"},"card_action":{"type":1,"url":"https://example.com"},"task_id":"T1"}}}',
        "aibot_respond_update_msg",
        "EV2",
    ),
    "s12-push": F(
        '{"cmd":"aibot_send_msg","headers":{"req_id":"aibot_send_msg_1"},"body":{"chatid":"U","msgtype":"markdown","markdown":{"content":"**ping**"}}}',
        "aibot_send_msg",
        "aibot_send_msg_1",
    ),
    "s15-kicked": F(
        '{"cmd":"aibot_event_callback","headers":{"req_id":"EVK"},"body":{"msgid":"M5","create_time":1700000002,"aibotid":"B","msgtype":"event","event":{"eventtype":"disconnected_event"}}}',
        "aibot_event_callback",
        "EVK",
    ),
    "s16-init-ack": F(
        '{"headers":{"req_id":"UPI"},"body":{"upload_id":"UP1"},"errcode":0,"errmsg":"ok"}',
        None,
        "UPI",
        0,
        "ok",
    ),
    "s16-finish-ack": F(
        '{"body":{"type":"image","media_id":"MID","created_at":"1380000000"},"headers":{"req_id":"UPF"},"errcode":0,"errmsg":"ok"}',
        None,
        "UPF",
        0,
        "ok",
    ),
}


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
# 2. Callback bodies (stage two): every message and event example of both specs
# =================================================================================================


class C(NamedTuple):
    text: str
    cls: type
    checks: dict[str, object]


_WH_TEXT = r"""{
    "msgid": "CAIQ16HMjQYY\/NGagIOAgAMgq4KM0AI=",
    "aibotid": "AIBOTID",
    "chatid": "CHATID",
    "chattype": "group",
    "from": { "userid": "USERID" },
    "response_url": "RESPONSEURL",
    "msgtype": "text",
    "text": { "content": "@RobotA hello robot" },
    "quote": { "msgtype": "text", "text": { "content": "这是今日的测试情况" } }
}"""

_WH_IMAGE_URL = (
    "https://ww-aibot-img-1258476243.cos.ap-guangzhou.myqcloud.com/BHoPdA3/7571665296904772241"
    "?sign=q-sign-algorithm%3Dsha1%26q-ak%3D...%26q-signature%3D0f7b6576943685f82870bc8db306dbf09dfe0fd6"
)

CALLBACKS: dict[str, C] = {
    # ---- long connection (ws-protocol.md) ----
    "ws-text-group": C(
        """{ "msgid": "MSGID", "aibotid": "AIBOTID", "chatid": "CHATID", "chattype": "group",
            "from": { "userid": "USERID" }, "msgtype": "text", "text": { "content": "@RobotA hello robot" } }""",
        TextMessage,
        {
            "msgid": "MSGID",
            "aibotid": "AIBOTID",
            "chatid": "CHATID",
            "chattype": "group",
            "userid": "USERID",
            "text.content": "@RobotA hello robot",
            "is_group": True,
            "conversation": "CHATID",
            "quote": None,
            "create_time": None,
            "response_url": None,
        },
    ),
    # WS §3.3 table: image/file/video carry a per-URL aeskey; voice is text only
    "ws-image-aeskey": C(
        '{"msgid":"M","aibotid":"B","chattype":"single","from":{"userid":"U"},"msgtype":"image","image": {"url": "URL", "aeskey": "AESKEY"}}',
        ImageMessage,
        {"image.url": "URL", "image.aeskey": "AESKEY", "conversation": "U", "is_group": False},
    ),
    "ws-file-aeskey": C(
        '{"msgid":"M","aibotid":"B","chattype":"single","from":{"userid":"U"},"msgtype":"file","file": {"url": "URL", "aeskey": "AESKEY"}}',
        FileMessage,
        {"file.url": "URL", "file.aeskey": "AESKEY"},
    ),
    "ws-video-aeskey": C(
        '{"msgid":"M","aibotid":"B","chattype":"single","from":{"userid":"U"},"msgtype":"video","video": {"url": "URL", "aeskey": "AESKEY"}}',
        VideoMessage,
        {"video.url": "URL", "video.aeskey": "AESKEY"},
    ),
    "ws-voice": C(
        '{"msgid":"M","aibotid":"B","chattype":"single","from":{"userid":"U"},"msgtype":"voice","voice": {"content": "<speech-to-text>"}}',
        VoiceMessage,
        {"voice.content": "<speech-to-text>"},
    ),
    "ws-mixed-aeskey": C(
        '{"msgid":"M","aibotid":"B","chattype":"single","from":{"userid":"U"},"msgtype":"mixed","mixed": {"msg_item": [{"msgtype":"text","text":{"content":"..."}}, {"msgtype":"image","image":{"url":"...","aeskey":"..."}}]}}',
        MixedMessage,
        {
            "mixed.msg_item.0.msgtype": "text",
            "mixed.msg_item.0.text.content": "...",
            "mixed.msg_item.0.image": None,
            "mixed.msg_item.1.msgtype": "image",
            "mixed.msg_item.1.image.url": "...",
            "mixed.msg_item.1.image.aeskey": "...",
        },
    ),
    "ws-s6-text": C(
        '{"msgid":"M1","aibotid":"B","chattype":"single","from":{"userid":"U"},"msgtype":"text","text":{"content":"hi"}}',
        TextMessage,
        {"msgid": "M1", "text.content": "hi", "conversation": "U", "chatid": None},
    ),
    "ws-s8-mixed-group": C(
        '{"msgid":"M2","aibotid":"B","chatid":"G","chattype":"group","from":{"userid":"U"},"msgtype":"mixed","mixed":{"msg_item":[{"msgtype":"text","text":{"content":"@Bot look"}},{"msgtype":"image","image":{"url":"https://…","aeskey":"K"}}]}}',
        MixedMessage,
        {
            "conversation": "G",
            "userid": "U",
            "mixed.msg_item.0.text.content": "@Bot look",
            "mixed.msg_item.1.image.url": "https://…",
            "mixed.msg_item.1.image.aeskey": "K",
        },
    ),
    "ws-enter-chat": C(
        """{ "msgid": "MSGID", "create_time": 1700000000, "aibotid": "AIBOTID",
            "from": { "userid": "USERID" }, "msgtype": "event",
            "event": { "eventtype": "enter_chat" } }""",
        EnterChatEvent,
        {
            "eventtype": "enter_chat",
            "create_time": 1700000000,
            "chattype": None,
            "conversation": "USERID",
        },
    ),
    "ws-s10-enter-chat": C(
        '{"msgid":"M3","create_time":1700000000,"aibotid":"B","from":{"userid":"U"},"msgtype":"event","event":{"eventtype":"enter_chat"}}',
        EnterChatEvent,
        {"msgid": "M3", "userid": "U", "eventtype": "enter_chat"},
    ),
    # WS §3.4.2 (fragment wrapped in the common event body)
    "ws-card-event-doc": C(
        """{"msgid":"M","create_time":1700000000,"aibotid":"B","from":{"userid":"U"},"msgtype":"event",
        "event": { "eventtype": "template_card_event",
  "template_card_event": { "card_type": "button_interaction", "event_key": "button_replace_text",
    "task_id": "fBmjTL7ErRCQSNA6GZKMlcFiWX1shOvg",
    "selected_items": { "selected_item": [ { "question_key": "button_selection_key1",
        "option_ids": { "option_id": [ "button_selection_id1" ] } } ] } } } }""",
        TemplateCardEvent,
        {
            "eventtype": "template_card_event",
            "card_type": "button_interaction",
            "event_key": "button_replace_text",
            "task_id": "fBmjTL7ErRCQSNA6GZKMlcFiWX1shOvg",
            "selected_items.selected_item.0.question_key": "button_selection_key1",
            "selected_items.selected_item.0.option_ids.option_id": ["button_selection_id1"],
        },
    ),
    "ws-s11-card-event": C(
        '{"msgid":"M4","create_time":1700000001,"aibotid":"B","from":{"userid":"U"},"chattype":"single","msgtype":"event","event":{"eventtype":"template_card_event","template_card_event":{"card_type":"button_interaction","event_key":"ok","task_id":"T1"}}}',
        TemplateCardEvent,
        {
            "event_key": "ok",
            "task_id": "T1",
            "card_type": "button_interaction",
            "selected_items": None,
        },
    ),
    # The Node SDK typings' placement (TemplateCardEventData): fields directly under ``event``.
    "node-card-event-flat": C(
        '{"msgid":"M","create_time":1700000001,"aibotid":"B","from":{"userid":"U"},"chattype":"single","msgtype":"event","event":{"eventtype":"template_card_event","card_type":"button_interaction","event_key":"ok","task_id":"T1"}}',
        TemplateCardEvent,
        {
            "event_key": "ok",
            "task_id": "T1",
            "card_type": "button_interaction",
            "event.template_card_event": None,
        },
    ),
    # WS §3.4.3 (fragment wrapped)
    "ws-feedback": C(
        """{"msgid":"M","create_time":1700000000,"aibotid":"B","from":{"userid":"U"},"msgtype":"event",
        "event": { "eventtype": "feedback_event",
  "feedback_event": { "id": "FEEDBACKID", "type": 2, "content": "能再详细一些么", "inaccurate_reason_list": [2, 4] } } }""",
        FeedbackEvent,
        {
            "eventtype": "feedback_event",
            "feedback.id": "FEEDBACKID",
            "feedback.type": 2,
            "feedback.content": "能再详细一些么",
            "feedback.inaccurate_reason_list": [2, 4],
        },
    ),
    "ws-disconnected": C(
        """{ "msgid": "MSGID", "create_time": 1700000000, "aibotid": "AIBOTID",
            "msgtype": "event", "event": { "eventtype": "disconnected_event" } }""",
        DisconnectedEvent,
        {"eventtype": "disconnected_event", "userid": "", "chattype": None, "aibotid": "AIBOTID"},
    ),
    "ws-s15-disconnected": C(
        '{"msgid":"M5","create_time":1700000002,"aibotid":"B","msgtype":"event","event":{"eventtype":"disconnected_event"}}',
        DisconnectedEvent,
        {"msgid": "M5", "create_time": 1700000002},
    ),
    # ---- webhook (webhook-protocol.md) ----
    "wh-text-quote": C(
        _WH_TEXT,
        TextMessage,
        {
            "msgid": MSGID,
            "response_url": "RESPONSEURL",
            "text.content": "@RobotA hello robot",
            "quote.msgtype": "text",
            "quote.text.content": "这是今日的测试情况",
            "conversation": "CHATID",
        },
    ),
    "wh-image": C(
        """{
    "msgid": "CAIQz7/MjQYY/NGagIOAgAMgl8jK/gI=",
    "aibotid": "AIBOTID",
    "chattype": "single",
    "from": { "userid": "USERID" },
    "response_url": "RESPONSEURL",
    "msgtype": "image",
    "image": { "url": "https://ww-aibot-img-1258476243.cos.ap-guangzhou.myqcloud.com/BHoPdA3/7571665296904772241?sign=q-sign-algorithm%3Dsha1%26q-ak%3D...%26q-signature%3D0f7b6576943685f82870bc8db306dbf09dfe0fd6" }
}""",
        ImageMessage,
        {"image.url": _WH_IMAGE_URL, "image.aeskey": None, "conversation": "USERID"},
    ),
    "wh-mixed-quote": C(
        """{
    "msgid": "CAIQrcjMjQYY/NGagIOAgAMg6PDc/w0=",
    "aibotid": "AIBOTID",
    "chatid": "CHATID",
    "chattype": "group",
    "from": { "userid": "USERID" },
    "response_url": "RESPONSEURL",
    "msgtype": "mixed",
    "mixed": {
        "msg_item": [
            { "msgtype": "text",  "text":  { "content": "@机器人 这是今日的测试情况" } },
            { "msgtype": "image", "image": { "url": "https://...encrypted..." } }
        ]
    },
    "quote": { "msgtype": "text", "text": { "content": "这是今日的测试情况" } }
}""",
        MixedMessage,
        {
            "mixed.msg_item.0.text.content": "@机器人 这是今日的测试情况",
            "mixed.msg_item.1.image.url": "https://...encrypted...",
            "mixed.msg_item.1.image.aeskey": None,
            "quote.text.content": "这是今日的测试情况",
        },
    ),
    "wh-voice": C(
        """{ "msgid": "...", "aibotid": "AIBOTID", "chattype": "single", "from": {"userid": "USERID"},
  "response_url": "RESPONSEURL", "msgtype": "voice", "voice": { "content": "这是语音转成文本的内容" } }""",
        VoiceMessage,
        {"voice.content": "这是语音转成文本的内容", "response_url": "RESPONSEURL"},
    ),
    "wh-file": C(
        """{ "msgid": "...", "aibotid": "AIBOTID", "chattype": "single", "from": {"userid": "USERID"},
  "response_url": "RESPONSEURL", "msgtype": "file", "file": { "url": "https://...encrypted..." } }""",
        FileMessage,
        {"file.url": "https://...encrypted...", "file.aeskey": None},
    ),
    "wh-video": C(
        """{ "msgid": "...", "aibotid": "AIBOTID", "chattype": "single", "from": {"userid": "USERID"},
  "response_url": "RESPONSEURL", "msgtype": "video", "video": { "url": "https://...encrypted..." } }""",
        VideoMessage,
        {"video.url": "https://...encrypted..."},
    ),
    "wh-stream-refresh": C(
        """{
    "msgid": "CAIQz7/MjQYY/NGagIOAgAMgl8jK/gI=",
    "aibotid": "AIBOTID",
    "chatid": "CHATID",
    "chattype": "group",
    "from": { "userid": "USERID" },
    "msgtype": "stream",
    "stream": { "id": "STREAMID" }
}""",
        StreamRefresh,
        {"stream.id": "STREAMID", "response_url": None, "conversation": "CHATID"},
    ),
    # WH §4.11 common envelope: the placeholder eventtype is an eventtype this version does not know
    "wh-event-common": C(
        r"""{
    "msgid": "CAIQ16HMjQYY\/NGagIOAgAMgq4KM0AI=",
    "create_time": 1700000000,
    "aibotid": "AIBOTID",
    "chatid": "CHATID",
    "chattype": "single",
    "from": { "corpid": "wpxxxx", "userid": "USERID" },
    "msgtype": "event",
    "event": { "eventtype": "eventtype_name", "eventtype_name": { } }
}""",
        UnknownEvent,
        {
            "eventtype": "eventtype_name",
            "msgid": MSGID,
            "from_.corpid": "wpxxxx",
            "chatid": "CHATID",
        },
    ),
    "wh-enter-chat": C(
        r"""{ "msgid": "CAIQ16HMjQYY\/NGagIOAgAMgq4KM0AI=", "create_time": 1700000000, "aibotid": "AIBOTID",
  "from": { "corpid": "wpxxxx", "userid": "USERID" }, "msgtype": "event", "event": { "eventtype": "enter_chat" } }""",
        EnterChatEvent,
        {"msgid": MSGID, "from_.corpid": "wpxxxx", "chattype": None, "conversation": "USERID"},
    ),
    "wh-card-event-vote": C(
        r"""{
    "msgid": "CAIQ16HMjQYY\/NGagIOAgAMgq4KM0AI=", "create_time": 1700000000, "aibotid": "AIBOTID",
    "from": { "corpid": "CORPID", "userid": "USERID" },
    "chatid": "CHATID", "chattype": "group", "response_url": "RESPONSEURL",
    "msgtype": "event",
    "event": {
        "eventtype": "template_card_event",
        "template_card_event": {
            "card_type": "vote_interaction",
            "event_key": "button_replace_text",
            "task_id": "fBmjTL7ErRCQSNA6GZKMlcFiWX1shOvg",
            "selected_items": { "selected_item": [
                { "question_key": "button_selection_key1", "option_ids": { "option_id": ["one", "two"] } }
            ] }
        }
    }
}""",
        TemplateCardEvent,
        {
            "card_type": "vote_interaction",
            "event_key": "button_replace_text",
            "task_id": "fBmjTL7ErRCQSNA6GZKMlcFiWX1shOvg",
            "response_url": "RESPONSEURL",
            "selected_items.selected_item.0.option_ids.option_id": ["one", "two"],
            "conversation": "CHATID",
        },
    ),
    "wh-feedback": C(
        """{ "msgid": "...", "create_time": 1700000000, "aibotid": "AIBOTID", "chatid": "CHATID", "chattype": "group",
  "from": { "userid": "USERID" }, "msgtype": "event",
  "event": { "eventtype": "feedback_event",
             "feedback_event": { "id": "FEEDBACKID", "type": 2, "content": "能再详细一些么", "inaccurate_reason_list": [2, 4] } } }""",
        FeedbackEvent,
        {
            "feedback.id": "FEEDBACKID",
            "feedback.inaccurate_reason_list": [2, 4],
            "conversation": "CHATID",
        },
    ),
    # WH §9.2 vector plaintexts (exact bytes)
    "wh-vector-B": C(
        '{"msgid":"CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=","aibotid":"AIBOTID","chatid":"CHATID","chattype":"group","from":{"userid":"USERID"},"response_url":"RESPONSEURL","msgtype":"text","text":{"content":"@RobotA hello robot"}}',
        TextMessage,
        {"msgid": MSGID, "text.content": "@RobotA hello robot"},
    ),
    "wh-vector-C": C(
        '{"msgid":"CAIQz7/MjQYY/NGagIOAgAMgl8jK/gI=","aibotid":"AIBOTID","chatid":"CHATID","chattype":"group","from":{"userid":"USERID"},"msgtype":"stream","stream":{"id":"STREAMID"}}',
        StreamRefresh,
        {"stream.id": "STREAMID"},
    ),
    "wh-vector-D": C(
        '{"msgid":"CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=","create_time":1700000000,"aibotid":"AIBOTID","from":{"userid":"USERID"},"msgtype":"event","event":{"eventtype":"enter_chat"}}',
        EnterChatEvent,
        {"create_time": 1700000000},
    ),
}


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
    msg = decode_callback(_WH_TEXT.encode())
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


# ---- quotes of every msgtype (WH §4.9) ----------------------------------------------------------


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


# =================================================================================================
# 3. Malformed input: FrameError and nothing else
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
    # AstrBot's webhook branch read ``event`` as a string; the wire has an object (WH §6)
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


# =================================================================================================
# 4. Encoding: every reply and request body has exactly the shape the spec shows
# =================================================================================================

BUTTON_CARD = TemplateCard(
    card_type="button_interaction",
    main_title=MainTitle(title="Confirm?"),
    button_list=[Button(text="OK", key="ok", style=1)],
    task_id="T1",
)
ALERT_CARD = TemplateCard(
    card_type="button_interaction",
    main_title=MainTitle(title="xx系统告警", desc="服务器CPU使用率超过90%"),
    button_list=[
        Button(text="确认中", style=1, key="confirm"),
        Button(text="误报", style=2, key="false_alarm"),
    ],
    task_id="TASK_ID",
    feedback=Feedback("FEEDBACKID"),
)
CONFIRMED_CARD = TemplateCard(
    card_type="text_notice",
    main_title=MainTitle(title="Confirmed"),
    card_action=CardAction(type=1, url="https://example.com"),
    task_id="T1",
)
IMAGE_ITEM = MsgItem(image=MsgItemImage(base64="BASE64", md5="MD5"))

# The five card types with every field DOC-101032 lists (WS §3.11, WH §6).
CARD_EXAMPLES: dict[str, str] = {
    "text_notice": """{
  "card_type": "text_notice",
  "source": {"icon_url": "https://wework.qpic.cn/wwpic/252813_jOfDHtcISzuodLa_1629280209/0", "desc": "企业微信", "desc_color": 0},
  "action_menu": {"desc": "消息气泡副交互辅助文本说明", "action_list": [{"text": "接收推送", "key": "action_key1"}, {"text": "不再推送", "key": "action_key2"}]},
  "main_title": {"title": "欢迎使用企业微信", "desc": "您的好友正在邀请您加入企业微信"},
  "emphasis_content": {"title": "100", "desc": "数据含义"},
  "quote_area": {"type": 1, "url": "https://work.weixin.qq.com/?from=openApi", "appid": "APPID", "pagepath": "PAGEPATH", "title": "引用文本标题", "quote_text": "Jack：企业微信真的很好用~\\nBalian：超级好的一款软件！"},
  "sub_title_text": "下载企业微信还能抢红包！",
  "horizontal_content_list": [
    {"keyname": "邀请人", "value": "张三"},
    {"keyname": "企微官网", "value": "点击访问", "type": 1, "url": "https://work.weixin.qq.com/?from=openApi"},
    {"keyname": "员工信息", "value": "点击查看", "type": 3, "userid": "zhangsan"}
  ],
  "jump_list": [
    {"type": 1, "url": "https://work.weixin.qq.com/?from=openApi", "title": "企业微信官网"},
    {"type": 2, "appid": "APPID", "pagepath": "PAGEPATH", "title": "跳转小程序"},
    {"type": 3, "title": "企业微信官网", "question": "如何登录企业微信官网"}
  ],
  "card_action": {"type": 1, "url": "https://work.weixin.qq.com/?from=openApi", "appid": "APPID", "pagepath": "PAGEPATH"},
  "task_id": "task_id_text",
  "feedback": {"id": "FEEDBACKID"}
}""",
    "news_notice": """{
  "card_type": "news_notice",
  "source": {"icon_url": "https://wework.qpic.cn/wwpic/252813_jOfDHtcISzuodLa_1629280209/0", "desc": "企业微信", "desc_color": 0},
  "main_title": {"title": "欢迎使用企业微信", "desc": "您的好友正在邀请您加入企业微信"},
  "card_image": {"url": "https://wework.qpic.cn/wwpic/354393_4zpkKXd7SrGMvfg_1629280616/0", "aspect_ratio": 2.25},
  "image_text_area": {"type": 1, "url": "https://work.weixin.qq.com", "title": "欢迎使用企业微信", "desc": "您的好友正在邀请您加入企业微信", "image_url": "https://wework.qpic.cn/wwpic/354393_4zpkKXd7SrGMvfg_1629280616/0"},
  "quote_area": {"type": 1, "url": "https://work.weixin.qq.com/?from=openApi", "title": "引用文本标题", "quote_text": "Jack：企业微信真的很好用~"},
  "vertical_content_list": [{"title": "惊喜红包等你来拿", "desc": "下载企业微信还能抢红包！"}],
  "horizontal_content_list": [{"keyname": "邀请人", "value": "张三"}],
  "jump_list": [{"type": 1, "url": "https://work.weixin.qq.com/?from=openApi", "title": "企业微信官网"}],
  "card_action": {"type": 1, "url": "https://work.weixin.qq.com/?from=openApi"},
  "task_id": "task_id_news"
}""",
    "button_interaction": """{
  "card_type": "button_interaction",
  "source": {"icon_url": "https://wework.qpic.cn/wwpic/252813_jOfDHtcISzuodLa_1629280209/0", "desc": "企业微信"},
  "main_title": {"title": "欢迎使用企业微信", "desc": "您的好友正在邀请您加入企业微信"},
  "quote_area": {"type": 1, "url": "https://work.weixin.qq.com", "title": "引用文本标题", "quote_text": "Jack：企业微信真的很好用~"},
  "sub_title_text": "下载企业微信还能抢红包！",
  "horizontal_content_list": [{"keyname": "邀请人", "value": "张三"}],
  "card_action": {"type": 1, "url": "https://work.weixin.qq.com"},
  "button_selection": {"question_key": "button_selection_key1", "title": "您的身份", "option_list": [{"id": "button_selection_id1", "text": "企业负责人"}, {"id": "button_selection_id2", "text": "企业用户"}], "selected_id": "button_selection_id1", "disable": false},
  "button_list": [{"text": "按钮1", "style": 4, "key": "BUTTONKEYONE"}, {"text": "按钮2", "style": 1, "key": "BUTTONKEYTWO"}],
  "task_id": "task_id_button"
}""",
    "vote_interaction": """{
  "card_type": "vote_interaction",
  "source": {"icon_url": "https://wework.qpic.cn/wwpic/252813_jOfDHtcISzuodLa_1629280209/0", "desc": "企业微信"},
  "main_title": {"title": "欢迎使用企业微信", "desc": "您的好友正在邀请您加入企业微信"},
  "checkbox": {"question_key": "question_key1", "option_list": [{"id": "option_id1", "text": "选择题选项1", "is_checked": true}, {"id": "option_id2", "text": "选择题选项2", "is_checked": false}], "mode": 1, "disable": false},
  "submit_button": {"text": "提交", "key": "key"},
  "task_id": "task_id_vote"
}""",
    "multiple_interaction": """{
  "card_type": "multiple_interaction",
  "source": {"icon_url": "https://wework.qpic.cn/wwpic/252813_jOfDHtcISzuodLa_1629280209/0", "desc": "企业微信"},
  "main_title": {"title": "欢迎使用企业微信", "desc": "您的好友正在邀请您加入企业微信"},
  "select_list": [
    {"question_key": "question_key1", "title": "选择器标签1", "selected_id": "selection_id1", "option_list": [{"id": "selection_id1", "text": "选择器选项1"}, {"id": "selection_id2", "text": "选择器选项2"}]},
    {"question_key": "question_key2", "title": "选择器标签2", "selected_id": "selection_id3", "option_list": [{"id": "selection_id3", "text": "选择器选项3"}]}
  ],
  "submit_button": {"text": "提交", "key": "key"},
  "task_id": "task_id_multiple"
}""",
}


def _msg_item_case(case: Any) -> Any:
    """A msg_item encoding case (once an xfail for the missing "msgtype":"image", now fixed)."""
    return pytest.param(*case, id=case[0])


REPLY_CASES: list[Any] = [
    # WS §8 s6 stream frames
    (
        "stream-s6",
        StreamReply(stream=StreamBody(id="ST1", finish=False, content="He")),
        '{"msgtype":"stream","stream":{"id":"ST1","finish":false,"content":"He"}}',
    ),
    (
        "stream-s6-final",
        StreamReply(stream=StreamBody(id="ST1", finish=True, content="Hello world")),
        '{"msgtype":"stream","stream":{"id":"ST1","finish":true,"content":"Hello world"}}',
    ),
    # WS §3.6.1 without msg_item, with feedback (first frame)
    (
        "stream-feedback",
        StreamReply(
            stream=StreamBody(
                id="STREAMID",
                finish=False,
                content="正在为您查询天气信息...",
                feedback=Feedback("FEEDBACKID"),
            )
        ),
        """{ "msgtype": "stream",
  "stream": { "id": "STREAMID", "finish": false, "content": "正在为您查询天气信息...",
              "feedback": { "id": "FEEDBACKID" } } }""",
    ),
    # WS §3.6.1 in full
    _msg_item_case(
        (
            "stream-msg-item-feedback",
            StreamReply(
                stream=StreamBody(
                    id="STREAMID",
                    finish=False,
                    content="正在为您查询天气信息...",
                    msg_item=[IMAGE_ITEM],
                    feedback=Feedback("FEEDBACKID"),
                )
            ),
            """{ "msgtype": "stream",
  "stream": { "id": "STREAMID", "finish": false, "content": "正在为您查询天气信息...",
              "msg_item": [ { "msgtype": "image", "image": { "base64": "BASE64", "md5": "MD5" } } ],
              "feedback": { "id": "FEEDBACKID" } } }""",
        )
    ),
    # WH §5.2
    _msg_item_case(
        (
            "stream-webhook",
            StreamReply(
                stream=StreamBody(
                    id="STREAMID",
                    finish=False,
                    content="**广州**今日天气：29度，大部分多云，降雨概率：60%",
                    msg_item=[IMAGE_ITEM],
                    feedback=Feedback("FEEDBACKID"),
                )
            ),
            """{
    "msgtype": "stream",
    "stream": {
        "id": "STREAMID",
        "finish": false,
        "content": "**广州**今日天气：29度，大部分多云，降雨概率：60%",
        "msg_item": [ { "msgtype": "image", "image": { "base64": "BASE64", "md5": "MD5" } } ],
        "feedback": { "id": "FEEDBACKID" }
    }
}""",
        )
    ),
    # WH §9.2 vector E plaintext
    (
        "stream-vector-E",
        StreamReply(stream=StreamBody(id="STREAMID", finish=False, content="你好")),
        '{"msgtype":"stream","stream":{"id":"STREAMID","finish":false,"content":"你好"}}',
    ),
    # WS §3.6.2 / WH §7
    (
        "markdown-feedback",
        MarkdownReply(
            markdown=MarkdownBody(content="hello world", feedback=Feedback("FEEDBACKID"))
        ),
        '{ "msgtype": "markdown", "markdown": { "content": "hello world", "feedback": { "id": "FEEDBACKID" } } }',
    ),
    (
        "markdown",
        MarkdownReply(markdown=MarkdownBody(content="**ping**")),
        '{"msgtype":"markdown","markdown":{"content":"**ping**"}}',
    ),
    # WS §8 s11
    (
        "template-card-s11",
        TemplateCardReply(template_card=BUTTON_CARD),
        '{"msgtype":"template_card","template_card":{"card_type":"button_interaction","main_title":{"title":"Confirm?"},"button_list":[{"text":"OK","key":"ok","style":1}],"task_id":"T1"}}',
    ),
    # WS §3.6.4
    (
        "stream-with-card",
        StreamWithCardReply(
            stream=StreamBody(id="STREAMID", finish=False, content="...", feedback=Feedback("F1")),
            template_card=ALERT_CARD,
        ),
        """{ "msgtype": "stream_with_template_card",
  "stream": { "id": "STREAMID", "finish": false, "content": "...", "feedback": {"id": "F1"} },
  "template_card": { "card_type": "button_interaction",
              "main_title": { "title": "xx系统告警", "desc": "服务器CPU使用率超过90%" },
              "button_list": [ {"text":"确认中","style":1,"key":"confirm"}, {"text":"误报","style":2,"key":"false_alarm"} ],
              "task_id": "TASK_ID", "feedback": { "id": "FEEDBACKID" } } }""",
    ),
    _msg_item_case(
        (
            "stream-with-card-msg-item",
            StreamWithCardReply(
                stream=StreamBody(
                    id="STREAMID", finish=True, content="done", msg_item=[IMAGE_ITEM]
                ),
                template_card=CONFIRMED_CARD,
            ),
            """{ "msgtype": "stream_with_template_card",
  "stream": { "id": "STREAMID", "finish": true, "content": "done",
              "msg_item": [ { "msgtype": "image", "image": { "base64": "BASE64", "md5": "MD5" } } ] },
  "template_card": {"card_type":"text_notice","main_title":{"title":"Confirmed"},"card_action":{"type":1,"url":"https://example.com"},"task_id":"T1"} }""",
        )
    ),
    (
        "stream-with-card-later-frame",
        StreamWithCardReply(stream=StreamBody(id="STREAMID", finish=False, content="x")),
        '{"msgtype":"stream_with_template_card","stream":{"id":"STREAMID","finish":false,"content":"x"}}',
    ),
    # WS §3.6.5 media
    ("file", FileReply(file=MediaId("MID")), '{"msgtype":"file","file":{"media_id":"MID"}}'),
    (
        "image-s16",
        ImageReply(image=MediaId("MID")),
        '{"msgtype":"image","image":{"media_id":"MID"}}',
    ),
    ("voice", VoiceReply(voice=MediaId("MID")), '{"msgtype":"voice","voice":{"media_id":"MID"}}'),
    (
        "video",
        VideoReply(video=VideoMediaId("MID")),
        '{"msgtype":"video","video":{"media_id":"MID"}}',
    ),
    (
        "video-title-description",
        VideoReply(video=VideoMediaId("MID", title="标题", description="描述")),
        '{"msgtype":"video","video":{"media_id":"MID","title":"标题","description":"描述"}}',
    ),
    # WS §3.5, §8 s10, WH §6 welcome
    (
        "welcome",
        TextReply(text=TextBody("您好！我是智能助手，有什么可以帮您的吗？")),
        '{ "msgtype": "text", "text": { "content": "您好！我是智能助手，有什么可以帮您的吗？" } }',
    ),
    (
        "welcome-s10",
        TextReply(text=TextBody("欢迎")),
        '{"msgtype":"text","text":{"content":"欢迎"}}',
    ),
    (
        "welcome-webhook",
        TextReply(text=TextBody("hello\nI'm RobotA\n")),
        r"""{"msgtype":"text","text":{"content":"hello\nI'm RobotA\n"}}""",
    ),
    (
        "welcome-card",
        TemplateCardReply(template_card=CONFIRMED_CARD),
        '{"msgtype":"template_card","template_card":{"card_type":"text_notice","main_title":{"title":"Confirmed"},"card_action":{"type":1,"url":"https://example.com"},"task_id":"T1"}}',
    ),
]


REPLY_CASES = [c if hasattr(c, "marks") else pytest.param(*c, id=c[0]) for c in REPLY_CASES]


@pytest.mark.parametrize(("name", "reply", "expected"), REPLY_CASES)
def test_reply_encodes_to_spec_shape(name: str, reply: Any, expected: str) -> None:
    assert parsed(encode_body(reply)) == parsed(expected)


@pytest.mark.parametrize("card_type", list(CARD_EXAMPLES))
def test_every_card_type_encodes_every_field(card_type: str) -> None:
    expected = parsed(CARD_EXAMPLES[card_type])
    card = msgspec.convert(expected, TemplateCard)
    assert card.card_type == card_type
    # a field TemplateCard does not model would be dropped by convert and missing here
    assert parsed(encode_body(card)) == expected
    reply = TemplateCardReply(template_card=card)
    assert parsed(encode_body(reply)) == {"msgtype": "template_card", "template_card": expected}
    assert msgspec.json.decode(encode_body(reply), type=AnyReply) == reply


UPDATE_CASES = [
    # WS §3.7 body
    (
        "update-ws",
        UpdateCardReply(template_card=ALERT_CARD, userids=["USERID1"]),
        """{ "response_type": "update_template_card",
            "userids": ["USERID1"],
            "template_card": { "card_type": "button_interaction",
              "main_title": { "title": "xx系统告警", "desc": "服务器CPU使用率超过90%" },
              "button_list": [ {"text":"确认中","style":1,"key":"confirm"}, {"text":"误报","style":2,"key":"false_alarm"} ],
              "task_id": "TASK_ID", "feedback": { "id": "FEEDBACKID" } } }""",
    ),
    # WS §8 s11 (no userids)
    (
        "update-s11",
        UpdateCardReply(template_card=CONFIRMED_CARD),
        '{"response_type":"update_template_card","template_card":{"card_type":"text_notice","main_title":{"title":"Confirmed"},"card_action":{"type":1,"url":"https://example.com"},"task_id":"T1"}}',
    ),
    # WH §6 (its card is a placeholder; the shape around it is what matters)
    (
        "update-webhook",
        UpdateCardReply(template_card=CONFIRMED_CARD, userids=["USERID1", "USERID2"]),
        '{ "response_type": "update_template_card", "userids": ["USERID1","USERID2"], "template_card": {"card_type":"text_notice","main_title":{"title":"Confirmed"},"card_action":{"type":1,"url":"https://example.com"},"task_id":"T1"} }',
    ),
]


@pytest.mark.parametrize(
    ("name", "reply", "expected"), UPDATE_CASES, ids=[c[0] for c in UPDATE_CASES]
)
def test_update_card_has_response_type_on_the_wire(
    name: str, reply: UpdateCardReply, expected: str
) -> None:
    wire = parsed(encode_body(reply))
    assert wire == parsed(expected)
    assert wire["response_type"] == "update_template_card"
    assert "msgtype" not in wire
    assert msgspec.json.decode(encode_body(reply), type=UpdateCardReply) == reply


SEND_MSG_CASES = [
    (
        "send-msg-ws",
        SendMsgBody(
            chatid="CHATID",
            chat_type=1,
            msgtype="markdown",
            markdown=MarkdownBody("这是一条**主动推送**的消息"),
        ),
        """{ "chatid": "CHATID", "chat_type": 1, "msgtype": "markdown",
            "markdown": { "content": "这是一条**主动推送**的消息" } }""",
    ),
    (
        "send-msg-s12",
        SendMsgBody(chatid="U", msgtype="markdown", markdown=MarkdownBody("**ping**")),
        '{"chatid":"U","msgtype":"markdown","markdown":{"content":"**ping**"}}',
    ),
    (
        "send-msg-card",
        SendMsgBody(chatid="G", msgtype="template_card", template_card=BUTTON_CARD),
        '{"chatid":"G","msgtype":"template_card","template_card":{"card_type":"button_interaction","main_title":{"title":"Confirm?"},"button_list":[{"text":"OK","key":"ok","style":1}],"task_id":"T1"}}',
    ),
    (
        "send-msg-file",
        SendMsgBody(chatid="U", msgtype="file", file=MediaId("MID")),
        '{"chatid":"U","msgtype":"file","file":{"media_id":"MID"}}',
    ),
    (
        "send-msg-image",
        SendMsgBody(chatid="U", msgtype="image", image=MediaId("MID")),
        '{"chatid":"U","msgtype":"image","image":{"media_id":"MID"}}',
    ),
    (
        "send-msg-voice",
        SendMsgBody(chatid="U", msgtype="voice", voice=MediaId("MID")),
        '{"chatid":"U","msgtype":"voice","voice":{"media_id":"MID"}}',
    ),
    (
        "send-msg-video",
        SendMsgBody(
            chatid="U", msgtype="video", video=VideoMediaId("MID", title="T", description="D")
        ),
        '{"chatid":"U","msgtype":"video","video":{"media_id":"MID","title":"T","description":"D"}}',
    ),
    (
        "send-msg-feedback",
        SendMsgBody(
            chatid="U", msgtype="markdown", markdown=MarkdownBody("x", feedback=Feedback("F"))
        ),
        '{"chatid":"U","msgtype":"markdown","markdown":{"content":"x","feedback":{"id":"F"}}}',
    ),
]

REQUEST_BODY_CASES = [
    (
        "subscribe",
        SubscribeBody(bot_id="BOTID", secret="SECRET"),
        '{ "bot_id": "BOTID", "secret": "SECRET" }',
    ),
    (
        "subscribe-extras",
        SubscribeBody(bot_id="B", secret="S", scene=1, plug_version="1.0.7"),
        '{"bot_id":"B","secret":"S","scene":1,"plug_version":"1.0.7"}',
    ),
    (
        "upload-init",
        UploadInitBody(
            type="file",
            filename="test.pdf",
            total_size=2333,
            total_chunks=124,
            md5="0123456789abcdef0123456789abcdef",
        ),
        '{ "type": "file", "filename": "test.pdf", "total_size": 2333, "total_chunks": 124, "md5": "0123456789abcdef0123456789abcdef" }',
    ),
    (
        "upload-init-s16",
        UploadInitBody(
            type="image", filename="a.png", total_size=600000, total_chunks=2, md5="<hex>"
        ),
        '{"type":"image","filename":"a.png","total_size":600000,"total_chunks":2,"md5":"<hex>"}',
    ),
    (
        "upload-init-no-md5",
        UploadInitBody(type="voice", filename="a.amr", total_size=1, total_chunks=1),
        '{"type":"voice","filename":"a.amr","total_size":1,"total_chunks":1}',
    ),
    (
        "upload-chunk",
        UploadChunkBody(upload_id="UPLOADID", chunk_index=1, base64_data="JGNEIOGJGE"),
        '{ "upload_id": "UPLOADID", "chunk_index": 1, "base64_data": "JGNEIOGJGE" }',
    ),
    (
        "upload-chunk-0",
        UploadChunkBody(upload_id="UP1", chunk_index=0, base64_data=""),
        '{"upload_id":"UP1","chunk_index":0,"base64_data":""}',
    ),
    ("upload-finish", UploadFinishBody(upload_id="UPLOADID"), '{ "upload_id": "UPLOADID" }'),
]


@pytest.mark.parametrize(
    ("name", "body", "expected"),
    SEND_MSG_CASES + REQUEST_BODY_CASES,
    ids=[c[0] for c in SEND_MSG_CASES + REQUEST_BODY_CASES],
)
def test_request_body_encodes_to_spec_shape(name: str, body: Any, expected: str) -> None:
    assert parsed(encode_body(body)) == parsed(expected)
    assert msgspec.json.decode(encode_body(body), type=type(body)) == body


# ---- whole request frames (encode_request) -------------------------------------------------------

FRAME_CASES = [
    ("s1-subscribe", Cmd.SUBSCRIBE, "aibot_subscribe_1", SubscribeBody(bot_id="B", secret="S")),
    (
        "s3-send-before-subscribe",
        Cmd.SEND_MSG,
        "R1",
        SendMsgBody(chatid="U", msgtype="markdown", markdown=MarkdownBody("x")),
    ),
    (
        "s6-stream-1",
        Cmd.RESPOND_MSG,
        "CB1",
        StreamReply(stream=StreamBody(id="ST1", finish=False, content="He")),
    ),
    (
        "s6-stream-3",
        Cmd.RESPOND_MSG,
        "CB1",
        StreamReply(stream=StreamBody(id="ST1", finish=True, content="Hello world")),
    ),
    ("s10-welcome", Cmd.RESPOND_WELCOME, "EV1", TextReply(text=TextBody("欢迎"))),
    ("s11-update", Cmd.RESPOND_UPDATE, "EV2", UpdateCardReply(template_card=CONFIRMED_CARD)),
    (
        "s12-push",
        Cmd.SEND_MSG,
        "aibot_send_msg_1",
        SendMsgBody(chatid="U", msgtype="markdown", markdown=MarkdownBody("**ping**")),
    ),
    (
        "welcome",
        Cmd.RESPOND_WELCOME,
        "<enter_chat callback req_id>",
        TextReply(text=TextBody("您好！我是智能助手，有什么可以帮您的吗？")),
    ),
    (
        "update",
        Cmd.RESPOND_UPDATE,
        "<template_card_event req_id>",
        UpdateCardReply(template_card=ALERT_CARD, userids=["USERID1"]),
    ),
    ("send-msg", Cmd.SEND_MSG, "REQUEST_ID", SEND_MSG_CASES[0][1]),
    ("subscribe", Cmd.SUBSCRIBE, "REQUEST_ID", SubscribeBody(bot_id="BOTID", secret="SECRET")),
    ("upload-init", Cmd.UPLOAD_INIT, "REQUEST_ID", REQUEST_BODY_CASES[2][1]),
    ("upload-chunk", Cmd.UPLOAD_CHUNK, "REQUEST_ID", REQUEST_BODY_CASES[5][1]),
    ("upload-finish", Cmd.UPLOAD_FINISH, "REQUEST_ID", UploadFinishBody(upload_id="UPLOADID")),
    ("ping", Cmd.PING, "REQUEST_ID", None),
    ("s4-ping", Cmd.PING, "ping_1", None),
]


@pytest.mark.parametrize(
    ("name", "cmd", "req_id", "body"), FRAME_CASES, ids=[c[0] for c in FRAME_CASES]
)
def test_encode_request_matches_spec_frame(name: str, cmd: Cmd, req_id: str, body: Any) -> None:
    data = encode_request(cmd, req_id, body)
    assert isinstance(data, bytes)
    assert parsed(data) == parsed(WS_FRAMES[name].text)
    env = decode_frame(data)
    assert (env.cmd, env.req_id, env.is_ack) == (cmd, req_id, False)


def test_encode_request_for_ping_omits_body() -> None:
    data = encode_request(Cmd.PING, "R")
    assert parsed(data) == {"cmd": "ping", "headers": {"req_id": "R"}}
    assert b"body" not in data
    assert len(decode_frame(data).body) == 0


def test_encode_request_keeps_an_empty_body() -> None:
    assert parsed(encode_request("x", "R", {})) == {
        "cmd": "x",
        "headers": {"req_id": "R"},
        "body": {},
    }


def test_encode_request_writes_utf8_not_escapes() -> None:
    data = encode_request(Cmd.RESPOND_WELCOME, "R", TextReply(text=TextBody("欢迎")))
    assert "欢迎".encode() in data


def test_encode_ack_and_push_round_trip() -> None:
    ack = ack_of(decode_frame(encode_ack("R", 6000, "conflict")))
    assert (ack.req_id, ack.errcode, ack.errmsg, ack.ok) == ("R", 6000, "conflict", False)
    ok = ack_of(decode_frame(encode_ack("R2", body=UploadInitResult("UP1"))))
    assert ok.ok
    assert msgspec.json.decode(ok.body, type=UploadInitResult) == UploadInitResult("UP1")
    assert b"body" not in encode_ack("R3")
    body = parsed(CALLBACKS["ws-s6-text"].text)
    env = decode_frame(encode_push(Cmd.MSG_CALLBACK, "CB1", body))
    assert (env.cmd, env.req_id) == ("aibot_msg_callback", "CB1")
    assert decode_callback(env.body) == decode_callback(CALLBACKS["ws-s6-text"].text.encode())


# ---- round trips ----------------------------------------------------------------------------------

ROUND_TRIP_REPLIES = [c.values[1] for c in REPLY_CASES] + [
    StreamReply(stream=StreamBody(id="S", finish=True, content="", msg_item=[IMAGE_ITEM] * 3)),
    StreamWithCardReply(
        stream=StreamBody(id="S", finish=True, content="c", msg_item=[IMAGE_ITEM]),
        template_card=ALERT_CARD,
    ),
    TemplateCardReply(template_card=ALERT_CARD),
    MarkdownReply(markdown=MarkdownBody("")),
]


@pytest.mark.parametrize("reply", ROUND_TRIP_REPLIES, ids=lambda r: type(r).__name__)
def test_reply_round_trips(reply: Any) -> None:
    data = encode_body(reply)
    assert msgspec.json.decode(data, type=AnyReply) == reply
    assert msgspec.json.decode(data, type=type(reply)) == reply
    env = decode_frame(encode_request(Cmd.RESPOND_MSG, "CB", reply))
    assert msgspec.json.decode(env.body, type=AnyReply) == reply


@settings(max_examples=100, deadline=None)
@given(
    stream_id=st.text(max_size=20),
    content=st.text(max_size=200),
    finish=st.booleans(),
    feedback=st.none() | st.text(min_size=1, max_size=10),
    n_items=st.integers(0, 3),
    req_id=st.text(max_size=20),
)
def test_stream_reply_frame_round_trips(
    stream_id: str, content: str, finish: bool, feedback: str | None, n_items: int, req_id: str
) -> None:
    reply = StreamReply(
        stream=StreamBody(
            id=stream_id,
            finish=finish,
            content=content,
            msg_item=[IMAGE_ITEM] * n_items or None,
            feedback=Feedback(feedback) if feedback else None,
        )
    )
    data = encode_request(Cmd.RESPOND_MSG, req_id, reply)
    env = decode_frame(data)
    assert (env.cmd, env.req_id) == (Cmd.RESPOND_MSG, req_id)
    assert msgspec.json.decode(env.body, type=AnyReply) == reply
    wire = parsed(data)["body"]["stream"]
    assert wire["content"] == content and wire["finish"] is finish and wire["id"] == stream_id


@pytest.mark.parametrize(
    "body",
    [
        SubscribeBody(bot_id="B", secret="S", scene=1),
        UploadInitBody(type="file", filename="f", total_size=1, total_chunks=1, md5="m"),
        UploadChunkBody(upload_id="U", chunk_index=99, base64_data="QUJD"),
        UploadFinishBody(upload_id="U"),
        UpdateCardReply(template_card=ALERT_CARD, userids=["a", "b"]),
        SEND_MSG_CASES[2][1],
    ],
    ids=lambda b: type(b).__name__,
)
def test_request_body_round_trips_through_a_frame(body: Any) -> None:
    env = decode_frame(encode_request("any_cmd", "R", body))
    assert msgspec.json.decode(env.body, type=type(body)) == body


# ---- secrets ------------------------------------------------------------------------------------


def test_subscribe_body_repr_never_shows_the_secret() -> None:
    body = SubscribeBody(bot_id="BOTID", secret="s3cr3t-VALUE")
    for text in (repr(body), str(body), f"{body}", f"{body!r}", repr([body]), repr({"b": body})):
        assert "s3cr3t-VALUE" not in text
        assert "BOTID" in text
    # ...while the wire, of course, carries it
    assert parsed(encode_request(Cmd.SUBSCRIBE, "R", body))["body"]["secret"] == "s3cr3t-VALUE"


def test_subscribe_body_rich_repr_hides_the_secret() -> None:
    body = SubscribeBody(bot_id="BOTID", secret="s3cr3t-VALUE")
    assert "s3cr3t-VALUE" not in repr(list(body.__rich_repr__()))


def test_reply_types_are_frozen() -> None:
    reply = StreamReply(stream=StreamBody(id="S", finish=False, content="c"))
    with pytest.raises(AttributeError):
        reply.stream = StreamBody(id="T", finish=True, content="")  # type: ignore[misc]
    msg = decode_callback(CALLBACKS["ws-s6-text"].text.encode())
    with pytest.raises(AttributeError):
        msg.msgid = "other"  # type: ignore[misc]
