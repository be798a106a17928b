"""Template card builders (sans-IO): the documented shapes and every documented limit."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from wecom_actors import WeComError, cards
from wecom_actors.cards import (
    ActionItem,
    ActionMenu,
    Button,
    ButtonSelection,
    CardAction,
    CardError,
    CardImage,
    CardSource,
    Checkbox,
    CheckboxOption,
    EmphasisContent,
    HorizontalContent,
    ImageTextArea,
    JumpItem,
    MainTitle,
    QuoteArea,
    SelectOption,
    SubmitButton,
    TemplateCard,
    VerticalContent,
)
from wecom_actors.protocol.replies import TemplateCardReply, UpdateCardReply, encode_body

URL = "https://work.weixin.qq.com/?from=openApi"


def wire(obj: object) -> Any:
    return json.loads(encode_body(obj))


# --- the documented shapes -----------------------------------------------------------------------


def test_text_notice_encodes_to_the_official_example() -> None:
    # The complete text_notice example of the official "模板卡片类型" page.
    card = cards.text_notice(
        source=CardSource(icon_url="https://wework.qpic.cn/icon/0", desc="企业微信", desc_color=0),
        action_menu=ActionMenu(
            desc="消息气泡副交互辅助文本说明",
            action_list=[ActionItem(text="接收推送", key="action_key1"), ActionItem(text="不再推送", key="action_key2")],
        ),
        main_title=MainTitle(title="欢迎使用企业微信", desc="您的好友正在邀请您加入企业微信"),
        emphasis_content=EmphasisContent(title="100", desc="数据含义"),
        quote_area=QuoteArea(type=1, url=URL, appid="APPID", pagepath="PAGEPATH", title="引用文本标题", quote_text="Jack"),
        sub_title_text="下载企业微信还能抢红包！",
        horizontal_content_list=[
            HorizontalContent(keyname="邀请人", value="张三"),
            HorizontalContent(keyname="企微官网", value="点击访问", type=1, url=URL),
        ],
        jump_list=[
            JumpItem(type=1, url=URL, title="企业微信官网"),
            JumpItem(type=2, appid="APPID", pagepath="PAGEPATH", title="跳转小程序"),
            JumpItem(type=3, title="企业微信官网", question="如何登录企业微信官网"),
        ],
        card_action=CardAction(type=1, url=URL, appid="APPID", pagepath="PAGEPATH"),
        task_id="task_id",
    )
    assert wire(card) == {
        "card_type": "text_notice",
        "source": {"icon_url": "https://wework.qpic.cn/icon/0", "desc": "企业微信", "desc_color": 0},
        "action_menu": {
            "desc": "消息气泡副交互辅助文本说明",
            "action_list": [{"text": "接收推送", "key": "action_key1"}, {"text": "不再推送", "key": "action_key2"}],
        },
        "main_title": {"title": "欢迎使用企业微信", "desc": "您的好友正在邀请您加入企业微信"},
        "emphasis_content": {"title": "100", "desc": "数据含义"},
        "quote_area": {"type": 1, "url": URL, "appid": "APPID", "pagepath": "PAGEPATH", "title": "引用文本标题", "quote_text": "Jack"},
        "sub_title_text": "下载企业微信还能抢红包！",
        "horizontal_content_list": [
            {"keyname": "邀请人", "value": "张三"},
            {"keyname": "企微官网", "value": "点击访问", "type": 1, "url": URL},
        ],
        "jump_list": [
            {"type": 1, "url": URL, "title": "企业微信官网"},
            {"type": 2, "appid": "APPID", "pagepath": "PAGEPATH", "title": "跳转小程序"},
            {"type": 3, "title": "企业微信官网", "question": "如何登录企业微信官网"},
        ],
        "card_action": {"type": 1, "url": URL, "appid": "APPID", "pagepath": "PAGEPATH"},
        "task_id": "task_id",
    }


def test_button_card_reply_and_update_match_the_spec_scenario() -> None:
    # The card conformance scenario: the reply body, then the update to a text_notice with the same task_id.
    card = cards.button_interaction(main_title="Confirm?", button_list=[Button(text="OK", key="ok", style=1)], task_id="T1")
    assert wire(TemplateCardReply(template_card=card)) == {
        "msgtype": "template_card",
        "template_card": {
            "card_type": "button_interaction",
            "main_title": {"title": "Confirm?"},
            "button_list": [{"text": "OK", "key": "ok", "style": 1}],
            "task_id": "T1",
        },
    }
    new = cards.updated(
        card, card_type="text_notice", main_title="Confirmed", button_list=None, card_action=CardAction(type=1, url="https://example.com")
    )
    assert wire(UpdateCardReply(template_card=new)) == {
        "response_type": "update_template_card",
        "template_card": {
            "card_type": "text_notice",
            "main_title": {"title": "Confirmed"},
            "card_action": {"type": 1, "url": "https://example.com"},
            "task_id": "T1",
        },
    }


def test_news_vote_and_multiple_shapes() -> None:
    news = cards.news_notice(
        main_title="欢迎使用企业微信",
        card_image=CardImage(url="https://wework.qpic.cn/img/0", aspect_ratio=2.25),
        vertical_content_list=[VerticalContent(title="惊喜红包等你来拿", desc="下载企业微信还能抢红包！")],
        card_action=CardAction(type=2, appid="APPID", pagepath="PAGEPATH"),
        feedback_id="fb1",
    )
    assert wire(news) == {
        "card_type": "news_notice",
        "main_title": {"title": "欢迎使用企业微信"},
        "card_action": {"type": 2, "appid": "APPID", "pagepath": "PAGEPATH"},
        "card_image": {"url": "https://wework.qpic.cn/img/0", "aspect_ratio": 2.25},
        "vertical_content_list": [{"title": "惊喜红包等你来拿", "desc": "下载企业微信还能抢红包！"}],
        "feedback": {"id": "fb1"},
    }
    vote = cards.vote_interaction(
        main_title=MainTitle(title="t"),
        checkbox=Checkbox(
            question_key="question_key",
            option_list=[CheckboxOption(id="id_one", text="1"), CheckboxOption(id="id_two", text="2", is_checked=True)],
            disable=False,
            mode=1,
        ),
        submit_button=SubmitButton(text="提交", key="submit_key"),
        task_id="task_id",
    )
    assert wire(vote)["checkbox"] == {
        "question_key": "question_key",
        "option_list": [{"id": "id_one", "text": "1"}, {"id": "id_two", "text": "2", "is_checked": True}],
        "mode": 1,
        "disable": False,
    }
    multi = cards.multiple_interaction(
        main_title="t",
        select_list=[
            ButtonSelection(question_key="q1", title="选择标签1", selected_id="id_one", option_list=[SelectOption(id="id_one", text="a")]),
            ButtonSelection(question_key="q2", option_list=[SelectOption(id="id_three", text="c")]),
        ],
        submit_button=SubmitButton(text="提交", key="submit_key"),
        task_id="task_id",
    )
    assert [s["question_key"] for s in wire(multi)["select_list"]] == ["q1", "q2"]
    assert wire(multi)["submit_button"] == {"text": "提交", "key": "submit_key"}


# --- every limit ---------------------------------------------------------------------------------


def buttons(n: int, **kw: Any) -> list[Button]:
    return [Button(text=f"b{i}", key=f"k{i}", **kw) for i in range(n)]


def options(n: int, cls: type = SelectOption, *, id_len: int = 0) -> list[Any]:
    return [cls(id=(f"o{i}" + "x" * id_len), text=f"o{i}") for i in range(n)]


ACTION = CardAction(type=1, url=URL)
SUBMIT = SubmitButton(text="go", key="go")


def text(**kw: Any) -> TemplateCard:
    return cards.text_notice(**({"card_action": ACTION, "main_title": "t"} | kw))


def news(**kw: Any) -> TemplateCard:
    return cards.news_notice(**({"card_action": ACTION, "main_title": "t", "card_image": CardImage(url=URL)} | kw))


def button(**kw: Any) -> TemplateCard:
    return cards.button_interaction(**({"main_title": "t", "button_list": buttons(2), "task_id": "T"} | kw))


def vote(**kw: Any) -> TemplateCard:
    box = Checkbox(question_key="q", option_list=options(2, CheckboxOption))
    return cards.vote_interaction(**({"main_title": "t", "checkbox": box, "submit_button": SUBMIT, "task_id": "T"} | kw))


def multi(**kw: Any) -> TemplateCard:
    sel = [ButtonSelection(question_key="q", option_list=options(2))]
    return cards.multiple_interaction(**({"main_title": "t", "select_list": sel, "submit_button": SUBMIT, "task_id": "T"} | kw))


MENU = ActionMenu(desc="d", action_list=[ActionItem(text="a", key="a")])

OK_CASES: dict[str, Callable[[], TemplateCard]] = {
    "6 buttons, styles 1-4": lambda: button(button_list=[*buttons(4, style=1), Button("x", "x", style=4), Button("y", "y")]),
    "task_id of 128 bytes, full charset": lambda: button(task_id=("aZ09_-@" * 19)[:128]),
    "text_notice without task_id": lambda: text(),
    "text_notice title from sub_title_text": lambda: text(main_title=None, sub_title_text="s"),
    "news with image_text_area only": lambda: news(card_image=None, image_text_area=ImageTextArea(image_url=URL)),
    "6 horizontal, 3 jumps": lambda: text(
        horizontal_content_list=[HorizontalContent(keyname=str(i)) for i in range(6)], jump_list=[JumpItem(title="j")] * 3
    ),
    "4 vertical": lambda: news(vertical_content_list=[VerticalContent(title="v")] * 4),
    "menu of 3 with task_id": lambda: text(action_menu=ActionMenu(desc="d", action_list=[ActionItem("a", "a"), ActionItem("b", "b"), ActionItem("c", "c")]), task_id="T"),
    "20 checkbox options": lambda: vote(checkbox=Checkbox(question_key="q", option_list=options(20, CheckboxOption))),
    "3 selectors of 10": lambda: multi(select_list=[ButtonSelection(question_key=f"q{i}", option_list=options(10)) for i in range(3)]),
    "key of 1024 bytes": lambda: button(button_list=[Button("b", "k" * 1024)]),
    "option id of 128 bytes": lambda: vote(checkbox=Checkbox(question_key="q", option_list=[CheckboxOption(id="i" * 128, text="t")])),
    "feedback id of 256 bytes": lambda: button(feedback_id="f" * 256),
    "jump question of 200 bytes": lambda: text(jump_list=[JumpItem(title="j", type=3, question="问" * 66)]),
    "aspect ratio 1.3": lambda: news(card_image=CardImage(url=URL, aspect_ratio=1.3)),
}


@pytest.mark.parametrize("make", OK_CASES.values(), ids=OK_CASES.keys())
def test_valid_cards_at_the_limits(make: Callable[[], TemplateCard]) -> None:
    card = make()
    assert cards.validate_card(card) is card


BAD_CASES: dict[str, tuple[Callable[[], TemplateCard], str]] = {
    "7 buttons": (lambda: button(button_list=buttons(7)), "button_list"),
    "no buttons": (lambda: button(button_list=[]), "button_list"),
    "style 0": (lambda: button(button_list=[Button("b", "k", style=0)]), "button_list[0].style"),
    "style 5": (lambda: button(button_list=[Button("a", "a"), Button("b", "k", style=5)]), "button_list[1].style"),
    "duplicate button keys": (lambda: button(button_list=[Button("a", "k"), Button("b", "k")]), "button_list"),
    "empty button key": (lambda: button(button_list=[Button("a", "")]), "button_list[0].key"),
    "key of 1025 bytes": (lambda: button(button_list=[Button("b", "键" * 341 + "kk")]), "button_list[0].key"),
    "task_id with a space": (lambda: button(task_id="a b"), "task_id"),
    "task_id non-ASCII": (lambda: button(task_id="任务"), "task_id"),
    "task_id of 129 bytes": (lambda: button(task_id="t" * 129), "task_id"),
    "task_id empty": (lambda: button(task_id=""), "task_id"),
    "vote without task_id": (lambda: vote(task_id=None), "task_id"),
    "multiple without task_id": (lambda: multi(task_id=None), "task_id"),
    "menu without task_id": (lambda: text(action_menu=MENU), "task_id"),
    "menu of 0": (lambda: text(action_menu=ActionMenu(desc="d", action_list=[]), task_id="T"), "action_menu.action_list"),
    "menu of 4": (lambda: text(action_menu=ActionMenu(desc="d", action_list=[ActionItem(str(i), str(i)) for i in range(4)]), task_id="T"), "action_menu.action_list"),
    "text without card_action": (lambda: text(card_action=None), "card_action"),
    "news without card_action": (lambda: news(card_action=None), "card_action"),
    "card_action type 0 on a notice": (lambda: text(card_action=CardAction(type=0)), "card_action.type"),
    "card_action url missing": (lambda: text(card_action=CardAction(type=1)), "card_action.url"),
    "card_action appid missing": (lambda: news(card_action=CardAction(type=2)), "card_action.appid"),
    "text without title or subtitle": (lambda: text(main_title=None), "main_title.title"),
    "news without image": (lambda: news(card_image=None), "card_image"),
    "news without main_title": (lambda: news(main_title=None), "main_title"),
    "7 horizontal": (lambda: text(horizontal_content_list=[HorizontalContent(keyname="k")] * 7), "horizontal_content_list"),
    "horizontal url missing": (lambda: text(horizontal_content_list=[HorizontalContent(keyname="k", type=1)]), "horizontal_content_list[0].url"),
    "horizontal userid missing": (lambda: text(horizontal_content_list=[HorizontalContent(keyname="k", type=3)]), "horizontal_content_list[0].userid"),
    "horizontal type 2": (lambda: text(horizontal_content_list=[HorizontalContent(keyname="k", type=2)]), "horizontal_content_list[0].type"),
    "4 jumps": (lambda: text(jump_list=[JumpItem(title="j")] * 4), "jump_list"),
    "jump question missing": (lambda: text(jump_list=[JumpItem(title="j", type=3)]), "jump_list[0].question"),
    "jump question of 201 bytes": (lambda: text(jump_list=[JumpItem(title="j", type=3, question="q" * 201)]), "jump_list[0].question"),
    "5 vertical": (lambda: news(vertical_content_list=[VerticalContent(title="v")] * 5), "vertical_content_list"),
    "21 checkbox options": (lambda: vote(checkbox=Checkbox(question_key="q", option_list=options(21, CheckboxOption))), "checkbox.option_list"),
    "checkbox mode 2": (lambda: vote(checkbox=Checkbox(question_key="q", option_list=options(1, CheckboxOption), mode=2)), "checkbox.mode"),
    "option id of 129 bytes": (lambda: vote(checkbox=Checkbox(question_key="q", option_list=options(1, CheckboxOption, id_len=127))), "checkbox.option_list[0].id"),
    "duplicate option ids": (lambda: vote(checkbox=Checkbox(question_key="q", option_list=[CheckboxOption("a", "1"), CheckboxOption("a", "2")])), "checkbox.option_list"),
    "4 selectors": (lambda: multi(select_list=[ButtonSelection(question_key=f"q{i}", option_list=options(1)) for i in range(4)]), "select_list"),
    "no selectors": (lambda: multi(select_list=[]), "select_list"),
    "11 select options": (lambda: multi(select_list=[ButtonSelection(question_key="q", option_list=options(11))]), "select_list[0].option_list"),
    "duplicate question keys": (lambda: multi(select_list=[ButtonSelection(question_key="q", option_list=options(1))] * 2), "select_list"),
    "question_key of 1025 bytes": (lambda: multi(select_list=[ButtonSelection(question_key="q" * 1025, option_list=options(1))]), "select_list[0].question_key"),
    "button_selection of 11": (lambda: button(button_selection=ButtonSelection(question_key="q", option_list=options(11))), "button_selection.option_list"),
    "submit key of 1025 bytes": (lambda: vote(submit_button=SubmitButton(text="s", key="k" * 1025)), "submit_button.key"),
    "feedback id of 257 bytes": (lambda: button(feedback_id="f" * 257), "feedback.id"),
    "desc_color 4": (lambda: text(source=CardSource(desc_color=4)), "source.desc_color"),
    "aspect ratio 2.3": (lambda: news(card_image=CardImage(url=URL, aspect_ratio=2.3)), "card_image.aspect_ratio"),
    "quote_area url missing": (lambda: text(quote_area=QuoteArea(type=1)), "quote_area.url"),
    "image_text_area without image": (lambda: news(card_image=None, image_text_area=ImageTextArea(image_url="")), "image_text_area.image_url"),
}


@pytest.mark.parametrize(("make", "field"), BAD_CASES.values(), ids=BAD_CASES.keys())
def test_every_limit_raises_card_error_naming_the_field(make: Callable[[], TemplateCard], field: str) -> None:
    with pytest.raises(CardError) as info:
        make()
    assert info.value.field == field
    assert field in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, WeComError)


@pytest.mark.parametrize(
    ("card", "field"),
    [
        (TemplateCard(card_type="poll"), "card_type"),
        (TemplateCard(card_type="text_notice", card_action=ACTION, main_title=MainTitle("t"), button_list=buttons(1)), "button_list"),
        (TemplateCard(card_type="vote_interaction", main_title=MainTitle("t"), task_id="T", action_menu=MENU), "action_menu"),
        (TemplateCard(card_type="vote_interaction", main_title=MainTitle("t"), task_id="T", submit_button=SUBMIT), "checkbox"),
        (TemplateCard(card_type="vote_interaction", main_title=MainTitle("t"), task_id="T", checkbox=Checkbox("q", options(1, CheckboxOption))), "submit_button"),
        (TemplateCard(card_type="button_interaction", main_title=MainTitle("t"), task_id="T"), "button_list"),
    ],
)
def test_validate_card_checks_hand_built_cards(card: TemplateCard, field: str) -> None:
    with pytest.raises(CardError) as info:
        cards.validate_card(card)
    assert info.value.field == field


def test_updated_keeps_the_task_id_and_revalidates() -> None:
    card = button(task_id="T-1")
    new = cards.updated(card, main_title="You clicked yes", button_list=(Button("Done", "done", style=3),))
    assert new.task_id == "T-1" and new.main_title == MainTitle(title="You clicked yes")
    assert new.button_list == [Button("Done", "done", style=3)]
    assert cards.updated(card, task_id="T-1").task_id == "T-1"
    with pytest.raises(CardError, match="task_id"):
        cards.updated(card, task_id="T-2")
    with pytest.raises(CardError, match="task_id"):
        cards.updated(text(), main_title="x")  # a card without a task_id cannot be updated
    with pytest.raises(CardError) as info:
        cards.updated(card, button_list=buttons(7))
    assert info.value.field == "button_list"
    with pytest.raises(CardError):
        cards.updated(card, no_such_field=1)
    with pytest.raises(CardError) as info:
        cards.updated(card, card_type="text_notice", card_action=ACTION)  # button_list left over
    assert info.value.field == "button_list"
    assert cards.updated(card, feedback_id="fb").feedback is not None
