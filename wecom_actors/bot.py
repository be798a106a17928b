"""The embedding API: ``serve_bot`` for ``nursery.start`` and ``open_bot`` as a context manager.

Exception contract (docs/architecture.md): ``serve_bot`` raises a bare
:class:`~wecom_actors.errors.TerminalError` subclass when the bot stops for a reason that
restarting cannot fix (AuthError, KickedOut, RestartIntensityExceeded); the caller's nursery wraps
it in an ExceptionGroup as usual. Transient failures never escape: the supervisor reconnects.
Handler exceptions never escape either: they are logged, counted and answered with a short note.
Cancelling the caller's scope stops the bot with no task left behind.

A proactive send (``send_markdown``, ``send_card``, ``send_media``) raises a plain
:class:`~wecom_actors.errors.AckError` when WeCom refuses it; errcode 846607 means the chat has
never written to the bot (WeCom allows proactive messages only where a user wrote first). Called
inside the nursery that runs the bot, any exception reaches the caller wrapped in that nursery's
``ExceptionGroup``: catch it around the call, or use :func:`open_bot`, which raises it bare.

Logs: one INFO line when the bot is up (version, mode, masked bot id, endpoint) and one INFO line
per handled message or event (conversation, msgtype, duration, outcome); see :mod:`.turnlog`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import trio

from ._version import __version__
from .cards import check_task_id
from .config import BotConfig
from .core import BotCore, BotStatistics
from .errors import AckError, ConfigError, TerminalError
from .handlers.loading import load_handler
from .handlers.turn import Handler, as_handler
from .longconn.bot import LongConnBot
from .longconn.transport import TransportFactory
from .protocol.replies import TemplateCard
from .tls import client_context
from .turnlog import TurnLog, TurnStatistics, bot_label, endpoint_of, mask_id

#: WeCom's answer to a proactive send into a chat that has never written to the bot.
CHAT_NOT_OPEN = 846607

#: ``webhook_server(app, callback_path)`` -> the object a webhook bot serves its ASGI app with
#: (``run(task_status=...)`` reporting the port, and ``shutdown()``): a fleet mounts every bot
#: on one shared server; a single bot gets its own.
WebhookServerFactory = Callable[[Any, str], Any]

__all__ = [
    "CHAT_NOT_OPEN",
    "BotHandle",
    "BotStatistics",
    "TurnStatistics",
    "open_bot",
    "resolve_handler",
    "serve_bot",
]

log = logging.getLogger("wecom_actors.bot")


class BotHandle:
    """What ``serve_bot`` hands back once the bot is subscribed (or listening)."""

    def __init__(
        self, runtime: BotCore, cancel_scope: trio.CancelScope, *, name: str = "", turns: TurnLog | None = None
    ) -> None:
        self._runtime = runtime
        self._cancel_scope = cancel_scope
        self.config: BotConfig = runtime.config
        self._name = name
        self._turns = turns or TurnLog(name)

    @property
    def name(self) -> str:
        """The bot's name in logs and metrics (its fleet name, else its bot id)."""
        return self._name or bot_label(self.config)

    async def send_markdown(self, chatid: str, text: str) -> None:
        """A proactive markdown message to a chat that has written to the bot before
        (userid for a single chat, chatid for a group); split at 20480 bytes.

        Raises :class:`AckError` with ``errcode == 846607`` if that chat never wrote to the bot.
        """
        with _plain_refusal(chatid):
            await self._runtime.push_markdown(chatid, text)

    async def send_card(self, chatid: str, card: TemplateCard) -> None:
        """A proactive template card to a chat that has written to the bot before
        (long connection: aibot_send_msg). Build it with :mod:`wecom_actors.cards`."""
        with _plain_refusal(chatid):
            await self._capability("send_card")(chatid, card)

    async def send_media(
        self, chatid: str, kind: str, media_id: str, *, title: str | None = None, description: str | None = None
    ) -> None:
        """A proactive file, image, voice or video message with an uploaded ``media_id``;
        a video's title / description are truncated to 128 / 512 bytes."""
        with _plain_refusal(chatid):
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

    def turn_statistics(self) -> TurnStatistics:
        """Handled turns by msgtype and outcome, and handler durations (a frozen snapshot)."""
        return self._turns.statistics()

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
    config: BotConfig,
    handler: str | Callable[..., Any],
    *,
    task_status: trio.TaskStatus[BotHandle] = trio.TASK_STATUS_IGNORED,
    name: str = "",
    transport_factory: TransportFactory | None = None,
    http_client: httpx.AsyncClient | None = None,
    rng: random.Random | None = None,
    webhook_server: WebhookServerFactory | None = None,
    on_handle: Callable[[BotHandle], None] | None = None,
) -> None:
    """Run one bot until cancelled or a terminal error; ``started(handle)`` once usable.

    ``name`` labels the bot in logs and metrics (default: its bot id). ``webhook_server``
    replaces a webhook bot's own HTTP server (a fleet shares one server among its bots).
    ``on_handle`` gets the handle as soon as it exists, before the bot is usable (so a signal
    that arrives while ``started`` is on its way can still drain it).
    """
    if not isinstance(config, BotConfig):
        raise TypeError(f"serve_bot needs a BotConfig, got {type(config).__name__}")
    turns = TurnLog(name or bot_label(config))
    resolved = turns.wrap(resolve_handler(handler))
    rng = rng or random.Random()
    try:
        async with _client(http_client, config) as http:
            async with trio.open_nursery() as nursery:
                runtime: BotCore
                if config.mode == "webhook":
                    from .webhook.bot import WebhookBot

                    webhook = WebhookBot(config, resolved, http_client=http, rng=rng)
                    if webhook_server is not None:
                        webhook.server = webhook_server(webhook.app, config.callback_path)
                    runtime = webhook
                else:
                    runtime = LongConnBot(
                        config, resolved, http_client=http, rng=rng, transport_factory=transport_factory
                    )
                handle = BotHandle(runtime, nursery.cancel_scope, name=turns.bot, turns=turns)
                if on_handle is not None:
                    on_handle(handle)
                await nursery.start(runtime.run, handle)
                log.info(
                    "wecom-actors %s: bot %s up (%s mode, bot id %s, %s)",
                    __version__,
                    handle.name,
                    config.mode,
                    mask_id(config.bot_id),
                    endpoint_of(config, getattr(runtime, "port", None)),
                    extra={"bot": handle.name, "mode": config.mode},
                )
                task_status.started(handle)
    except BaseExceptionGroup as eg:
        terminal = terminal_of(eg)
        if terminal is None:
            raise
        raise terminal from None


