"""The ConnectionSupervisor: dial, subscribe, run one connection's actors, reconnect.

Strategy ``rest_for_one``: the transport, Reader, Heartbeat and Writer live in one
per-connection nursery and die together; everything above (Router, sessions, handlers, the
Correlator and its lanes) survives. The supervisor tells the Correlator by message when a
connection is up (with the Writer's and the Heartbeat's mailboxes) and when it is down. Restarts back off exponentially with jitter, the
backoff resets only after a successful subscribe, and more than ``restart_intensity`` restarts
within ``restart_period`` seconds escalate to :class:`RestartIntensityExceeded`.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from typing import Any

import trio

from ..errors import AuthError, ConnectionLost, FrameError, KickedOut, RestartIntensityExceeded
from ..mailbox import post
from ..protocol.frames import Cmd, decode_frame, encode_request
from ..protocol.inbound import InboundMessage
from ..protocol.replies import SubscribeBody
from .correlator import WRITER_MAILBOX_SIZE, ConnectionDown, ConnectionUp, WriteBatch, Writer
from .heartbeat import Heartbeat
from .reader import Reader
from .transport import Transport, TransportFactory

__all__ = ["MAX_EARLY_FRAMES", "Backoff", "ConnectionSupervisor", "SubscribeRefused"]

log = logging.getLogger("wecom_actors.supervisor")

#: Frames kept when they arrive before the subscribe ack (handled once subscribed).
MAX_EARLY_FRAMES = 1000


#: Counters the connection's actors publish (summed over connections in ``totals()``).
_ACTOR_COUNTERS = ("frames_in", "junk_frames", "unknown_frames", "pings", "pings_missed", "probes")


def _actor_count(actors: tuple[Reader, Heartbeat], name: str) -> int:
    reader, heartbeat = actors
    return int(getattr(reader, name, 0)) + int(getattr(heartbeat, name, 0))


class SubscribeRefused(ConnectionLost):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"aibot_subscribe refused: errcode {errcode} {errmsg}")
        self.errcode = errcode


class Backoff:
    """``min(initial * 2**n, maximum)``, times a jitter factor in ``[1 - j, 1 + j]``."""

    def __init__(self, initial: float, maximum: float, jitter: float, rng: random.Random) -> None:
        self.initial, self.maximum, self.jitter = initial, maximum, jitter
        self._rng = rng
        self.attempt = 0

    def next(self) -> float:
        base: float = min(self.initial * 2.0**self.attempt, self.maximum)
        self.attempt += 1
        if self.jitter:
            base *= 1 + self.jitter * (2 * self._rng.random() - 1)
        return base

    def reset(self) -> None:
        self.attempt = 0


def collapse_group(eg: BaseExceptionGroup[Any]) -> BaseException:
    """The one exception a per-connection nursery's group stands for.

    KickedOut wins over everything; then ConnectionLost; a group holding anything else (a bug,
    or a Cancelled) is returned unchanged, to be re-raised as it is.
    """
    leaves = list(_leaves(eg))
    for kind in (KickedOut, ConnectionLost):
        for leaf in leaves:
            if isinstance(leaf, kind) and all(
                isinstance(x, (KickedOut, ConnectionLost, trio.Cancelled)) for x in leaves
            ):
                return leaf
    return eg


def _leaves(exc: BaseException):  # type: ignore[no-untyped-def]
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            yield from _leaves(sub)
    else:
        yield exc


class ConnectionSupervisor:
    def __init__(
        self,
        *,
        url: str,
        bot_id: str,
        secret: str,
        transport_factory: TransportFactory,
        correlator: trio.MemorySendChannel[Any],
        router: trio.MemorySendChannel[list[tuple[str, InboundMessage, int]]],
        new_req_id: Callable[[str], str],
        rng: random.Random,
        heartbeat_interval: float = 30.0,
        ack_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        max_frame_bytes: int = 1 << 20,
        reconnect_initial: float = 1.0,
        reconnect_max: float = 30.0,
        reconnect_jitter: float = 0.2,
        restart_intensity: int = 10,
        restart_period: float = 60.0,
        auth_max_attempts: int = 5,
    ) -> None:
        self._url = url
        self._bot_id = bot_id
        self._secret = secret
        self._transport_factory = transport_factory
        self._correlator = correlator
        self._router = router
        self._new_req_id = new_req_id
        self.heartbeat_interval = heartbeat_interval
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self.max_frame_bytes = max_frame_bytes
        self.backoff = Backoff(reconnect_initial, reconnect_max, reconnect_jitter, rng)
        self.restart_intensity = restart_intensity
        self.restart_period = restart_period
        self.auth_max_attempts = auth_max_attempts
        self.state = "starting"
        self.counters = dict.fromkeys(
            ("connects", "subscribes", "reconnects", "auth_refusals", "early_frames_dropped"), 0
        )
        # Counters of the connections that ended, plus the live connection's actors.
        self._past = dict.fromkeys(_ACTOR_COUNTERS, 0)
        self._live: tuple[Reader, Heartbeat] | None = None
        self._generation = 0
        self._restarts: deque[float] = deque()
        self.last_error: str | None = None
        self._started = False

    def totals(self) -> dict[str, int]:
        """The supervisor's counters plus those its connections' actors publish."""
        totals = {**self.counters, **self._past}
        if self._live is not None:
            for name in _ACTOR_COUNTERS:
                totals[name] += _actor_count(self._live, name)
        return totals

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until a terminal error; ``started()`` after the first successful subscribe."""
        auth_failures = 0
        while True:
            self.state = "connecting"
            try:
                await self._one_connection(None if self._started else task_status)
            except SubscribeRefused as exc:
                auth_failures += 1
                self.counters["auth_refusals"] += 1
                self.last_error = str(exc)
                log.error("%s (attempt %d of %d)", exc, auth_failures, self.auth_max_attempts)
                if auth_failures >= self.auth_max_attempts:
                    self.state = "stopped"
                    raise AuthError(
                        f"WeCom refused aibot_subscribe {auth_failures} times (last: errcode "
                        f"{exc.errcode}); check WECOM_BOT_ID and WECOM_BOT_SECRET"
                    ) from None
            except ConnectionLost as exc:
                self.last_error = str(exc)
                if self.state == "subscribed":
                    auth_failures = 0
                log.warning("connection lost: %s", exc)
            except KickedOut:
                self.state = "kicked"
                raise
            self.state = "backoff"
            self._count_restart()
            delay = self.backoff.next()
            log.info("reconnecting in %.2f s", delay)
            await trio.sleep(delay)
            self.counters["reconnects"] += 1

    def _count_restart(self) -> None:
        now = trio.current_time()
        self._restarts.append(now)
        while self._restarts and self._restarts[0] < now - self.restart_period:
            self._restarts.popleft()
        if len(self._restarts) > self.restart_intensity:
            self.state = "stopped"
            raise RestartIntensityExceeded(
                f"more than {self.restart_intensity} connection restarts within "
                f"{self.restart_period} s (last error: {self.last_error})"
            )

    async def _one_connection(self, task_status: trio.TaskStatus[None] | None) -> None:
        self.counters["connects"] += 1
        try:
            async with self._transport_factory(
                self._url, connect_timeout=self.connect_timeout, max_message_size=self.max_frame_bytes
            ) as conn:
                early = await self._subscribe(conn)
                self.backoff.reset()
                self.state = "subscribed"
                self.counters["subscribes"] += 1
                log.info("subscribed to %s", self._url)
                await self._run_actors(conn, early, task_status)
        except BaseExceptionGroup as eg:
            raise collapse_group(eg) from None

    async def _run_actors(
        self, conn: Transport, early: list[str | bytes], task_status: trio.TaskStatus[None] | None
    ) -> None:
        """The connection's nursery: Writer, Reader, Heartbeat; the Correlator is told when it
        is up and when it is down."""
        self._generation += 1
        generation = self._generation
        writer_tx, writer_rx = trio.open_memory_channel[WriteBatch](WRITER_MAILBOX_SIZE)
        writer = Writer(conn, writer_rx, bound=self.ack_timeout)
        reader = Reader(conn, self._correlator, generation, self._router, early=early)
        heartbeat = Heartbeat(
            self._correlator,
            generation,
            interval=self.heartbeat_interval,
            ack_timeout=self.ack_timeout,
            new_req_id=self._new_req_id,
        )
        self._live = (reader, heartbeat)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                await post(self._correlator, ConnectionUp(generation, writer_tx, heartbeat.mailbox))
                await nursery.start(reader.run)
                await nursery.start(heartbeat.run)
                if task_status is not None:
                    task_status.started()
                    self._started = True
        finally:
            writer_rx.close()
            self._live = None
            for name in _ACTOR_COUNTERS:
                self._past[name] += _actor_count((reader, heartbeat), name)
            try:
                self._correlator.send_nowait(ConnectionDown(generation))
            except trio.WouldBlock:
                await self._correlator.send(ConnectionDown(generation))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the bot is stopping

    async def _subscribe(self, conn: Transport) -> list[str | bytes]:
        """Send aibot_subscribe and wait for its ack; return the frames that came first.

        WeCom may push a callback at once, even in the same read as the ack: such frames are
        kept (up to ``MAX_EARLY_FRAMES``) and handed to the Reader, which handles them before
        anything it reads itself. Nothing is dropped silently: frames past the bound are logged
        with their cmd and req_id and counted.
        """
        req_id = self._new_req_id(Cmd.SUBSCRIBE)
        body = SubscribeBody(bot_id=self._bot_id, secret=self._secret)
        early: list[str | bytes] = []
        with trio.move_on_after(self.connect_timeout) as scope:
            await conn.send(encode_request(Cmd.SUBSCRIBE, req_id, body))
            while True:
                data = await conn.receive()
                try:
                    env = decode_frame(data)
                except FrameError:
                    early.append(data)  # the Reader logs and counts it like any junk frame
                    continue
                if env.cmd is not None or env.req_id != req_id:
                    if len(early) < MAX_EARLY_FRAMES:
                        early.append(data)
                    else:
                        self.counters["early_frames_dropped"] += 1
                        log.warning(
                            "dropping a frame (cmd %r, req_id %r) that arrived before the subscribe "
                            "ack: %d such frames are kept already",
                            (env.cmd or "")[:64],
                            (env.req_id or "")[:64],
                            MAX_EARLY_FRAMES,
                        )
                    continue
                if env.errcode:
                    raise SubscribeRefused(env.errcode, env.errmsg or "")
                if early:
                    log.info("%d frame(s) arrived before the subscribe ack; handling them now", len(early))
                return early
        assert scope.cancelled_caught
        raise ConnectionLost(f"no subscribe ack within {self.connect_timeout} s")
