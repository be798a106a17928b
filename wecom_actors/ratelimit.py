"""The per-conversation send limiter: 30 messages a minute and 1000 an hour (docs/protocol-notes.md, 'Windows and quotas').

WeCom counts replies and proactive pushes to one conversation together and answers the excess
with an error (45009 in the bundled fake). The bot spends that budget deliberately instead:

* :meth:`RateLimiter.acquire` takes one slot for ``conversation``, waiting until the sliding
  windows have room; a later caller never gets an earlier slot than one already waiting. The wait is bounded twice: at most ``max_waiters`` tasks queue
  per conversation, and none waits longer than ``max_wait`` seconds. Past either bound, or when
  the window cannot free up within ``max_wait`` (an exhausted hourly budget), it raises
  :class:`~wecom_actors.errors.Overloaded` at once rather than queueing without limit.
* :meth:`RateLimiter.record` counts a message that was sent without waiting (replies to the
  user's own messages: the bot never delays or refuses those, but they use up the budget that
  pushes then respect). A reply recorded while pushes already wait does not move their
  reserved slots, so in that case WeCom may still refuse one of them (45009); the error then
  surfaces as AckError to the caller.

Windows are sliding, on Trio's clock: a send at time ``t`` counts until ``t + 60`` and
``t + 3600``. A conversation's state is dropped once it has no waiter and its last send is
more than an hour old, so memory is bounded by the conversations active in the last hour, and
each keeps at most ``per_hour`` send times.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import OrderedDict

import msgspec
import trio

from .errors import Overloaded
from .protocol.limits import SENDS_PER_HOUR, SENDS_PER_MINUTE

__all__ = ["RateLimiter", "RateLimiterStatistics"]


class RateLimiterStatistics(msgspec.Struct, frozen=True):
    conversations: int  # with state (sent within the last hour, or waiting)
    waiting: int  # tasks waiting for a slot right now
    acquired: int  # slots taken through acquire()
    waited: int  # of those, how many had to wait
    recorded: int  # sends counted through record()
    rejected: int  # acquire() calls that raised Overloaded


class _Conversation:
    __slots__ = ("sent", "waiting")

    def __init__(self) -> None:
        # Send times of the last hour, oldest first, then the reserved times of waiting tasks;
        # at most ``per_hour`` of them (the windows never look further back). An array of
        # doubles: 8 bytes a send, and an empty one costs ~64 bytes (a deque ~600).
        self.sent: array[float] = array("d")
        self.waiting = 0


class RateLimiter:
    """Sliding-window send budget per conversation (see the module docstring)."""

    def __init__(
        self,
        *,
        per_minute: int = SENDS_PER_MINUTE,
        per_hour: int = SENDS_PER_HOUR,
        max_waiters: int = 32,
        max_wait: float = 60.0,
        minute: float = 60.0,
        hour: float = 3600.0,
    ) -> None:
        if per_minute < 1 or per_hour < 1 or max_waiters < 0 or max_wait < 0:
            raise ValueError("per_minute and per_hour must be >= 1, max_waiters and max_wait >= 0")
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.max_waiters = max_waiters
        self.max_wait = max_wait
        self.minute = minute
        self.hour = hour
        # Least recently used first: eviction walks from the front and stops at the first
        # conversation that is still active.
        self._convs: OrderedDict[str, _Conversation] = OrderedDict()
        self._counts = dict.fromkeys(("acquired", "waited", "recorded", "rejected"), 0)

    # --- public ----------------------------------------------------------------------------------

    async def acquire(self, conversation: str) -> None:
        """Take one send slot for ``conversation``; wait for it within the bounds or raise
        :class:`~wecom_actors.errors.Overloaded` at once.

        The slot is reserved on entry (a later caller is never scheduled before it), so whether
        the wait fits within ``max_wait`` is known before waiting. Cancelled while waiting, the
        reservation is given back; cancelled otherwise, no slot was taken.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        now = trio.current_time()
        self._evict(now)
        conv = self._conv(conversation)
        when = self._next_free(conv, now)
        if when <= now:
            self._take(conv, now)
            self._counts["acquired"] += 1
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        limits = f"({self.per_minute}/min, {self.per_hour}/h)"
        if conv.waiting >= self.max_waiters:
            self._counts["rejected"] += 1
            raise Overloaded(
                f"conversation {conversation}: {conv.waiting} sends already wait for the rate limit "
                f"{limits}; refusing to queue more"
            )
        if when - now > self.max_wait:
            self._counts["rejected"] += 1
            raise Overloaded(
                f"conversation {conversation}: the send rate limit {limits} has no room for "
                f"{when - now:.0f} s, longer than the {self.max_wait:g} s a send may wait"
            )
        conv.sent.append(when)  # the reservation; it becomes the send time
        conv.waiting += 1
        self._counts["waited"] += 1
        try:
            await trio.sleep_until(when)
        except BaseException:
            conv.sent.remove(when)
            raise
        finally:
            conv.waiting -= 1
        self._counts["acquired"] += 1

    def record(self, conversation: str) -> None:
        """Count a send made without waiting (a reply): it uses the budget, never blocks."""
        now = trio.current_time()
        self._evict(now)
        self._take(self._conv(conversation), now)
        self._counts["recorded"] += 1

    def available_at(self, conversation: str) -> float:
        """The Trio time at which one more send to ``conversation`` could go (now if at once),
        after the tasks already waiting."""
        now = trio.current_time()
        conv = self._convs.get(conversation)
        return now if conv is None else max(now, self._next_free(conv, now))

    def statistics(self) -> RateLimiterStatistics:
        c = self._counts
        return RateLimiterStatistics(
            conversations=len(self._convs),
            waiting=sum(conv.waiting for conv in self._convs.values()),
            acquired=c["acquired"],
            waited=c["waited"],
            recorded=c["recorded"],
            rejected=c["rejected"],
        )

    # --- internals -------------------------------------------------------------------------------

    def _conv(self, conversation: str) -> _Conversation:
        conv = self._convs.get(conversation)
        if conv is None:
            conv = self._convs[conversation] = _Conversation()
        else:
            self._convs.move_to_end(conversation)
        return conv

    def _prune(self, conv: _Conversation, now: float) -> None:
        sent = conv.sent
        if sent and sent[0] <= now - self.hour:
            del sent[: bisect.bisect_right(sent, now - self.hour)]  # sorted: one slice

    def _next_free(self, conv: _Conversation, now: float) -> float:
        """The earliest time both windows have room for one more send after those already
        reserved (``sent`` is sorted and the result is never before its last entry)."""
        self._prune(conv, now)
        sent = conv.sent
        when = sent[-1] if sent and sent[-1] > now else -math.inf  # after earlier reservations
        if len(sent) >= self.per_minute:
            when = max(when, sent[-self.per_minute] + self.minute)
        if len(sent) >= self.per_hour:
            when = max(when, sent[-self.per_hour] + self.hour)
        return when

    def _take(self, conv: _Conversation, now: float) -> None:
        self._prune(conv, now)
        sent = conv.sent
        if sent and sent[-1] > now:  # a reply recorded while pushes wait: keep the order
            bisect.insort(sent, now)
        else:
            sent.append(now)
        if len(sent) > self.per_hour:
            # Only the newest ``per_hour`` sends decide when the next one may go: a busy
            # conversation costs at most ``per_hour`` entries, not one per message of the hour.
            del sent[: len(sent) - self.per_hour]

    def _evict(self, now: float) -> None:
        """Drop idle conversations (no waiter, no send within the hour) from the least recently
        used end; stop at the first active one (the rest were used more recently)."""
        convs = self._convs
        while convs:
            name, conv = next(iter(convs.items()))
            self._prune(conv, now)
            if conv.waiting or conv.sent:
                return
            del convs[name]
