"""The Correlator actor, its connection Writer, and the handle callers send requests through.

The Correlator is a task that owns the :class:`~.correlation.CorrelationTable` (the rules live
there, sans-IO) and a bounded mailbox. Every interaction is a message:

* a :class:`~.correlation.Request` (from a :class:`Requester`, the Heartbeat, a stream): submit;
* :class:`Acks` (from the Reader of one connection: the acks of one read, one list);
* :class:`ConnectionUp` / :class:`ConnectionDown` (from the ConnectionSupervisor): the Writer's
  mailbox and the Heartbeat's mailbox of a subscribed connection, or its end;
* :class:`ProbeResult` (from the Heartbeat): the connection answered the probe a late ack asked for.

Its loop takes ``await receive()`` once (or its next deadline passes), then ``receive_nowait()``
until the mailbox is empty (at most ``BATCH_MAX``), feeds the whole batch to the table, and
sends one message per destination: the frames ready to go out (one list) to the Writer, each
settled request list to its ``reply`` channel, a :data:`PROBE` to the Heartbeat.

The Writer is the one task that writes on a connection (in the connection's nursery): each batch
is one ``send_many``, shielded so a cancelled writer never leaves half a frame on a live socket,
bounded so a stalled peer cannot hold the shield forever. When WeCom answers 846609 the batch
carries the reason and the Writer raises :class:`ConnectionLost` after writing.
"""

from __future__ import annotations

import logging
import math
from typing import Any, NamedTuple

import trio

from ..errors import ConnectionLost
from ..mailbox import MailboxStatistics, fill, mailbox_statistics, post
from ..protocol.frames import Ack, encode_request
from .correlation import CorrelationTable, CorrelatorStatistics, Request
from .transport import Transport

__all__ = [
    "PROBE",
    "Acks",
    "ConnectionDown",
    "ConnectionUp",
    "Correlator",
    "CorrelatorStatistics",
    "ProbeResult",
    "Request",
    "Requester",
    "Writer",
]

log = logging.getLogger("wecom_actors.correlator")

#: The Correlator's mailbox (requests, ack lists, connection events).
MAILBOX_SIZE = 4096
#: A Writer's mailbox (lists of frames).
WRITER_MAILBOX_SIZE = 64


class Acks(NamedTuple):
    generation: int
    acks: list[Ack]


class ConnectionUp(NamedTuple):
    generation: int
    writer: trio.MemorySendChannel[WriteBatch]
    heartbeat: trio.MemorySendChannel[Any] | None


class ConnectionDown(NamedTuple):
    generation: int


class ProbeResult(NamedTuple):
    generation: int
    healthy: bool


class WriteBatch(NamedTuple):
    frames: list[bytes]
    lost: str | None  # the connection must be dropped after these frames (846609)


#: Sent to the Heartbeat: an idempotent frame's ack is late, ping now.
PROBE = "probe"

_NOTHING = object()  # no message taken (the deadline passed first)


class Requester:
    """How a caller (a reply channel, an upload, a proactive send) talks to the Correlator."""

    __slots__ = ("mailbox",)

    def __init__(self, mailbox: trio.MemorySendChannel[Any]) -> None:
        self.mailbox = mailbox

    async def request(
        self, cmd: str, req_id: str, body: object = None, *, idempotent: bool = True, bound: bool = False
    ) -> Ack:
        """Send one request and wait for its successful ack (on a one-shot reply channel).

        Raises AckError, AckTimeout, OutcomeUnknown, Overloaded or ConnectionLost (``bound``
        requests whose connection died). Cancelling the caller abandons the request: if it has
        not been written yet it never will be.
        """
        reply_tx, reply_rx = trio.open_memory_channel[list[Request]](1)
        req = Request(cmd, req_id, encode_request(cmd, req_id, body), idempotent=idempotent, bound=bound, reply=reply_tx)
        with reply_rx:
            try:
                await post(self.mailbox, req)
                await reply_rx.receive()
            except BaseException:
                req.abandoned = True
                raise
        error = req.error
        if error is not None:
            try:
                raise error
            finally:  # no frame -> traceback -> error cycle left behind
                del error, req
        assert req.ack is not None
        return req.ack

    async def submit(
        self,
        cmd: str,
        req_id: str,
        body: object,
        *,
        reply: trio.MemorySendChannel[Any],
        token: object,
        idempotent: bool = True,
    ) -> None:
        """Send a request without waiting for its ack; its settlement goes to ``reply`` as a list
        of requests (``token`` tells the receiver which). Waits only when the mailbox is full."""
        frame = encode_request(cmd, req_id, body)
        await post(self.mailbox, Request(cmd, req_id, frame, idempotent=idempotent, reply=reply, token=token))


