"""The Correlator: the only writer on the socket, and the keeper of req_id -> ack waiters.

State lives at bot level and survives reconnects (lanes of requests per req_id, the timer heap);
:meth:`Correlator.run` is the per-connection writer task, started inside the connection's nursery.
Enqueueing a request and matching an ack are synchronous (a few dict and deque operations); the
writer task is woken only when there is something to write or a timer to serve, and it writes
every ready frame at once, so a burst of N frames costs one wake-up (DESIGN.md §8).

Rules (ws-protocol.md §2.2, §4.3):

* at most one frame in flight per req_id; later frames for the same req_id wait in order;
* errcode 6000 (conflict): retried after 0.2, 0.4, 0.8 s (bounded);
* errcode 846609 (not subscribed): the connection is declared lost and the frame is sent again
  after the next successful subscribe (bounded);
* any other non-zero errcode fails the request with :class:`~wecom_actors.errors.AckError`;
* no ack within ``ack_timeout``: :class:`~wecom_actors.errors.AckTimeout`;
* a frame whose connection died before its ack is sent again on the next connection if it is
  idempotent (stream frames: content is full-replace), else it fails with
  :class:`~wecom_actors.errors.OutcomeUnknown` (never resent: that could duplicate a message);
* nothing is resent after its ack, and no per-request state outlives the request.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable

import msgspec
import trio

from ..errors import AckError, AckTimeout, ConnectionLost, OutcomeUnknown, Overloaded
from ..protocol.frames import Ack, encode_request
from ..protocol.limits import ErrCode
from .transport import Transport

__all__ = ["Correlator", "CorrelatorStatistics"]

log = logging.getLogger("wecom_actors.correlator")


class _State(enum.Enum):
    QUEUED = "queued"  # waiting to be written
    IN_FLIGHT = "in_flight"  # written, waiting for its ack
    SUSPECT = "suspect"  # idempotent, its ack is late: waiting for the connection probe
    WAIT_RETRY = "wait_retry"  # got 6000, waiting for its retry time
    DONE = "done"


class _Pending:
    __slots__ = (
        "abandoned",
        "ack",
        "attempts",
        "bound",
        "callback",
        "cmd",
        "conflicts",
        "deadline",
        "error",
        "event",
        "frame",
        "generation",
        "idempotent",
        "req_id",
        "resubscribes",
        "state",
        "timeouts",
    )

    def __init__(self, cmd: str, req_id: str, frame: bytes, idempotent: bool, bound: bool) -> None:
        self.cmd = cmd
        self.req_id = req_id
        self.frame = frame
        self.idempotent = idempotent
        self.bound = bound  # only meaningful on the connection it was made for (ping)
        self.event = trio.Event()
        self.callback: Callable[[_Pending], None] | None = None
        self.ack: Ack | None = None
        self.error: Exception | None = None
        self.state = _State.QUEUED
        self.abandoned = False
        self.attempts = 0
        self.conflicts = 0
        self.resubscribes = 0
        self.timeouts = 0
        self.deadline = 0.0
        self.generation = 0


def _waiting(entry: tuple[float, _Pending], generation: int) -> bool:
    """Is this in-flight entry still waiting for its ack on this connection?"""
    deadline, p = entry
    return p.state is _State.IN_FLIGHT and p.generation == generation and p.deadline == deadline


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


class Correlator:
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
        self.max_ack_timeouts = max_ack_timeouts
        #: Called when an idempotent frame's ack is late: the connection should be probed now
        #: (the Heartbeat sets this) and the answer given to :meth:`probe_result`.
        self.on_suspect: Callable[[], None] | None = None
        self.max_lane = max_lane
        self.max_conflict_retries = max_conflict_retries
        self.max_resubscribe_retries = max_resubscribe_retries
        self._wakeup = trio.Event()
        self._lanes: dict[str, deque[_Pending]] = {}
        # Retry timers (6000) in a heap. Ack deadlines need no heap: the ack timeout is one
        # constant, so frames in flight expire in the order they were written (a FIFO).
        self._heap: list[tuple[float, int, _Pending, _State]] = []
        self._inflight: deque[tuple[float, _Pending]] = deque()
        self._seq = itertools.count()
        self._ready: deque[_Pending] = deque()
        self._generation = 0
        self._counts = dict.fromkeys(
            ("sent", "acked", "failed", "conflicts_retried", "resent", "unmatched"), 0
        )

    # --- caller side -----------------------------------------------------------------------------

    async def request(
        self, cmd: str, req_id: str, body: object = None, *, idempotent: bool = True, bound: bool = False
    ) -> Ack:
        """Send one request and wait for its successful ack.

        Raises AckError, AckTimeout, OutcomeUnknown, Overloaded or ConnectionLost (``bound``
        requests whose connection died). Cancelling the caller abandons the request: if it has
        not been written yet it never will be.
        """
        pending = _Pending(cmd, req_id, encode_request(cmd, req_id, body), idempotent, bound)
        self._enqueue(pending)
        try:
            await pending.event.wait()
        except BaseException:
            pending.abandoned = True
            raise
        if pending.error is not None:
            raise pending.error
        assert pending.ack is not None
        return pending.ack

    def submit(
        self,
        cmd: str,
        req_id: str,
        body: object,
        callback: Callable[[Ack | None, Exception | None], None],
        *,
        idempotent: bool = True,
    ) -> None:
        """Start a request without waiting: ``callback(ack, error)`` runs once it is settled.

        The callback runs synchronously inside the Correlator (in the Reader's or the writer's
        task): it must be quick and must not raise. This is the no-task path of stream frames.
        """
        pending = _Pending(cmd, req_id, encode_request(cmd, req_id, body), idempotent, False)
        pending.callback = lambda p: callback(p.ack, p.error)
        self._enqueue(pending)

    def _enqueue(self, item: _Pending) -> None:
        lane = self._lanes.get(item.req_id)
        if lane is None:
            self._lanes[item.req_id] = deque((item,))
            if item.bound:
                # A ping goes ahead of queued replies: a burst of thousands of frames must not
                # make a healthy connection look dead.
                self._ready.appendleft(item)
            else:
                self._ready.append(item)
            self._wakeup.set()
        elif len(lane) >= self.max_lane:
            self._counts["failed"] += 1
            item.state = _State.DONE
            item.error = Overloaded(f"more than {self.max_lane} requests queued for req_id {item.req_id}")
            item.event.set()
            if item.callback is not None:
                item.callback(item)
        else:
            lane.append(item)

    @property
    def generation(self) -> int:
        """The number of the current (or last) connection; acks carry it."""
        return self._generation

    def deliver_ack(self, generation: int, ack: Ack) -> None:
        """Called by the Reader of connection ``generation`` for every ack frame.

        Synchronous on purpose: matching an ack is a dict lookup and an Event.set(), so the
        Reader does it inline instead of paying a channel hop per ack (DESIGN.md §8). If the ack
        made another frame ready, the writer task is woken. Raises
        ConnectionLost for 846609 (the Reader's connection then dies, as it should).
        """
        if generation != self._generation:
            self._counts["unmatched"] += 1
            return
        next_retry = self._heap[0][0] if self._heap else math.inf
        self._handle_ack(ack)
        if self._ready or (self._heap and self._heap[0][0] < next_retry):
            self._wakeup.set()

    def statistics(self) -> CorrelatorStatistics:
        queued = in_flight = 0
        for lane in self._lanes.values():
            for p in lane:
                if p.state is _State.IN_FLIGHT:
                    in_flight += 1
                else:
                    queued += 1
        c = self._counts
        return CorrelatorStatistics(
            lanes=len(self._lanes),
            queued=queued,
            in_flight=in_flight,
            timers=len(self._heap) + len(self._inflight),
            sent=c["sent"],
            acked=c["acked"],
            failed=c["failed"],
            conflicts_retried=c["conflicts_retried"],
            resent_after_reconnect=c["resent"],
            unmatched_acks=c["unmatched"],
        )

    # --- the writer task of one connection ------------------------------------------------------

    async def run(self, conn: Transport, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        self._generation += 1
        generation = self._generation
        self._settle_after_reconnect()
        task_status.started(generation)
        while True:
            await self._write_ready(conn, generation)
            if not self._ready:
                deadline = self._next_deadline(generation)
                if deadline > trio.current_time():
                    with trio.move_on_at(deadline):
                        await self._wakeup.wait()
                self._wakeup = trio.Event()
            self._expire(trio.current_time(), generation)

    def _next_deadline(self, generation: int) -> float:
        inflight = self._inflight
        while inflight and not _waiting(inflight[0], generation):
            inflight.popleft()  # already acked (or resent): drop it without waking for it
        ack_deadline = inflight[0][0] if inflight else math.inf
        return min(ack_deadline, self._heap[0][0] if self._heap else math.inf)

    def probe_result(self, healthy: bool) -> None:
        """The connection probe after a late ack answered (``healthy``) or not.

        Healthy: the late frames are written again on this connection (they are idempotent).
        Not healthy: nothing to do here; the connection is about to be replaced and the late
        frames go out on the next one (:meth:`_settle_after_reconnect`).
        """
        if not healthy:
            return
        for lane in self._lanes.values():
            head = lane[0]
            if head.state is _State.SUSPECT:
                head.state = _State.QUEUED
                self._ready.append(head)
                self._wakeup.set()

    def _settle_after_reconnect(self) -> None:
        """Frames left from a dead connection: resend the idempotent ones, fail the rest."""
        self._ready.clear()
        for lane in list(self._lanes.values()):
            head = lane[0]
            if head.state in (_State.IN_FLIGHT, _State.SUSPECT) or (head.bound and head.state is _State.QUEUED):
                if head.bound:
                    self._finish(head, error=ConnectionLost("the connection closed before the ack"))
                    continue
                if not head.idempotent:
                    self._finish(
                        head,
                        error=OutcomeUnknown(
                            f"{head.cmd} (req_id {head.req_id}): the connection closed before "
                            "its ack; not resent, since it may have been applied"
                        ),
                    )
                    continue
                head.state = _State.QUEUED
                self._counts["resent"] += 1
            if head.state is _State.QUEUED:
                self._ready.append(head)

    async def _write_ready(self, conn: Transport, generation: int) -> None:
        ready = self._ready
        if not ready:
            return
        batch: list[bytes] = []
        now = trio.current_time()
        while ready:
            p = ready.popleft()
            if p.state is not _State.QUEUED:
                continue
            if p.abandoned:
                self._finish(p, error=None)
                continue
            p.state = _State.IN_FLIGHT
            p.generation = generation
            p.attempts += 1
            p.deadline = now + self.ack_timeout
            self._inflight.append((p.deadline, p))
            batch.append(p.frame)
        if not batch:
            return
        self._counts["sent"] += len(batch)
        # One write for every ready frame. Shielded so a cancelled writer never leaves half a
        # frame on a live socket, bounded so a stalled peer cannot hold the shield forever.
        with trio.CancelScope(shield=True):
            with trio.move_on_after(self.ack_timeout) as scope:
                await conn.send_many(batch)
        if scope.cancelled_caught:
            raise ConnectionLost(f"writing frames took longer than {self.ack_timeout} s")

    def _handle_ack(self, ack: Ack) -> None:
        lane = self._lanes.get(ack.req_id)
        head = lane[0] if lane else None
        if head is None or head.state not in (_State.IN_FLIGHT, _State.SUSPECT):
            self._counts["unmatched"] += 1
            log.debug("dropping an ack nobody waits for (req_id %s)", ack.req_id)
            return
        if ack.errcode == ErrCode.OK:
            self._finish(head, ack=ack)
        elif ack.errcode == ErrCode.CONFLICT and head.conflicts < self.max_conflict_retries:
            head.conflicts += 1
            self._counts["conflicts_retried"] += 1
            head.state = _State.WAIT_RETRY
            delay = min(0.2 * 2 ** (head.conflicts - 1), 2.0)
            heapq.heappush(self._heap, (trio.current_time() + delay, next(self._seq), head, _State.WAIT_RETRY))
        elif ack.errcode == ErrCode.NOT_SUBSCRIBED and head.resubscribes < self.max_resubscribe_retries:
            head.resubscribes += 1
            head.state = _State.QUEUED  # sent again once the next connection has subscribed
            raise ConnectionLost(f"WeCom answered {ack.errcode} ({ack.errmsg}): not subscribed")
        else:
            self._finish(
                head,
                error=AckError(
                    f"{head.cmd} (req_id {head.req_id}) refused: errcode {ack.errcode} {ack.errmsg}",
                    errcode=ack.errcode,
                    errmsg=ack.errmsg,
                ),
            )

    def _expire(self, now: float, generation: int) -> None:
        inflight = self._inflight
        while inflight and inflight[0][0] <= now:
            entry = inflight.popleft()
            if _waiting(entry, generation):
                p = entry[1]
                p.timeouts += 1
                if p.idempotent and not p.bound and p.timeouts <= self.max_ack_timeouts and self.on_suspect:
                    # A late ack means a lost ack or a dead (half-open) connection. Ask for a
                    # probe instead of guessing: a healthy connection gets the frame again, a
                    # dead one is replaced and the frame goes out on the next one.
                    p.state = _State.SUSPECT
                    self.on_suspect()
                    continue
                self._finish(
                    p,
                    error=AckTimeout(f"{p.cmd} (req_id {p.req_id}): no ack within {self.ack_timeout} s"),
                )
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, p, kind = heapq.heappop(heap)
            if p.state is kind is _State.WAIT_RETRY:
                p.state = _State.QUEUED
                self._ready.append(p)

    def _finish(self, p: _Pending, *, ack: Ack | None = None, error: Exception | None = None) -> None:
        """Complete the head of its lane, start the next one, then tell the waiter."""
        p.state = _State.DONE
        p.ack = ack
        p.error = error
        self._counts["acked" if ack is not None else "failed"] += 1
        lane = self._lanes[p.req_id]
        lane.popleft()
        while lane and lane[0].abandoned and lane[0].state is _State.QUEUED:
            lane.popleft().state = _State.DONE
        if lane:
            self._ready.append(lane[0])
            self._wakeup.set()
        else:
            del self._lanes[p.req_id]
        p.event.set()
        if p.callback is not None and not p.abandoned:
            try:
                p.callback(p)
            except Exception:  # a callback bug must not take the connection down with it
                log.exception("a request callback failed (req_id %s)", p.req_id)
