"""The fake webhook WeCom's own HTTP server: encrypted media and response_urls.

:class:`ServerMixin` holds the methods of :class:`~wecom_actors.testing.FakeWebhookWeCom` that
hand out media and response_url addresses and answer the bot's requests to them (an ASGI app
served by hypercorn from ``FakeWebhookWeCom.run``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

import trio

from ._openws_views import DEFAULT_WAIT
from ._webhook_crypto import cbc, pad32
from ._webhook_records import CONTENT_LIMIT, FakeWebhookErrcode, ResponseUrlPost, WebhookView
from ._wecom_ids import new_response_code

if TYPE_CHECKING:
    import random

__all__ = ["RESPONSE_PATH", "IssuedUrl", "ServerMixin"]

RESPONSE_PATH = "/cgi-bin/aibot/response"  # WeCom's response_url path


@dataclass
class IssuedUrl:
    """A response_url the fake handed out with a callback."""

    view: WebhookView
    created: float
    used: bool = False


class ServerMixin:
    """The media and response_url methods of :class:`~wecom_actors.testing.FakeWebhookWeCom`."""

    if TYPE_CHECKING:
        base_url: str
        media_ttl: float
        response_url_ttl: float
        posts: list[ResponseUrlPost]
        _key: bytes
        _rng: random.Random
        _urls: dict[str, IssuedUrl]
        _media: dict[str, tuple[bytes, float, str | None]]
        _posted: trio.Event
        _active: int
        _idle: trio.Event

    def add_media(self, data: bytes, *, filename: str | None = None, fault: str | None = None) -> str:
        """Serve ``data`` encrypted with the EncodingAESKey; returns its URL (valid ``media_ttl``).

        ``fault``: ``"bad-padding"`` serves a blob whose padding is wrong, ``"not-found"`` a URL
        that answers 404.
        """
        token = self._new_code()
        blob = cbc(self._key).encrypt(pad32(data))
        if fault == "bad-padding":
            blob = cbc(self._key).encrypt(data + bytes(32 - len(data) % 32 or 32))
        if fault != "not-found":
            self._media[token] = (blob, trio.current_time(), filename)
        return f"{self.base_url}/media/{token}"

    async def wait_pushes(
        self, view: WebhookView, count: int = 1, *, timeout: float | None = DEFAULT_WAIT  # noqa: ASYNC109
    ) -> list[Any]:
        """Wait until ``count`` response_url posts of ``view`` were accepted; raises
        :class:`trio.TooSlowError` after ``timeout`` trio seconds (``None``: never)."""
        with trio.fail_after(math.inf if timeout is None else timeout):
            while len(view.pushes) < count:
                await self._posted.wait()
        return view.pushes

    async def wait_idle(self, *, timeout: float | None = DEFAULT_WAIT) -> None:  # noqa: ASYNC109
        """Wait until no request to the fake's own server (media, response_url) is being
        answered; raises :class:`trio.TooSlowError` after ``timeout`` trio seconds."""
        with trio.fail_after(math.inf if timeout is None else timeout):
            while self._active:
                await self._idle.wait()

    def _new_code(self) -> str:
        return f"{self._rng.getrandbits(96):024x}"

    def _issue_response_url(self, view: WebhookView) -> str:
        """A fresh response_url for ``view``, accepting one POST for ``response_url_ttl`` (an hour at WeCom).
        Shaped like WeCom's: ``.../cgi-bin/aibot/response?response_code=CODE``."""
        code = new_response_code(self._rng)
        self._urls[code] = IssuedUrl(view, trio.current_time())
        return f"{self.base_url}{RESPONSE_PATH}?response_code={code}"

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self._active += 1
        try:
            await self._serve_one(scope, receive, send)
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()
                self._idle = trio.Event()

    async def _serve_one(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path, method, now = scope["path"], scope["method"], trio.current_time()
        status, body, ctype, extra = 404, b"not found", b"text/plain", []
        if path.startswith("/media/") and method == "GET":
            item = self._media.get(path[7:])
            if item is not None and now - item[1] <= self.media_ttl:
                status, body, ctype = 200, item[0], b"application/octet-stream"
                if item[2]:
                    extra = [(b"content-disposition", f"attachment; filename*=UTF-8''{quote(item[2])}".encode())]
        elif path == RESPONSE_PATH and method == "POST":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            chunks = []
            while True:
                event = await receive()
                chunks.append(event.get("body", b""))
                if not event.get("more_body"):
                    break
            code = query.get("response_code", [""])[0]
            errcode, errmsg = self._response_url(code, b"".join(chunks), now)
            status, ctype = 200, b"application/json"
            body = json.dumps({"errcode": int(errcode), "errmsg": errmsg}).encode()
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _response_url(self, code: str, raw: bytes, now: float) -> tuple[int, str]:
        url = self._urls.get(code)
        errcode, errmsg = FakeWebhookErrcode.OK, "ok"
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if url is None:
            errcode, errmsg = FakeWebhookErrcode.RESPONSE_URL_UNKNOWN, "unknown response_url"
        elif url.used:
            errcode, errmsg = FakeWebhookErrcode.RESPONSE_URL_USED, "response_url already used"
        elif now - url.created > self.response_url_ttl:
            errcode, errmsg = FakeWebhookErrcode.RESPONSE_URL_EXPIRED, "response_url expired"
        elif not isinstance(body, dict) or body.get("msgtype") not in ("markdown", "template_card"):
            errcode, errmsg = FakeWebhookErrcode.INVALID_PARAMETER, "msgtype must be markdown or template_card"
        elif body["msgtype"] == "markdown" and not isinstance(body.get("markdown", {}).get("content"), str):
            errcode, errmsg = FakeWebhookErrcode.INVALID_PARAMETER, "markdown.content must be a string"
        elif body["msgtype"] == "markdown" and len(body["markdown"]["content"].encode()) > CONTENT_LIMIT:
            errcode, errmsg = FakeWebhookErrcode.CONTENT_TOO_LONG, f"content over {CONTENT_LIMIT} bytes"
        elif body["msgtype"] == "template_card" and url.view.chatid is not None:
            errcode, errmsg = FakeWebhookErrcode.CARD_NOT_ALLOWED, "template_card only in single chats"
        self.posts.append(ResponseUrlPost(code, body, int(errcode), now))
        if url is not None and errcode == FakeWebhookErrcode.OK:
            url.used = True
            url.view.pushes.append(body)
        self._posted.set()
        self._posted = trio.Event()
        return errcode, errmsg
