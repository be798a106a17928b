"""Template card builders: one typed function per card type, every documented limit checked.

Each builder returns a :class:`~wecom_actors.protocol.replies.TemplateCard` that encodes to the
JSON WeCom documents (the official "模板卡片类型" page; our limits are listed in
docs/protocol-notes.md, 'Choices where the sources disagree or are silent'). A card that breaks a rule raises :class:`CardError` naming the field, before anything is
sent::

    from wecom_actors import cards

    card = cards.button_interaction(
        main_title="Deploy to production?",
        button_list=[cards.Button("Yes", "yes", style=1), cards.Button("No", "no", style=2)],
        task_id=bot.new_task_id("deploy"),
    )
    await turn.reply_card(card)
    ...
    await turn.update_card(cards.updated(card, main_title="Deploying", button_list=[...]))

:func:`validate_card` applies the same rules to a card built by hand: the fields each type may
carry, the required ones (``card_action`` on notices, an image on ``news_notice``, ``task_id``
``[0-9A-Za-z_\\-@]{1,128}`` on interactive cards and with ``action_menu``), list lengths, the
byte limits of keys (1024), option ids (128), jump questions (200) and ``feedback.id`` (256),
and uniqueness within lists. "Suggested" text lengths (建议不超过N个字) are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from .errors import WeComError
from .protocol.limits import MAX_BUTTONS, MAX_FEEDBACK_ID_BYTES, MAX_TASK_ID_BYTES
from .protocol.replies import (
    ActionItem,
    ActionMenu,
    Button,
    ButtonSelection,
    CardAction,
    CardImage,
    CardSource,
    Checkbox,
    CheckboxOption,
    EmphasisContent,
    Feedback,
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

__all__ = [  # the builders, their error, and the card parts (re-exported from protocol.replies)
    "CARD_TYPES", "ActionItem", "ActionMenu", "Button", "ButtonSelection", "CardAction",
    "CardError", "CardImage", "CardSource", "Checkbox", "CheckboxOption", "EmphasisContent",
    "HorizontalContent", "ImageTextArea", "JumpItem", "MainTitle", "QuoteArea", "SelectOption",
    "SubmitButton", "TemplateCard", "VerticalContent", "button_interaction", "check_task_id",
    "multiple_interaction", "news_notice", "text_notice", "updated", "validate_card",
    "vote_interaction",
]  # fmt: skip

MAX_KEY_BYTES = 1024
MAX_OPTION_ID_BYTES = 128
MAX_QUESTION_BYTES = 200
MAX_HORIZONTAL = 6
MAX_JUMPS = 3
MAX_VERTICAL = 4
MAX_MENU_ACTIONS = 3
MAX_CHECKBOX_OPTIONS = 20
MAX_SELECTORS = 3
MAX_SELECT_OPTIONS = 10

_TASK_ID = re.compile(r"[0-9A-Za-z_\-@]+")

_COMMON = frozenset({"card_type", "source", "main_title", "task_id", "feedback"})
#: The fields each card type may carry (the official per-type tables; feedback on all).
ALLOWED_FIELDS: dict[str, frozenset[str]] = {
    "text_notice": _COMMON
    | {"action_menu", "emphasis_content", "quote_area", "sub_title_text", "horizontal_content_list"}
    | {"jump_list", "card_action"},
    "news_notice": _COMMON
    | {"action_menu", "card_image", "image_text_area", "quote_area", "vertical_content_list"}
    | {"horizontal_content_list", "jump_list", "card_action"},
    "button_interaction": _COMMON
    | {"action_menu", "quote_area", "sub_title_text", "horizontal_content_list", "button_selection"}
    | {"button_list", "card_action"},
    "vote_interaction": _COMMON | {"checkbox", "submit_button"},
    "multiple_interaction": _COMMON | {"select_list", "submit_button"},
}
CARD_TYPES = frozenset(ALLOWED_FIELDS)
INTERACTIVE_TYPES = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})


class CardError(WeComError, ValueError):
    """A template card breaks a documented rule; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"template card {field}: {message}")
        self.field = field


# --- builders ------------------------------------------------------------------------------------


