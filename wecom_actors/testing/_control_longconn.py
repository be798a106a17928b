"""The control API's simulator in long-connection mode: users drive a :class:`FakeWeCom`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from ._control_schema import BadRequest, CardClickIn, EnterChatIn, FeedbackIn, MessageIn
from ._control_sims import MAX_FRAME_TEXT, Simulator, media_type
from ._openws import NotConnected

if TYPE_CHECKING:
    from ._openws import FakeWeCom
    from ._openws_records import Bubble, Callback

__all__ = ["LongConnSimulator"]

_BATCH = 0.02  # seconds: changes that close together become one refresh


def _callback(cb: Callback) -> dict[str, Any]:
    return {"msgid": cb.msgid, "req_id": cb.req_id}


class LongConnSimulator(Simulator):
    mode = "long-connection"

    def __init__(self, fake: FakeWeCom, *, bot_name: str = "Bot") -> None:
        super().__init__(bot_name=bot_name)
        if not fake.record:
            raise ValueError("the simulator needs a FakeWeCom with record=True (raw frames)")
        self.fake = fake

    async def _push(self, send: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return _callback(await send(*args, **kwargs))
        except NotConnected as exc:
            raise BadRequest(409, f"the bot is not connected: {exc}") from None

    async def _do_message(self, m: MessageIn, payload: Any) -> dict[str, Any]:
        f = self.fake
        if m.type == "text":
            return await self._push(f.send_text, payload, userid=m.userid, chatid=m.chatid)
        if m.type == "voice":
            return await self._push(f.send_voice, payload, userid=m.userid)
        if m.type == "image":
            return await self._push(f.send_image, payload, userid=m.userid)
        if m.type == "video":
            return await self._push(f.send_video, payload, userid=m.userid)
        if m.type == "file":
            return await self._push(f.send_file, payload, filename=m.filename or "file.bin",
                                    userid=m.userid)  # fmt: skip
        return await self._push(f.send_mixed, payload, userid=m.userid, chatid=m.chatid)

    async def _do_enter_chat(self, e: EnterChatIn) -> dict[str, Any]:
        return await self._push(self.fake.send_enter_chat, userid=e.userid)

    async def _do_card_click(self, c: CardClickIn) -> dict[str, Any]:
        return await self._push(self.fake.send_card_click, c.task_id, c.event_key,
                                userid=c.userid, chatid=c.chatid,
                                selected_items=c.selected_items)  # fmt: skip

    async def _do_feedback(self, f: FeedbackIn) -> dict[str, Any]:
        return await self._push(self.fake.send_feedback, f.feedback_id, type=f.type,
                                content=f.content, userid=f.userid)  # fmt: skip

    async def fault(self, kind: str, **kw: Any) -> dict[str, Any]:
        faults = self.fake.faults
        hit: int | None = None
        if kind == "drop":
            hit = faults.drop()
        elif kind == "stall":
            hit = faults.stall()
        elif kind == "close":
            hit = faults.close(kw.get("code") or 1000, reason=kw.get("reason"))
        elif kind == "kick":
            hit = faults.kick(close=not kw.get("leave_open"))
        elif kind == "kick_second_subscriber":
            if not self.fake.is_subscribed():
                raise BadRequest(409, "the bot is not connected: nothing to kick")
            return {"intruder_connection": await faults.kick_by_second_subscriber()}
        elif kind == "ack_errors":
            if kw.get("errcode") is None:
                raise BadRequest(400, "ack_errors needs an errcode")
            faults.ack_errors(kw["errcode"], cmd=kw.get("cmd"), count=kw.get("count") or 1)
        elif kind == "delay_acks":
            if kw.get("seconds") is None:
                raise BadRequest(400, "delay_acks needs seconds")
            faults.delay_acks(kw["seconds"], cmd=kw.get("cmd"), count=kw.get("count") or 1)
        elif kind == "drop_acks":
            faults.drop_acks(cmd=kw.get("cmd") or "ping", count=kw.get("count"))
        elif kind == "redeliver":
            return await self._redeliver(kw.get("msgid"))
        elif kind == "media":
            raise BadRequest(400, "media faults apply to webhook mode only")
        elif kind == "refuse_auth":
            faults.refuse_auth(kw.get("count"), kw.get("errcode") or 600041)
        else:
            faults.clear()
        self.refresh()
        return {} if hit is None else {"connections_hit": hit}

    async def _redeliver(self, msgid: str | None) -> dict[str, Any]:
        """WeCom delivering a callback again ("可能因为网络等原因重复回调"): same body, new req_id."""
        if not msgid:
            raise BadRequest(400, "redeliver needs the msgid of a callback the fake delivered")
        for f in reversed(self.fake.frames):
            body = f.body
            if (f.direction == "out" and f.cmd in ("aibot_msg_callback", "aibot_event_callback")
                    and isinstance(body, dict) and body.get("msgid") == msgid):  # fmt: skip
                result = await self._push(self.fake.send_callback, f.cmd, dict(body))
                self.refresh()
                return {"redelivered": result}
        raise BadRequest(404, f"no callback with msgid {msgid!r} was delivered")

    # --- views -----------------------------------------------------------------------------------

    async def _wait_change(self) -> None:
        changed = self.fake._changed
        await changed.wait()
        await trio.sleep(_BATCH)

    def _bot_conversations(self) -> list[str]:
        return self.fake.conversations()

    def _bubble(self, b: Bubble, callbacks: dict[str, Any]) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "from": "bot", "kind": b.kind, "content": b.content, "finished": b.finished,
            "card": b.card, "updates": b.updates, "time": b.time_first,
            "time_last": b.time_last, "req_id": b.req_id, "stream_id": b.stream_id,
            "pushed": b.req_id not in callbacks,
        }  # fmt: skip
        if b.media_id is not None:
            msg["media"] = f"bot:{b.media_id}"
            m = self.fake.media(b.media_id)
            if m is not None and m.filename:
                msg["filename"] = m.filename
        if b.stream_id is not None:
            st = self.fake._bot(None).streams.get(b.stream_id)
            if st is not None and st.msg_items:
                msg["images"] = [item["image"]["base64"] for item in st.msg_items]
        return msg

    def _messages(self, conv: str) -> list[dict[str, Any]]:
        callbacks = self.fake._rules.callbacks
        bot = [self._bubble(b, callbacks) for b in self.fake.conversation(conv)]
        merged = [(e["time"], 0, i, e) for i, e in enumerate(self._user_messages(conv))]
        merged += [(m["time"], 1, i, m) for i, m in enumerate(bot)]
        return [m for *_, m in sorted(merged, key=lambda t: t[:3])]

    def bot_media(self, media_id: str) -> tuple[bytes, str, str | None] | None:
        m = self.fake.media(media_id)
        return None if m is None else (m.data, media_type(m.data, m.filename), m.filename)

    def _frame(self, seq: int) -> dict[str, Any]:
        f = self.fake.frames[seq]
        text = f.text
        if f.cmd == "aibot_subscribe":  # the page and the feed show frames, never a bot's secret
            for secret in {b.secret for b in self.fake._bots.values()}:
                text = text.replace(secret, "***") if secret else text
        text = text if len(text) <= MAX_FRAME_TEXT else text[:MAX_FRAME_TEXT] + "…"
        return {"seq": seq, "time": f.time, "direction": f.direction, "conn_id": f.conn_id,
                "cmd": f.cmd, "req_id": f.req_id, "errcode": f.errcode, "text": text,
                "delivered": f.delivered}  # fmt: skip

    def frames(self, since: int, limit: int) -> list[dict[str, Any]]:
        end = min(len(self.fake.frames), since + limit)
        return [self._frame(i) for i in range(max(since, 0), end)]

    def _new_frames(self) -> list[dict[str, Any]]:
        start, self._frames_seen = self._frames_seen, len(self.fake.frames)
        return [self._frame(i) for i in range(start, self._frames_seen)]

    def status(self) -> dict[str, Any]:
        f = self.fake
        live = f.live_connection()
        return {
            "mode": self.mode,
            "bot_id": f.bot_id,
            "bot_name": self.bot_name,
            "ws_url": f.url,
            "media_base_url": f.media_base_url,
            "subscribed": live is not None,
            "live_connection": None if live is None else live.id,
            "connections": [
                {"id": c.id, "bot_id": c.bot_id, "subscribed": c.subscribed,
                 "replaced": c.replaced, "closing": c.closing}
                for c in f.connections
            ],
            "subscribes": f.subscribe_count(),
        }
