"""The webhook ReplyChannel: a handler's replies become answers to WeCom's requests.

Nothing is pushed: stream frames update the :class:`~.streams.Exchange` snapshot that the
callback's POST and the refresh polls are answered from, and the rest goes through the single
response_url of the message.

* ``put_frame`` (called by the ReplyRenderer actor) / ``stream_frame``: only the first
  ``turn.stream()`` of a message owns the stream announced in the POST's answer. A frame
  replaces the snapshot at once; a non-final frame is settled once an answer carried it: the
  POST's answer or a refresh poll's (at most ``POLL_WAIT`` s later), so ``ReplyStream.flush()``
  means "WeCom has seen it". Frames supersede each other (``frames_supersede``): SessionStreams
  sends the next one as the text grows without waiting for a poll, so every answer carries the
  text appended until shortly before it. Frames of a stream WeCom does not poll (a second
  stream, a message answered with a card, a stream cut off at six minutes) are refused with
  :class:`StaleReply`; SessionStreams then has the whole text sent through ``fallback`` when the
  stream finishes.
* ``reply``: markdown becomes the announced stream's content (finished) if no stream has
  claimed it yet, else it goes to ``fallback``. A template card answers the POST when nothing
  else did yet, rides on the next refresh answer of a running stream
  (stream_with_template_card), or goes through response_url (single chats only).
* ``welcome`` / ``update_card``: the answer to the event's POST, which waits at most
  ``EVENT_WAIT`` s (WeCom gives template_card_event one 5-second attempt); later -> StaleReply.
* ``fallback``: text for the message's one response_url post. Texts of one turn are collected
  and sent as one post when the handler returns (so a continuation longer than 20480 bytes is
  cut with a notice instead of failing halfway); raises StaleReply at once when the chat has
  no usable response_url.
"""

from __future__ import annotations

import trio

from ..errors import RequestError, StaleReply
from ..protocol.replies import (
    MarkdownReply,
    MsgItem,
    TemplateCard,
    TemplateCardReply,
    UpdateCardReply,
    encode_body,
)
from ..render import first_part
from ..renderer import Settled
from .response_url import ResponseUrls
from .streams import POLL_WAIT, Exchange, Phase, StreamTable

__all__ = ["POLL_WAIT", "WebhookReplies"]


class WebhookReplies:
    """Replies to one callback (``exchange``)."""

    __slots__ = ("exchange", "table", "urls")

    #: A frame replaces the snapshot whether or not a poll served the previous one, so neither
    #: the next frame nor the final one waits for a poll (SessionStreams reads this).
    frames_supersede = True

    def __init__(self, exchange: Exchange, urls: ResponseUrls, table: StreamTable) -> None:
        self.exchange = exchange
        self.urls = urls
        self.table = table

    def put_frame(
        self,
        stream_id: str,
        content: str,
        finish: bool,
        *,
        token: tuple[int, int, int],
        feedback_id: str | None = None,
        msg_items: list[MsgItem] | None = None,
        card: TemplateCard | None = None,
    ) -> Settled | None:
        """Put a frame into the snapshot now. Returns its settlement when it is known at once (a
        final frame; a StaleReply when WeCom does not poll this stream), else None: the table
        posts ``Settled(token)`` to SessionStreams once an answer carried it. Never raises."""
        ex = self.exchange
        if stream_id != ex.stream_id or not ex.polled_live or ex.finish:
            return Settled(token, StaleReply(f"stream {stream_id} is not polled by WeCom; its text goes by response_url"))
        version = ex.set_frame(content, finish, feedback_id=feedback_id, msg_items=msg_items, card=card)
        if finish or not self.table.frame_waits(ex, version, token):
            return Settled(token, None)
        return None

    async def stream_frame(
        self,
        stream_id: str,
        content: str,
        finish: bool,
        *,
        feedback_id: str | None = None,
        msg_items: list[MsgItem] | None = None,
        card: TemplateCard | None = None,
    ) -> None:
        ex = self.exchange
        if stream_id != ex.stream_id or not ex.polled_live or ex.finish:
            raise StaleReply(f"stream {stream_id} is not polled by WeCom; its text goes by response_url")
        version = ex.set_frame(content, finish, feedback_id=feedback_id, msg_items=msg_items, card=card)
        if not finish:
            with trio.move_on_after(POLL_WAIT):
                await ex.wait_polled(version)

    async def reply(self, body: object) -> None:
        ex = self.exchange
        if isinstance(body, MarkdownReply):
            text = body.markdown.content
            if not ex.stream_claimed and ex.polled_live:
                ex.stream_claimed = True
                head = first_part(text)
                ex.set_frame(head, True, feedback_id=body.markdown.feedback.id if body.markdown.feedback else None)
                if len(head) < len(text):
                    await self.fallback(text[len(head) :])
            else:
                await self.fallback(text)
        elif isinstance(body, TemplateCardReply):
            card = body.template_card
            if ex.card is None and ex.polled_live and not ex.finish:
                ex.card = card
                ex.changed()
                return
            record = self.urls.pick(ex.response_url, ex.conversation)
            if record is None:
                raise StaleReply(self._no_url())
            await self.urls.post_card(record, card)
        else:
            raise RequestError(
                f"{type(body).__name__} needs an uploaded media_id, which webhook mode cannot send"
            )

    async def welcome(self, body: object) -> None:
        self._answer_event(encode_body(body), "welcome")

    async def update_card(self, body: UpdateCardReply) -> None:
        self._answer_event(encode_body(body), "card update")

    def _answer_event(self, plaintext: bytes, what: str) -> None:
        ex = self.exchange
        if not ex.is_event or ex.phase is not Phase.PENDING or ex.direct is not None:
            raise StaleReply(f"{what}: the event's answer was already sent (or it is not an event)")
        ex.direct = plaintext
        ex.changed()

    async def fallback(self, text: str) -> None:
        ex = self.exchange
        if self.urls.pick(ex.response_url, ex.conversation) is None:
            raise StaleReply(self._no_url())
        ex.outbox.append(text)
        if ex.handler_done:
            await self.flush()

    async def flush(self) -> None:
        """Send the collected fallback text as the one response_url post (turn end)."""
        ex = self.exchange
        if not ex.outbox:
            return
        text = "".join(ex.outbox)
        ex.outbox.clear()
        record = self.urls.pick(ex.response_url, ex.conversation)
        if record is None:
            raise StaleReply(self._no_url())
        await self.urls.post_markdown(record, text)

    def _no_url(self) -> str:
        return (
            f"no usable response_url for conversation {self.exchange.conversation} "
            "(each is usable once, within one hour of its message)"
        )
