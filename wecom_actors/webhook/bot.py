"""The webhook bot: the shared core (Router, Turn, handlers) above, the WebhookServer below.

::

    WebhookBot.run ┬─ Router           dedupe-free here (done below), sessions, handler workers
                   ├─ StreamTable      sweeper: evicts exchanges after WeCom's 6-minute window
                   ├─ WebhookServer    hypercorn + WebhookApp: verify, decrypt, respond()
                   └─ SharedStreams    with redis_url: msgid claims and stream snapshots in Redis

A callback POST reaches :meth:`WebhookBot.respond`. A stream refresh is answered from its
stream's snapshot (before any msgid dedupe: refreshes may reuse the msgid). A message or event
whose msgid is live gets that exchange's answer again (the same stream id; the handler never
runs twice). A new one becomes an :class:`~.streams.Exchange` keyed by its msgid (the req_id),
goes to the Router, and its POST waits a short while for the handler's first output:
``FIRST_REPLY_WAIT`` for messages, ``EVENT_WAIT`` for events (a welcome or card update).
"""

from __future__ import annotations

import logging
import random
from typing import Any

import httpx
import msgspec
import trio

from ..core import BotCore, BotStatistics
from ..crypto import WeComCrypto
from ..errors import RequestError, StaleReply
from ..handlers.turn import Handler
from ..mailbox import post
from ..protocol.inbound import (
    EventMessage,
    FeedbackEvent,
    InboundMessage,
    MediaRef,
    StreamRefresh,
    UnknownEvent,
    UnknownMessage,
)
from ..redis_link import RedisUnavailable
from ..router import DEFAULT_MESSAGE_SIZE
from .app import MAX_FUTURE_SKEW, Rejected, WebhookApp
from .replicated import shared_streams_for
from .replies import WebhookReplies
from .response_url import ResponseUrls
from .server import WebhookServer
from .streams import TOMBSTONE_SECONDS, Exchange, Phase, StreamTable, TableStatistics

__all__ = ["EVENT_WAIT", "FIRST_REPLY_WAIT", "WebhookBot", "WebhookStatistics"]

log = logging.getLogger("wecom_actors.webhook")

#: A message's POST waits at most this long for the handler's first output before it answers
#: with the (possibly empty) stream; WeCom then polls for the rest.
FIRST_REPLY_WAIT = 0.5
#: An event's POST waits at most this long for a welcome / card update (WeCom: 5 s, one try).
EVENT_WAIT = 4.0
#: Timeout of one response_url POST.
RESPONSE_URL_TIMEOUT = 10.0
#: At shutdown, this much of the drain budget (at most half) is kept for WeCom's refresh polls
#: (about one a second) to fetch the final answers of the streams of interrupted handlers.
FINAL_POLL_ALLOWANCE = 1.5


class WebhookStatistics(msgspec.Struct, frozen=True):
    """Webhook-only counters (``BotHandle.statistics()`` has the shared ones)."""

    callbacks: int
    redeliveries: int
    verifications: int
    rejected: int
    rejected_by_status: dict[int, int]
    response_urls: int
    response_url_posts: int
    response_url_failures: int
    table: TableStatistics


