"""The control API's simulator in webhook mode: the fake plays WeCom (and its poller) against
the bot's callback URL; each user action is one callback delivered in the background."""

from __future__ import annotations

import json
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import httpx
import trio

from ._control_schema import BadRequest, CardClickIn, EnterChatIn, FeedbackIn, MessageIn
from ._control_sims import MAX_FRAME_TEXT, Simulator

if TYPE_CHECKING:
    from ._webhook import FakeWebhookWeCom
    from ._webhook_records import WebhookView

__all__ = ["WebhookSimulator"]

logger = logging.getLogger("wecom_actors.testing.control")

_TICK = 0.1  # seconds between looks at the deliveries in flight
_FRAMES_KEPT = 5000


class WebhookSimulator(Simulator):
    mode = "webhook"

    def __init__(self, fake: FakeWebhookWeCom, *, bot_name: str = "Bot") -> None:
        super().__init__(bot_name=bot_name)
        fake.strict = False  # a misbehaving bot is shown (errors), not a crash of the fake
        self.fake = fake
        self._nursery: trio.Nursery | None = None
        self._errors: dict[str, str] = {}
        self._frames: deque[dict[str, Any]] = deque(maxlen=_FRAMES_KEPT)
        self._frame_seq = 0
        self._seen: dict[int, tuple[int, int]] = {}  # id(view) -> (answers, pushes) logged
        self._media_fault: str | None = None  # for the next image / file / video

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await super().run(task_status=task_status)

    # --- driving ---------------------------------------------------------------------------------

    def _start(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._nursery is None or self.fake.http is None:
            raise BadRequest(503, "the simulator is not running")
        user = payload["from"]["userid"]
        if payload["msgtype"] != "event" and self.fake._in_flight.get(user, 0) >= self.fake.max_in_flight:
            raise BadRequest(429, f"{user} already has {self.fake.max_in_flight} messages in flight")
        self._nursery.start_soon(self._deliver, payload)
        return {"msgid": payload["msgid"]}

    async def _deliver(self, payload: dict[str, Any]) -> None:
        try:
            await self.fake.deliver(payload)
        except (httpx.HTTPError, OSError, RuntimeError) as exc:
            # The bot is unreachable or the user is over their limit: shown, not raised.
            self._errors[payload["msgid"]] = f"{type(exc).__name__}: {exc}"
            logger.warning("delivering %s failed: %s", payload["msgtype"], type(exc).__name__)
        self.refresh()

    async def _do_message(self, m: MessageIn, payload: Any) -> dict[str, Any]:
        f = self.fake
        if m.type in ("text", "voice"):
            body = f.message(m.userid, m.type, {m.type: {"content": payload}}, chatid=m.chatid)
        elif m.type == "mixed":
            items = [{"msgtype": "text", "text": {"content": p}} if isinstance(p, str)
                     else {"msgtype": "image", "image": {"url": f.add_media(p)}}
                     for p in payload]  # fmt: skip
            body = f.message(m.userid, "mixed", {"mixed": {"msg_item": items}}, chatid=m.chatid)
        else:
            filename = (m.filename or "file.bin") if m.type == "file" else None
            url = f.add_media(payload, filename=filename, fault=self._media_fault)
            body = f.message(m.userid, m.type, {m.type: {"url": url}})
            result = self._start(body)
            self._media_fault = None  # used up only once the message is on its way
            return result
        return self._start(body)

    async def _do_enter_chat(self, e: EnterChatIn) -> dict[str, Any]:
        return self._start(self.fake.event(e.userid, "enter_chat", None, response_url=False))

    async def _do_card_click(self, c: CardClickIn) -> dict[str, Any]:
        card_type = "button_interaction"
        for msg in self._messages(c.chatid or c.userid):
            if (msg.get("card") or {}).get("task_id") == c.task_id:
                card_type = str(msg["card"].get("card_type", card_type))
        data: dict[str, Any] = {"card_type": card_type, "event_key": c.event_key, "task_id": c.task_id}
        if c.selected_items is not None:
            data["selected_items"] = c.selected_items
        return self._start(self.fake.event(c.userid, "template_card_event", data, chatid=c.chatid))

    async def _do_feedback(self, f: FeedbackIn) -> dict[str, Any]:
        data: dict[str, Any] = {"id": f.feedback_id, "type": f.type}
        if f.content is not None:
            data["content"] = f.content
        return self._start(self.fake.event(f.userid, "feedback_event", data, chatid=f.chatid,
                                           response_url=False))  # fmt: skip

    async def fault(self, kind: str, **kw: Any) -> dict[str, Any]:
        if kind == "media":
            if kw.get("media") is None:
                raise BadRequest(400, "a media fault needs media: bad-padding or not-found")
            self._media_fault = kw["media"]
            return {"next_media": self._media_fault}
        if kind == "redeliver":
            msgid = kw.get("msgid")
            view = self._views().get(msgid or "")
            if view is None:
                raise BadRequest(404, f"no callback with msgid {msgid!r} was delivered")
            return {"redelivered": self._start(json.loads(json.dumps(view.payload)))}
        raise BadRequest(400, f"the {kind} fault applies to long-connection mode only")

    # --- views -----------------------------------------------------------------------------------

    async def _wait_change(self) -> None:
        await trio.sleep(_TICK)

    def _bot_conversations(self) -> list[str]:
        return []  # every webhook conversation starts with a user action of this simulator

    def _views(self) -> dict[str, WebhookView]:
        return {v.msgid: v for v in self.fake.views}

    def _messages(self, conv: str) -> list[dict[str, Any]]:
        views = self._views()
        out: list[dict[str, Any]] = []
        for entry in self._user_messages(conv):
            msgid = entry.get("msgid", "")
            view = views.get(msgid)
            if msgid in self._errors:
                entry["errors"] = [self._errors[msgid]]
            elif view is not None and view.errors:
                entry["errors"] = list(view.errors)
            out.append(entry)
            if view is not None:
                self._replies(view, out)
        return out

    @staticmethod
    def _replies(v: WebhookView, out: list[dict[str, Any]]) -> None:
        at = v.created + v.latency
        base = {"from": "bot", "time": at, "finished": True, "updates": 0, "pushed": False}
        if v.welcome is not None:
            if v.welcome.get("msgtype") == "template_card":
                out.append({**base, "kind": "template_card", "content": "", "card": v.welcome.get("template_card")})
            else:
                out.append({**base, "kind": "text", "content": (v.welcome.get("text") or {}).get("content", "")})
        if v.stream_id is not None:
            msg = {**base, "kind": "stream", "content": v.content, "finished": v.finished,
                   "stream_id": v.stream_id, "updates": max(len(v.answers) - 1, 0)}  # fmt: skip
            if v.timed_out:
                msg["timed_out"] = True
            if v.msg_items:
                msg["images"] = [i["image"]["base64"] for i in v.msg_items]
            out.append(msg)
        if v.card is not None:
            out.append({**base, "kind": "template_card", "content": "", "card": v.card})
        if v.update is not None:
            card = v.update.get("template_card") or {}
            for msg in reversed(out):
                if (msg.get("card") or {}).get("task_id") == card.get("task_id"):
                    msg["card"], msg["updates"] = card, msg.get("updates", 0) + 1
                    break
        for push in v.pushes:
            kind = push.get("msgtype", "markdown")
            msg = {**base, "kind": kind, "pushed": True, "content": "", "card": None}
            if kind == "markdown":
                msg["content"] = (push.get("markdown") or {}).get("content", "")
            else:
                msg["card"] = push.get("template_card")
            out.append(msg)

    def _log_frame(self, direction: str, label: str, data: Any) -> dict[str, Any]:
        text = json.dumps(data, ensure_ascii=False)
        if len(text) > MAX_FRAME_TEXT:
            text = text[:MAX_FRAME_TEXT] + "…"
        frame = {"seq": self._frame_seq, "time": trio.current_time(), "direction": direction,
                 "cmd": label, "text": text, "delivered": True}  # fmt: skip
        self._frame_seq += 1
        self._frames.append(frame)
        return frame

    def _new_frames(self) -> list[dict[str, Any]]:
        new = []
        for v in self.fake.views:
            answers, pushes = self._seen.get(id(v), (-1, 0))
            if answers < 0:
                new.append(self._log_frame("out", "callback", v.payload))
                answers = 0
            if answers == 0 and v.first_reply is not None and not v.answers:
                new.append(self._log_frame("in", "answer", v.first_reply))
                answers = 1
            for reply in v.answers[answers:]:
                new.append(self._log_frame("in", "answer", reply))
            for push in v.pushes[pushes:]:
                new.append(self._log_frame("in", "response_url", push))
            self._seen[id(v)] = (max(answers, len(v.answers)), len(v.pushes))
        return new

    def frames(self, since: int, limit: int) -> list[dict[str, Any]]:
        return [f for f in self._frames if f["seq"] >= since][:limit]

    def bot_media(self, media_id: str) -> tuple[bytes, str, str | None] | None:
        return None  # webhook bots cannot upload media

    def status(self) -> dict[str, Any]:
        return {"mode": self.mode, "bot_name": self.bot_name, "bot_url": self.fake.bot_url,
                "aibotid": self.fake.aibotid, "base_url": self.fake.base_url,
                "subscribed": True}  # fmt: skip
