"""A fake WeCom for webhook-mode bots: it plays WeCom against a bot's callback URL.

Built from the protocol's documentation (summarised in docs/protocol-notes.md, 'Webhook
details'), not from the bot (its crypto is its own, ~40 lines), so a
bot can be tested against it without trusting the bot's own code::

    async with open_fake_webhook(url, token=TOKEN, encoding_aes_key=KEY) as fake:
        assert (await fake.verify_url()).ok
        view = await fake.send_text("hello")       # POST, then refresh polls until finish
        assert view.finished and view.content == "hello"

What it does, per part of the protocol:

* URL verification, ``verify_url()``: GET with a percent-encoded echostr; the answer must be the bare plaintext
  within 1 s.
* callbacks and answers, ``send_*``: sign and encrypt each callback (fresh nonce and timestamp), POST it, verify
  and decrypt the answer (signature over the answer's own timestamp and nonce; the nonce must
  be the request's), then poll stream refreshes every ``poll_interval`` s of trio time until
  ``finish`` or ``stream_window`` (6 min) after the message. Empty answers (empty body,
  ``success``, encrypted ``{}``) count as "no reply". Answers are checked: stream id kept,
  content at most 20480 bytes, ``msg_item`` only on the finish frame with matching md5, a
  template card at most once, only the reply types allowed for each callback.
* polling: at most ``max_in_flight`` (3) messages of one user in flight: one more raises.
* response_url: every message gets a ``response_url`` on the fake's loopback HTTP server: one POST is
  accepted within one hour; later ones get an errcode JSON (:class:`FakeWebhookErrcode`).
* media (image, file, video, mixed images) is served encrypted with the EncodingAESKey from
  the same server, for ``media_ttl`` (5 min); the bot must allow private addresses to fetch it.

Each ``send_*`` returns a :class:`WebhookView`: what the user saw. With ``strict=True`` (the
default) a protocol violation raises :class:`WebhookConformanceError`; otherwise it is recorded
in ``view.errors``.

The parts: :mod:`._webhook_crypto` (written from the protocol's description), :mod:`._webhook_records` (what
the fake records and raises) and :mod:`._webhook_server` (its own media and response_url
server); this module drives the bot.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, cast
from urllib.parse import quote

import httpx
import trio

from ._webhook_crypto import aes_key, decrypt_msg, encrypt_msg, sign
from ._webhook_records import (
    CONTENT_LIMIT,
    MAX_MSG_ITEMS,
    FakeWebhookErrcode,
    ResponseUrlPost,
    VerifyResult,
    WebhookConformanceError,
    WebhookView,
)
from ._webhook_server import IssuedUrl, ServerMixin
from ._wecom_ids import new_msgid

__all__ = [
    "FakeWebhookErrcode",
    "FakeWebhookWeCom",
    "ResponseUrlPost",
    "VerifyResult",
    "WebhookConformanceError",
    "WebhookView",
    "open_fake_webhook",
    "webhook_demo_transcript",
]

logger = logging.getLogger("wecom_actors.testing.webhook")

_CLIENT_SHARDS = 16


# --- the fake ----------------------------------------------------------------------------------------


class FakeWebhookWeCom(ServerMixin):
    """WeCom's side of webhook mode, against one bot URL. Start it with :func:`open_fake_webhook`
    or ``await nursery.start(fake.run)``."""

    def __init__(
        self,
        bot_url: str,
        *,
        token: str,
        encoding_aes_key: str,
        aibotid: str = "fake-aibot",
        poll_interval: float = 1.0,
        reply_timeout: float = 5.0,
        verify_timeout: float = 1.0,
        stream_window: float = 360.0,
        response_url_ttl: float = 3600.0,
        media_ttl: float = 300.0,
        max_in_flight: int = 3,
        host: str = "127.0.0.1",
        strict: bool = True,
        seed: int | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot_url = bot_url
        self.token = token
        self._key = aes_key(encoding_aes_key)
        self.aibotid = aibotid
        self.poll_interval = poll_interval
        self.reply_timeout = reply_timeout
        self.verify_timeout = verify_timeout
        self.stream_window = stream_window
        self.response_url_ttl = response_url_ttl
        self.media_ttl = media_ttl
        self.max_in_flight = max_in_flight
        self.host = host
        self.strict = strict
        self.wall_clock = wall_clock
        self._rng = random.Random(seed)
        self._n = 0
        self.base_url = ""
        self.http: httpx.AsyncClient | None = None
        self._clients: list[httpx.AsyncClient] = []
        self.views: list[WebhookView] = []
        self.posts: list[ResponseUrlPost] = []
        self._urls: dict[str, IssuedUrl] = {}
        self._media: dict[str, tuple[bytes, float, str | None]] = {}
        self._in_flight: dict[str, int] = {}
        self._posted = trio.Event()
        self._active = 0
        self._idle = trio.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[FakeWebhookWeCom] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve media and response_urls on ``host`` (a free port) until cancelled."""
        from hypercorn.config import Config
        from hypercorn.trio import serve

        config = Config()
        config.bind = [f"{self.host}:0"]
        config.accesslog = None
        config.errorlog = logger
        timeout = httpx.Timeout(max(30.0, self.reply_timeout * 2))
        tls = ssl.create_default_context()  # once: each context costs tens of milliseconds
        async with AsyncExitStack() as stack:
            # Users are spread over several small clients: httpcore's pool scans every connection
            # per request, which is quadratic with hundreds of concurrent users on one pool.
            self._clients = [
                await stack.enter_async_context(httpx.AsyncClient(timeout=timeout, verify=tls, follow_redirects=False))
                for _ in range(_CLIENT_SHARDS)
            ]
            self.http = self._clients[0]
            async with trio.open_nursery() as nursery:
                binds = await nursery.start(partial(serve, cast(Any, self._app), config, mode="asgi"))
                self.base_url = binds[0]
                task_status.started(self)
                await trio.sleep_forever()

    # --- driving the bot ---------------------------------------------------------------------

    async def verify_url(self, plaintext: str | None = None, *, percent_encode: bool = True) -> VerifyResult:
        """URL verification: GET ``?msg_signature&timestamp&nonce&echostr``; the bot must echo ``plaintext``."""
        plaintext = plaintext or str(self._rng.randrange(10**18, 10**19))
        encrypt = self._encrypt(plaintext.encode())
        ts, nonce = self._ts_nonce()
        echostr = quote(encrypt, safe="") if percent_encode else encrypt
        query = f"msg_signature={sign(self.token, ts, nonce, encrypt)}&timestamp={ts}&nonce={nonce}&echostr={echostr}"
        start = trio.current_time()
        with trio.fail_after(self.verify_timeout):
            response = await self._client().get(self._with_query(query))
        result = VerifyResult(
            response.status_code, response.content, plaintext,
            response.status_code == 200 and response.content == plaintext.encode(),
            trio.current_time() - start,
        )
        if self.strict and not result.ok:
            raise WebhookConformanceError(f"URL verification failed: HTTP {result.status} {result.body[:80]!r}")
        return result

    async def send_text(self, content: str, *, userid: str = "zhangsan", chatid: str | None = None, msgid: str | None = None) -> WebhookView:
        return await self.deliver(self.message(userid, "text", {"text": {"content": content}}, chatid=chatid, msgid=msgid))

    async def send_voice(self, content: str, *, userid: str = "zhangsan", msgid: str | None = None) -> WebhookView:
        return await self.deliver(self.message(userid, "voice", {"voice": {"content": content}}, msgid=msgid))

    async def send_image(self, data: bytes, *, userid: str = "zhangsan", msgid: str | None = None, fault: str | None = None) -> WebhookView:
        url = self.add_media(data, fault=fault)
        return await self.deliver(self.message(userid, "image", {"image": {"url": url}}, msgid=msgid))

    async def send_file(self, data: bytes, *, filename: str = "file.bin", userid: str = "zhangsan", msgid: str | None = None) -> WebhookView:
        url = self.add_media(data, filename=filename)
        return await self.deliver(self.message(userid, "file", {"file": {"url": url}}, msgid=msgid))

    async def send_video(self, data: bytes, *, userid: str = "zhangsan", msgid: str | None = None) -> WebhookView:
        url = self.add_media(data)
        return await self.deliver(self.message(userid, "video", {"video": {"url": url}}, msgid=msgid))

    async def send_mixed(self, items: Sequence[str | bytes], *, userid: str = "zhangsan", chatid: str | None = None, msgid: str | None = None) -> WebhookView:
        """A mixed message: ``str`` items are text, ``bytes`` items are images."""
        msg_item = [
            {"msgtype": "text", "text": {"content": item}} if isinstance(item, str)
            else {"msgtype": "image", "image": {"url": self.add_media(item)}}
            for item in items
        ]
        return await self.deliver(self.message(userid, "mixed", {"mixed": {"msg_item": msg_item}}, chatid=chatid, msgid=msgid))

    async def send_enter_chat(self, *, userid: str = "zhangsan", msgid: str | None = None) -> WebhookView:
        return await self.deliver(self.event(userid, "enter_chat", None, msgid=msgid, response_url=False))

    async def send_card_click(
        self, *, task_id: str, event_key: str, card_type: str = "button_interaction",
        userid: str = "zhangsan", chatid: str | None = None, msgid: str | None = None,
    ) -> WebhookView:
        data = {"card_type": card_type, "event_key": event_key, "task_id": task_id}
        return await self.deliver(self.event(userid, "template_card_event", data, chatid=chatid, msgid=msgid))

    async def send_feedback(
        self, *, feedback_id: str, type: int = 1, content: str | None = None,
        userid: str = "zhangsan", chatid: str | None = None, msgid: str | None = None,
    ) -> WebhookView:
        data: dict[str, Any] = {"id": feedback_id, "type": type}
        if content is not None:
            data.update(content=content, inaccurate_reason_list=[2])
        return await self.deliver(self.event(userid, "feedback_event", data, chatid=chatid, msgid=msgid, response_url=False))

    # --- building callbacks --------------------------------------------------------------------

    def new_msgid(self) -> str:
        """A fresh WeCom-shaped msgid (``CAIQ...``, base64)."""
        self._n += 1
        return new_msgid(self._rng, int(self.wall_clock()), self._n)

    def message(self, userid: str, msgtype: str, fields: dict[str, Any], *, chatid: str | None = None, msgid: str | None = None) -> dict[str, Any]:
        """A message callback body; a group message only for text and mixed (as WeCom sends them)."""
        if chatid is not None and msgtype not in ("text", "mixed"):
            raise ValueError(f"{msgtype} messages come from single chats only")
        body: dict[str, Any] = {"msgid": msgid or self.new_msgid(), "aibotid": self.aibotid}
        if chatid is not None:
            body["chatid"] = chatid
        body.update(chattype="group" if chatid else "single", **{"from": {"userid": userid}})
        body.update(response_url="", msgtype=msgtype, **fields)
        return body

    def event(self, userid: str, eventtype: str, data: dict[str, Any] | None, *, chatid: str | None = None, msgid: str | None = None, response_url: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {"msgid": msgid or self.new_msgid(), "create_time": int(self.wall_clock()), "aibotid": self.aibotid}
        if chatid is not None:
            body.update(chatid=chatid, chattype="group")
        elif eventtype != "enter_chat":  # the official enter_chat example has no chattype
            body["chattype"] = "single"
        body["from"] = {"userid": userid}
        if response_url:
            body["response_url"] = ""
        event: dict[str, Any] = {"eventtype": eventtype}
        if data is not None:
            event[eventtype] = data
        body.update(msgtype="event", event=event)
        return body

    # --- one exchange ------------------------------------------------------------------------

    async def deliver(self, payload: dict[str, Any]) -> WebhookView:
        """POST one callback, check its answer and poll its stream; returns what the user saw."""
        msgtype = payload["msgtype"]
        user = payload["from"]["userid"]
        counted = msgtype not in ("event", "stream")  # the in-flight limit counts the user's messages
        if counted and self._in_flight.get(user, 0) >= self.max_in_flight:
            raise RuntimeError(f"user {user} already has {self.max_in_flight} messages in flight")
        view = WebhookView(payload["msgid"], msgtype, user, payload.get("chatid"), payload, trio.current_time())
        if payload.get("response_url") == "":
            payload["response_url"] = view.response_url = self._issue_response_url(view)
        self.views.append(view)
        if counted:
            self._in_flight[user] = self._in_flight.get(user, 0) + 1
        try:
            reply = await self._post(view, payload)
            if view.status == 200:
                self._first(view, reply)
                if view.stream_id is not None and not view.finished:
                    await self._poll(view)
        finally:
            if counted:
                self._in_flight[user] -= 1
        return view

    def _first(self, view: WebhookView, reply: dict[str, Any] | None) -> None:
        view.first_reply = reply
        if view.msgtype == "event":
            eventtype = view.payload["event"]["eventtype"]
            kind = None if reply is None else reply.get("msgtype", reply.get("response_type"))
            if eventtype == "enter_chat" and kind in ("text", "template_card"):
                view.welcome = reply
            elif eventtype == "template_card_event" and kind == "update_template_card":
                task_id = view.payload["event"]["template_card_event"]["task_id"]
                if (reply or {}).get("template_card", {}).get("task_id") != task_id:
                    self._fail(view, "the updated card must keep the event's task_id")
                view.update = reply
            elif kind is not None:
                self._fail(view, f"{kind!r} is not a valid answer to a {eventtype} event")
            return
        if reply is None:
            return
        kind = reply.get("msgtype")
        if kind == "template_card":
            view.card = reply.get("template_card")
        elif kind in ("stream", "stream_with_template_card"):
            self._take_stream(view, reply, first=True)
        else:
            self._fail(view, f"{kind!r} is not a valid answer to a message")

    async def _poll(self, view: WebhookView) -> None:
        deadline = view.created + self.stream_window
        user = view.payload["from"]
        while not view.finished:
            next_poll = trio.current_time() + self.poll_interval
            if next_poll >= deadline:
                view.timed_out = True
                return
            await trio.sleep_until(next_poll)
            refresh: dict[str, Any] = {"msgid": self.new_msgid(), "aibotid": self.aibotid}
            if view.chatid:
                refresh["chatid"] = view.chatid
            refresh.update(chattype="group" if view.chatid else "single", msgtype="stream", stream={"id": view.stream_id})
            refresh["from"] = user
            reply = await self._post(view, refresh, record=False)
            if reply is None:
                view.empty_refreshes += 1  # tolerated: keep polling
                continue
            if reply.get("msgtype") not in ("stream", "stream_with_template_card"):
                self._fail(view, "a stream refresh may only be answered with a stream")
                return
            self._take_stream(view, reply, first=False)
            view.refreshes.append(view.content)

    def _take_stream(self, view: WebhookView, reply: dict[str, Any], *, first: bool) -> None:
        stream = reply.get("stream")
        if not isinstance(stream, dict) or not isinstance(stream.get("id"), str) or not stream["id"]:
            self._fail(view, f"a stream answer needs stream.id: {reply}")
            return
        if first:
            view.stream_id = stream["id"]
        elif stream["id"] != view.stream_id:
            self._fail(view, f"refresh answered with stream {stream['id']!r}, not {view.stream_id!r}")
        content, finish = stream.get("content", ""), bool(stream.get("finish", False))
        if not isinstance(content, str) or len(content.encode()) > CONTENT_LIMIT:
            self._fail(view, f"stream content must be a string of at most {CONTENT_LIMIT} bytes")
            content = str(content)
        items = stream.get("msg_item") or []
        if items and not finish:
            self._fail(view, "msg_item is allowed only in the finish=true answer")
        if len(items) > MAX_MSG_ITEMS:
            self._fail(view, f"at most {MAX_MSG_ITEMS} msg_item images")
        for item in items:
            image = item.get("image", {}) if isinstance(item, dict) else {}
            raw = base64.b64decode(image.get("base64", ""))
            if item.get("msgtype") != "image" or hashlib.md5(raw).hexdigest() != image.get("md5"):
                self._fail(view, "a msg_item image's md5 does not match its base64 data")
        if reply.get("template_card") is not None:
            if view.card is not None:
                self._fail(view, "a template card may be sent once per message")
            view.card = reply["template_card"]
        view.answers.append(reply)
        view.content = content
        if finish:
            view.finished, view.msg_items = True, list(items)

    async def _post(self, view: WebhookView, payload: dict[str, Any], *, record: bool = True) -> dict[str, Any] | None:
        encrypt = self._encrypt(json.dumps(payload, ensure_ascii=False).encode())
        ts, nonce = self._ts_nonce()
        query = f"msg_signature={sign(self.token, ts, nonce, encrypt)}&timestamp={ts}&nonce={nonce}"
        start = trio.current_time()
        try:
            with trio.fail_after(self.reply_timeout):
                response = await self._client(view.userid).post(
                    self._with_query(query), content=json.dumps({"encrypt": encrypt}),
                    headers={"Content-Type": "application/json"},
                )
        except trio.TooSlowError:
            self._fail(view, f"no answer within {self.reply_timeout:g} s")
            return None
        if record:
            view.status, view.latency = response.status_code, trio.current_time() - start
        if response.status_code != 200:
            self._fail(view, f"HTTP {response.status_code}: {response.text[:120]!r}")
            return None
        try:
            return self.open_reply(response.content, nonce)
        except ValueError as exc:
            self._fail(view, str(exc))
            return None

    def open_reply(self, body: bytes, nonce: str) -> dict[str, Any] | None:
        """Verify and decrypt an answer envelope; ``None`` for an empty answer.

        Raises ValueError when the envelope is malformed, its signature does not verify over its
        own timestamp and nonce, or its nonce is not the request's.
        """
        if body.strip() in (b"", b"success"):
            return None
        try:
            env = json.loads(body)
            encrypt, signature, ts, answer_nonce = env["encrypt"], env["msgsignature"], env["timestamp"], env["nonce"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"the answer is not an encrypted envelope: {body[:120]!r}") from None
        if answer_nonce != nonce:
            raise ValueError("the answer's nonce must be the callback's nonce")
        if not isinstance(ts, int | str) or not str(ts).isdigit():
            raise ValueError("the answer's timestamp must be seconds (a number or a digit string)")
        if sign(self.token, str(ts), answer_nonce, encrypt) != signature:
            raise ValueError("the answer's msgsignature does not verify")
        try:
            reply = json.loads(decrypt_msg(self._key, encrypt))
        except ValueError as exc:
            raise ValueError(f"the answer does not decrypt: {exc}") from None
        if not isinstance(reply, dict):
            raise ValueError("the decrypted answer is not a JSON object")
        return reply or None

    def _fail(self, view: WebhookView, problem: str) -> None:
        view.errors.append(problem)
        if self.strict:
            raise WebhookConformanceError(f"{view.msgtype} {view.msgid}: {problem}")

    def _encrypt(self, msg: bytes) -> str:
        return encrypt_msg(self._key, msg, self._rng.randbytes(16))

    def _ts_nonce(self) -> tuple[str, str]:
        return str(int(self.wall_clock())), str(self._rng.randrange(10**9, 10**10))

    def _with_query(self, query: str) -> str:
        return f"{self.bot_url}{'&' if '?' in self.bot_url else '?'}{query}"

    def _client(self, user: str = "") -> httpx.AsyncClient:
        if self.http is None:
            raise RuntimeError("the fake is not running: use open_fake_webhook() or nursery.start(fake.run)")
        return self._clients[sum(user.encode()) % len(self._clients)]



@asynccontextmanager
async def open_fake_webhook(bot_url: str, **kwargs: Any) -> AsyncIterator[FakeWebhookWeCom]:
    """Run a :class:`FakeWebhookWeCom` (its media/response_url server) for the ``async with``."""
    async with trio.open_nursery() as nursery:
        fake = await nursery.start(FakeWebhookWeCom(bot_url, **kwargs).run)
        try:
            yield fake
        finally:
            with trio.move_on_after(2):  # let a response_url POST in flight get its answer
                await fake.wait_idle()
            nursery.cancel_scope.cancel()


async def webhook_demo_transcript(*, print_fn: Callable[[str], object] = print, poll_interval: float = 0.25) -> int:
    """``wecom-actors demo --mode webhook``: the echo bot on 127.0.0.1 (a free port) and this fake
    playing WeCom: verification, enter_chat, a text, ``/slow``, an image, ``/push``, ``/long``.
    Prints what the user sees; returns 0 when every step looked right, else 1."""
    from ._webhook_demo import run_webhook_demo  # imports the bot: only when the demo runs

    return await run_webhook_demo(print_fn=print_fn, poll_interval=poll_interval)