class WebhookBot(BotCore):
    mode = "webhook"

    def __init__(
        self, config: Any, handler: Handler, *, http_client: httpx.AsyncClient, rng: random.Random
    ) -> None:
        super().__init__(config, handler, http_client=http_client, rng=rng)
        self.first_reply_wait = FIRST_REPLY_WAIT
        self.event_wait = EVENT_WAIT
        self.crypto = WeComCrypto(config.token, config.encoding_aes_key)
        # A msgid is remembered until no signed request carrying it can still be fresh.
        window = config.webhook_timestamp_window
        self.table = StreamTable(tombstone_seconds=max(TOMBSTONE_SECONDS, window + MAX_FUTURE_SKEW))
        self.urls = ResponseUrls(
            http_client,
            allow_private=config.media_allow_private,
            timeout=RESPONSE_URL_TIMEOUT,
            connect_timeout=config.connect_timeout,
        )
        self.table.on_sweep = self.urls.sweep
        self.table.settlements = self.streams.mailbox  # served frames settle in SessionStreams
        self.app = WebhookApp(
            self,
            self.crypto,
            path=config.callback_path,
            max_body=config.webhook_max_body,
            timestamp_window=config.webhook_timestamp_window,
            body_timeout=config.webhook_body_timeout,
        )
        self.server = WebhookServer(
            self.app,
            host=config.host,
            port=config.port,
            header_timeout=config.webhook_header_timeout,
            keep_alive_timeout=config.webhook_keep_alive_timeout,
            max_connections=config.webhook_max_connections,
        )
        self.port: int | None = None
        self.state = "starting"
        self._accepting = True
        self._rejected: dict[int, int] = {}
        self.wcounts = dict.fromkeys(("callbacks", "redeliveries", "verifications"), 0)
        # Replicas (redis_url set): msgid dedupe and stream snapshots shared through Redis.
        self.shared = shared_streams_for(config)

    # --- the mode's actors ---------------------------------------------------------------------

    async def run(self, handle: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.handle = handle
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.streams.run)
                await nursery.start(self.router.run)
                await nursery.start(self.table.run_sweeper)
                if self.shared is not None:
                    await nursery.start(self.shared.run)
                self.port = await nursery.start(self.server.run)
                self.state = "serving"
                task_status.started()
        finally:
            self.state = "stopped"

    @property
    def serving(self) -> bool:
        return self.state == "serving"

    async def drain(self, grace: float) -> bool:
        """Stop taking new messages (503) and let running handlers finish; interrupt the ones
        still running when ``FINAL_POLL_ALLOWANCE`` of ``grace`` is left (each stream finishes
        with its text so far and the interrupted note); keep answering refresh polls until every
        finished stream's final answer has been sent whole; then stop the HTTP server (answers
        in flight are completed). True if everything finished without interruption in time."""
        self._accepting = False
        self.state = "draining"
        deadline = trio.current_time() + grace
        handlers_done = await super().drain(grace - min(FINAL_POLL_ALLOWANCE, grace / 2))
        if not handlers_done:
            self.interrupt_handlers()  # done by the core's drain already; kept for clarity
        delivered = False
        with trio.move_on_at(deadline):
            await self.router.wait_idle()
            await self.table.wait_streams_delivered()
            delivered = True
        with trio.move_on_after(self.server.graceful_timeout + 1.0):
            await self.server.stop()
        return handlers_done and delivered

    # --- the CallbackTarget the app calls --------------------------------------------------------

    def on_rejected(self, status: int, reason: str) -> None:
        self._rejected[status] = self._rejected.get(status, 0) + 1

    def on_verified(self) -> None:
        self.wcounts["verifications"] += 1

    async def respond(self, message: InboundMessage) -> bytes | None:
        """The plaintext answer to one decrypted callback (``None``: an empty 200)."""
        self.wcounts["callbacks"] += 1
        if isinstance(message, StreamRefresh):
            if self.shared is not None and not self.shared.is_local(message.stream.id):
                return await self._shared_refresh(message.stream.id)
            return self.table.refresh(message.stream.id)
        msgid = message.msgid
        ex = self.table.get(msgid) if msgid else None
        if ex is not None:
            self.wcounts["redeliveries"] += 1
            log.info("msgid %s delivered again: answering from its exchange", msgid)
        elif msgid and self.table.forgotten(msgid):
            self.wcounts["redeliveries"] += 1
            log.info("msgid %s delivered again after its state was evicted: empty answer", msgid)
            return None
        elif isinstance(message, UnknownMessage | UnknownEvent):
            await self._to_router(msgid or self.ids.req_id("webhook"), message)  # counted there
            return None
        elif not self._accepting:
            raise Rejected(503, "shutting down: not taking new messages")
        else:
            stream_id = None
            if self.shared is not None and msgid:
                stream_id = "" if isinstance(message, EventMessage) else self.ids.stream_id()
                owner = await self._shared_claim(msgid, stream_id)
                if owner is not None:  # delivered before, to another replica: answer as it would
                    self.wcounts["redeliveries"] += 1
                    return await self.shared.answer_for(owner)
            ex = self._open(message, stream_id)
            if self.shared is not None:
                await self._shared_own(ex)
            await self._to_router(ex.req_id, message)
        if ex.phase is not Phase.PENDING:
            return ex.first_answer()
        with trio.move_on_after(self.event_wait if ex.is_event else self.first_reply_wait):
            await ex.wait_ready()
        return ex.first_answer()

    async def _to_router(self, req_id: str, message: InboundMessage) -> None:
        """Post one callback to the Router's mailbox (waits only while the mailbox is full)."""
        await post(self.router.mailbox, [(req_id, message, DEFAULT_MESSAGE_SIZE)])

    def _open(self, message: InboundMessage, stream_id: str | None = None) -> Exchange:
        is_event = isinstance(message, EventMessage)
        if stream_id is None:
            stream_id = "" if is_event else self.ids.stream_id()
        ex = Exchange(
            message.msgid or self.ids.req_id("webhook"),
            message,
            stream_id=stream_id,
            created=trio.current_time(),
            is_event=is_event,
            response_url=self.urls.remember(
                message.response_url, message.conversation, single_chat=message.chattype != "group"
            ),
        )
        if isinstance(message, FeedbackEvent):
            ex.phase = Phase.EMPTY  # only an empty answer is allowed; the handler still logs it
        self.table.add(ex)
        return ex

    # --- replicas (redis_url): see replicated.py -----------------------------------------------

    async def _shared_refresh(self, stream_id: str) -> bytes:
        assert self.shared is not None
        try:
            answer = await self.shared.refresh(stream_id)
        except RedisUnavailable as exc:
            raise Rejected(503, f"stream state unavailable ({exc})") from None  # WeCom polls again
        return self.table.refresh(stream_id) if answer is None else answer

    async def _shared_claim(self, msgid: str, stream_id: str) -> str | None:
        assert self.shared is not None
        try:
            return await self.shared.claim(msgid, stream_id)
        except RedisUnavailable as exc:
            log.warning("msgid %s handled here without the shared dedupe: %s", msgid, exc)
            return None

    async def _shared_own(self, ex: Exchange) -> None:
        assert self.shared is not None
        try:
            await self.shared.own(ex)
        except RedisUnavailable as exc:
            self.shared.note_local(ex.stream_id)
            log.warning("stream %s not published (other replicas cannot answer its polls): %s", ex.stream_id, exc)

    # --- BotCore hooks -------------------------------------------------------------------------

    def channel_for(self, req_id: str, message: InboundMessage) -> WebhookReplies:
        ex = self.table.get(req_id)
        if ex is None:  # evicted before its handler ran: everything goes by response_url
            ex = Exchange(req_id, message, stream_id="", created=trio.current_time(), is_event=True, response_url=None)
            ex.phase, ex.closed = Phase.EMPTY, True
            self.table.add(ex)
        ex.dispatched = True
        return WebhookReplies(ex, self.urls, self.table)

    def new_stream_id(self, req_id: str) -> str:
        """The first stream of a message is the one announced in the POST's answer."""
        ex = self.table.get(req_id)
        if ex is not None and not ex.stream_claimed and ex.polled_live:
            ex.stream_claimed = True
            return ex.stream_id
        return self.ids.stream_id()

    def media_key(self, ref: MediaRef) -> bytes | str | None:
        key: str = self.config.encoding_aes_key
        return key  # webhook media: the EncodingAESKey (docs/protocol-notes.md, 'Duplicates, media, sizes')

    async def dispatch(self, req_id: str, message: InboundMessage) -> None:
        try:
            await super().dispatch(req_id, message)  # (the restart notice while interrupting)
        finally:
            await self._turn_done(req_id)

    async def busy(self, req_id: str, message: InboundMessage) -> None:
        try:
            await super().busy(req_id, message)
        finally:
            await self._turn_done(req_id)

    async def _turn_done(self, req_id: str) -> None:
        ex = self.table.get(req_id)
        if ex is None:
            return
        ex.handler_finished()
        if ex.outbox:
            try:
                await WebhookReplies(ex, self.urls, self.table).flush()
            except RequestError as exc:
                self.counts["replies_failed"] += 1
                log.error("msgid %s: the response_url message was not delivered: %s", req_id, exc)

    # --- proactive -----------------------------------------------------------------------------

    async def push_markdown(self, chatid: str, text: str) -> None:
        """Markdown to ``chatid`` through its most recent unused response_url (< 1 hour old)."""
        record = self.urls.latest(chatid)
        if record is None:
            raise StaleReply(
                f"no usable response_url for chat {chatid}: webhook mode can send a proactive "
                "message only through the response_url of a message from that chat received "
                "within the last hour, once per message"
            )
        await self.urls.post_markdown(record, text)
        self.counts["pushes"] += 1

    # --- statistics ----------------------------------------------------------------------------

    def statistics(self) -> BotStatistics:
        return self._base_statistics(
            state=self.state,
            connects=0,
            reconnects=0,
            requests_in_flight=0,
            requests_queued=0,
            request_lanes=0,
            frames_in=self.wcounts["callbacks"],
            junk_frames=sum(self._rejected.values()),
            pings_missed=0,
        )

    def webhook_statistics(self) -> WebhookStatistics:
        return WebhookStatistics(
            callbacks=self.wcounts["callbacks"],
            redeliveries=self.wcounts["redeliveries"],
            verifications=self.wcounts["verifications"],
            rejected=sum(self._rejected.values()),
            rejected_by_status=dict(self._rejected),
            response_urls=len(self.urls),
            response_url_posts=self.urls.posts,
            response_url_failures=self.urls.failures,
            table=self.table.statistics(),
        )
