"""The Reader: the only reader of one connection's socket.

Decodes every frame (msgspec, two stages), posts the acks of one read to the Correlator's
mailbox (tagged with the connection's generation, one list) and the callbacks of one read to the
Router's mailbox (one list), and skips junk with a log line. It never waits on a handler: the
Router queues or answers busy without blocking, so heartbeat acks keep flowing under load; it
waits only when a mailbox is full (TCP backpressure).
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from ..errors import FrameError, KickedOut
from ..mailbox import BATCH_MAX, post
from ..protocol.frames import CALLBACK_COMMANDS, Ack, ack_of, decode_frame
from ..protocol.inbound import DisconnectedEvent, InboundMessage, decode_callback
from .correlator import Acks
from .transport import Transport

__all__ = ["Reader"]

log = logging.getLogger("wecom_actors.reader")


class Reader:
    def __init__(
        self,
        conn: Transport,
        correlator: trio.MemorySendChannel[Any],
        generation: int,
        router: trio.MemorySendChannel[list[tuple[str, InboundMessage, int]]],
        *,
        early: list[str | bytes] | None = None,
    ) -> None:
        self._conn = conn
        self._correlator = correlator
        self._generation = generation
        self._router = router
        # Frames that arrived before the subscribe ack: handled first, in arrival order.
        self._early = early or []
        # Published counters (read by the supervisor's statistics).
        self.frames_in = self.junk_frames = self.unknown_frames = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        early, self._early = self._early, []
        await self._read(early)
        receive = self._conn.receive
        # A transport that parses several messages from one socket read hands the rest out
        # without waiting: all of them are posted on as one list of acks and one of callbacks.
        more = getattr(self._conn, "receive_nowait", None)
        while True:
            frames = [await receive()]
            if more is not None:
                try:
                    while len(frames) < BATCH_MAX:
                        frames.append(more())
                except trio.WouldBlock:
                    pass
            await self._read(frames)

    async def _read(self, frames: list[str | bytes]) -> None:
        """Decode the frames of one read; post their acks and callbacks, one list each."""
        acks: list[Ack] = []
        callbacks: list[tuple[str, InboundMessage, int]] = []
        try:
            for data in frames:
                self._frame(data, acks, callbacks)
        finally:  # a KickedOut still delivers what came before it
            if acks:
                await post(self._correlator, Acks(self._generation, acks))
            if callbacks:
                await post(self._router, callbacks)

    def _frame(self, data: str | bytes, acks: list[Ack], callbacks: list[tuple[str, InboundMessage, int]]) -> None:
        self.frames_in += 1
        try:
            env = decode_frame(data)
        except FrameError as exc:
            self.junk_frames += 1
            log.warning("skipping a frame that is not a JSON object: %s", exc)
            return
        if env.cmd is None:
            acks.append(ack_of(env))
            return
        if env.cmd not in CALLBACK_COMMANDS:
            self.unknown_frames += 1
            log.warning("skipping a frame with unknown cmd %r", env.cmd[:64])
            return
        try:
            message = decode_callback(env.body)
        except FrameError as exc:
            self.junk_frames += 1
            log.warning("skipping a malformed %s (req_id %s): %s", env.cmd, env.req_id, exc)
            return
        if isinstance(message, DisconnectedEvent):
            log.error(
                "WeCom sent disconnected_event: another connection subscribed with this bot id "
                "and replaced this one; stopping without reconnecting (reconnecting would "
                "kick the other instance in turn)"
            )
            raise KickedOut("replaced by another connection of the same bot (disconnected_event)")
        callbacks.append((env.req_id, message, len(data)))
