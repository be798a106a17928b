"""The replica lease: a long-connection bot subscribes only while it holds its bot's lease.

WeCom keeps one live long connection per bot and the newest subscribe wins, so replicas of one
bot that all connected would kick each other. With ``redis_url`` set, :class:`Lease` runs the
connection (``run_held``, the bot's ConnectionSupervisor) only while this replica holds the
bot's lease:

* **standby**: the key is held by another replica; try again when its lease has run out (at
  most a third of the TTL later, so a released lease is taken within that).
* **held**: renewed every third of the TTL with a compare-and-set. The connection runs under a
  deadline of the lease's end (counted from when the last successful renewal was *sent*) minus
  a safety margin, moved on at each renewal: if renewals fail (Redis down, slow, or the key was
  taken) the connection is closed before the TTL can end, so two replicas never hold a live
  subscription at once by our doing.
* **stepped-down**: a kick-out (``disconnected_event``) while holding the lease means a process
  outside the lease subscribed with this bot's credentials. The replica logs it at ERROR, stops
  subscribing and does *not* fight back: it keeps renewing the lease (so no standby subscribes
  and kicks the other process either) and never subscribes again until it is restarted.
* **redis-unreachable**: no answer from Redis; retried with exponential backoff (capped at the
  TTL). A holder whose renewals fail keeps serving until its deadline, then steps down.

Clean shutdown releases the lease (compare-and-delete), so a standby takes over within a third
of the TTL instead of a whole TTL. Every acquisition increments the bot's fencing counter; the
current token is in :class:`LeaseStatistics`.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import trio

from .errors import KickedOut
from .lease_store import LeaseStore
from .redis_link import RedisLink, RedisUnavailable

__all__ = ["Lease", "LeaseStatistics", "lease_for", "new_replica_id"]

log = logging.getLogger("wecom_actors.lease")

RunHeld = Callable[..., Awaitable[None]]


class LeaseStatistics(msgspec.Struct, frozen=True):
    """One bot's lease as this replica sees it."""

    state: str  # acquiring, standby, held, stepped-down, redis-unreachable
    held: bool
    replica: str
    fencing_token: int  # of the current (or last) holding period; 0 before the first
    acquisitions: int
    renewals: int
    renew_failures: int
    losses: int  # holding periods ended by failed renewals (not by shutdown)
    kickouts: int
    redis_errors: int
    last_error: str | None = None


