"""The Heartbeat: a JSON ``ping`` every interval, each waiting for its ack.

An actor of one connection. It sends each ping as a request to the Correlator's mailbox and
gets the settlement back in its own mailbox, where the Correlator also posts :data:`PROBE` when
an idempotent frame's ack is late: the Heartbeat then pings at once, out of cadence, and posts a
:class:`ProbeResult` back (healthy) or ends the connection (no answer).

Cadence uses ``sleep_until`` arithmetic (no drift). Two consecutive pings without a successful
ack within ``ack_timeout`` mean the connection is lost: this is how a half-open TCP connection is
found (the socket looks fine, nothing comes back). Worst-case detection: 2 intervals + timeout
after the last good ack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from ..errors import ConnectionLost, RequestError
from ..mailbox import post
from ..protocol.frames import Cmd, encode_request
from .correlator import PROBE, ProbeResult, Request

__all__ = ["Heartbeat"]

log = logging.getLogger("wecom_actors.heartbeat")

#: The Heartbeat's mailbox: ping settlements and probe requests (at most a few at a time).
MAILBOX_SIZE = 16


class Heartbeat:
    def __init__(
        self,
        correlator: trio.MemorySendChannel[Any],
        generation: int,
        *,
        interval: float,
        ack_timeout: float,
        new_req_id: Callable[[str], str],
        max_missed: int = 2,
    ) -> None:
        self._correlator = correlator
        self.generation = generation
        self.interval = interval
        self.ack_timeout = min(ack_timeout, interval)
        self._new_req_id = new_req_id
        self.max_missed = max_missed
        self.mailbox, self._rx = trio.open_memory_channel[Any](MAILBOX_SIZE)
        self._probe_pending = False
        # Published counters (read by the supervisor's statistics).
        self.pings = self.pings_missed = self.probes = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self._rx:
            task_status.started()
            await self._loop()

    async def _loop(self) -> None:
        missed = 0
        next_tick = trio.current_time() + self.interval
        rx = self._rx
        while True:
            if not self._probe_pending:
                with trio.move_on_at(next_tick):
                    message = await rx.receive()
                    if message is PROBE:
                        self._probe_pending = True
                    continue  # a settlement of a ping given up on: moot
            if self._probe_pending:
                # A reply's ack is late and this probe goes unanswered too: two silences in a
                # row on a connection that should answer in milliseconds. It is dead.
                self._probe_pending = False
                self.probes += 1
                if not await self._ping():
                    raise ConnectionLost("a reply's ack and the probe that followed both went unanswered")
                await post(self._correlator, ProbeResult(self.generation, True))
                missed = 0
                continue
            next_tick += self.interval
            self.pings += 1
            if await self._ping():
                missed = 0
                continue
            missed += 1
            self.pings_missed += 1
            log.warning("heartbeat ack missing (%d of %d allowed)", missed, self.max_missed)
            if missed >= self.max_missed:
                raise ConnectionLost(f"{missed} heartbeats without an ack: the connection is dead")

    async def _ping(self) -> bool:
        req_id = self._new_req_id(Cmd.PING)
        req = Request(Cmd.PING, req_id, encode_request(Cmd.PING, req_id), bound=True, reply=self.mailbox)
        with trio.move_on_after(self.ack_timeout):
            await post(self._correlator, req)
            while True:
                message = await self._rx.receive()
                if message is PROBE:
                    self._probe_pending = True  # answered by the ping that follows
                    continue
                if req not in message:
                    continue  # an older ping's late settlement
                if isinstance(req.error, RequestError):
                    log.warning("heartbeat refused: %s", req.error)
                    return False
                if req.error is not None:  # ConnectionLost: the connection is ending anyway
                    return False
                return True
        req.abandoned = True
        return False
