"""Request correlation as a sans-IO table: lanes, acks, retries, deadlines, reconnects.

No I/O and no clock of its own: the caller (the Correlator actor) feeds it events with the
current time and takes its outputs. Inputs: :meth:`~CorrelationTable.submit`,
:meth:`~CorrelationTable.ack`, :meth:`~CorrelationTable.tick`,
:meth:`~CorrelationTable.connection_up`, :meth:`~CorrelationTable.connection_lost`,
:meth:`~CorrelationTable.probe_result`. Outputs: :meth:`~CorrelationTable.frames_to_write`,
:meth:`~CorrelationTable.take_settlements`, :meth:`~CorrelationTable.take_lost` (the live
connection must be dropped), :meth:`~CorrelationTable.take_probe` (ping the connection now) and
:meth:`~CorrelationTable.next_deadline`.

Rules:

* at most one frame in flight per req_id (a *lane*); later frames for the same req_id wait in
  order; more than ``max_lane`` waiting fails the newcomer with :class:`Overloaded`;
* a ping (``bound``: meaningful only on its own connection) goes ahead of queued frames, and
  fails with :class:`ConnectionLost` when its connection dies or there is none;
* errcode 6000 (conflict): written again after 0.2, 0.4, 0.8 s (bounded);
* errcode 846609 (not subscribed): the connection is declared lost and the frame is written
  again once the next connection is up (bounded);
* any other non-zero errcode fails the request with :class:`AckError`;
* no ack within ``ack_timeout``: :class:`AckTimeout`; but an idempotent frame whose ack is late
  while a heartbeat can probe the connection asks for a probe first: healthy, the frame is
  written again; dead, it goes out on the next connection;
* when a connection dies, idempotent frames waiting for their ack are written again on the next
  one; the others fail with :class:`OutcomeUnknown` (writing them again could duplicate a
  message);
* a request abandoned by its caller before it was written is never written.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque

import msgspec

from ..errors import AckError, AckTimeout, ConnectionLost, OutcomeUnknown, Overloaded
from ..protocol.frames import Ack
from ..protocol.limits import ErrCode

__all__ = ["CorrelationTable", "CorrelatorStatistics", "Request"]

QUEUED = 0  # waiting to be written
IN_FLIGHT = 1  # written, waiting for its ack
SUSPECT = 2  # idempotent, its ack is late: waiting for the connection probe
WAIT_RETRY = 3  # got 6000, waiting for its retry time
DONE = 4


class Request:
    """One request and, once settled, its outcome (``ack`` or ``error``).

    ``reply`` is where the settlement goes (opaque to the table: the actor groups settlements by
    it) and ``token`` is for that receiver. ``abandoned`` is set by the request's owner when it
    stops waiting; the table then never writes it and never reports it.
    """

    __slots__ = (
        "abandoned",
        "ack",
        "attempts",
        "bound",
        "cmd",
        "conflicts",
        "deadline",
        "error",
        "frame",
        "generation",
        "idempotent",
        "reply",
        "req_id",
        "resubscribes",
        "state",
        "timeouts",
        "token",
    )

    def __init__(
        self,
        cmd: str,
        req_id: str,
        frame: bytes,
        *,
        idempotent: bool = True,
        bound: bool = False,
        reply: object = None,
        token: object = None,
    ) -> None:
        self.cmd = cmd
        self.req_id = req_id
        self.frame = frame
        self.idempotent = idempotent
        self.bound = bound
        self.reply = reply
        self.token = token
        self.ack: Ack | None = None
        self.error: Exception | None = None
        self.abandoned = False
        self.state = QUEUED
        self.attempts = 0
        self.conflicts = 0
        self.resubscribes = 0
        self.timeouts = 0
        self.deadline = 0.0
        self.generation = 0


class CorrelatorStatistics(msgspec.Struct, frozen=True):
    lanes: int
    queued: int
    in_flight: int
    timers: int
    sent: int
    acked: int
    failed: int
    conflicts_retried: int
    resent_after_reconnect: int
    unmatched_acks: int
    acks_by_errcode: dict[int, int] = msgspec.field(default_factory=dict)  # every ack read
    last_ack_at: float | None = None  # the time of the newest ack on a live connection


class CorrelationTable:
    def __init__(
        self,
        *,
        ack_timeout: float = 5.0,
        max_lane: int = 64,
        max_conflict_retries: int = 3,
        max_resubscribe_retries: int = 3,
        max_ack_timeouts: int = 2,
    ) -> None:
        self.ack_timeout = ack_timeout
        self.max_lane = max_lane
        self.max_conflict_retries = max_conflict_retries
        self.max_resubscribe_retries = max_resubscribe_retries
        self.max_ack_timeouts = max_ack_timeouts
        self.generation = 0  # the live (or last) connection
        self.connected = False
        self.can_probe = False
        self._lanes: dict[str, deque[Request]] = {}
        self._ready: deque[Request] = deque()
        # Ack deadlines need no heap: the timeout is one constant, so frames expire in the
        # order they were written (a FIFO). Retry times (6000) do: they vary.
        self._inflight: deque[tuple[float, Request]] = deque()
        self._retries: list[tuple[float, int, Request]] = []
        self._seq = itertools.count()
        self._settled: list[Request] = []
        self._lost: str | None = None
        self._probe = False
        self.sent = self.acked = self.failed = 0
        self.conflicts_retried = self.resent = self.unmatched = 0
        self.acks_by_errcode: dict[int, int] = {}
        self.last_ack_at: float | None = None

    # --- inputs ----------------------------------------------------------------------------------

    def submit(self, req: Request) -> None:
        if req.bound and not self.connected:
            self._fail_new(req, ConnectionLost("no live connection for this request"))
            return
        lane = self._lanes.get(req.req_id)
        if lane is None:
            self._lanes[req.req_id] = deque((req,))
            if req.bound:
                # A ping goes ahead of queued frames: a burst of thousands of frames must not
                # make a healthy connection look dead.
                self._ready.appendleft(req)
            else:
                self._ready.append(req)
        elif len(lane) >= self.max_lane:
            self._fail_new(req, Overloaded(f"more than {self.max_lane} requests queued for req_id {req.req_id}"))
        else:
            lane.append(req)

    def ack(self, generation: int, ack: Ack, now: float) -> None:
        """An ack read on connection ``generation``."""
        by_code = self.acks_by_errcode
        by_code[ack.errcode] = by_code.get(ack.errcode, 0) + 1
        if generation != self.generation or not self.connected:
            self.unmatched += 1
            return
        self.last_ack_at = now
        lane = self._lanes.get(ack.req_id)
        head = lane[0] if lane else None
        if head is None or head.state not in (IN_FLIGHT, SUSPECT):
            self.unmatched += 1
            return
        if ack.errcode == ErrCode.OK:
            self._finish(head, ack=ack)
        elif ack.errcode == ErrCode.CONFLICT and head.conflicts < self.max_conflict_retries:
            head.conflicts += 1
            self.conflicts_retried += 1
            head.state = WAIT_RETRY
            delay = min(0.2 * 2 ** (head.conflicts - 1), 2.0)
            heapq.heappush(self._retries, (now + delay, next(self._seq), head))
        elif ack.errcode == ErrCode.NOT_SUBSCRIBED and head.resubscribes < self.max_resubscribe_retries:
            head.resubscribes += 1
            head.state = QUEUED  # written again once the next connection is up
            self._lost = f"WeCom answered {ack.errcode} ({ack.errmsg}): not subscribed"
            self.connection_lost(generation)
        else:
            self._finish(
                head,
                error=AckError(
                    f"{head.cmd} (req_id {head.req_id}) refused: errcode {ack.errcode} {ack.errmsg}",
                    errcode=ack.errcode,
                    errmsg=ack.errmsg,
                ),
            )

    def tick(self, now: float) -> None:
        """Expire ack deadlines and retry times up to ``now``."""
        inflight = self._inflight
        while inflight and inflight[0][0] <= now:
            deadline, req = inflight.popleft()
            if not self._waiting(deadline, req):
                continue
            req.timeouts += 1
            if req.idempotent and not req.bound and req.timeouts <= self.max_ack_timeouts and self.can_probe:
                # A late ack means a lost ack or a dead (half-open) connection. Ask for a probe
                # instead of guessing: a healthy connection gets the frame again, a dead one is
                # replaced and the frame goes out on the next one.
                req.state = SUSPECT
                self._probe = True
                continue
            self._finish(req, error=AckTimeout(f"{req.cmd} (req_id {req.req_id}): no ack within {self.ack_timeout} s"))
        retries = self._retries
        while retries and retries[0][0] <= now:
            req = heapq.heappop(retries)[2]
            if req.state == WAIT_RETRY:
                req.state = QUEUED
                self._ready.append(req)

    def connection_up(self, generation: int, *, can_probe: bool = False) -> None:
        """Connection ``generation`` is subscribed: queued frames go out on it."""
        self.generation = generation
        self.connected = True
        self.can_probe = can_probe
        self._ready = deque(lane[0] for lane in self._lanes.values() if lane[0].state == QUEUED)

    def connection_lost(self, generation: int) -> None:
        """Connection ``generation`` died (a no-op if it is not the live one): resend the
        idempotent frames waiting for an ack, fail the rest."""
        if generation != self.generation or not self.connected:
            return
        self.connected = False
        self.can_probe = False
        self._probe = False
        self._ready.clear()
        for lane in list(self._lanes.values()):
            head = lane[0]
            if head.state not in (IN_FLIGHT, SUSPECT) and not (head.bound and head.state == QUEUED):
                continue
            if head.bound:
                self._finish(head, error=ConnectionLost("the connection closed before the ack"))
            elif not head.idempotent:
                self._finish(
                    head,
                    error=OutcomeUnknown(
                        f"{head.cmd} (req_id {head.req_id}): the connection closed before its ack; "
                        "not resent, since it may have been applied"
                    ),
                )
            else:
                head.state = QUEUED
                self.resent += 1
        self._ready.clear()  # _finish queued the next heads; connection_up collects them all

    def probe_result(self, generation: int, healthy: bool) -> None:
        """The probe after a late ack answered: healthy, the late frames are written again on
        this connection (they are idempotent); not healthy, the connection is being replaced."""
        if not healthy or generation != self.generation or not self.connected:
            return
        for lane in self._lanes.values():
            head = lane[0]
            if head.state == SUSPECT:
                head.state = QUEUED
                self._ready.append(head)

    # --- outputs ---------------------------------------------------------------------------------

    def frames_to_write(self, now: float) -> list[bytes]:
        """Every frame ready to go out on the live connection (marked in flight from ``now``)."""
        ready = self._ready
        if not ready or not self.connected:
            return []
        frames: list[bytes] = []
        deadline = now + self.ack_timeout
        generation = self.generation
        inflight = self._inflight
        while ready:
            req = ready.popleft()
            if req.state != QUEUED:
                continue
            if req.abandoned:
                self._drop(req)
                continue
            req.state = IN_FLIGHT
            req.generation = generation
            req.attempts += 1
            req.deadline = deadline
            inflight.append((deadline, req))
            frames.append(req.frame)
        self.sent += len(frames)
        return frames

    def take_settlements(self) -> list[Request]:
        """Requests settled since the last call (their ``ack`` or ``error`` is set)."""
        settled, self._settled = self._settled, []
        return settled

    def take_lost(self) -> str | None:
        """Why the live connection must be dropped now (846609), once; else None."""
        lost, self._lost = self._lost, None
        return lost

    def take_probe(self) -> bool:
        """True once after an idempotent frame's ack was late: ping the connection now."""
        probe, self._probe = self._probe, False
        return probe

    def next_deadline(self) -> float:
        """When :meth:`tick` has work next (``math.inf``: nothing timed)."""
        inflight = self._inflight
        while inflight and not self._waiting(*inflight[0]):
            inflight.popleft()  # acked or written again: drop it without waking for it
        ack_deadline = inflight[0][0] if inflight else math.inf
        return min(ack_deadline, self._retries[0][0] if self._retries else math.inf)

    @property
    def has_ready(self) -> bool:
        return bool(self._ready) and self.connected

    def statistics(self) -> CorrelatorStatistics:
        queued = in_flight = 0
        for lane in self._lanes.values():
            for req in lane:
                if req.state == IN_FLIGHT:
                    in_flight += 1
                else:
                    queued += 1
        return CorrelatorStatistics(
            lanes=len(self._lanes),
            queued=queued,
            in_flight=in_flight,
            timers=len(self._retries) + len(self._inflight),
            sent=self.sent,
            acked=self.acked,
            failed=self.failed,
            conflicts_retried=self.conflicts_retried,
            resent_after_reconnect=self.resent,
            unmatched_acks=self.unmatched,
            acks_by_errcode=dict(self.acks_by_errcode),
            last_ack_at=self.last_ack_at,
        )

    # --- internals -------------------------------------------------------------------------------

    def _waiting(self, deadline: float, req: Request) -> bool:
        """Is this in-flight entry still waiting for its ack on the live connection?"""
        return req.state == IN_FLIGHT and req.generation == self.generation and req.deadline == deadline

    def _fail_new(self, req: Request, error: Exception) -> None:
        req.state = DONE
        req.error = error
        self.failed += 1
        if not req.abandoned:
            self._settled.append(req)

    def _drop(self, req: Request) -> None:
        """An abandoned request leaves its lane unwritten and unreported."""
        req.state = DONE
        self._advance(req.req_id)

    def _finish(self, req: Request, *, ack: Ack | None = None, error: Exception | None = None) -> None:
        """Complete the head of its lane, start the next one, report the outcome."""
        req.state = DONE
        req.ack = ack
        req.error = error
        if ack is not None:
            self.acked += 1
        else:
            self.failed += 1
        self._advance(req.req_id)
        if not req.abandoned:
            self._settled.append(req)

    def _advance(self, req_id: str) -> None:
        lane = self._lanes[req_id]
        lane.popleft()
        while lane and lane[0].abandoned and lane[0].state == QUEUED:
            lane.popleft().state = DONE
        if lane:
            self._ready.append(lane[0])
        else:
            del self._lanes[req_id]
