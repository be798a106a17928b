"""The long-connection bot: the shared core above, the supervised connection below."""

from __future__ import annotations

import logging
import random
from typing import Any

import httpx
import trio

from ..core import BotCore, BotStatistics
from ..handlers.turn import Handler
from ..protocol.frames import Cmd
from ..protocol.inbound import InboundMessage
from ..protocol.replies import SendMsgBody
from ..render import markdown_body, split_content
from .correlator import Correlator
from .replies import LongConnReplies
from .supervisor import ConnectionSupervisor
from .transport import TransportFactory, open_ws_transport

__all__ = ["LongConnBot"]

log = logging.getLogger("wecom_actors.bot")


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

    async def run(self, handle: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.handle = handle
        async with trio.open_nursery() as nursery:
            await nursery.start(self.router.run)
            await nursery.start(self.supervisor.run)
            task_status.started()

    def statistics(self) -> BotStatistics:
        sup, corr = self.supervisor.counters, self.correlator.statistics()
        return self._base_statistics(
            state=self.supervisor.state,
            connects=sup["connects"],
            reconnects=sup["reconnects"],
            requests_in_flight=corr.in_flight,
            requests_queued=corr.queued,
            request_lanes=corr.lanes,
            frames_in=sup["frames_in"],
            junk_frames=sup["junk_frames"],
            pings_missed=sup["pings_missed"],
        )

    def channel_for(self, req_id: str, message: InboundMessage) -> LongConnReplies:
        return LongConnReplies(self.correlator, req_id, message.conversation, self.push_markdown)

    async def push_markdown(self, chatid: str, text: str) -> None:
        """Send ``text`` to ``chatid`` with aibot_send_msg, split at the content limit."""
        for part in split_content(text):
            body = SendMsgBody(chatid=chatid, msgtype="markdown", markdown=markdown_body(part))
            await self.correlator.request(Cmd.SEND_MSG, self.ids.req_id(Cmd.SEND_MSG), body, idempotent=False)
            self.counts["pushes"] += 1
