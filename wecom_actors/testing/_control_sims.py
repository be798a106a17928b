"""The simulator behind the control API: one user-facing model over either fake.

:class:`Simulator` keeps what the users did (their messages, with the media they sent) and an
event log of everything that changed (new or updated messages, raw frames, status). Its two
subclasses drive the fakes: :class:`LongConnSimulator` over :class:`~._openws.FakeWeCom` and
:class:`WebhookSimulator` over :class:`~._webhook.FakeWebhookWeCom`, where the fake plays WeCom's
poller against the bot's callback URL.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from typing import Any

import trio

from ._control_schema import (
    BadRequest,
    CardClickIn,
    EnterChatIn,
    FeedbackIn,
    MessageIn,
    media_bytes,
)

__all__ = ["EventLog", "Simulator", "media_type"]

logger = logging.getLogger("wecom_actors.testing.control")

MAX_FRAME_TEXT = 8192  # characters of one raw frame in the frames panel and feed
MAX_USER_MEDIA = 256 * 1024 * 1024  # bytes of user-sent media kept for display (oldest go first)


def media_type(data: bytes, filename: str | None = None) -> str:
    """A Content-Type for media bytes, from their magic number (else from the filename)."""
    for magic, ctype in ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                         (b"GIF8", "image/gif"), (b"RIFF", "image/webp")):  # fmt: skip
        if data.startswith(magic):
            return ctype
    if filename and filename.lower().endswith(".txt"):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


class EventLog:
    """Numbered events, the newest ``maxlen`` kept; readers wait for numbers past theirs."""

    def __init__(self, maxlen: int = 5000) -> None:
        self._events: deque[tuple[int, dict[str, Any]]] = deque(maxlen=maxlen)
        self.last = 0
        self._changed = trio.Event()

    def append(self, event: dict[str, Any]) -> None:
        self.last += 1
        self._events.append((self.last, event))
        self._changed.set()
        self._changed = trio.Event()

    def since(self, seq: int) -> list[tuple[int, dict[str, Any]]]:
        return [(n, e) for n, e in self._events if n > seq]

    async def wait_after(self, seq: int) -> None:
        while self.last <= seq:
            await self._changed.wait()


class Simulator:
    """What the control API serves, whatever the mode. Subclasses implement the ``_do_*``."""

    mode = ""

    def __init__(self, *, bot_name: str = "Bot") -> None:
        self.bot_name = bot_name
        self.events = EventLog()
        self._convs: dict[str, dict[str, Any]] = {}  # id -> {"id", "type", "members"}
        self._user_entries: dict[str, list[dict[str, Any]]] = {}
        self._user_media: dict[str, tuple[bytes, str, str | None]] = {}
        self._user_media_bytes = 0
        self._media_ids = itertools.count(1)
        self._snapshot: dict[str, list[dict[str, Any]]] = {}
        self._status: dict[str, Any] = {}
        self._frames_seen = 0

    # --- the control API's operations ----------------------------------------------------------

    async def send_message(self, m: MessageIn) -> dict[str, Any]:
        """A user message; ``payload`` for the mode is the text, the media bytes, or for a mixed
        message the list of parts (``str`` text, ``bytes`` image)."""
        if m.type in ("voice", "image", "file", "video") and m.chatid is not None:
            raise BadRequest(400, f"{m.type} messages come from single chats only (no chatid)")
        entry: dict[str, Any] = {"from": "user", "userid": m.userid, "kind": m.type, "content": ""}
        payload: str | bytes | list[str | bytes]
        if m.type in ("text", "voice"):
            if not m.text:
                raise BadRequest(400, f"a {m.type} message needs a non-empty text")
            payload = m.text
            if m.chatid is not None and m.mention and f"@{self.bot_name}" not in payload:
                payload = f"@{self.bot_name} {payload}"  # WeCom delivers group texts that @mention
            entry["content"] = payload
        elif m.type == "mixed":
            if not m.items:
                raise BadRequest(400, "a mixed message needs items")
            payload = []
            for i, item in enumerate(m.items):
                if item.type == "text":
                    if not item.text:
                        raise BadRequest(400, f"items[{i}]: a text item needs a non-empty text")
                    payload.append(item.text)
                else:
                    payload.append(media_bytes(item.data_base64, f"items[{i}]"))
            entry["content"] = " ".join(p for p in payload if isinstance(p, str))
        else:
            payload = media_bytes(m.data_base64, f"a {m.type} message")
            if m.type == "file":
                entry["content"] = m.filename or "file.bin"
        result = await self._do_message(m, payload)  # may refuse: nothing is kept then
        if isinstance(payload, list):
            entry["parts"] = [p if isinstance(p, str) else {"media": self._keep(p, None)}
                              for p in payload]  # fmt: skip
        elif isinstance(payload, bytes):
            entry["media"] = self._keep(payload, m.filename)
        return self._record(m.userid, m.chatid, entry, result)

    async def enter_chat(self, e: EnterChatIn) -> dict[str, Any]:
        result = await self._do_enter_chat(e)
        entry = {"from": "event", "userid": e.userid, "kind": "enter_chat",
                 "content": f"{e.userid} opened the chat"}  # fmt: skip
        return self._record(e.userid, None, entry, result)

    async def card_click(self, c: CardClickIn) -> dict[str, Any]:
        conv = c.chatid or c.userid
        messages = self.conversation(conv)["messages"]  # 404 for an unknown conversation
        if not any((msg.get("card") or {}).get("task_id") == c.task_id for msg in messages):
            raise BadRequest(404, f"no template card with task_id {c.task_id!r} in {conv!r}")
        result = await self._do_card_click(c)
        entry = {"from": "event", "userid": c.userid, "kind": "template_card_event",
                 "content": f"{c.userid} clicked {c.event_key!r}", "task_id": c.task_id}  # fmt: skip
        return self._record(c.userid, c.chatid, entry, result)

    async def feedback(self, f: FeedbackIn) -> dict[str, Any]:
        self.conversation(f.chatid or f.userid)  # 404 for an unknown conversation
        result = await self._do_feedback(f)
        label = {1: "accurate", 2: "inaccurate", 3: "cancelled"}[f.type]
        entry = {"from": "event", "userid": f.userid, "kind": "feedback_event",
                 "content": f"{f.userid} rated a reply: {label}"}  # fmt: skip
        return self._record(f.userid, f.chatid, entry, result)

    def conversations(self) -> list[dict[str, Any]]:
        known = dict(self._convs)
        for conv in self._bot_conversations():
            known.setdefault(conv, {"id": conv, "type": "single", "members": [conv]})
        return [dict(c, members=list(c["members"])) for c in known.values()]

    def conversation(self, conv: str) -> dict[str, Any]:
        """What the user sees in ``conv``: ``{"id", "type", "members", "messages"}``."""
        info = next((c for c in self.conversations() if c["id"] == conv), None)
        if info is None:
            raise BadRequest(404, f"unknown conversation {conv!r}")
        return {**info, "messages": self._messages(conv)}

    def user_media(self, media: str) -> tuple[bytes, str, str | None] | None:
        return self._user_media.get(media)

    # --- the event feed --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Watch the fake and log every change as events until cancelled."""
        task_status.started()
        while True:
            await self._wait_change()
            self.refresh()

    def refresh(self) -> None:
        for frame in self._new_frames():
            self.events.append({"type": "frame", "frame": frame})
        for conv in self._convs.keys() | set(self._bot_conversations()):
            messages = self._messages(conv)
            old = self._snapshot.get(conv, [])
            for i, msg in enumerate(messages):
                if i >= len(old) or old[i] != msg:
                    self.events.append({"type": "message", "conversation": conv, "index": i,
                                        "message": msg})  # fmt: skip
            self._snapshot[conv] = messages
        status = self.status()
        if status != self._status:
            self._status = status
            self.events.append({"type": "status", "status": status})

    # --- helpers ---------------------------------------------------------------------------------

    def _keep(self, data: bytes, filename: str | None) -> str:
        key = f"u{next(self._media_ids)}"
        self._user_media[key] = (data, media_type(data, filename), filename)
        self._user_media_bytes += len(data)
        while self._user_media_bytes > MAX_USER_MEDIA and len(self._user_media) > 1:
            oldest = next(iter(self._user_media))
            self._user_media_bytes -= len(self._user_media.pop(oldest)[0])
        return key

    def _record(self, userid: str, chatid: str | None, entry: dict[str, Any],
                result: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        conv = chatid or userid
        info = self._convs.setdefault(
            conv, {"id": conv, "type": "group" if chatid else "single", "members": []}
        )
        if userid not in info["members"]:
            info["members"].append(userid)
        entry.update(result, time=trio.current_time())
        self._user_entries.setdefault(conv, []).append(entry)
        self.refresh()
        return {"conversation": conv, **result}

    def _user_messages(self, conv: str) -> list[dict[str, Any]]:
        return [dict(e) for e in self._user_entries.get(conv, [])]

    # --- per mode --------------------------------------------------------------------------------

    async def _wait_change(self) -> None:
        raise NotImplementedError

    def _bot_conversations(self) -> list[str]:
        raise NotImplementedError

    def _messages(self, conv: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _new_frames(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        raise NotImplementedError

    def frames(self, since: int, limit: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def bot_media(self, media_id: str) -> tuple[bytes, str, str | None] | None:
        raise NotImplementedError

    async def fault(self, kind: str, **kw: Any) -> dict[str, Any]:
        raise NotImplementedError

    async def _do_message(self, m: MessageIn, payload: Any) -> dict[str, Any]:
        raise NotImplementedError

    async def _do_enter_chat(self, e: EnterChatIn) -> dict[str, Any]:
        raise NotImplementedError

    async def _do_card_click(self, c: CardClickIn) -> dict[str, Any]:
        raise NotImplementedError

    async def _do_feedback(self, f: FeedbackIn) -> dict[str, Any]:
        raise NotImplementedError
