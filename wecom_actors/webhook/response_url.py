"""response_url: the webhook mode's only way to send something WeCom did not poll for.

Every message callback (and template_card_event) carries a ``response_url``; the bot may POST
one unencrypted JSON body to it, once, within one hour (docs/protocol-notes.md, 'response_url'). This module
keeps a book of those URLs per conversation and posts through the bot's own httpx client:

* each URL is claimed *before* the request is sent, so it is never used twice, even when the
  request fails halfway (a second POST could duplicate the message);
* URLs older than one hour are never used and are forgotten by :meth:`ResponseUrls.sweep`;
* the URL is checked like a media URL (``http``/``https`` only; loopback, private and other
  non-public addresses refused unless ``allow_private``), with the checks of
  :mod:`wecom_actors.media`; redirects are never followed;
* every request has an explicit timeout, and the whole POST runs under ``trio.fail_after``.

Markdown content is limited to 20480 UTF-8 bytes: longer text is cut at a character boundary
and ends with a one-line notice (:func:`cut_with_notice`), and the cut is logged.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

import httpx
import msgspec
import trio

from ..errors import MediaError, RequestError, StaleReply
from ..media import MediaPolicy, Resolver, check_host, default_resolver
from ..protocol.limits import MAX_CONTENT_BYTES, RESPONSE_URL_TTL_SECONDS
from ..protocol.replies import MarkdownReply, TemplateCard, TemplateCardReply, encode_body
from ..render import markdown_body

__all__ = ["ResponseUrlRecord", "ResponseUrls", "cut_with_notice"]

log = logging.getLogger("wecom_actors.webhook.response_url")

#: Per conversation, at most this many unused URLs are remembered (the newest win).
MAX_URLS_PER_CONVERSATION = 32
_PORTS = {"http": 80, "https": 443}


class _Answer(msgspec.Struct):
    errcode: int = 0
    errmsg: str = ""


_decode_answer = msgspec.json.Decoder(_Answer).decode


def cut_with_notice(text: str, limit: int = MAX_CONTENT_BYTES) -> tuple[str, int]:
    """``text`` if it fits in ``limit`` UTF-8 bytes; else its head plus a one-line notice.

    Returns ``(content, dropped_bytes)``; ``content`` is at most ``limit`` bytes.
    """
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, 0
    notice = "\n\n(The reply was cut here: {n} more bytes were not delivered.)"
    room = limit - len(notice.format(n=len(data)).encode("utf-8"))
    end = room
    while end > 0 and (data[end] & 0xC0) == 0x80:  # never cut inside a UTF-8 sequence
        end -= 1
    dropped = len(data) - end
    return data[:end].decode("utf-8") + notice.format(n=dropped), dropped


class ResponseUrlRecord:
    """One response_url: where it came from, when, and whether it was used."""

    __slots__ = ("conversation", "received_at", "single_chat", "url", "used")

    def __init__(self, url: str, conversation: str, *, single_chat: bool, received_at: float) -> None:
        self.url = url
        self.conversation = conversation
        self.single_chat = single_chat
        self.received_at = received_at
        self.used = False

    def usable(self, now: float) -> bool:
        return not self.used and now - self.received_at < RESPONSE_URL_TTL_SECONDS

    def __repr__(self) -> str:  # never the URL: its query is a one-time credential
        return f"ResponseUrlRecord({self.conversation!r}, used={self.used})"


class ResponseUrls:
    """The book of response_urls and the client that posts to them."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        allow_private: bool,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        resolver: Resolver | None = None,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.http = http
        self.policy = MediaPolicy(allow_private=allow_private, timeout=timeout)
        self.timeout = timeout
        self._httpx_timeout = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
        self._resolve = resolver or default_resolver
        self._clock = clock
        self._book: dict[str, deque[ResponseUrlRecord]] = {}
        self.posts = 0
        self.failures = 0

    def __len__(self) -> int:
        return sum(len(q) for q in self._book.values())

    # --- the book ------------------------------------------------------------------------------

    def remember(self, url: str | None, conversation: str, *, single_chat: bool) -> ResponseUrlRecord | None:
        """Record the response_url of a callback just received (``None`` when it has none)."""
        if not url:
            return None
        record = ResponseUrlRecord(url, conversation, single_chat=single_chat, received_at=self._clock())
        queue = self._book.setdefault(conversation, deque(maxlen=MAX_URLS_PER_CONVERSATION))
        queue.append(record)
        return record

    def latest(self, conversation: str) -> ResponseUrlRecord | None:
        """The most recent usable URL of ``conversation``, or ``None``."""
        now = self._clock()
        for record in reversed(self._book.get(conversation, ())):
            if record.usable(now):
                return record
        return None

    def pick(self, own: ResponseUrlRecord | None, conversation: str) -> ResponseUrlRecord | None:
        """``own`` when it is still usable, else the conversation's most recent usable one."""
        if own is not None and own.usable(self._clock()):
            return own
        return self.latest(conversation)

    def sweep(self) -> None:
        """Forget used and expired URLs."""
        now = self._clock()
        for conversation in list(self._book):
            queue = self._book[conversation]
            kept = [r for r in queue if r.usable(now)]
            if not kept:
                del self._book[conversation]
            elif len(kept) != len(queue):
                self._book[conversation] = deque(kept, maxlen=MAX_URLS_PER_CONVERSATION)

    # --- posting -------------------------------------------------------------------------------

    async def post_markdown(self, record: ResponseUrlRecord, text: str) -> None:
        """POST ``text`` as markdown (cut with a notice beyond 20480 bytes)."""
        content, dropped = cut_with_notice(text)
        if dropped:
            log.warning(
                "conversation %s: %d bytes did not fit in the one response_url message and were cut",
                record.conversation,
                dropped,
            )
        await self._post(record, MarkdownReply(markdown=markdown_body(content)))

    async def post_card(self, record: ResponseUrlRecord, card: TemplateCard) -> None:
        """POST a template card; WeCom allows that in single chats only."""
        if not record.single_chat:
            raise RequestError("a template card can go through response_url in a single chat only")
        await self._post(record, TemplateCardReply(template_card=card))

    async def _post(self, record: ResponseUrlRecord, body: object) -> None:
        if not record.usable(self._clock()):
            why = "was already used" if record.used else "is older than one hour"
            raise StaleReply(f"the response_url of conversation {record.conversation} {why}")
        record.used = True  # claimed before sending: a response_url is never posted twice
        try:
            url = httpx.URL(record.url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            self.failures += 1
            raise RequestError("response_url is not a valid URL") from exc
        host = url.host or "<no host>"
        try:
            with trio.fail_after(self.timeout):
                await self._send(url, host, encode_body(body))
        except trio.TooSlowError as exc:
            self.failures += 1
            raise RequestError(f"response_url POST to {host} timed out after {self.timeout:g} s") from exc
        except RequestError:
            self.failures += 1
            raise
        self.posts += 1

    async def _send(self, url: httpx.URL, host: str, payload: bytes) -> None:
        if url.scheme not in _PORTS:
            raise RequestError(f"response_url scheme {url.scheme!r} is not http or https")
        if not url.host:
            raise RequestError("response_url has no host")
        try:
            await check_host(url.host, url.port or _PORTS[url.scheme], self.policy, self._resolve)
        except MediaError as exc:
            # The media guard's words, but it is the response_url that was refused.
            raise RequestError(f"response_url refused: {exc}".replace("media host", "host")) from exc
        try:
            response = await self.http.post(
                url,
                content=payload,
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=self._httpx_timeout,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            raise RequestError(f"response_url POST to {host} failed: {type(exc).__name__}") from exc
        if not response.is_success:
            raise RequestError(f"response_url POST to {host} answered HTTP {response.status_code}")
        if response.content.strip():
            try:
                answer = _decode_answer(response.content)
            except msgspec.DecodeError:
                return  # the answer body is undocumented: a 2xx without JSON counts as accepted
            if answer.errcode != 0:
                raise RequestError(
                    f"response_url POST to {host} refused: errcode {answer.errcode} {answer.errmsg}",
                    errcode=answer.errcode,
                    errmsg=answer.errmsg,
                )
