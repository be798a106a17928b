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
        self._probe = trio.Event()

    def probe(self) -> None:
        """Ping now, out of cadence: an idempotent frame's ack is late (Correlator.on_suspect)."""
        self._probe.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._correlator.on_suspect = self.probe
        task_status.started()
        missed = 0
        next_tick = trio.current_time() + self.interval
        while True:
            with trio.move_on_at(next_tick):
                await self._probe.wait()
            if self._probe.is_set():
                # A reply's ack is late and this probe goes unanswered too: two silences in a
                # row on a connection that should answer in milliseconds. It is dead.
                self._probe = trio.Event()
                self._counters["probes"] = self._counters.get("probes", 0) + 1
                healthy = await self._ping()
                self._correlator.probe_result(healthy)
                if not healthy:
                    raise ConnectionLost("a reply's ack and the probe that followed both went unanswered")
                missed = 0
                continue
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
