"""The long-connection bot: the shared core above, the supervised connection below."""

from __future__ import annotations

import logging
import random
from typing import Any

import httpx
import trio

from ..cards import validate_card
from ..core import BotCore, BotStatistics
from ..handlers.turn import Handler
from ..lease import lease_for
from ..protocol.frames import Cmd
from ..protocol.inbound import InboundMessage
from ..protocol.replies import SendMsgBody, TemplateCard
from ..ratelimit import RateLimiter
from ..render import markdown_body, split_content
from .correlator import Correlator
from .replies import LongConnReplies
from .supervisor import ConnectionSupervisor
from .transport import TransportFactory, open_ws_transport
from .upload import UploadResult, media_body, plan_chunks, upload_media

__all__ = ["LongConnBot"]

log = logging.getLogger("wecom_actors.bot")


def _transport_for(config: Any) -> TransportFactory:
    if config.transport == "wsproto":
        from .wsproto_transport import open_wsproto_transport

        return open_wsproto_transport
    return open_ws_transport


class LongConnBot(BotCore):
    mode = "long-connection"

    def __init__(
        self,
        config: Any,
        handler: Handler,
        *,
        http_client: httpx.AsyncClient,
        rng: random.Random,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        super().__init__(config, handler, http_client=http_client, rng=rng)
        self.correlator = Correlator(ack_timeout=config.ack_timeout)
        self.requests = self.correlator.requester()
        self.supervisor = ConnectionSupervisor(
            url=config.ws_url,
            bot_id=config.bot_id,
            secret=config.bot_secret,
            transport_factory=transport_factory or _transport_for(config),
            correlator=self.correlator.mailbox,
            router=self.router.mailbox,
            new_req_id=self.ids.req_id,
            rng=rng,
            heartbeat_interval=config.heartbeat_interval,
            ack_timeout=config.ack_timeout,
            connect_timeout=config.connect_timeout,
            max_frame_bytes=config.max_frame_bytes,
            reconnect_initial=config.reconnect_initial,
            reconnect_max=config.reconnect_max,
            reconnect_jitter=config.reconnect_jitter,
            restart_intensity=config.restart_intensity,
            restart_period=config.restart_period,
            auth_max_attempts=config.auth_max_attempts,
        )
        # Proactive sends wait for the conversation's budget (30/min, 1000/h, replies and
        # pushes together; replies are counted but never delayed). Uploads: 30/min, 1000/h
        # per bot (docs/protocol-notes.md, 'Chunked upload'), one budget under the key "uploads".
        self.limiter = RateLimiter()
        self.upload_limiter = RateLimiter()
        # Replicas (redis_url set): the supervisor runs only while this replica holds the lease.
        self.lease = lease_for(config, rng)

    async def run(self, handle: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.handle = handle
        async with trio.open_nursery() as nursery:
            await nursery.start(self.streams.run)
            await nursery.start(self.correlator.run)
            await nursery.start(self.router.run)
            if self.lease is None:
                await nursery.start(self.supervisor.run)
            else:
                await nursery.start(self.lease.run, self.supervisor.run)
            task_status.started()

    def statistics(self) -> BotStatistics:
        sup, corr = self.supervisor.totals(), self.correlator.statistics()
        return self._base_statistics(
            state=self.supervisor.state if self.lease is None or self.lease.state == "held" else self.lease.state,
            connects=sup["connects"],
            reconnects=sup["reconnects"],
            requests_in_flight=corr.in_flight,
            requests_queued=corr.queued,
            request_lanes=corr.lanes,
            frames_in=sup["frames_in"],
            junk_frames=sup["junk_frames"],
            pings_missed=sup["pings_missed"],
            frames_sent=corr.sent,
            acks_by_errcode=corr.acks_by_errcode,
            last_ack_age=None if corr.last_ack_at is None else max(0.0, trio.current_time() - corr.last_ack_at),
            lease=None if self.lease is None else self.lease.statistics(),
            mailboxes={"router": self.router.mailbox_statistics(), "correlator": self.correlator.mailbox_statistics()},
        )

    def channel_for(self, req_id: str, message: InboundMessage) -> LongConnReplies:
        channel = LongConnReplies(self.requests, req_id, message.conversation, self.push_markdown)
        return _CountedReplies(channel, self.limiter)  # type: ignore[return-value]

    async def push_markdown(self, chatid: str, text: str) -> None:
        """Send ``text`` to ``chatid`` with aibot_send_msg, split at the content limit; each
        part waits for the conversation's send budget (Overloaded past the limiter's bounds)."""
        for part in split_content(text):
            await self._send(SendMsgBody(chatid=chatid, msgtype="markdown", markdown=markdown_body(part)))

    async def send_card(self, chatid: str, card: TemplateCard) -> None:
        """A proactive template card (validated first: CardError names a broken field)."""
        validate_card(card)
        await self._send(SendMsgBody(chatid=chatid, msgtype="template_card", template_card=card))

    async def send_media(
        self, chatid: str, kind: str, media_id: str, *, title: str | None = None, description: str | None = None
    ) -> None:
        """A proactive file/image/voice/video message; a video's title and description are
        truncated to 128 / 512 bytes on a character boundary."""
        body = media_body(kind, media_id, title=title, description=description)
        media: dict[str, Any] = {kind: body}  # the body field is named after the kind
        await self._send(SendMsgBody(chatid=chatid, msgtype=kind, **media))

    async def upload(self, kind: str, filename: str, data: bytes, **options: Any) -> UploadResult:
        """Chunked upload (see :mod:`.upload`); ``options`` go to ``upload_media``."""
        plan_chunks(kind, filename, len(data), max_bytes=options.get("max_bytes"))
        await self.upload_limiter.acquire("uploads")
        return await upload_media(self.requests, self.ids, kind, filename, data, **options)

    async def upload_media(self, kind: str, filename: str, data: bytes) -> str:
        """Upload temp media (valid 3 days) and return its media_id."""
        return (await self.upload(kind, filename, data)).media_id

    async def _send(self, body: SendMsgBody) -> None:
        """One aibot_send_msg within the conversation's rate budget (waits, or Overloaded)."""
        await self.limiter.acquire(body.chatid)
        await self.requests.request(Cmd.SEND_MSG, self.ids.req_id(Cmd.SEND_MSG), body, idempotent=False)
        self.counts["pushes"] += 1


class _CountedReplies:
    """A reply channel that counts, without waiting, what WeCom counts against the
    conversation's send rate: a stream once (its first frame), a one-shot reply, a welcome.
    Card updates do not count. Everything else is the wrapped channel's."""

    __slots__ = ("_inner", "_limiter", "_streams")

    #: Stream frames are requests, one in flight at a time (read once per stream: a class
    #: attribute, so that read never reaches ``__getattr__``).
    frames_supersede = False

    def __init__(self, inner: LongConnReplies, limiter: RateLimiter) -> None:
        self._inner = inner
        self._limiter = limiter
        self._streams: tuple[str, ...] = ()  # counted stream ids; usually none or one

    def __getattr__(self, name: str) -> Any:
        if name in _CountedReplies.__slots__:  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._inner, name)

    def _count_stream(self, stream_id: str) -> None:
        if stream_id not in self._streams:
            self._streams += (stream_id,)
            self._limiter.record(self._inner.conversation)

    async def stream_frame(self, stream_id: str, content: str, finish: bool, **kwargs: Any) -> None:
        self._count_stream(stream_id)
        await self._inner.stream_frame(stream_id, content, finish, **kwargs)

    async def send_stream_frame(self, stream_id: str, content: str, finish: bool, **kwargs: Any) -> None:
        self._count_stream(stream_id)
        await self._inner.send_stream_frame(stream_id, content, finish, **kwargs)

    async def reply(self, body: object) -> None:
        self._limiter.record(self._inner.conversation)
        await self._inner.reply(body)

    async def welcome(self, body: object) -> None:
        self._limiter.record(self._inner.conversation)
        await self._inner.welcome(body)
