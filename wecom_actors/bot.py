"""The embedding API: ``serve_bot`` for ``nursery.start`` and ``open_bot`` as a context manager.

Exception contract (docs/architecture.md): ``serve_bot`` raises a bare
:class:`~wecom_actors.errors.TerminalError` subclass when the bot stops for a reason that
restarting cannot fix (AuthError, KickedOut, RestartIntensityExceeded); the caller's nursery wraps
it in an ExceptionGroup as usual. Transient failures never escape: the supervisor reconnects.
Handler exceptions never escape either: they are logged, counted and answered with a short note.
Cancelling the caller's scope stops the bot with no task left behind.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio

from .cards import check_task_id
from .core import BotCore, BotStatistics
from .errors import ConfigError, TerminalError
from .handlers.loading import load_handler
from .handlers.turn import Handler, as_handler
from .longconn.bot import LongConnBot
from .longconn.transport import TransportFactory
from .protocol.replies import TemplateCard
from .tls import client_context

__all__ = ["BotHandle", "BotStatistics", "open_bot", "resolve_handler", "serve_bot"]

log = logging.getLogger("wecom_actors.bot")


class BotHandle:
    """What ``serve_bot`` hands back once the bot is subscribed (or listening)."""

    def __init__(self, runtime: BotCore, cancel_scope: trio.CancelScope) -> None:
        self._runtime = runtime
        self._cancel_scope = cancel_scope
        self.config = runtime.config

    async def send_markdown(self, chatid: str, text: str) -> None:
        """A proactive markdown message to a chat that has written to the bot before
        (userid for a single chat, chatid for a group); split at 20480 bytes."""
        await self._runtime.push_markdown(chatid, text)

    async def send_card(self, chatid: str, card: TemplateCard) -> None:
        """A proactive template card to a chat that has written to the bot before
        (long connection: aibot_send_msg). Build it with :mod:`wecom_actors.cards`."""
        await self._capability("send_card")(chatid, card)

    async def send_media(
        self, chatid: str, kind: str, media_id: str, *, title: str | None = None, description: str | None = None
    ) -> None:
        """A proactive file, image, voice or video message with an uploaded ``media_id``;
        a video's title / description are truncated to 128 / 512 bytes."""
        await self._capability("send_media")(chatid, kind, media_id, title=title, description=description)

    async def upload_media(self, kind: str, filename: str, data: bytes) -> str:
        """Upload temp media (``kind``: file, image, voice or video; valid 3 days) and return
        its media_id, for ``turn.reply_media`` or :meth:`send_media`."""
        result: str = await self._capability("upload_media")(kind, filename, data)
        return result

    def new_task_id(self, prefix: str = "task") -> str:
        """A template card task_id unique to this bot: ``prefix`` ([0-9A-Za-z_-@]), a counter
        and random bits from the bot's own id generator and RNG."""
        runtime = self._runtime
        return check_task_id(f"{runtime.ids.req_id(prefix)}_{runtime.rng.getrandbits(40):010x}")

    def _capability(self, name: str) -> Callable[..., Any]:
        # Proactive sends and uploads are long-connection commands; a mode whose runtime lacks
        # one says so plainly instead of failing somewhere inside.
        method = getattr(self._runtime, name, None)
        if method is None:
            raise NotImplementedError(
                f"{name} is not available in {self._runtime.mode} mode (the {type(self._runtime).__name__} "
                "runtime has no such capability); reply within the turn instead"
            )
        return method  # type: ignore[no-any-return]

    @property
    def runtime(self) -> BotCore:
        """The mode's runtime (for tests and diagnostics; not a stable API)."""
        return self._runtime

    def statistics(self) -> BotStatistics:
        """A frozen snapshot: state, sessions, queues, reconnects, counters."""
        return self._runtime.statistics()

    async def drain(self, grace: float | None = None) -> bool:
        """Stop taking new messages and wait (at most ``grace`` s) for running handlers and
        their streams to finish. True if everything finished in time."""
        return await self._runtime.drain(self.config.drain_timeout if grace is None else grace)

    def stop(self) -> None:
        """Cancel the bot (without draining)."""
        self._cancel_scope.cancel()


def resolve_handler(handler: str | Callable[..., Any]) -> Handler:
    """``"echo"``, ``"package.module:callable"`` or a callable -> a handler."""
    obj = load_handler(handler) if isinstance(handler, str) else handler
    if not callable(obj):
        raise ConfigError("--handler", f"{obj!r} is not callable")
    return as_handler(obj)


def terminal_of(eg: BaseExceptionGroup[Any]) -> TerminalError | None:
    """The TerminalError a group stands for (alone, or beside Cancelled only), else None."""
    matched, rest = eg.split(TerminalError)
    if matched is None:
        return None
    if rest is not None and rest.split(trio.Cancelled)[1] is not None:
        return None  # something else went wrong too: keep the whole group
    exc: BaseException = matched
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, TerminalError)
    return exc


async def serve_bot(
    config: Any,
    handler: str | Callable[..., Any],
    *,
    task_status: trio.TaskStatus[BotHandle] = trio.TASK_STATUS_IGNORED,
    transport_factory: TransportFactory | None = None,
    http_client: httpx.AsyncClient | None = None,
    rng: random.Random | None = None,
) -> None:
    """Run one bot until cancelled or a terminal error; ``started(handle)`` once usable."""
    resolved = resolve_handler(handler)
    rng = rng or random.Random()
    try:
        async with _client(http_client, config) as http:
            async with trio.open_nursery() as nursery:
                runtime: BotCore
                if config.mode == "webhook":
                    from .webhook.bot import WebhookBot

                    runtime = WebhookBot(config, resolved, http_client=http, rng=rng)
                else:
                    runtime = LongConnBot(
                        config, resolved, http_client=http, rng=rng, transport_factory=transport_factory
                    )
                handle = BotHandle(runtime, nursery.cancel_scope)
                await nursery.start(runtime.run, handle)
                task_status.started(handle)
    except BaseExceptionGroup as eg:
        terminal = terminal_of(eg)
        if terminal is None:
            raise
        raise terminal from None


@asynccontextmanager
async def _client(client: httpx.AsyncClient | None, config: Any) -> AsyncIterator[httpx.AsyncClient]:
    if client is not None:
        yield client
        return
    timeout = httpx.Timeout(config.media_timeout, connect=config.connect_timeout)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=client_context()) as owned:
        yield owned


@asynccontextmanager
async def open_bot(config: Any, handler: str | Callable[..., Any], **kwargs: Any) -> AsyncIterator[BotHandle]:
    """The same bot as an async context manager; leaving the block stops it.

    A terminal error of the bot, or an exception of the block, is raised bare (not wrapped in
    the ExceptionGroup of the nursery this uses inside).
    """
    try:
        async with trio.open_nursery() as nursery:
            handle = await nursery.start(_serve_with_kwargs, config, handler, kwargs)
            try:
                yield handle
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as eg:
        _, rest = eg.split(trio.Cancelled)
        if rest is not None and len(rest.exceptions) == 1 and not isinstance(rest.exceptions[0], BaseExceptionGroup):
            raise rest.exceptions[0] from None
        raise


async def _serve_with_kwargs(
    config: Any, handler: Any, kwargs: dict[str, Any], *, task_status: trio.TaskStatus[BotHandle]
) -> None:
    await serve_bot(config, handler, task_status=task_status, **kwargs)
