"""The Heartbeat: a JSON ``ping`` every interval, each waiting for its ack.

Cadence uses ``sleep_until`` arithmetic (no drift). Two consecutive pings without a successful
ack within ``ack_timeout`` mean the connection is lost: this is how a half-open TCP connection is
found (the socket looks fine, nothing comes back). Worst-case detection: 2 intervals + timeout
after the last good ack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from ..errors import ConnectionLost, RequestError
from ..protocol.frames import Cmd
from .correlator import Correlator

__all__ = ["Heartbeat"]

log = logging.getLogger("wecom_actors.heartbeat")


class Heartbeat:
    def __init__(
        self,
        correlator: Correlator,
        *,
        interval: float,
        ack_timeout: float,
        new_req_id: Callable[[str], str],
        max_missed: int = 2,
        counters: dict[str, int] | None = None,
    ) -> None:
        self._correlator = correlator
        self.interval = interval
        self.ack_timeout = min(ack_timeout, interval)
        self._new_req_id = new_req_id
        self.max_missed = max_missed
        self._counters = counters if counters is not None else {"pings": 0, "pings_missed": 0}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        missed = 0
        next_tick = trio.current_time() + self.interval
        while True:
            await trio.sleep_until(next_tick)
            next_tick += self.interval
            self._counters["pings"] += 1
            if await self._ping():
                missed = 0
                continue
            missed += 1
            self._counters["pings_missed"] += 1
            log.warning("heartbeat ack missing (%d of %d allowed)", missed, self.max_missed)
            if missed >= self.max_missed:
                raise ConnectionLost(f"{missed} heartbeats without an ack: the connection is dead")

    async def _ping(self) -> bool:
        with trio.move_on_after(self.ack_timeout):
            try:
                await self._correlator.request(
                    Cmd.PING, self._new_req_id(Cmd.PING), idempotent=True, bound=True
                )
            except RequestError as exc:
                log.warning("heartbeat refused: %s", exc)
                return False
            return True
        return False
