"""Reply and request bodies (sans-IO): what the bot sends, shared by both modes.

A reply body is the ``body`` of ``aibot_respond_msg`` (long connection) and, encrypted, the
plaintext of a webhook answer. Each reply type is a msgspec Struct tagged on ``msgtype`` so that
encoding one writes ``{"msgtype": "...", ...}``. Limits are in :mod:`.limits`.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "Feedback",
    "FileReply",
    "ImageReply",
    "MarkdownBody",
    "MarkdownReply",
    "MediaId",
    "MsgItem",
    "MsgItemImage",
    "SendMsgBody",
    "StreamBody",
    "StreamReply",
    "StreamWithCardReply",
    "SubscribeBody",
    "TemplateCard",
    "TemplateCardReply",
    "TextReply",
    "UpdateCardReply",
    "UploadChunkBody",
    "UploadFinishBody",
    "UploadFinishResult",
    "UploadInitBody",
    "UploadInitResult",
    "VideoMediaId",
    "VideoReply",
    "VoiceReply",
    "encode_body",
]


class _Body(msgspec.Struct, frozen=True, omit_defaults=True):
    pass


class Feedback(_Body, frozen=True):
    id: str


class MsgItemImage(_Body, frozen=True):
    base64: str
    md5: str


class MsgItem(_Body, frozen=True, tag_field="msgtype", tag="image"):
    """A stream image; the tag writes ``"msgtype": "image"`` on the wire."""

    image: MsgItemImage

    @property
    def msgtype(self) -> str:
        return "image"


class StreamBody(msgspec.Struct, frozen=True, omit_defaults=True):
    """``content`` is the whole text so far (full replace), never a delta."""

    id: str
    finish: bool
    content: str
    msg_item: list[MsgItem] | None = None
    feedback: Feedback | None = None


class _Reply(msgspec.Struct, frozen=True, omit_defaults=True, tag_field="msgtype"):
    pass


class StreamReply(_Reply, frozen=True, tag="stream"):
    stream: StreamBody


class MarkdownBody(_Body, frozen=True):
    content: str
    feedback: Feedback | None = None


class MarkdownReply(_Reply, frozen=True, tag="markdown"):
    markdown: MarkdownBody


class TextBody(_Body, frozen=True):
    content: str


class TextReply(_Reply, frozen=True, tag="text"):
    """Only valid as a welcome message (enter_chat)."""

    text: TextBody


# --- template cards (the official 模板卡片类型 page) ---------------------------------------------


class CardSource(_Body, frozen=True):
    icon_url: str | None = None
    desc: str | None = None
    desc_color: int | None = None


class ActionItem(_Body, frozen=True):
    text: str
    key: str


class ActionMenu(_Body, frozen=True):
    desc: str
    action_list: list[ActionItem]


class MainTitle(_Body, frozen=True):
    title: str | None = None
    desc: str | None = None


class EmphasisContent(_Body, frozen=True):
    title: str | None = None
    desc: str | None = None


class QuoteArea(_Body, frozen=True):
    type: int | None = None
    url: str | None = None
    appid: str | None = None
    pagepath: str | None = None
    title: str | None = None
    quote_text: str | None = None


class HorizontalContent(_Body, frozen=True):
    keyname: str
    value: str | None = None
    type: int | None = None
    url: str | None = None
    userid: str | None = None


class JumpItem(_Body, frozen=True):
    title: str
    type: int | None = None
    url: str | None = None
    appid: str | None = None
    pagepath: str | None = None
    question: str | None = None


class CardAction(_Body, frozen=True):
    type: int
    url: str | None = None
    appid: str | None = None
    pagepath: str | None = None


class CardImage(_Body, frozen=True):
    url: str
    aspect_ratio: float | None = None


class ImageTextArea(_Body, frozen=True):
    image_url: str
    type: int | None = None
    url: str | None = None
    title: str | None = None
    desc: str | None = None


class VerticalContent(_Body, frozen=True):
    title: str
    desc: str | None = None


class SelectOption(_Body, frozen=True):
    id: str
    text: str


class ButtonSelection(_Body, frozen=True):
    question_key: str
    option_list: list[SelectOption]
    title: str | None = None
    selected_id: str | None = None
    disable: bool | None = None


class Button(_Body, frozen=True):
    text: str
    key: str
    style: int | None = None


class CheckboxOption(_Body, frozen=True):
    id: str
    text: str
    is_checked: bool | None = None


class Checkbox(_Body, frozen=True):
    question_key: str
    option_list: list[CheckboxOption]
    mode: int | None = None
    disable: bool | None = None


class SubmitButton(_Body, frozen=True):
    text: str
    key: str


class TemplateCard(_Body, frozen=True):
    """One struct for all five card types; builders in :mod:`wecom_actors.cards` validate."""

    card_type: str
    source: CardSource | None = None
    action_menu: ActionMenu | None = None
    main_title: MainTitle | None = None
    emphasis_content: EmphasisContent | None = None
    quote_area: QuoteArea | None = None
    sub_title_text: str | None = None
    horizontal_content_list: list[HorizontalContent] | None = None
    jump_list: list[JumpItem] | None = None
    card_action: CardAction | None = None
    card_image: CardImage | None = None
    image_text_area: ImageTextArea | None = None
    vertical_content_list: list[VerticalContent] | None = None
    button_selection: ButtonSelection | None = None
    button_list: list[Button] | None = None
    checkbox: Checkbox | None = None
    select_list: list[ButtonSelection] | None = None
    submit_button: SubmitButton | None = None
    task_id: str | None = None
    feedback: Feedback | None = None


class TemplateCardReply(_Reply, frozen=True, tag="template_card"):
    template_card: TemplateCard


class StreamWithCardReply(_Reply, frozen=True, tag="stream_with_template_card"):
    stream: StreamBody
    template_card: TemplateCard | None = None


class UpdateCardReply(
    msgspec.Struct,
    frozen=True,
    omit_defaults=True,
    tag_field="response_type",
    tag="update_template_card",
):
    """Body of ``aibot_respond_update_msg`` / webhook answer to a template_card_event."""

    template_card: TemplateCard
    userids: list[str] | None = None


# --- media ---------------------------------------------------------------------------------------


class MediaId(_Body, frozen=True):
    media_id: str


class VideoMediaId(_Body, frozen=True):
    media_id: str
    title: str | None = None
    description: str | None = None


class FileReply(_Reply, frozen=True, tag="file"):
    file: MediaId


class ImageReply(_Reply, frozen=True, tag="image"):
    image: MediaId


class VoiceReply(_Reply, frozen=True, tag="voice"):
    voice: MediaId


class VideoReply(_Reply, frozen=True, tag="video"):
    video: VideoMediaId


# --- client requests -----------------------------------------------------------------------------


class SubscribeBody(msgspec.Struct, frozen=True, omit_defaults=True):
    bot_id: str
    secret: str
    scene: int | None = None
    plug_version: str | None = None

    def __repr__(self) -> str:
        return f"SubscribeBody(bot_id={self.bot_id!r}, secret='***')"

    def __rich_repr__(self):  # type: ignore[no-untyped-def]
        yield "bot_id", self.bot_id
        yield "secret", "***"


class SendMsgBody(msgspec.Struct, frozen=True, omit_defaults=True):
    """Body of ``aibot_send_msg``: exactly one of the content fields matches ``msgtype``."""

    chatid: str
    msgtype: str
    chat_type: int | None = None
    markdown: MarkdownBody | None = None
    template_card: TemplateCard | None = None
    file: MediaId | None = None
    image: MediaId | None = None
    voice: MediaId | None = None
    video: VideoMediaId | None = None


class UploadInitBody(msgspec.Struct, frozen=True, omit_defaults=True):
    type: str
    filename: str
    total_size: int
    total_chunks: int
    md5: str | None = None


class UploadChunkBody(msgspec.Struct, frozen=True):
    upload_id: str
    chunk_index: int
    base64_data: str


class UploadFinishBody(msgspec.Struct, frozen=True):
    upload_id: str


class UploadInitResult(msgspec.Struct, frozen=True):
    upload_id: str


class UploadFinishResult(msgspec.Struct, frozen=True):
    media_id: str
    type: str = ""
    created_at: str | int | None = None


Reply = (
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

_encoder = msgspec.json.Encoder()


def encode_body(body: object) -> bytes:
    """Encode any reply/request body to JSON bytes."""
    return _encoder.encode(body)
