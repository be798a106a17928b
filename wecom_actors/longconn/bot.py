"""The long-connection bot: Router + sessions above, the supervised connection below."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

import httpx
import trio

from ..errors import ReplyFailed, RequestError
from ..handlers.turn import Handler, Turn
from ..ids import IdGen
from ..protocol.frames import Cmd
from ..protocol.inbound import EventMessage, InboundMessage
from ..protocol.inbound import MediaRef as InboundMediaRef
from ..protocol.replies import SendMsgBody
from ..render import markdown_body, split_content
from ..router import Router
from .correlator import Correlator
from .replies import LongConnReplies
from .supervisor import ConnectionSupervisor
from .transport import TransportFactory, open_ws_transport

if TYPE_CHECKING:
    from ..bot import BotHandle
    from ..config import BotConfig
    from ..media import MediaPayload

__all__ = ["LongConnBot"]

log = logging.getLogger("wecom_actors.bot")

BUSY_TEXT = "I am still working on your earlier messages. Please send this one again in a moment."


class LongConnBot:
    def __init__(
        self,
        config: BotConfig,
        handler: Handler,
        *,
        http_client: httpx.AsyncClient,
        rng: random.Random,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        self.config = config
        self.handler = handler
        self.http = http_client
        self.ids = IdGen(rng)
        self.correlator = Correlator(ack_timeout=config.ack_timeout)
        self.router = Router(
            dispatch=self._dispatch,
            on_busy=self._busy,
            handler_concurrency=config.handler_concurrency,
            session_queue_size=config.session_queue_size,
        )
        self.supervisor = ConnectionSupervisor(
            url=config.ws_url,
            bot_id=config.bot_id,
            secret=config.bot_secret,
            transport_factory=transport_factory or open_ws_transport,
            correlator=self.correlator,
            deliver=self.router.submit,
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
        self.counts = dict.fromkeys(("handler_errors", "replies_failed", "pushes"), 0)
        self.handle: BotHandle | None = None

    async def run(self, handle: BotHandle, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.handle = handle
        async with trio.open_nursery() as nursery:
            await nursery.start(self.router.run)
            await nursery.start(self.supervisor.run)
            task_status.started()

    # --- proactive sends ---------------------------------------------------------------------

    async def push_markdown(self, chatid: str, text: str) -> None:
        """Send ``text`` to ``chatid`` with aibot_send_msg, split at the content limit."""
        for part in split_content(text):
            body = SendMsgBody(chatid=chatid, msgtype="markdown", markdown=markdown_body(part))
            await self.correlator.request(Cmd.SEND_MSG, self.ids.req_id(Cmd.SEND_MSG), body, idempotent=False)
            self.counts["pushes"] += 1

    # --- handlers ----------------------------------------------------------------------------

    def _turn(self, req_id: str, message: InboundMessage) -> Turn:
        channel = LongConnReplies(self.correlator, req_id, message.conversation, self.push_markdown)
        return Turn(
            message,
            req_id=req_id,
            channel=channel,
            bot=self.handle,
            new_stream_id=self.ids.stream_id,
            download=self._download,
            min_interval=self.config.stream_min_interval,
        )

    async def _download(self, ref: InboundMediaRef) -> MediaPayload:
        from ..media import MediaPolicy, download_media

        policy = MediaPolicy(
            max_bytes=self.config.media_max_bytes,
            timeout=self.config.media_timeout,
            allow_private=self.config.media_allow_private,
        )
        return await download_media(self.http, ref.url, key=ref.aeskey, policy=policy)

    async def _dispatch(self, req_id: str, message: InboundMessage) -> None:
        turn = self._turn(req_id, message)
        try:
            await self.handler(turn)
        except ReplyFailed as exc:
            self.counts["replies_failed"] += 1
            log.error("%s", exc)
        except Exception:
            # The user's handler is the one place a bug must not stop the bot: log it, answer
            # the user with a short note, keep serving. (Cancelled is a BaseException: it passes.)
            self.counts["handler_errors"] += 1
            log.exception("handler %s failed on msgid %s", getattr(self.handler, "__name__", "?"), message.msgid)
            if not turn.replied and not turn.is_event:
                await self._answer(turn, "Sorry, something went wrong while answering.")
        finally:
            self.counts["replies_failed"] += sum(1 for s in turn.streams if s.failed)

    async def _busy(self, req_id: str, message: InboundMessage) -> None:
        if isinstance(message, EventMessage):
            return
        await self._answer(self._turn(req_id, message), BUSY_TEXT)

    async def _answer(self, turn: Turn, text: str) -> None:
        try:
            await turn.reply_text(text)
        except RequestError as exc:
            log.error("could not answer msgid %s: %s", turn.message.msgid, exc)