def text_notice(
    *,
    card_action: CardAction,
    main_title: MainTitle | str | None = None,
    sub_title_text: str | None = None,
    source: CardSource | None = None,
    action_menu: ActionMenu | None = None,
    emphasis_content: EmphasisContent | None = None,
    quote_area: QuoteArea | None = None,
    horizontal_content_list: Sequence[HorizontalContent] | None = None,
    jump_list: Sequence[JumpItem] | None = None,
    task_id: str | None = None,
    feedback_id: str | None = None,
) -> TemplateCard:
    """A text notice: ``card_action`` (type 1 url / 2 mini program) and a title or subtitle."""
    return _build("text_notice", locals())


def news_notice(
    *,
    card_action: CardAction,
    main_title: MainTitle | str,
    card_image: CardImage | None = None,
    image_text_area: ImageTextArea | None = None,
    source: CardSource | None = None,
    action_menu: ActionMenu | None = None,
    quote_area: QuoteArea | None = None,
    vertical_content_list: Sequence[VerticalContent] | None = None,
    horizontal_content_list: Sequence[HorizontalContent] | None = None,
    jump_list: Sequence[JumpItem] | None = None,
    task_id: str | None = None,
    feedback_id: str | None = None,
) -> TemplateCard:
    """A picture notice: ``card_image`` or ``image_text_area`` (at least one) and ``card_action``."""
    return _build("news_notice", locals())


def button_interaction(
    *,
    main_title: MainTitle | str,
    button_list: Sequence[Button],
    task_id: str,
    source: CardSource | None = None,
    action_menu: ActionMenu | None = None,
    quote_area: QuoteArea | None = None,
    sub_title_text: str | None = None,
    horizontal_content_list: Sequence[HorizontalContent] | None = None,
    button_selection: ButtonSelection | None = None,
    card_action: CardAction | None = None,
    feedback_id: str | None = None,
) -> TemplateCard:
    """Buttons (1-6, style 1-4): a click sends a template_card_event with the button's key."""
    return _build("button_interaction", locals())


def vote_interaction(
    *,
    main_title: MainTitle | str,
    checkbox: Checkbox,
    submit_button: SubmitButton,
    task_id: str,
    source: CardSource | None = None,
    feedback_id: str | None = None,
) -> TemplateCard:
    """A vote: one checkbox question (1-20 options, mode 0 single / 1 multiple) and a submit button."""
    return _build("vote_interaction", locals())


def multiple_interaction(
    *,
    main_title: MainTitle | str,
    select_list: Sequence[ButtonSelection],
    submit_button: SubmitButton,
    task_id: str,
    source: CardSource | None = None,
    feedback_id: str | None = None,
) -> TemplateCard:
    """Drop-down questions (1-3 selectors of 1-10 options) and a submit button."""
    return _build("multiple_interaction", locals())


def updated(card: TemplateCard, **changes: Any) -> TemplateCard:
    """``card`` with ``changes`` applied, for ``aibot_respond_update_msg`` / an update reply.

    The task_id stays: WeCom matches the update to the event by it (a different one is a
    CardError). ``card_type`` may change (e.g. buttons replaced by a text notice); the result is
    validated as a whole, so fields the new type does not carry must be set to ``None``.
    Accepts the builders' conveniences: ``main_title`` as a str, ``feedback_id``, sequences.
    """
    if card.task_id is None:
        raise CardError("task_id", "an update must carry the task_id of the event it answers")
    if "task_id" in changes and changes["task_id"] != card.task_id:
        raise CardError("task_id", f"an update keeps the card's task_id {card.task_id!r}")
    fields = _normalise(changes)
    try:
        new = msgspec.structs.replace(card, **fields)
    except TypeError as exc:
        raise CardError(",".join(sorted(changes)), f"not a template card field ({exc})") from None
    return validate_card(new)


