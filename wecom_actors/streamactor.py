"""SessionStreams: the bot-wide actor behind every ReplyStream's delayed work and settlements.

One timer heap (coalescing pauses, 6-minute windows) and a mailbox of stream-frame settlements
(lists of requests whose ``token`` is the stream's completion, called with the outcome in this
actor's task). See :mod:`wecom_actors.sessions` for the streams themselves.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .mailbox import MailboxStatistics, fill, mailbox_statistics

__all__ = ["MAILBOX_SIZE", "SessionStreams", "Timer"]

log = logging.getLogger("wecom_actors.sessions")


#: The SessionStreams mailbox: settlements of stream frames (lists of requests whose ``token``
#: is called with the outcome).
MAILBOX_SIZE = 4096

#: A timer in the SessionStreams heap: ``[when, seq, callback]``; a cancelled one has
#: ``callback = None`` and is skipped (and compacted away) instead of being searched for.
Timer = list[Any]


class SessionStreams:
    """The bot-wide actor behind every ReplyStream's delayed work: one timer heap (coalescing
    pauses, 6-minute windows) and one nursery for the rare async work they trigger.

    Adding a timer wakes the actor only when the new timer is its earliest. A timer that can no
    longer matter (its stream finished) is cancelled at once: it stops counting and holding its
    stream, and cancelled entries are compacted out of the heap once they are the majority, so
    memory follows the streams in flight, not the streams served.
    """

    #: Compact the heap when more than this many cancelled entries make up over half of it.
    COMPACT_MIN = 64

    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self.mailbox, self._rx = trio.open_memory_channel[Any](MAILBOX_SIZE)
        self.batches = self.messages = 0
        self._sleep: trio.CancelScope | None = None  # the actor's wait for its next timer
        self._nursery: trio.Nursery | None = None
        self._live = 0
        self._cancelled = 0
        self.timers_fired = 0
        self.window_cuts = 0  # streams finished early at the 6-minute window
        self.replies_sent = 0  # streamed replies delivered whole (final frame or fallback)

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback()`` (synchronous, quick, never raising) at trio time ``when``; the
        returned handle goes to :meth:`cancel`."""
        sleep = self._sleep
        if sleep is not None and when < sleep.deadline:
            # The actor sleeps until a later time: bring its deadline forward. No message, so
            # no wake-up now (when it is busy instead, it reads the heap before sleeping again).
            sleep.deadline = when
        timer: Timer = [when, next(self._seq), callback]
        heapq.heappush(self._heap, timer)
        self._live += 1
        return timer

    def cancel(self, timer: Timer | None) -> None:
        """Forget ``timer`` (a no-op if it fired or was cancelled already)."""
        if timer is None or timer[2] is None:
            return
        timer[2] = None
        self._live -= 1
        self._cancelled += 1
        heap = self._heap
        if self._cancelled > self.COMPACT_MIN and 2 * self._cancelled > len(heap):
            heap[:] = [t for t in heap if t[2] is not None]
            heapq.heapify(heap)
            self._cancelled = 0

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        if self._nursery is None:
            raise RuntimeError("SessionStreams is not running")
        self._nursery.start_soon(fn)

    @property
    def pending_timers(self) -> int:
        """Timers that may still fire (cancelled ones not counted)."""
        return self._live

    def mailbox_statistics(self) -> MailboxStatistics:
        return mailbox_statistics(self._rx, self.batches, self.messages)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            heap, rx = self._heap, self._rx
            while True:
                while heap and heap[0][2] is None:  # cancelled: never wake up for it
                    heapq.heappop(heap)
                    self._cancelled -= 1
                deadline = heap[0][0] if heap else math.inf
                first: object = None
                with trio.move_on_at(deadline) as self._sleep:
                    first = await rx.receive()
                self._sleep = None
                batch = fill(rx, [] if first is None else [first])
                self.batches += 1
                self.messages += len(batch)
                for message in batch:
                    self._settle(message)
                now = trio.current_time()
                while heap and heap[0][0] <= now:
                    timer = heapq.heappop(heap)
                    callback = timer[2]
                    if callback is None:
                        self._cancelled -= 1
                        continue
                    timer[2] = None
                    self._live -= 1
                    self.timers_fired += 1
                    callback()


    @staticmethod
    def _settle(requests: list[Any]) -> None:
        """Settled stream frames: each request's ``token`` gets its outcome."""
        for req in requests:
            try:
                req.token(req.error)
            except Exception:  # a stream's bug must not stop every other stream
                log.exception("a stream frame's settlement failed (req_id %s)", req.req_id)
