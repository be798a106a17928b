"""The rules of the fake WeCom long connection, without any networking (sans-IO).

:class:`Rules` owns everything a request can read or change: the callbacks the fake pushed, the
conversations (what the user sees), streams, uploads and media. :meth:`Rules.handle` takes one
decoded request of a subscribed connection plus the trio time it arrived and returns the ack
(errcode, errmsg, body). The protocol facts behind the rules are in docs/protocol-notes.md
('Long-connection details'); the rules as a table in docs/testing-fake-openws.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._openws_common import FakeErrcode, Rejected, obj, param, string, within_rate
from ._openws_records import Bubble, StreamView
from ._openws_uploads import MEDIA_TTL, UPLOAD_TYPES, Media, Upload, UploadRules

__all__ = ["BotState", "CallbackInfo", "FakeErrcode", "Rejected", "Rules"]

MAX_CONTENT_BYTES = 20480  # stream and markdown content, UTF-8 bytes
MAX_FEEDBACK_ID_BYTES = 256
MAX_MSG_ITEMS = 10  # stream images, finish frame only
STREAM_WINDOW = 360.0  # a stream lives 6 minutes from its first frame ("6分钟超时限制")
EVENT_REPLY_WINDOW = 5.0  # welcome and card update
REPLY_WINDOW = 24 * 3600.0  # "24 小时内可以往该会话回复消息": replies within 24 h
CARD_TYPES = frozenset(
    {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
)  # the five template card types
MAX_BUTTONS = 6
_TASK_ID = re.compile(r"[0-9A-Za-z_\-@]{1,128}")  # unique per bot


def _check_content(content: str, what: str) -> None:
    size = len(content.encode("utf-8"))
    if size > MAX_CONTENT_BYTES:
        raise Rejected(
            FakeErrcode.CONTENT_TOO_LONG,
            f"content size out of limit: {what} is {size} bytes, at most {MAX_CONTENT_BYTES}",
        )


def _check_feedback(part: dict[str, Any]) -> str | None:
    fb = part.get("feedback")
    if fb is None:
        return None
    if not isinstance(fb, dict):
        raise param("feedback must be an object")
    fid = string(fb, "id")
    if len(fid.encode("utf-8")) > MAX_FEEDBACK_ID_BYTES:
        raise param(f"feedback.id longer than {MAX_FEEDBACK_ID_BYTES} bytes")
    return fid


@dataclass(slots=True)
class _Bubble:
    kind: Any
    req_id: str | None
    stream_id: str | None
    content: str
    finished: bool
    card: dict[str, Any] | None
    media_id: str | None
    time_first: float
    time_last: float
    updates: int = 0

    def freeze(self) -> Bubble:
        return Bubble(
            self.kind, self.req_id, self.stream_id, self.content, self.finished, self.card,
            self.media_id, self.updates, self.time_first, self.time_last,
        )  # fmt: skip


@dataclass(slots=True)
class CallbackInfo:
    """What the fake remembers of a pushed callback to judge the replies to it (they reuse its req_id)."""

    req_id: str
    bot_id: str
    conn_id: int
    kind: str  # "message", an event type ("enter_chat", ...) or "other"
    conv: str
    pushed_at: float
    task_id: str | None = None
    welcomed: bool = False


@dataclass(slots=True)
class _Stream:
    id: str
    req_id: str
    first_time: float
    bubble: _Bubble
    accepted: int = 0
    rejected: int = 0
    card_sent: bool = False
    msg_items: tuple[dict[str, Any], ...] = ()
    feedback_id: str | None = None

    def view(self) -> StreamView:
        b = self.bubble
        return StreamView(
            self.id, self.req_id, b.content, b.finished, self.accepted, self.rejected,
            self.first_time, self.msg_items, self.feedback_id,
        )  # fmt: skip


class BotState:
    """Everything the fake knows about one bot (bot_id + secret)."""

    def __init__(self, bot_id: str, secret: str) -> None:
        self.bot_id = bot_id
        self.secret = secret
        self.subscribes_ok = 0
        self.kicks_sent = 0  # disconnected_event frames written to this bot's connections
        self.conversations: dict[str, list[_Bubble]] = {}
        self.opened: set[str] = set()  # conversations that messaged the bot (may get pushes)
        self.sends: dict[str, deque[float]] = {}  # per conversation, for the rate limits
        self.upload_inits: deque[float] = deque()
        self.streams: dict[str, _Stream] = {}
        self.uploads: dict[str, Upload] = {}
        self.media: dict[str, Media] = {}
        self.task_ids: set[str] = set()

    def bubbles(self, conv: str) -> list[_Bubble]:
        return self.conversations.setdefault(conv, [])


class Rules(UploadRules):
    """The request rules of the long-connection protocol over the fake's state."""

    def __init__(
        self,
        *,
        rng: random.Random,
        stale_req_ids_after_reconnect: bool,
        rate_limit: bool,
        wall: Callable[[float], int],
    ) -> None:
        self.rng = rng
        self.stale_req_ids = stale_req_ids_after_reconnect
        self.rate_limit = rate_limit
        self.wall = wall
        self.callbacks: dict[str, CallbackInfo] = {}
        self.streams_by_req: dict[str, list[_Stream]] = {}

    # --- callbacks -------------------------------------------------------------------------------

    def register_callback(
        self, bot: BotState, conn_id: int, cmd: str, req_id: str, body: dict[str, Any], now: float
    ) -> CallbackInfo:
        """Remember a callback pushed on ``conn_id`` so replies to it can be judged."""
        frm = body.get("from")
        user = frm.get("userid") if isinstance(frm, dict) else None
        chatid = body.get("chatid")
        conv = (
            chatid if isinstance(chatid, str) and chatid else user if isinstance(user, str) else ""
        )
        kind, task_id = "other", None
        if cmd == "aibot_msg_callback":
            kind = "message"
            if conv:
                bot.opened.add(conv)  # push precondition: the user has messaged the bot
        elif cmd == "aibot_event_callback":
            event = body.get("event")
            if isinstance(event, dict):
                kind = str(event.get("eventtype", "other"))
                tce = event.get("template_card_event")
                src = tce if isinstance(tce, dict) else event  # nested layout, flat fallback
                tid = src.get("task_id")
                task_id = tid if isinstance(tid, str) else None
        info = CallbackInfo(req_id, bot.bot_id, conn_id, kind, conv, now, task_id)
        self.callbacks[req_id] = info
        return info

    # --- requests --------------------------------------------------------------------------------

    def handle(
        self, bot: BotState, conn_id: int, cmd: str, req_id: str, body: Any, now: float
    ) -> tuple[int, str, dict[str, Any] | None]:
        """Judge and apply one request; returns ``(errcode, errmsg, ack_body)``."""
        try:
            if cmd == "ping":
                return 0, "ok", None
            if not isinstance(body, dict):
                if cmd not in _HANDLERS:
                    raise param(f"unknown cmd {cmd!r}")
                raise param("body must be an object")
            handler = _HANDLERS.get(cmd)
            if handler is None:
                raise param(f"unknown cmd {cmd!r}")
            return 0, "ok", handler(self, bot, conn_id, req_id, body, now)
        except Rejected as exc:
            self.count_rejected(bot, cmd, req_id, body)
            return exc.errcode, exc.errmsg, None

    def count_rejected(self, bot: BotState, cmd: str, req_id: str, body: Any) -> None:
        """Count a rejected frame against the stream it names (for :class:`StreamView`)."""
        if cmd != "aibot_respond_msg" or not isinstance(body, dict):
            return
        stream = body.get("stream")
        sid = stream.get("id") if isinstance(stream, dict) else None
        st = bot.streams.get(sid) if isinstance(sid, str) else None
        if st is not None and st.req_id == req_id:
            st.rejected += 1

    def _reply_target(self, bot: BotState, conn_id: int, req_id: str) -> CallbackInfo:
        # Replies reuse the req_id of a callback the server pushed.
        cb = self.callbacks.get(req_id)
        if cb is None or cb.bot_id != bot.bot_id:
            raise Rejected(FakeErrcode.INVALID_REQ_ID, "invalid req_id")
        if self.stale_req_ids and cb.conn_id != conn_id:
            # Stale req_ids (see protocol-notes.md): req_ids die with their connection.
            raise Rejected(
                FakeErrcode.INVALID_REQ_ID, "invalid req_id (pushed on another connection)"
            )
        return cb

    def _count_message(self, bot: BotState, conv: str, now: float) -> None:
        # Replies + pushes, 30/min and 1000/h per conversation. Must be the last check.
        if self.rate_limit:
            within_rate(bot.sends.setdefault(conv, deque()), now, "messages")

    def _check_card(self, bot: BotState, card: Any, *, new: bool) -> dict[str, Any]:
        if not isinstance(card, dict):
            raise param("template_card must be an object")
        if card.get("card_type") not in CARD_TYPES:
            raise param(f"template_card.card_type must be one of {sorted(CARD_TYPES)}")
        task_id = card.get("task_id")
        if task_id is not None:
            if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
                raise param("template_card.task_id must match [0-9A-Za-z_-@]{1,128}")
            if new and task_id in bot.task_ids:
                raise param(f"template_card.task_id {task_id!r} already used by this bot")
        buttons = card.get("button_list")
        if buttons is not None and (not isinstance(buttons, list) or len(buttons) > MAX_BUTTONS):
            raise param(f"template_card.button_list must be a list of at most {MAX_BUTTONS}")
        _check_feedback(card)
        return card

    def _media_ref(self, bot: BotState, body: dict[str, Any], msgtype: str, now: float) -> Media:
        # Media replies carry a media_id from a chunked upload (valid 3 days).
        media_id = string(obj(body, msgtype), "media_id")
        media = bot.media.get(media_id)
        if media is None or now - media.created > MEDIA_TTL:
            raise Rejected(FakeErrcode.INVALID_MEDIA_ID, f"invalid media_id {media_id!r}")
        if media.type != msgtype:
            raise Rejected(
                FakeErrcode.INVALID_MEDIA_ID,
                f"invalid media_id: {media_id!r} was uploaded as {media.type}, not {msgtype}",
            )
        return media

    def _new_bubble(
        self, bot: BotState, conv: str, kind: str, req_id: str | None, now: float, **kw: Any
    ) -> _Bubble:
        b = _Bubble(kind, req_id, kw.get("stream_id"), kw.get("content", ""),
                    kw.get("finished", True), kw.get("card"), kw.get("media_id"), now, now)  # fmt: skip
        bot.bubbles(conv).append(b)
        if b.card is not None and isinstance(b.card.get("task_id"), str):
            bot.task_ids.add(b.card["task_id"])
        return b

    def _message(
        self, bot: BotState, conv: str, req_id: str, body: dict[str, Any], now: float, *, push: bool
    ) -> None:
        """A markdown / template_card / media message (a reply or a push)."""
        msgtype = body.get("msgtype")
        if msgtype == "markdown":
            md = obj(body, "markdown")
            content = string(md, "content", default="")
            _check_content(content, "markdown.content")
            _check_feedback(md)
            self._count_message(bot, conv, now)
            self._new_bubble(bot, conv, "markdown", req_id, now, content=content)
        elif msgtype == "template_card":
            card = self._check_card(bot, body.get("template_card"), new=True)
            self._count_message(bot, conv, now)
            self._new_bubble(bot, conv, "template_card", req_id, now, card=card)
        elif msgtype in UPLOAD_TYPES:
            media = self._media_ref(bot, body, msgtype, now)
            self._count_message(bot, conv, now)
            content = media.filename if msgtype == "file" else ""
            self._new_bubble(
                bot, conv, msgtype, req_id, now, media_id=media.media_id, content=content
            )
        else:
            allowed = "markdown, template_card, file, image, voice, video"
            if not push:
                allowed = "stream, stream_with_template_card, " + allowed
            raise Rejected(
                FakeErrcode.INVALID_MSGTYPE,
                f"invalid message type {msgtype!r} (allowed: {allowed})",
            )

    def respond_msg(
        self, bot: BotState, conn_id: int, req_id: str, body: dict[str, Any], now: float
    ) -> None:
        """``aibot_respond_msg``: a reply to a message callback."""
        cb = self._reply_target(bot, conn_id, req_id)
        if cb.kind != "message":
            # Event req_ids cannot carry aibot_respond_msg.
            raise Rejected(FakeErrcode.INVALID_REQ_ID, f"invalid req_id (a {cb.kind} event)")
        if now - cb.pushed_at > REPLY_WINDOW:
            raise Rejected(FakeErrcode.INVALID_REQ_ID, "invalid req_id (older than 24 h)")
        msgtype = body.get("msgtype")
        if msgtype in ("stream", "stream_with_template_card"):
            self._stream_frame(bot, cb, body, now, with_card=msgtype != "stream")
        else:
            self._message(bot, cb.conv, req_id, body, now, push=False)

    def _stream_frame(
        self, bot: BotState, cb: CallbackInfo, body: dict[str, Any], now: float, *, with_card: bool
    ) -> None:
        """One frame of a stream (with or without a card); first use of an id creates the bubble."""
        stream = obj(body, "stream")
        sid = string(stream, "id")
        st = bot.streams.get(sid)
        if st is not None and st.req_id != cb.req_id:
            raise param(f"stream.id {sid!r} belongs to another message")
        finish = stream.get("finish", False)
        if not isinstance(finish, bool):
            raise param("stream.finish must be a boolean")
        content = string(stream, "content", default="")
        if st is not None:
            if st.bubble.finished:  # "消息将不再可更新"
                raise Rejected(FakeErrcode.STREAM_CLOSED, "stream already finished")
            if now - st.first_time > STREAM_WINDOW:
                raise Rejected(
                    FakeErrcode.STREAM_CLOSED, "stream expired (6 minutes after its first frame)"
                )
        _check_content(content, "stream.content")
        items = self._check_msg_items(stream.get("msg_item"), finish)
        feedback_id = _check_feedback(stream)
        card = None
        if with_card and body.get("template_card") is not None:
            if st is not None and st.card_sent:
                raise param("template_card may be sent only once per message")
            card = self._check_card(bot, body["template_card"], new=True)
        if st is None:
            self._count_message(bot, cb.conv, now)  # a stream counts once, on its first frame
            bubble = self._new_bubble(bot, cb.conv, "stream", cb.req_id, now, stream_id=sid,
                                      finished=False)  # fmt: skip
            st = _Stream(sid, cb.req_id, now, bubble, feedback_id=feedback_id)
            bot.streams[sid] = st
            self.streams_by_req.setdefault(cb.req_id, []).append(st)
        else:
            st.bubble.updates += 1
        st.accepted += 1
        st.bubble.content = content  # full replacement, not append
        st.bubble.time_last = now
        st.bubble.finished = finish
        if items:
            st.msg_items = items
        if card is not None:
            st.card_sent = True
            st.bubble.card = card
            if isinstance(card.get("task_id"), str):
                bot.task_ids.add(card["task_id"])

    @staticmethod
    def _check_msg_items(items: Any, finish: bool) -> tuple[dict[str, Any], ...]:
        # Images only, at most 10, base64 + md5 of the raw bytes, finish frame only.
        if items is None:
            return ()
        if not finish:
            raise param("stream.msg_item is allowed only on the finish=true frame")
        if not isinstance(items, list) or len(items) > MAX_MSG_ITEMS:
            raise param(f"stream.msg_item must be a list of at most {MAX_MSG_ITEMS} items")
        for item in items:
            if not isinstance(item, dict) or item.get("msgtype") != "image":
                raise param("stream.msg_item items must be images")
            image = obj(item, "image")
            try:
                raw = base64.b64decode(string(image, "base64"), validate=True)
            except binascii.Error:
                raise param("msg_item image.base64 is not base64") from None
            if hashlib.md5(raw).hexdigest() != string(image, "md5").lower():
                raise param("msg_item image.md5 does not match the image")
        return tuple(items)

    def respond_welcome(
        self, bot: BotState, conn_id: int, req_id: str, body: dict[str, Any], now: float
    ) -> None:
        """A welcome: text or template_card, enter_chat only, within 5 s, once."""
        cb = self._reply_target(bot, conn_id, req_id)
        if cb.kind != "enter_chat":
            raise Rejected(FakeErrcode.INVALID_REQ_ID, f"invalid req_id (a {cb.kind} callback)")
        if now - cb.pushed_at > EVENT_REPLY_WINDOW:
            raise Rejected(
                FakeErrcode.INVALID_REQ_ID, "invalid req_id (welcome window of 5 s over)"
            )
        if cb.welcomed:
            raise Rejected(FakeErrcode.INVALID_REQ_ID, "invalid req_id (welcome already sent)")
        msgtype = body.get("msgtype")
        if msgtype == "text":
            content = string(obj(body, "text"), "content", default="")
            _check_content(content, "text.content")
            self._count_message(bot, cb.conv, now)
            self._new_bubble(bot, cb.conv, "text", req_id, now, content=content)
        elif msgtype == "template_card":
            card = self._check_card(bot, body.get("template_card"), new=True)
            self._count_message(bot, cb.conv, now)
            self._new_bubble(bot, cb.conv, "template_card", req_id, now, card=card)
        else:
            raise Rejected(
                FakeErrcode.INVALID_MSGTYPE,
                f"invalid message type {msgtype!r} (allowed: text, template_card)",
            )
        cb.welcomed = True

    def respond_update(
        self, bot: BotState, conn_id: int, req_id: str, body: dict[str, Any], now: float
    ) -> None:
        """A card update: replace the card of a template_card_event within 5 s, same task_id."""
        cb = self._reply_target(bot, conn_id, req_id)
        if cb.kind != "template_card_event":
            raise Rejected(FakeErrcode.INVALID_REQ_ID, f"invalid req_id (a {cb.kind} callback)")
        if now - cb.pushed_at > EVENT_REPLY_WINDOW:
            raise Rejected(FakeErrcode.INVALID_REQ_ID, "invalid req_id (update window of 5 s over)")
        if body.get("response_type") != "update_template_card":
            raise param("response_type must be 'update_template_card'")
        card = self._check_card(bot, body.get("template_card"), new=False)
        if card.get("task_id") != cb.task_id:
            raise param(f"template_card.task_id must equal the event's task_id {cb.task_id!r}")
        userids = body.get("userids")
        if userids is not None and not (
            isinstance(userids, list) and all(isinstance(u, str) for u in userids)
        ):
            raise param("userids must be a list of strings")
        for bubble in reversed(bot.conversations.get(cb.conv, [])):
            if bubble.card is not None and bubble.card.get("task_id") == cb.task_id:
                bubble.card = card
                bubble.updates += 1
                bubble.time_last = now
                break

    def send_msg(
        self, bot: BotState, conn_id: int, req_id: str, body: dict[str, Any], now: float
    ) -> None:
        """``aibot_send_msg``: proactive push to a conversation that has messaged the bot."""
        chatid = string(body, "chatid")
        if chatid not in bot.opened:
            raise Rejected(
                FakeErrcode.CONVERSATION_NOT_OPEN,
                f"conversation {chatid!r} has not messaged the bot (push not allowed)",
            )
        self._message(bot, chatid, req_id, body, now, push=True)


_HANDLERS: dict[str, Callable[..., Any]] = {
    "aibot_respond_msg": Rules.respond_msg,
    "aibot_respond_welcome_msg": Rules.respond_welcome,
    "aibot_respond_update_msg": Rules.respond_update,
    "aibot_send_msg": Rules.send_msg,
    "aibot_upload_media_init": Rules.upload_init,
    "aibot_upload_media_chunk": Rules.upload_chunk,
    "aibot_upload_media_finish": Rules.upload_finish,
}
