"""Mailboxes: the bounded trio memory channels actors talk through, and the habits that keep
them cheap.

* Producers :func:`post`: ``send_nowait()`` first (no schedule point), ``await send()`` only
  when the mailbox is full (trio's ``send()`` always yields, even when it need not).
* Consumers take ``await receive()`` once, then :func:`fill` the batch with ``receive_nowait()``
  until the mailbox is empty (at most :data:`BATCH_MAX`), work on the whole batch, and send one
  message per destination.
"""

from __future__ import annotations

from typing import Any

import msgspec
import trio

__all__ = ["BATCH_MAX", "MailboxStatistics", "fill", "mailbox_statistics", "post"]

#: Messages taken from a mailbox in one batch, at most.
BATCH_MAX = 1000


async def post(channel: trio.MemorySendChannel[Any], message: object) -> None:
    """Send without a schedule point when there is room; wait only when the mailbox is full."""
    try:
        channel.send_nowait(message)
    except trio.WouldBlock:
        await channel.send(message)


def fill(rx: trio.MemoryReceiveChannel[Any], batch: list[Any], limit: int = BATCH_MAX) -> list[Any]:
    """Add to ``batch`` whatever the mailbox holds right now (at most ``limit`` in all)."""
    try:
        while len(batch) < limit:
            batch.append(rx.receive_nowait())
    except trio.WouldBlock:
        pass
    return batch


class MailboxStatistics(msgspec.Struct, frozen=True):
    """One actor's mailbox: trio's channel statistics plus how the actor drains it."""

    buffer_used: int
    buffer_max: float  # math.inf for an unbounded channel (none in this package)
    tasks_waiting_send: int
    tasks_waiting_receive: int
    batches: int  # batches the actor took
    messages: int  # messages in them (messages / batches: the mean batch size)


def mailbox_statistics(rx: trio.MemoryReceiveChannel[Any], batches: int, messages: int) -> MailboxStatistics:
    s = rx.statistics()
    return MailboxStatistics(
        buffer_used=s.current_buffer_used,
        buffer_max=s.max_buffer_size,
        tasks_waiting_send=s.tasks_waiting_send,
        tasks_waiting_receive=s.tasks_waiting_receive,
        batches=batches,
        messages=messages,
    )
