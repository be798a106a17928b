"""The callback bodies of the webhook docs as test data.

See :mod:`tests.protocol_examples` for how they were copied.
"""

from __future__ import annotations

from wecom_actors.protocol import (
    EnterChatEvent,
    FeedbackEvent,
    FileMessage,
    ImageMessage,
    MixedMessage,
    StreamRefresh,
    TemplateCardEvent,
    TextMessage,
    UnknownEvent,
    VideoMessage,
    VoiceMessage,
)

from .protocol_examples_ws import C

MSGID_ESCAPED = r"CAIQ16HMjQYY\/NGagIOAgAMgq4KM0AI="
MSGID = "CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI="

WH_TEXT = r"""{
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

WH_CALLBACKS: dict[str, C] = {
    "wh-text-quote": C(
        WH_TEXT,
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
    # the webhook docs' common event envelope: the placeholder eventtype is an eventtype this version does not know
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
    # plaintexts of the AI-bot crypto vectors (exact bytes; tests/crypto_vectors.py)
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