def new_replica_id() -> str:
    """``host:pid:random`` (unique per process start; readable in Redis)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{random.getrandbits(32):08x}"


def lease_for(config: Any, rng: random.Random | None = None) -> Lease | None:
    """The lease of a long-connection bot configured with ``redis_url``, else None."""
    if not getattr(config, "redis_url", ""):
        return None
    from .lease_store import RedisLeaseStore

    ttl = config.lease_ttl
    link = RedisLink(config.redis_url, timeout=ttl / 4, reconnect_initial=min(0.5, ttl / 10), reconnect_max=ttl, rng=rng)
    return Lease(RedisLeaseStore(link), config.bot_id, ttl=ttl, rng=rng, link=link)


class Lease:
    """Hold ``bot_id``'s lease in ``store`` and run the connection only while held."""

    def __init__(
        self,
        store: LeaseStore,
        bot_id: str,
        *,
        ttl: float = 10.0,
        replica: str | None = None,
        op_timeout: float | None = None,
        rng: random.Random | None = None,
        link: RedisLink | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError("the lease TTL must be > 0")
        self.store = store
        #: The Redis connection ``run`` keeps open (None: the store needs none).
        self.link = link
        self.bot_id = bot_id
        self.ttl = ttl
        self.replica = replica or new_replica_id()
        self.renew_every = ttl / 3
        #: Close the connection this long before the lease could end.
        self.margin = min(ttl / 5, 2.0)
        self.op_timeout = op_timeout if op_timeout is not None else ttl / 4
        self._rng = rng or random.Random()
        self.state = "acquiring"
        self.token = 0
        self.counts = dict.fromkeys(
            ("acquisitions", "renewals", "renew_failures", "losses", "kickouts", "redis_errors"), 0
        )
        self.last_error: str | None = None
        self._valid_until = 0.0
        self._supervised_once = False
        self._stepped_down = False

    def statistics(self) -> LeaseStatistics:
        return LeaseStatistics(
            state=self.state,
            held=self.state == "held",
            replica=self.replica,
            fencing_token=self.token,
            last_error=self.last_error,
            **self.counts,
        )

    async def _op(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        try:
            with trio.fail_after(self.op_timeout):
                return await fn(*args)
        except trio.TooSlowError:
            self.counts["redis_errors"] += 1
            self.last_error = f"no answer from Redis within {self.op_timeout:.2f} s"
            raise RedisUnavailable(self.last_error) from None
        except RedisUnavailable as exc:
            self.counts["redis_errors"] += 1
            self.last_error = str(exc)[:300]
            raise

    async def run(self, run_held: RunHeld, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Acquire, hold and renew, run ``run_held`` while held; forever (cancel to stop).

        ``started()`` after the first decision: once subscribed when this replica got the lease
        at once, right away as a standby or while Redis is unreachable. A terminal error of
        ``run_held`` (other than a kick-out) propagates; the lease is released on the way out
        (the Redis link, if any, is closed only after that).
        """
        if self.link is None:
            await self._run(run_held, task_status)
            return
        async with trio.open_nursery() as nursery:
            link_scope = trio.CancelScope(shield=True)  # outlives our cancellation: release first
            await nursery.start(self._run_link, link_scope)
            try:
                await self._run(run_held, task_status)
            finally:
                link_scope.cancel()

    async def _run_link(self, scope: trio.CancelScope, *, task_status: trio.TaskStatus[None]) -> None:
        assert self.link is not None
        with scope:
            await self.link.run(task_status=task_status)

    async def _run(self, run_held: RunHeld, task_status: trio.TaskStatus[None]) -> None:
        status: trio.TaskStatus[None] | None = task_status
        failures = 0
        try:
            while True:
                sent = trio.current_time()  # Redis counts the TTL from a later moment: safe side
                try:
                    answer = await self._op(self.store.acquire, self.bot_id, self.replica, self.ttl)
                except RedisUnavailable as exc:
                    self.state = "redis-unreachable" if not self._stepped_down else "stepped-down"
                    if status is not None:
                        status.started()
                        status = None
                    delay = min(0.1 * self.ttl * 2**failures, self.ttl) * (0.8 + 0.4 * self._rng.random())
                    failures += 1
                    log.warning("bot %s: lease not acquired (%s); retrying in %.2f s", self.bot_id, exc, delay)
                    await trio.sleep(delay)
                    continue
                failures = 0
                if answer.token <= 0:
                    if not self._stepped_down:
                        self.state = "standby"
                    if status is not None:
                        status.started()
                        status = None
                    wait = min(answer.remaining, self.renew_every) if answer.remaining > 0 else self.renew_every
                    await trio.sleep(wait + 0.01 + 0.02 * self._rng.random())
                    continue
                self.token = answer.token
                self.counts["acquisitions"] += 1
                self._valid_until = sent + self.ttl
                log.info("bot %s: lease acquired by replica %s (fencing token %d)", self.bot_id, self.replica, self.token)
                status = await self._hold(run_held, status)
                if not self._stepped_down:
                    self.state = "standby"
        finally:
            await self._release()

    async def _hold(self, run_held: RunHeld, status: trio.TaskStatus[None] | None) -> trio.TaskStatus[None] | None:
        """One holding period: the connection under the lease's deadline, renewed meanwhile."""
        self.state = "stepped-down" if self._stepped_down else "held"
        async with trio.open_nursery() as nursery:
            nursery.cancel_scope.deadline = self._valid_until - self.margin
            nursery.start_soon(self._renew, nursery.cancel_scope)
            if self._stepped_down:
                pass  # keep the lease, never subscribe again
            elif not self._supervised_once:
                self._supervised_once = True
                if status is not None:
                    await nursery.start(self._supervise, run_held)
                    status.started()
                    status = None
                else:
                    nursery.start_soon(self._supervise, run_held)
            else:
                nursery.start_soon(self._supervise, run_held)
            if status is not None:
                status.started()
                status = None
        # Here only when the deadline passed or a renewal found the key taken.
        self.counts["losses"] += 1
        log.error(
            "bot %s: lease lost by replica %s (%s); connection closed, standing by",
            self.bot_id, self.replica, self.last_error or "renewal failed",
        )
        return status

    async def _supervise(self, run_held: RunHeld, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await run_held(task_status=task_status)
        except KickedOut as exc:
            self._stepped_down = True
            self.state = "stepped-down"
            self.counts["kickouts"] += 1
            self.last_error = "kicked out while holding the lease: another process subscribed as this bot"
            log.error(
                "bot %s: KICKED OUT while replica %s holds the lease (%s): another process subscribed "
                "with this bot's credentials outside the lease. Not reconnecting (no fight); this "
                "replica keeps the lease so no standby subscribes either. Stop the other process, "
                "then restart this replica.",
                self.bot_id, self.replica, exc,
            )
            await trio.sleep_forever()

    async def _renew(self, scope: trio.CancelScope) -> None:
        next_at = self._valid_until - self.ttl + self.renew_every
        while True:
            await trio.sleep_until(next_at)
            sent = trio.current_time()
            try:
                ok = await self._op(self.store.renew, self.bot_id, self.replica, self.ttl)
            except RedisUnavailable as exc:
                self.counts["renew_failures"] += 1
                log.warning(
                    "bot %s: lease renewal failed (%s); %.2f s left before the connection is closed",
                    self.bot_id, exc, scope.deadline - trio.current_time(),
                )
                next_at = trio.current_time() + min(self.renew_every / 3, 1.0)
                continue
            if not ok:
                self.last_error = "the lease expired and another replica took it"
                scope.cancel()
                return
            self.counts["renewals"] += 1
            self.last_error = None
            self._valid_until = sent + self.ttl
            scope.deadline = self._valid_until - self.margin
            next_at = sent + self.renew_every

    async def _release(self) -> None:
        """Compare-and-delete on the way out (shielded, bounded): a standby need not wait."""
        if self.state not in ("held", "stepped-down"):
            return
        self.state = "released"
        with trio.CancelScope(shield=True):
            try:
                released = await self._op(self.store.release, self.bot_id, self.replica)
            except RedisUnavailable as exc:
                log.warning("bot %s: lease not released (%s); it expires within %.1f s", self.bot_id, exc, self.ttl)
                return
        if released:
            log.info("bot %s: lease released by replica %s", self.bot_id, self.replica)
