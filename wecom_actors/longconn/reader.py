"""The Reader: the only reader of the socket.

Decodes every frame (msgspec, two stages), hands acks to the Correlator and callbacks to the
Router, and skips junk with a log line. It never waits on a handler: the Router's inbox is fed
with a non-blocking policy there, so heartbeat acks keep flowing under load.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from ..errors import FrameError, KickedOut
from ..protocol.frames import CALLBACK_COMMANDS, ack_of, decode_frame
from ..protocol.inbound import DisconnectedEvent, InboundMessage, decode_callback
from .correlator import Correlator
from .transport import Transport

__all__ = ["Reader"]

log = logging.getLogger("wecom_actors.reader")


class Reader:
    def __init__(
        self,
        conn: Transport,
        correlator: Correlator,
        generation: int,
        deliver: Callable[[str, InboundMessage, int], None],
        counters: dict[str, int],
        *,
        early: list[str | bytes] | None = None,
    ) -> None:
        self._conn = conn
        self._correlator = correlator
        self._generation = generation
        self._deliver = deliver
        self._counters = counters
        # Frames that arrived before the subscribe ack: handled first, in arrival order.
        self._early = early or []

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        conn, correlator, generation = self._conn, self._correlator, self._generation
        counters = self._counters
        early, self._early = self._early, []
        early.reverse()
        while True:
            data = early.pop() if early else await conn.receive()
            counters["frames_in"] += 1
            try:
                env = decode_frame(data)
            except FrameError as exc:
                counters["junk_frames"] += 1
                log.warning("skipping a frame that is not a JSON object: %s", exc)
                continue
            if env.cmd is None:
                correlator.deliver_ack(generation, ack_of(env))
                continue
            if env.cmd not in CALLBACK_COMMANDS:
                counters["unknown_frames"] += 1
                log.warning("skipping a frame with unknown cmd %r", env.cmd[:64])
                continue
            try:
                message = decode_callback(env.body)
            except FrameError as exc:
                counters["junk_frames"] += 1
                log.warning("skipping a malformed %s (req_id %s): %s", env.cmd, env.req_id, exc)
                continue
            if isinstance(message, DisconnectedEvent):
                log.error(
                    "WeCom sent disconnected_event: another connection subscribed with this bot id "
                    "and replaced this one; stopping without reconnecting (reconnecting would "
                    "kick the other instance in turn)"
                )
                raise KickedOut("replaced by another connection of the same bot (disconnected_event)")
            self._deliver(env.req_id, message, len(data))