class Correlator:
    def __init__(
        self,
        *,
        ack_timeout: float = 5.0,
        max_lane: int = 64,
        max_conflict_retries: int = 3,
        max_resubscribe_retries: int = 3,
        max_ack_timeouts: int = 2,
        mailbox_size: int = MAILBOX_SIZE,
    ) -> None:
        self.ack_timeout = ack_timeout
        self._table = CorrelationTable(
            ack_timeout=ack_timeout,
            max_lane=max_lane,
            max_conflict_retries=max_conflict_retries,
            max_resubscribe_retries=max_resubscribe_retries,
            max_ack_timeouts=max_ack_timeouts,
        )
        self.mailbox, self._rx = trio.open_memory_channel[Any](mailbox_size)
        self._writer: trio.MemorySendChannel[WriteBatch] | None = None
        self._heartbeat: trio.MemorySendChannel[Any] | None = None
        self.batches = 0  # mailbox batches handled
        self.messages = 0  # messages in them

    def requester(self) -> Requester:
        return Requester(self.mailbox)

    def statistics(self) -> CorrelatorStatistics:
        """A read-only snapshot of the table's counters."""
        return self._table.statistics()

    def mailbox_statistics(self) -> MailboxStatistics:
        return mailbox_statistics(self._rx, self.batches, self.messages)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        rx, table = self._rx, self._table
        task_status.started()
        while True:
            # One timer scope serves batch after batch (a scope per batch costs more than the
            # batch's own work when messages come one at a time): its deadline is the table's
            # next one while the loop waits and infinite while it works, so a post that waits
            # on a full mailbox is never cut short. A new scope only once a deadline passed.
            first: object = _NOTHING
            with trio.CancelScope() as timer:
                while True:
                    timer.deadline = table.next_deadline()
                    first = _NOTHING
                    first = await rx.receive()
                    if timer.cancel_called:
                        break  # the deadline passed as the message came: both handled below
                    timer.deadline = math.inf
                    await self._work(fill(rx, [first]))
            await self._work(fill(rx, [] if first is _NOTHING else [first]))

    async def _work(self, batch: list[Any]) -> None:
        """Feed one batch (maybe empty: a deadline passed) to the table, then send the outputs."""
        table = self._table
        self.batches += 1
        self.messages += len(batch)
        now = trio.current_time()
        for message in batch:
            kind = type(message)
            if kind is Request:
                table.submit(message)
            elif kind is Acks:
                generation = message.generation
                for ack in message.acks:
                    table.ack(generation, ack, now)
            elif kind is ConnectionUp:
                self._writer, self._heartbeat = message.writer, message.heartbeat
                table.connection_up(message.generation, can_probe=message.heartbeat is not None)
            elif kind is ConnectionDown:
                if message.generation == table.generation:
                    self._writer = self._heartbeat = None
                table.connection_lost(message.generation)
            elif kind is ProbeResult:
                table.probe_result(message.generation, message.healthy)
            else:
                raise TypeError(f"the Correlator got an unknown message {kind.__name__}")
        table.tick(now)
        await self._send_outputs(now)

    async def _send_outputs(self, now: float) -> None:
        table = self._table
        writer = self._writer
        lost = table.take_lost()
        if writer is not None:
            frames = table.frames_to_write(now)
            if frames or lost:
                try:
                    await post(writer, WriteBatch(frames, lost))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    # The Writer is gone: its connection died (ConnectionDown follows).
                    table.connection_lost(table.generation)
                    self._writer = self._heartbeat = None
        if table.take_probe() and self._heartbeat is not None:
            try:
                self._heartbeat.send_nowait(PROBE)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # a probe is pending already, or the connection is ending
        settled = table.take_settlements()
        if not settled:
            return
        if len(settled) == 1:
            await _deliver(settled[0].reply, settled)
            return
        by_reply: dict[Any, list[Request]] = {}
        for req in settled:
            by_reply.setdefault(req.reply, []).append(req)
        for reply, reqs in by_reply.items():
            await _deliver(reply, reqs)


async def _deliver(reply: Any, reqs: list[Request]) -> None:
    if reply is None:
        return
    try:
        await post(reply, reqs)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the caller stopped waiting


class Writer:
    """The only writer on one connection: one ``send_many`` per batch of frames."""

    def __init__(self, conn: Transport, rx: trio.MemoryReceiveChannel[WriteBatch], *, bound: float) -> None:
        self._conn = conn
        self._rx = rx
        self.bound = bound
        self.frames_out = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        rx, conn = self._rx, self._conn
        task_status.started()
        with rx:
            while True:
                batch = fill(rx, [await rx.receive()])
                frames: list[bytes] = []
                lost = None
                for item in batch:
                    frames += item.frames
                    lost = lost or item.lost
                if frames:
                    self.frames_out += len(frames)
                    # Shielded so a cancelled writer never leaves half a frame on a live socket,
                    # bounded so a stalled peer cannot hold the shield forever: one scope does
                    # both (the shield keeps outer cancellations out, its own deadline still
                    # cancels it).
                    with trio.CancelScope(shield=True, deadline=trio.current_time() + self.bound) as scope:
                        await conn.send_many(frames)
                    if scope.cancelled_caught:
                        raise ConnectionLost(f"writing frames took longer than {self.bound} s")
                if lost:
                    raise ConnectionLost(lost)
