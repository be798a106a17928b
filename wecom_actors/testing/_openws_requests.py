"""Handling what the bot sends the fake: every frame is recorded, then a subscribe is
answered, or a request is checked (subscribed first, one frame per req_id at a time), delayed,
dropped or failed as the fault injector says, judged by the rules of :mod:`._state` and acked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import trio

from ._openws_faults import BotFaults, Rule
from ._openws_records import RecordedFrame
from ._state import BotState, FakeErrcode

if TYPE_CHECKING:
    from ._openws_conn import Conn
    from ._openws_faults import FaultInjector
    from ._state import Rules

__all__ = ["RequestsMixin"]

_decode = msgspec.json.Decoder().decode
_CONFLICT_MSG = "more than one callers at the same time, data version conflict"  # as seen in the field


class RequestsMixin:
    """The frame handling of :class:`~wecom_actors.testing.FakeWeCom` (``_on_message``)."""

    if TYPE_CHECKING:
        record: bool
        frames: list[RecordedFrame]
        faults: FaultInjector
        ack_delay: float
        close_codes: dict[str, int]
        _bots: dict[str, BotState]
        _rules: Rules
        _live: dict[str, Conn]
        _in_flight: set[tuple[str, str]]
        _frames_in: int
        _subscribes_ok: int
        _subscribes_refused: int

        def _notify(self) -> None: ...
        async def _ack(
            self, conn: Conn, req_id: str, errcode: int, errmsg: str, body: Any = None
        ) -> None: ...
        async def _close(self, conn: Conn, code: int, reason: str | None) -> None: ...
        def _kick(self, conn: Conn, *, close: bool) -> None: ...

    async def _on_message(self, conn: Conn, message: str | bytes) -> None:
        now = trio.current_time()
        conn.last_frame = now
        self._frames_in += 1
        data: dict[str, Any] | None = None
        try:
            decoded = _decode(message)
            data = decoded if isinstance(decoded, dict) else None
        except msgspec.DecodeError:
            pass  # non-JSON from the client: recorded and ignored (documented choice)
        if self.record:
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            self.frames.append(RecordedFrame(now, "in", conn.id, text, data))
        self._notify()
        if data is None:
            return
        cmd = data.get("cmd")
        headers = data.get("headers")
        req_id = headers.get("req_id") if isinstance(headers, dict) else None
        if not isinstance(cmd, str) or not isinstance(req_id, str):
            return  # no cmd or req_id to answer to: recorded and ignored (documented choice)
        body = data.get("body")
        if cmd == "aibot_subscribe":
            await self._on_subscribe(conn, req_id, body)
            return
        if not conn.subscribed or (conn.replaced and cmd != "ping"):
            # Nothing but subscribe before a successful subscribe.
            await self._ack(
                conn, req_id, FakeErrcode.NOT_SUBSCRIBED, "aibot websocket not subscribed"
            )
            return
        bot = self._bots[conn.bot_id or ""]
        key = (bot.bot_id, req_id)
        if key in self._in_flight:
            # One frame per req_id at a time: a second frame while the first is being processed.
            self._rules.count_rejected(bot, cmd, req_id, body)
            await self._ack(conn, req_id, FakeErrcode.CONFLICT, _CONFLICT_MSG)
            return
        faults = self.faults.for_bot(bot.bot_id)
        injected = faults.take(faults.ack_errors, cmd) if faults else None
        delayed = faults.take(faults.delays, cmd) if faults else None
        drop = bool(faults) and faults.take(faults.drops, cmd) is not None
        delay = (self.ack_delay if cmd != "ping" else 0.0) + (delayed.seconds if delayed else 0.0)
        if delay > 0:
            self._in_flight.add(key)
            conn.nursery.start_soon(self._process_later, conn, bot, cmd, req_id, body, now, delay,
                                    injected, drop)  # fmt: skip
        else:
            await self._process(conn, bot, cmd, req_id, body, now, injected, drop)

    async def _process_later(
        self, conn: Conn, bot: BotState, cmd: str, req_id: str, body: Any, now: float,
        delay: float, injected: Rule | None, drop: bool,
    ) -> None:  # fmt: skip
        try:
            await trio.sleep_until(now + delay)
            await self._process(conn, bot, cmd, req_id, body, now, injected, drop)
        finally:
            self._in_flight.discard((bot.bot_id, req_id))

    async def _process(
        self, conn: Conn, bot: BotState, cmd: str, req_id: str, body: Any, now: float,
        injected: Rule | None, drop: bool,
    ) -> None:  # fmt: skip
        """Judge and apply one request (time windows use its arrival time ``now``), then ack."""
        if injected is not None:
            self._rules.count_rejected(bot, cmd, req_id, body)
            errcode, errmsg, ack_body = injected.errcode, injected.errmsg, None
        else:
            errcode, errmsg, ack_body = self._rules.handle(bot, conn.id, cmd, req_id, body, now)
        self._in_flight.discard((bot.bot_id, req_id))  # processing is over before the ack leaves
        self._notify()
        if not drop:
            await self._ack(conn, req_id, errcode, errmsg, ack_body)

    async def _on_subscribe(self, conn: Conn, req_id: str, body: Any) -> None:
        """Check bot_id + secret (extra keys such as scene, plug_version are fine); ack;
        only then make this the bot's live connection, kicking the previous one."""
        body = body if isinstance(body, dict) else {}
        bot_id, secret = body.get("bot_id"), body.get("secret")
        bot = self._bots.get(bot_id) if isinstance(bot_id, str) else None
        faults: BotFaults | None = self.faults.for_bot(bot.bot_id) if bot is not None else None
        refused: tuple[int, str] | None = None
        if bot is None or secret != bot.secret:
            refused = (FakeErrcode.INVALID_SECRET, "invalid secret")
        elif faults and (rule := faults.take(faults.refuse, "aibot_subscribe")) is not None:
            refused = (rule.errcode, "invalid secret" if rule.errcode == 600041 else "injected")
        if refused is not None:
            # The fake closes the socket after a refused subscribe.
            self._subscribes_refused += 1
            self._notify()
            await self._ack(conn, req_id, *refused)
            await self._close(conn, self.close_codes["subscribe_refused"], "subscribe refused")
            return
        assert bot is not None and faults is not None
        injected = faults.take(faults.ack_errors, "aibot_subscribe") if faults else None
        if injected is not None:
            await self._ack(conn, req_id, injected.errcode, injected.errmsg)
            return
        delayed = faults.take(faults.delays, "aibot_subscribe") if faults else None
        if delayed is not None:
            await trio.sleep(delayed.seconds)
        if not (faults and faults.take(faults.drops, "aibot_subscribe")):
            await self._ack(conn, req_id, 0, "ok")
        if conn.closing or conn.closed:
            return
        if (
            conn.subscribed
            and conn.bot_id != bot.bot_id
            and self._live.get(conn.bot_id or "") is conn
        ):
            del self._live[conn.bot_id or ""]
        # Callbacks may flow only from here on: never before the subscribe ack.
        conn.bot_id, conn.subscribed, conn.replaced = bot.bot_id, True, False
        old = self._live.get(bot.bot_id)
        self._live[bot.bot_id] = conn
        bot.subscribes_ok += 1
        self._subscribes_ok += 1
        if old is not None and old is not conn and not (old.closed or old.replaced):
            self._kick(old, close=True)
        self._notify()
