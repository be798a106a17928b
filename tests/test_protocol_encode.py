"""Tests of the sans-IO protocol core (wecom_actors.protocol): encoding replies and requests.

Synchronous on purpose (no event loop): records in, bytes out. Every reply and request body has
exactly the shape the docs show (the examples are in :mod:`tests.protocol_examples`), and what is
encoded decodes back to the same record.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wecom_actors.protocol import (
    Cmd,
    ack_of,
    decode_callback,
    decode_frame,
    encode_body,
    encode_request,
)
from wecom_actors.protocol.frames import encode_ack, encode_push
from wecom_actors.protocol.replies import (
    Feedback,
    MarkdownBody,
    MarkdownReply,
    Reply,
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
    UploadInitBody,
    UploadInitResult,
)

from .protocol_examples import CALLBACKS, parsed
from .protocol_examples_replies import (
    ALERT_CARD,
    CARD_EXAMPLES,
    CONFIRMED_CARD,
    IMAGE_ITEM,
    REPLY_CASES,
    REQUEST_BODY_CASES,
    SEND_MSG_CASES,
    UPDATE_CASES,
)
from .protocol_examples_ws import WS_FRAMES

# =================================================================================================
# Encoding: every reply and request body has exactly the shape the docs show
# =================================================================================================


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
    assert msgspec.json.decode(encode_body(reply), type=Reply) == reply


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
    assert msgspec.json.decode(data, type=Reply) == reply
    assert msgspec.json.decode(data, type=type(reply)) == reply
    env = decode_frame(encode_request(Cmd.RESPOND_MSG, "CB", reply))
    assert msgspec.json.decode(env.body, type=Reply) == reply


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
    assert msgspec.json.decode(env.body, type=Reply) == reply
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
