"""The Router: dedupe by msgid, one ordered queue per conversation, bounded handler concurrency.

* Dedupe: a msgid seen within ``dedupe_ttl`` seconds is dropped (WeCom may deliver a callback
  twice). The cache is bounded in size and time.
* Sessions: the key is the chatid of a group, else the sender's userid. Messages of one session
  run one after another, in arrival order, on a worker task that exists only while the session
  has work. Events (enter_chat, card clicks, feedback) do not queue behind messages: they have a
  5-second reply window, so each runs at once.
* Backpressure: at most ``handler_concurrency`` handlers run at a time; each session queues at
  most ``session_queue_size`` messages and all sessions together at most ``max_pending``. A
  message beyond either bound is not queued: it is answered at once by ``on_busy`` (a short
  "busy" reply) and counted. The reader is never blocked by a slow session.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import msgspec
import trio

from .protocol.inbound import (
    EventMessage,
    InboundMessage,
    StreamRefresh,
    UnknownEvent,
    UnknownMessage,
)

__all__ = ["Router", "RouterStatistics"]

log = logging.getLogger("wecom_actors.router")

Dispatch = Callable[[str, InboundMessage], Awaitable[None]]


class RouterStatistics(msgspec.Struct, frozen=True):
    sessions: int
    queued: int
    running: int
    received: int
    duplicates: int
    busy: int
    unknown: int
    dedupe_cache: int


class _Session:
    """One conversation's bounded queue: a short list, not a memory channel (the worker never
    blocks on it: it exits when the queue is empty; the router never blocks on it: a full queue
    is answered busy) and not a deque (an empty deque costs ~600 bytes; this queue holds at most
    ``session_queue_size`` items and is usually empty)."""

    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: list[tuple[str, InboundMessage]] = []


class Router:
    def __init__(
        self,
        *,
        dispatch: Dispatch,
        on_busy: Dispatch,
        handler_concurrency: int = 64,
        session_queue_size: int = 8,
        max_pending: int = 10_000,
        dedupe_ttl: float = 600.0,
        dedupe_max: int = 100_000,
    ) -> None:
        self._dispatch = dispatch
        self._on_busy = on_busy
        self.limiter = trio.CapacityLimiter(handler_concurrency)
        self.session_queue_size = session_queue_size
        self.max_pending = max_pending
        self.dedupe_ttl = dedupe_ttl
        self.dedupe_max = dedupe_max
        self._sessions: dict[str, _Session] = {}
        self._seen: dict[str, float] = {}
        self._pending = 0
        self._running = 0
        self._idle = trio.Event()
        self._idle.set()
        self._accepting = True
        self._nursery: trio.Nursery | None = None
        self._counts = dict.fromkeys(("received", "duplicates", "busy", "unknown"), 0)

    def submit_nowait(self, req_id: str, message: InboundMessage) -> None:
        """Route one callback now. Never blocks: routing is a few dict operations and a task
        spawn, so the Reader calls it inline (no channel hop per message, DESIGN.md §8)."""
        self._route(req_id, message)

    async def submit(self, req_id: str, message: InboundMessage) -> None:
        """:meth:`submit_nowait`, plus a checkpoint (for callers in a loop of their own)."""
        self._route(req_id, message)
        await trio.lowlevel.checkpoint()

    def statistics(self) -> RouterStatistics:
        return RouterStatistics(
            sessions=len(self._sessions),
            queued=self._pending,
            running=self._running,
            received=self._counts["received"],
            duplicates=self._counts["duplicates"],
            busy=self._counts["busy"],
            unknown=self._counts["unknown"],
            dedupe_cache=len(self._seen),
        )

    def stop_intake(self) -> None:
        """Stop starting handlers for new callbacks (shutdown drain): a message that arrives now
        is answered by ``on_busy`` (see ``accepting``) instead of being handled."""
        self._accepting = False

    @property
    def accepting(self) -> bool:
        return self._accepting

    async def wait_idle(self) -> None:
        """Wait until no handler runs and nothing is queued."""
        while self._pending or self._running:
            await self._idle.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the nursery that session workers and event handlers run in."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def is_duplicate(self, msgid: str) -> bool:
        """Record ``msgid``; True if it was seen within the dedupe window."""
        if not msgid:
            return False
        now = trio.current_time()
        seen = self._seen
        expiry = seen.get(msgid)
        if expiry is not None and expiry > now:
            return True
        # Entries expire in insertion order (constant TTL): trim from the front.
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] > now and len(seen) < self.dedupe_max:
                break
            del seen[oldest]
        seen[msgid] = now + self.dedupe_ttl
        return False

    def _route(self, req_id: str, message: InboundMessage) -> None:
        if self._nursery is None:
            raise RuntimeError("the router is not running")
        self._counts["received"] += 1
        if isinstance(message, (UnknownMessage, UnknownEvent, StreamRefresh)):
            self._counts["unknown"] += 1
            log.info("ignoring a callback of unknown or unexpected type %r", message.msgtype)
            return
        if self.is_duplicate(message.msgid):
            self._counts["duplicates"] += 1
            log.info("dropping a duplicate delivery of msgid %s", message.msgid)
            return
        if not self._accepting:
            log.warning("shutting down: answering msgid %s with a restart notice", message.msgid)
            self._busy(req_id, message)
            return
        if isinstance(message, EventMessage):
            if self._running >= self.max_pending:
                # Events are not queued (their reply window is 5 s) and have no busy answer:
                # past the bound they are dropped, logged and counted.
                self._counts["busy"] += 1
                log.warning("too many handlers running; dropping %s event %s", message.eventtype, message.msgid)
                return
            self._start()
            self._nursery.start_soon(self._run_one, req_id, message, False)
            return
        key = message.conversation
        session = self._sessions.get(key)
        if self._pending >= self.max_pending:
            self._busy(req_id, message)
            return
        if session is None:
            session = self._sessions[key] = _Session()
            self._nursery.start_soon(self._session_worker, key, session)
        elif len(session.queue) >= self.session_queue_size:
            self._busy(req_id, message)
            return
        session.queue.append((req_id, message))
        self._pending += 1
        self._idle = trio.Event() if self._idle.is_set() else self._idle

    def _busy(self, req_id: str, message: InboundMessage) -> None:
        assert self._nursery is not None
        if self._accepting:
            self._counts["busy"] += 1
            log.warning("conversation %s is over its queue bound; answering busy", message.conversation)
        self._start()
        self._nursery.start_soon(self._run_one, req_id, message, True)

    def _start(self) -> None:
        self._running += 1
        if self._idle.is_set():
            self._idle = trio.Event()

    def _done(self) -> None:
        self._running -= 1
        if not self._running and not self._pending:
            self._idle.set()

    async def _run_one(self, req_id: str, message: InboundMessage, busy: bool) -> None:
        try:
            await (self._on_busy if busy else self._dispatch)(req_id, message)
        finally:
            self._done()

    async def _session_worker(self, key: str, session: _Session) -> None:
        queue = session.queue
        while True:
            if not queue:
                # No await between the emptiness check and the removal: nothing can slip in.
                del self._sessions[key]
                return
            req_id, message = queue.pop(0)
            self._pending -= 1
            self._start()
            try:
                try:
                    self.limiter.acquire_nowait()  # the common case: a free slot, no wake-up
                except trio.WouldBlock:
                    await self.limiter.acquire()
                try:
                    await self._dispatch(req_id, message)
                finally:
                    self.limiter.release()
            finally:
                self._done()
