"""Fault injection for the fake WeCom (``fake.faults``), like tractor's ``break_ipc``.

Socket faults (drop, close, stall, kick, junk frames) act at once on the bot's open subscribed
connections and return how many they hit. Request faults (ack_errors, delay_acks, drop_acks,
refuse_auth) are rules consumed by the next matching requests of that bot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

if TYPE_CHECKING:
    from ._openws import FakeWeCom
    from ._openws_conn import Conn

__all__ = ["FaultInjector"]


@dataclass(slots=True)
class Rule:
    cmd: str | None  # None: any command but ping and aibot_subscribe
    remaining: int | None  # None: forever
    errcode: int = 0
    errmsg: str = ""
    seconds: float = 0.0

    def matches(self, cmd: str) -> bool:
        if self.cmd is None:
            return cmd not in ("ping", "aibot_subscribe")
        return self.cmd == cmd


@dataclass(slots=True)
class BotFaults:
    ack_errors: list[Rule] = field(default_factory=list)
    delays: list[Rule] = field(default_factory=list)
    drops: list[Rule] = field(default_factory=list)
    refuse: list[Rule] = field(default_factory=list)

    @staticmethod
    def take(rules: list[Rule], cmd: str) -> Rule | None:
        """Consume one use of the first rule matching ``cmd``."""
        for i, rule in enumerate(rules):
            if rule.matches(cmd):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        del rules[i]
                return rule
        return None

    def __bool__(self) -> bool:
        return bool(self.ack_errors or self.delays or self.drops or self.refuse)


def _count(count: int | None) -> int | None:
    if count is not None and count < 1:
        raise ValueError("count must be >= 1 (or None for forever)")
    return count


class FaultInjector:
    """Break the fake on purpose. ``bot_id=None`` means the fake's first bot."""

    def __init__(self, fake: FakeWeCom) -> None:
        self._fake = fake
        self._bots: dict[str, BotFaults] = {}

    def for_bot(self, bot_id: str) -> BotFaults:
        faults = self._bots.get(bot_id)
        if faults is None:
            faults = self._bots[bot_id] = BotFaults()
        return faults

    def _conns(self, bot_id: str | None) -> list[Conn]:
        return self._fake._open_conns(bot_id)

    # --- socket faults ---------------------------------------------------------------------------

    def drop(self, *, bot_id: str | None = None) -> int:
        """Abort the TCP connection(s): RST, no WebSocket close handshake."""
        conns = self._conns(bot_id)
        for conn in conns:
            self._fake._abort(conn)
        return len(conns)

    def close(
        self, code: int = 1000, *, reason: str | None = None, bot_id: str | None = None
    ) -> int:
        """An orderly server-side WebSocket close with ``code`` (WeCom documents no close codes)."""
        conns = self._conns(bot_id)
        for conn in conns:
            self._fake._start_close(conn, code, reason)
        return len(conns)

    def stall(self, *, bot_id: str | None = None) -> int:
        """Half-open (seen in the field): the socket stays open, but everything the client sends is
        swallowed unread and nothing (no ack, no callback, no WS pong) is sent to it any more,
        until the client closes it. Callbacks pushed to a stalled connection are lost (recorded
        with ``delivered=False``). New connections are served normally."""
        conns = [c for c in self._conns(bot_id) if not c.stream.stalled]
        for conn in conns:
            conn.stream.stalled = True
        self._fake._notify()
        return len(conns)

    def kick(self, *, close: bool = True, bot_id: str | None = None) -> int:
        """What a second subscriber causes: ``disconnected_event``, then a close.
        ``close=False`` leaves the socket open (seen in the field): pings are still answered, any
        other request gets 846609, and no callbacks are pushed to it."""
        conns = [c for c in self._conns(bot_id) if not c.replaced]
        for conn in conns:
            self._fake._kick(conn, close=close)
        return len(conns)

    async def kick_by_second_subscriber(
        self, *, bot_id: str | None = None, timeout: float = 10.0  # noqa: ASYNC109
    ) -> int:
        """A real kick-out: the fake connects to itself as a second client and
        subscribes with the bot's credentials, so the bot's connection is replaced exactly as a
        second instance of the bot would replace it. Returns the intruder's connection id.

        The intruder pings every 30 s and stays until it is itself replaced (the bot subscribes
        again), closed by :meth:`close` / :meth:`drop`, or the fake stops."""
        fake = self._fake
        nursery = fake._nursery
        if nursery is None:
            raise RuntimeError("the fake is not being served")
        bot = fake._bot(bot_id)
        before = {c.id for c in fake._conns.values()}
        with trio.fail_after(timeout):
            await nursery.start(self._intruder, bot.bot_id, bot.secret)
            await fake.wait_until(
                lambda: (c := fake._live_conn(bot.bot_id)) is not None and c.id not in before,
                timeout=None,
            )
        conn = fake._live_conn(bot.bot_id)
        assert conn is not None
        return conn.id

    async def _intruder(
        self, bot_id: str, secret: str, *, task_status: trio.TaskStatus[None]
    ) -> None:
        subscribe = {"cmd": "aibot_subscribe", "headers": {"req_id": "second-subscriber"},
                     "body": {"bot_id": bot_id, "secret": secret}}  # fmt: skip
        try:
            async with open_websocket_url(
                self._fake.url, ssl_context=self._fake.client_ssl_context(), disconnect_timeout=1
            ) as ws:
                await ws.send_message(json.dumps(subscribe))
                ack = json.loads(await ws.get_message())
                if ack.get("errcode") != 0:
                    raise RuntimeError(f"the second subscriber was refused: {ack!r}")
                task_status.started()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._intruder_pings, ws)
                    while True:
                        await ws.get_message()  # callbacks, acks, disconnected_event: ignored
        except* ConnectionClosed:
            pass  # replaced or closed: its job is done

    @staticmethod
    async def _intruder_pings(ws: object) -> None:
        n = 0
        while True:
            await trio.sleep(30.0)
            n += 1
            frame = {"cmd": "ping", "headers": {"req_id": f"second-subscriber-ping-{n}"}}
            await ws.send_message(json.dumps(frame))  # type: ignore[attr-defined]

    def send_junk(self, text: str, *, bot_id: str | None = None) -> int:
        """Push ``text`` verbatim as one text frame (non-JSON payloads)."""
        conns = self._conns(bot_id)
        for conn in conns:
            conn.nursery.start_soon(self._fake._send_text, conn, text, None)
        return len(conns)

    def send_oversized(self, size: int, *, bot_id: str | None = None) -> int:
        """Push one valid JSON frame of exactly ``size`` characters with an unknown ``cmd``."""
        head = '{"cmd":"fake_oversized","headers":{"req_id":"oversized"},"body":{"padding":"'
        tail = '"}}'
        if size < len(head) + len(tail):
            raise ValueError(f"size must be at least {len(head) + len(tail)}")
        return self.send_junk(head + "x" * (size - len(head) - len(tail)) + tail, bot_id=bot_id)

    # --- request faults --------------------------------------------------------------------------

    def ack_errors(
        self,
        errcode: int,
        *,
        cmd: str | None = None,
        count: int | None = 1,
        errmsg: str = "injected",
        bot_id: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests (of ``cmd``; ``None``: any but ping and subscribe)
        with ``errcode`` and do not apply them."""
        faults = self.for_bot(self._fake._bot(bot_id).bot_id)
        faults.ack_errors.append(Rule(cmd, _count(count), errcode=errcode, errmsg=errmsg))

    def delay_acks(
        self,
        seconds: float,
        *,
        cmd: str | None = None,
        count: int | None = 1,
        bot_id: str | None = None,
    ) -> None:
        """Process the next ``count`` requests ``seconds`` longer before acking (a second frame
        for the same req_id meanwhile gets 6000)."""
        faults = self.for_bot(self._fake._bot(bot_id).bot_id)
        faults.delays.append(Rule(cmd, _count(count), seconds=seconds))

    def drop_acks(
        self, *, cmd: str | None = "ping", count: int | None = None, bot_id: str | None = None
    ) -> None:
        """Apply the next ``count`` requests of ``cmd`` but swallow their acks (missed pongs)."""
        faults = self.for_bot(self._fake._bot(bot_id).bot_id)
        faults.drops.append(Rule(cmd, _count(count)))

    def refuse_auth(
        self, count: int | None = None, errcode: int = 600041, *, bot_id: str | None = None
    ) -> None:
        """Refuse the next ``count`` subscribes of the bot (``None``: all) even with the right
        secret: ack ``errcode``, then close the socket, like a wrong secret."""
        faults = self.for_bot(self._fake._bot(bot_id).bot_id)
        faults.refuse.append(Rule("aibot_subscribe", _count(count), errcode=errcode))

    def clear(self, *, bot_id: str | None = None) -> None:
        """Forget every pending request fault of the bot (socket faults cannot be undone)."""
        self._bots.pop(self._fake._bot(bot_id).bot_id, None)