def _normalise(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name == "feedback_id":
            out["feedback"] = None if value is None else Feedback(value)
        elif name == "main_title" and isinstance(value, str):
            out[name] = MainTitle(title=value)
        elif isinstance(value, tuple | list):
            out[name] = list(value)
        else:
            out[name] = value
    return out


def _build(card_type: str, args: dict[str, Any]) -> TemplateCard:
    fields = {k: v for k, v in _normalise(args).items() if v is not None}
    return validate_card(TemplateCard(card_type=card_type, **fields))


# --- validation ----------------------------------------------------------------------------------


def validate_card(card: TemplateCard) -> TemplateCard:
    """Check ``card`` against the documented rules; return it, or raise :class:`CardError`."""
    kind = card.card_type
    allowed = ALLOWED_FIELDS.get(kind)
    if allowed is None:
        raise CardError("card_type", f"must be one of {sorted(CARD_TYPES)}, not {kind!r}")
    for name in card.__struct_fields__:
        if getattr(card, name) is not None and name not in allowed:
            raise CardError(name, f"is not part of a {kind} card")
    if kind in ("text_notice", "news_notice"):
        if card.card_action is None:
            raise CardError("card_action", f"is required for {kind}")
        _check_action(card.card_action, "card_action", types=(1, 2))
    elif card.card_action is not None:
        _check_action(card.card_action, "card_action", types=(0, 1, 2))
    if kind == "text_notice":
        if not (card.main_title and card.main_title.title) and not card.sub_title_text:
            raise CardError("main_title.title", "text_notice needs main_title.title or sub_title_text")
    elif card.main_title is None:
        raise CardError("main_title", f"is required for {kind}")
    if kind == "news_notice" and card.card_image is None and card.image_text_area is None:
        raise CardError("card_image", "news_notice needs card_image or image_text_area")
    if card.task_id is not None:
        check_task_id(card.task_id)
    elif kind in INTERACTIVE_TYPES:
        raise CardError("task_id", f"is required for {kind}")
    elif card.action_menu is not None:
        raise CardError("task_id", "is required when the card has an action_menu")
    if card.source is not None and card.source.desc_color not in (None, 0, 1, 2, 3):
        raise CardError("source.desc_color", f"must be 0-3, not {card.source.desc_color}")
    if card.action_menu is not None:
        _check_count(card.action_menu.action_list, "action_menu.action_list", MAX_MENU_ACTIONS)
        _check_keys((a.key for a in card.action_menu.action_list), "action_menu.action_list")
    if card.quote_area is not None:
        _check_action(card.quote_area, "quote_area", types=(0, 1, 2), optional=True)
    if card.image_text_area is not None:
        _check_action(card.image_text_area, "image_text_area", types=(0, 1, 2), optional=True)
        _nonempty(card.image_text_area.image_url, "image_text_area.image_url")
    if card.card_image is not None:
        _check_image(card.card_image)
    _check_lists(card)
    if card.feedback is not None:
        _check_bytes(card.feedback.id, "feedback.id", MAX_FEEDBACK_ID_BYTES)
    return card


def check_task_id(task_id: str) -> str:
    """``[0-9A-Za-z_\\-@]``, 1 to 128 bytes (unique per bot: that part is the caller's)."""
    if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
        raise CardError("task_id", f"only digits, letters and _-@ are allowed: {task_id!r}")
    if len(task_id) > MAX_TASK_ID_BYTES:
        raise CardError("task_id", f"is {len(task_id)} bytes, at most {MAX_TASK_ID_BYTES}")
    return task_id


def _check_lists(card: TemplateCard) -> None:
    if card.horizontal_content_list is not None:
        _check_count(card.horizontal_content_list, "horizontal_content_list", MAX_HORIZONTAL, minimum=0)
        for i, h in enumerate(card.horizontal_content_list):
            where = f"horizontal_content_list[{i}]"
            if h.type not in (None, 0, 1, 3):
                raise CardError(f"{where}.type", f"must be 0, 1 or 3, not {h.type}")
            if h.type == 1:
                _nonempty(h.url, f"{where}.url")
            if h.type == 3:
                _nonempty(h.userid, f"{where}.userid")
    if card.jump_list is not None:
        _check_count(card.jump_list, "jump_list", MAX_JUMPS, minimum=0)
        for i, j in enumerate(card.jump_list):
            where = f"jump_list[{i}]"
            if j.type not in (None, 0, 1, 2, 3):
                raise CardError(f"{where}.type", f"must be 0-3, not {j.type}")
            if j.type == 1:
                _nonempty(j.url, f"{where}.url")
            elif j.type == 2:
                _nonempty(j.appid, f"{where}.appid")
            elif j.type == 3:
                _nonempty(j.question, f"{where}.question")
            if j.question is not None:
                _check_bytes(j.question, f"{where}.question", MAX_QUESTION_BYTES)
    if card.vertical_content_list is not None:
        _check_count(card.vertical_content_list, "vertical_content_list", MAX_VERTICAL, minimum=0)
    if card.button_list is not None:
        minimum = 1 if card.card_type == "button_interaction" else 0
        _check_count(card.button_list, "button_list", MAX_BUTTONS, minimum=minimum)
        for i, b in enumerate(card.button_list):
            if b.style is not None and not 1 <= b.style <= 4:
                raise CardError(f"button_list[{i}].style", f"must be 1-4, not {b.style}")
        _check_keys((b.key for b in card.button_list), "button_list")
    elif card.card_type == "button_interaction":
        raise CardError("button_list", "is required for button_interaction")
    if card.button_selection is not None:
        _check_selection(card.button_selection, "button_selection")
    if card.select_list is not None:
        _check_count(card.select_list, "select_list", MAX_SELECTORS)
        for i, s in enumerate(card.select_list):
            _check_selection(s, f"select_list[{i}]")
        _check_unique([s.question_key for s in card.select_list], "select_list", "question_key")
    elif card.card_type == "multiple_interaction":
        raise CardError("select_list", "is required for multiple_interaction")
    if card.checkbox is not None:
        box = card.checkbox
        _check_keys([box.question_key], "checkbox.question_key", indexed=False)
        if box.mode not in (None, 0, 1):
            raise CardError("checkbox.mode", f"must be 0 (single) or 1 (multiple), not {box.mode}")
        _check_count(box.option_list, "checkbox.option_list", MAX_CHECKBOX_OPTIONS)
        _check_ids([o.id for o in box.option_list], "checkbox.option_list")
    elif card.card_type == "vote_interaction":
        raise CardError("checkbox", "is required for vote_interaction")
    if card.submit_button is not None:
        _check_keys([card.submit_button.key], "submit_button.key", indexed=False)
    elif card.card_type in ("vote_interaction", "multiple_interaction"):
        raise CardError("submit_button", f"is required for {card.card_type}")


def _check_selection(sel: ButtonSelection, where: str) -> None:
    _check_keys([sel.question_key], f"{where}.question_key", indexed=False)
    _check_count(sel.option_list, f"{where}.option_list", MAX_SELECT_OPTIONS)
    _check_ids([o.id for o in sel.option_list], f"{where}.option_list")


def _check_action(obj: Any, where: str, *, types: tuple[int, ...], optional: bool = False) -> None:
    kind = obj.type
    if kind is None and optional:
        return
    if kind not in types:
        raise CardError(f"{where}.type", f"must be one of {list(types)}, not {kind}")
    if kind == 1:
        _nonempty(obj.url, f"{where}.url")
    elif kind == 2:
        _nonempty(obj.appid, f"{where}.appid")


def _check_image(image: CardImage) -> None:
    _nonempty(image.url, "card_image.url")
    ratio = image.aspect_ratio
    if ratio is not None and not 1.3 <= ratio <= 2.25:
        raise CardError("card_image.aspect_ratio", f"must be between 1.3 and 2.25, not {ratio}")


def _check_count(items: Sequence[object], where: str, maximum: int, *, minimum: int = 1) -> None:
    if not minimum <= len(items) <= maximum:
        raise CardError(where, f"has {len(items)} items; {minimum} to {maximum} are allowed")


def _check_keys(keys: Iterable[str], where: str, *, indexed: bool = True) -> None:
    keys = list(keys)
    for i, key in enumerate(keys):
        name = f"{where}[{i}].key" if indexed else where
        _nonempty(key, name)
        _check_bytes(key, name, MAX_KEY_BYTES)
    _check_unique(keys, where, "key")


def _check_ids(ids: list[str], where: str) -> None:
    for i, option_id in enumerate(ids):
        _nonempty(option_id, f"{where}[{i}].id")
        _check_bytes(option_id, f"{where}[{i}].id", MAX_OPTION_ID_BYTES)
    _check_unique(ids, where, "id")


def _check_unique(values: list[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise CardError(where, f"{what} {value!r} appears twice; they must be unique")
        seen.add(value)


def _check_bytes(text: str, where: str, limit: int) -> None:
    size = len(text.encode("utf-8"))
    if size > limit:
        raise CardError(where, f"is {size} bytes UTF-8, at most {limit}")


def _nonempty(value: str | None, where: str) -> None:
    if not value:
        raise CardError(where, "is required here and must not be empty")
