"""What a test can see of the fake long-connection server, and how it waits for it.

Every ``wait_*`` takes a ``timeout`` in trio seconds (``None``: wait forever) and raises
:class:`trio.TooSlowError` when it passes; the default is :data:`DEFAULT_WAIT`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from ._openws_records import (
    Bubble,
    ConnectionView,
    FakeStatistics,
    StreamView,
    UploadedMedia,
)

if TYPE_CHECKING:
    from collections import Counter

    from ._openws_conn import Conn
    from ._state import BotState, Rules

__all__ = ["DEFAULT_WAIT", "ViewsMixin"]

#: The default ``timeout`` of every ``wait_*`` method, in trio seconds: longer than any window
#: of the protocol (a stream may run 6 minutes), short enough that a hung test ends.
DEFAULT_WAIT = 600.0


class ViewsMixin:
    """The observing half of :class:`~wecom_actors.testing.FakeWeCom`."""

    if TYPE_CHECKING:
        bot_id: str
        _rules: Rules
        _conns: dict[int, Conn]
        _history: dict[int, Conn]
        _changed: trio.Event
        _connections_total: int
        _subscribes_ok: int
        _subscribes_refused: int
        _frames_in: int
        _frames_out: int
        _acks: Counter[int]
        _callbacks_pushed: int

        def _bot(self, bot_id: str | None) -> BotState: ...
        def _live_conn(self, bot_id: str) -> Conn | None: ...

    def statistics(self) -> FakeStatistics:
        return FakeStatistics(
            connections_total=self._connections_total,
            live_connections=len(self._conns),
            subscribes_ok=self._subscribes_ok,
            subscribes_refused=self._subscribes_refused,
            frames_in=self._frames_in,
            frames_out=self._frames_out,
            acks_by_errcode=dict(self._acks),
            callbacks_pushed=self._callbacks_pushed,
        )

    def conversation(self, conv: str, *, bot_id: str | None = None) -> list[Bubble]:
        """What the user sees in ``conv`` (a userid for single chats, a chatid for groups)."""
        return [b.freeze() for b in self._bot(bot_id).conversations.get(conv, [])]

    def conversations(self, *, bot_id: str | None = None) -> list[str]:
        """Every conversation the bot has been part of, oldest first."""
        bot = self._bot(bot_id)
        return list(dict.fromkeys([*bot.conversations, *sorted(bot.opened)]))

    def stream(self, req_id: str) -> StreamView | None:
        """The latest stream replying to callback ``req_id``, or ``None``."""
        streams = self._rules.streams_by_req.get(req_id)
        return streams[-1].view() if streams else None

    def media(self, media_id: str, *, bot_id: str | None = None) -> UploadedMedia | None:
        """A media the bot uploaded (chunked upload), with its bytes."""
        m = self._bot(bot_id).media.get(media_id)
        return (
            None if m is None else UploadedMedia(m.media_id, m.type, m.filename, m.data, m.created)
        )

    def is_subscribed(self, bot_id: str | None = None) -> bool:
        """Whether the bot has a live subscribed connection callbacks can be pushed to."""
        return self._live_conn(self._bot(bot_id).bot_id) is not None

    # --- connections -----------------------------------------------------------------------------

    @property
    def connections(self) -> list[ConnectionView]:
        """The open connections (any bot, subscribed or not), oldest first."""
        return [c.view() for c in self._conns.values()]

    def connection(self, conn_id: int) -> ConnectionView | None:
        """One connection, open or among the last closed ones (the fake keeps 1000)."""
        conn = self._conns.get(conn_id) or self._history.get(conn_id)
        return None if conn is None else conn.view()

    def live_connection(self, bot_id: str | None = None) -> ConnectionView | None:
        """The connection callbacks of the bot go to (the newest subscribed one), if any."""
        conn = self._live_conn(self._bot(bot_id).bot_id)
        return None if conn is None else conn.view()

    def subscribe_count(self, bot_id: str | None = None) -> int:
        """How many subscribes of the bot have succeeded since the fake started."""
        return self._bot(bot_id).subscribes_ok

    def kick_count(self, bot_id: str | None = None) -> int:
        """How many kick-outs (``disconnected_event`` frames written) the bot's connections got."""
        return self._bot(bot_id).kicks_sent

    # --- waiting ---------------------------------------------------------------------------------

    async def wait_until(
        self, predicate: Callable[[], bool], *, timeout: float | None = DEFAULT_WAIT  # noqa: ASYNC109
    ) -> None:
        """Return once ``predicate()`` is true; it is re-checked on every state change."""
        with trio.fail_after(math.inf if timeout is None else timeout):
            while True:
                changed = self._changed
                if predicate():
                    return
                await changed.wait()

    async def wait_subscribed(
        self, bot_id: str | None = None, *, count: int = 1, timeout: float | None = DEFAULT_WAIT  # noqa: ASYNC109
    ) -> None:
        """Wait until ``count`` subscribes of the bot have succeeded in total."""
        bot = self._bot(bot_id)
        await self.wait_until(lambda: bot.subscribes_ok >= count, timeout=timeout)

    async def wait_stream_finished(
        self, req_id: str, *, timeout: float | None = DEFAULT_WAIT  # noqa: ASYNC109
    ) -> StreamView:
        """Wait until the latest stream replying to ``req_id`` has finished."""
        await self.wait_until(
            lambda: (s := self.stream(req_id)) is not None and s.finished, timeout=timeout
        )
        view = self.stream(req_id)
        assert view is not None
        return view

    async def wait_closed(
        self, conn_id: int, *, timeout: float | None = DEFAULT_WAIT  # noqa: ASYNC109
    ) -> ConnectionView:
        """Wait until connection ``conn_id`` is closed; returns its final view (close code...)."""
        if self.connection(conn_id) is None:
            raise KeyError(f"unknown connection {conn_id}")
        await self.wait_until(lambda: (c := self.connection(conn_id)) is None or c.closed,
                              timeout=timeout)  # fmt: skip
        view = self.connection(conn_id)
        if view is None:
            raise KeyError(f"connection {conn_id} is no longer remembered")
        return view