@contextmanager
def _plain_refusal(chatid: str) -> Iterator[None]:
    """Say plainly what errcode 846607 means (still an :class:`AckError`, errcode kept)."""
    try:
        yield
    except AckError as exc:
        if exc.errcode != CHAT_NOT_OPEN:
            raise
        raise AckError(
            f"WeCom refused a proactive message to chat {chatid!r} (errcode {CHAT_NOT_OPEN}): that chat "
            "has never written to the bot, and WeCom allows proactive messages only where a user wrote first",
            errcode=exc.errcode,
            errmsg=exc.errmsg,
        ) from None


@asynccontextmanager
async def _client(client: httpx.AsyncClient | None, config: BotConfig) -> AsyncIterator[httpx.AsyncClient]:
    if client is not None:
        yield client
        return
    timeout = httpx.Timeout(config.media_timeout, connect=config.connect_timeout)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=client_context()) as owned:
        yield owned


@asynccontextmanager
async def open_bot(config: BotConfig, handler: str | Callable[..., Any], **kwargs: Any) -> AsyncIterator[BotHandle]:
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
    config: BotConfig, handler: Any, kwargs: dict[str, Any], *, task_status: trio.TaskStatus[BotHandle]
) -> None:
    await serve_bot(config, handler, task_status=task_status, **kwargs)
