"""The examples of the long-connection docs as test data: frames and callback bodies.

See :mod:`tests.protocol_examples` for how they were copied.
"""

from __future__ import annotations

from typing import NamedTuple

from wecom_actors.protocol import (
    DisconnectedEvent,
    EnterChatEvent,
    FeedbackEvent,
    FileMessage,
    ImageMessage,
    MixedMessage,
    TemplateCardEvent,
    TextMessage,
    VideoMessage,
    VoiceMessage,
)

# =================================================================================================
# Frames (stage one): every frame example of the long-connection docs
# =================================================================================================


class F(NamedTuple):
    text: str
    cmd: str | None
    req_id: str
    errcode: int | None = None
    errmsg: str | None = None


WS_FRAMES: dict[str, F] = {
    # the generic ack example
    "ack-generic": F(
        '{ "headers": { "req_id": "<echo of request req_id>" }, "errcode": 0, "errmsg": "ok" }',
        None,
        "<echo of request req_id>",
        0,
        "ok",
    ),
    # the subscribe example and its ack
    "subscribe": F(
        """{ "cmd": "aibot_subscribe", "headers": { "req_id": "REQUEST_ID" },
  "body": { "bot_id": "BOTID", "secret": "SECRET" } }""",
        "aibot_subscribe",
        "REQUEST_ID",
    ),
    "subscribe-ok": F(
        '{"headers":{"req_id":"REQUEST_ID"},"errcode":0,"errmsg":"ok"}', None, "REQUEST_ID", 0, "ok"
    ),
    # the heartbeat example
    "ping": F('{"cmd":"ping","headers":{"req_id":"REQUEST_ID"}}', "ping", "REQUEST_ID"),
    # the message callback example
    "msg-callback": F(
        """{ "cmd": "aibot_msg_callback", "headers": { "req_id": "REQUEST_ID" },
  "body": { "msgid": "MSGID", "aibotid": "AIBOTID", "chatid": "CHATID", "chattype": "group",
            "from": { "userid": "USERID" }, "msgtype": "text", "text": { "content": "@RobotA hello robot" } } }""",
        "aibot_msg_callback",
        "REQUEST_ID",
    ),
    # the event callback example
    "event-callback": F(
        """{ "cmd": "aibot_event_callback", "headers": { "req_id": "REQUEST_ID" },
  "body": { "msgid": "MSGID", "create_time": 1700000000, "aibotid": "AIBOTID",
            "from": { "userid": "USERID" }, "msgtype": "event",
            "event": { "eventtype": "enter_chat" } } }""",
        "aibot_event_callback",
        "REQUEST_ID",
    ),
    # the kick-out (disconnected_event) example
    "disconnected-event": F(
        """{ "cmd": "aibot_event_callback", "headers": { "req_id": "REQUEST_ID" },
  "body": { "msgid": "MSGID", "create_time": 1700000000, "aibotid": "AIBOTID",
            "msgtype": "event", "event": { "eventtype": "disconnected_event" } } }""",
        "aibot_event_callback",
        "REQUEST_ID",
    ),
    # the welcome example
    "welcome": F(
        """{ "cmd": "aibot_respond_welcome_msg", "headers": { "req_id": "<enter_chat callback req_id>" },
  "body": { "msgtype": "text", "text": { "content": "您好！我是智能助手，有什么可以帮您的吗？" } } }""",
        "aibot_respond_welcome_msg",
        "<enter_chat callback req_id>",
    ),
    # the card update example
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
    # the proactive push example
    "send-msg": F(
        """{ "cmd": "aibot_send_msg", "headers": { "req_id": "REQUEST_ID" },
  "body": { "chatid": "CHATID", "chat_type": 1, "msgtype": "markdown",
            "markdown": { "content": "这是一条**主动推送**的消息" } } }""",
        "aibot_send_msg",
        "REQUEST_ID",
    ),
    # the chunked upload examples
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
    # frames of the usual conformance scenarios (subscribe, stream, ...)
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


# =================================================================================================
# Callback bodies (stage two): every message and event example of the long-connection docs
# =================================================================================================


class C(NamedTuple):
    text: str
    cls: type
    checks: dict[str, object]


WS_CALLBACKS: dict[str, C] = {
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
    # the long-connection message table: image/file/video carry a per-URL aeskey; voice is text only
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
    # the card event example (fragment wrapped in the common event body)
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
    # the feedback event example (fragment wrapped)
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
}
