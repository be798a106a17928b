"""The reply and request bodies of both protocols' docs as test data: each built from the records of
:mod:`wecom_actors.protocol.replies`, with the JSON the docs show for it.

See :mod:`tests.protocol_examples` for how they were copied.
"""

from __future__ import annotations

from typing import Any

import pytest

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
    UploadInitBody,
    VideoMediaId,
    VideoReply,
    VoiceReply,
)

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

# The five card types with every field the official 模板卡片类型 page lists.
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
    # the stream scenario's frames
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
    # the long-connection stream reply example without msg_item, with feedback (first frame)
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
    # the long-connection stream reply example in full
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
    # the webhook stream reply example
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
    # the plaintext of AI-bot crypto vector E
    (
        "stream-vector-E",
        StreamReply(stream=StreamBody(id="STREAMID", finish=False, content="你好")),
        '{"msgtype":"stream","stream":{"id":"STREAMID","finish":false,"content":"你好"}}',
    ),
    # the markdown reply / response_url example
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
    # the card scenario's reply
    (
        "template-card-s11",
        TemplateCardReply(template_card=BUTTON_CARD),
        '{"msgtype":"template_card","template_card":{"card_type":"button_interaction","main_title":{"title":"Confirm?"},"button_list":[{"text":"OK","key":"ok","style":1}],"task_id":"T1"}}',
    ),
    # the stream with template card example
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
    # the media reply examples
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
    # the welcome examples of both modes
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


UPDATE_CASES = [
    # the card update body example
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
    # the card scenario's update (no userids)
    (
        "update-s11",
        UpdateCardReply(template_card=CONFIRMED_CARD),
        '{"response_type":"update_template_card","template_card":{"card_type":"text_notice","main_title":{"title":"Confirmed"},"card_action":{"type":1,"url":"https://example.com"},"task_id":"T1"}}',
    ),
    # the webhook card update example (its card is a placeholder; the shape around it is what matters)
    (
        "update-webhook",
        UpdateCardReply(template_card=CONFIRMED_CARD, userids=["USERID1", "USERID2"]),
        '{ "response_type": "update_template_card", "userids": ["USERID1","USERID2"], "template_card": {"card_type":"text_notice","main_title":{"title":"Confirmed"},"card_action":{"type":1,"url":"https://example.com"},"task_id":"T1"} }',
    ),
]


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
