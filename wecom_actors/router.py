"""The Router: dedupe by msgid, one ordered queue per conversation, bounded handler concurrency.

* Dedupe: a msgid seen within ``dedupe_ttl`` seconds is dropped (WeCom may deliver a callback
  twice). The cache is bounded in size and time.
* Sessions: messages of one session run one after another, in arrival order, on a worker task
  that exists only while the session has work. The key is the sender's userid in a single chat;
  in a group chat it is the chatid plus the sender (``group_order="sender"``, the default:
  each member's messages in order, members independent of each other) or the chatid alone
  (``group_order="chat"``: strict order for the whole group). Events (enter_chat, card clicks,
  feedback) do not queue behind messages: they have a 5-second reply window, so each runs at once.
* Backpressure: at most ``handler_concurrency`` handlers run at a time. Queues are sized for
  real bursts: each session queues up to ``session_queue_size`` messages (hundreds), and the
  bot-wide memory guard holds at most ``max_pending`` messages and ``max_pending_bytes`` bytes
  (frame sizes) in all queues together. Only a message beyond the guard is refused: it is
  answered at once by ``on_busy`` (a short "busy" reply), counted and logged. The reader is
  never blocked by a slow session.
* Mailbox: the only way in. The long connection's Reader posts the callbacks of one socket
  read as one list of ``(req_id, message, size)`` to :attr:`Router.mailbox`, the webhook server
  a list of one per callback POST; the Router's task takes every list waiting at once and
  routes them. A full mailbox makes the poster wait (TCP backpressure on the long connection).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import msgspec
import trio

from .mailbox import MailboxStatistics, fill, mailbox_statistics
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
    queued_bytes: int
    running: int
    received: int
    duplicates: int
    busy: int
    unknown: int
    dedupe_cache: int


#: Size assumed for a message whose caller gives none (bytes).
DEFAULT_MESSAGE_SIZE = 1024
#: The Router's mailbox, in lists (one per socket read).
MAILBOX_SIZE = 1024

#: What the Reader posts: the callbacks of one read.
Routed = list[tuple[str, InboundMessage, int]]


class _Session:
    """One session's bounded queue: a short list, not a memory channel (the worker never
    blocks on it: it exits when the queue is empty; the router never blocks on it: a full queue
    is answered busy) and not a deque (an empty deque costs ~600 bytes; this queue holds at most
    ``session_queue_size`` items and is usually empty)."""

    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: list[tuple[str, InboundMessage, int]] = []


class Router:
    def __init__(
        self,
        *,
        dispatch: Dispatch,
        on_busy: Dispatch,
        handler_concurrency: int = 64,
        session_queue_size: int = 1000,
        max_pending: int = 20_000,
        max_pending_bytes: int = 64 << 20,
        group_order: str = "sender",
        dedupe_ttl: float = 600.0,
        dedupe_max: int = 100_000,
    ) -> None:
        self._dispatch = dispatch
        self._on_busy = on_busy
        self.limiter = trio.CapacityLimiter(handler_concurrency)
        self.session_queue_size = session_queue_size
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        if group_order not in ("sender", "chat"):
            raise ValueError(f"group_order must be 'sender' or 'chat', not {group_order!r}")
        self.group_order = group_order
        self._pending_bytes = 0
        self.dedupe_ttl = dedupe_ttl
        self.dedupe_max = dedupe_max
        self._sessions: dict[str, _Session] = {}
        self._seen: dict[str, float] = {}
        self._pending = 0
        self._running = 0
        self._idle = trio.Event()
        self._idle.set()
        self._accepting = True
        self._nursery: trio.Nursery | None = None  # handlers
        self._notices: trio.Nursery | None = None  # busy and restart answers
        self._counts = dict.fromkeys(("received", "duplicates", "busy", "unknown"), 0)
        self.received_by_type: dict[str, int] = {}
        self.mailbox, self._rx = trio.open_memory_channel[Routed](MAILBOX_SIZE)
        self.batches = self.messages = 0

    def mailbox_statistics(self) -> MailboxStatistics:
        return mailbox_statistics(self._rx, self.batches, self.messages)

    def session_key(self, message: InboundMessage) -> str:
        """The ordering key of ``message`` (see the module docstring)."""
        if self.group_order == "sender" and message.is_group and message.chatid:
            return f"{message.chatid}\x00{message.userid}"
        return message.conversation

    def statistics(self) -> RouterStatistics:
        return RouterStatistics(
            sessions=len(self._sessions),
            queued=self._pending,
            queued_bytes=self._pending_bytes,
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
        """Wait until no handler runs and nothing is queued (the mailbox included)."""
        while self._pending or self._running or self._rx.statistics().current_buffer_used:
            if self._pending or self._running:
                await self._idle.wait()
            else:
                await trio.lowlevel.checkpoint()  # the Router's task routes what is waiting

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own two nurseries: handlers (session workers, events) and short notices (busy and
        restart answers), so notices never wait behind the handlers' nursery."""
        async with trio.open_nursery() as notices:
            self._notices = notices
            async with trio.open_nursery() as handlers:
                self._nursery = handlers
                task_status.started()
                rx = self._rx
                while True:
                    batch = fill(rx, [await rx.receive()])
                    self.batches += 1
                    for routed in batch:
                        self.messages += len(routed)
                        for req_id, message, size in routed:
                            self._route(req_id, message, size)
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

    def _route(self, req_id: str, message: InboundMessage, size: int) -> None:
        if self._nursery is None:
            raise RuntimeError("the router is not running")
        self._counts["received"] += 1
        kind = "unknown" if isinstance(message, (UnknownMessage, UnknownEvent)) else (
            getattr(message, "eventtype", None) or message.msgtype
        )  # a fixed set of names: peer-chosen types all count as "unknown"
        self.received_by_type[kind] = self.received_by_type.get(kind, 0) + 1
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
            self._busy(req_id, message, "shutdown")
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
        key = self.session_key(message)
        session = self._sessions.get(key)
        if self._pending >= self.max_pending or self._pending_bytes + size > self.max_pending_bytes:
            self._busy(req_id, message, "the bot-wide queue bound")
            return
        if session is None:
            session = self._sessions[key] = _Session()
            self._nursery.start_soon(self._session_worker, key, session)
        elif len(session.queue) >= self.session_queue_size:
            self._busy(req_id, message, "its conversation's queue bound")
            return
        session.queue.append((req_id, message, size))
        self._pending += 1
        self._pending_bytes += size
        self._idle = trio.Event() if self._idle.is_set() else self._idle

    def _busy(self, req_id: str, message: InboundMessage, why: str = "") -> None:
        assert self._notices is not None
        if self._accepting:
            self._counts["busy"] += 1
            log.warning(
                "msgid %s is over %s (%d messages, %d bytes queued); answering busy",
                message.msgid[:64], why, self._pending, self._pending_bytes,
            )  # fmt: skip
        self._start()
        self._notices.start_soon(self._run_one, req_id, message, True)

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
            req_id, message, size = queue.pop(0)
            self._pending -= 1
            self._pending_bytes -= size
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
