"""What both modes share above the transport: handler dispatch, the Router, media, counters."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import trio

from .errors import ReplyFailed, RequestError, StaleReply
from .handlers.turn import FINAL_FRAME_BOUND, Handler, Turn
from .ids import IdGen
from .lease import LeaseStatistics
from .mailbox import MailboxStatistics
from .protocol.inbound import EventMessage, InboundMessage
from .protocol.inbound import MediaRef as InboundMediaRef
from .router import Router
from .sessions import ReplyChannel, SessionStreams

if TYPE_CHECKING:
    from .media import MediaPayload

__all__ = ["BUSY_TEXT", "BotCore", "BotStatistics"]

log = logging.getLogger("wecom_actors.bot")

BUSY_TEXT = "I am still working on your earlier messages. Please send this one again in a moment."
RESTART_TEXT = "I am restarting right now. Please send this again in a minute."


class BotStatistics(msgspec.Struct, frozen=True):
    """A snapshot of one bot's state, queues and counters."""

    mode: str
    state: str
    connects: int
    reconnects: int
    sessions: int
    queued_messages: int
    running_handlers: int
    received: int
    duplicates: int
    busy_rejections: int
    requests_in_flight: int  # long connection: frames waiting for an ack; webhook: 0
    requests_queued: int
    request_lanes: int
    frames_in: int
    junk_frames: int
    pings_missed: int
    handler_errors: int
    replies_failed: int
    pending_timers: int = 0  # SessionStreams timers that may still fire (coalescing, 6-minute windows)
    lease: LeaseStatistics | None = None  # replicas (redis_url): this replica's view of the lease
    frames_sent: int = 0  # long connection: request frames written (replies, pings, pushes)
    acks_by_errcode: dict[int, int] = msgspec.field(default_factory=dict)  # long connection
    last_ack_age: float | None = None  # seconds since the newest ack (long connection)
    replies_sent: int = 0  # streamed replies delivered whole
    stream_window_cuts: int = 0  # streams finished early at the 6-minute window
    received_by_type: dict[str, int] = msgspec.field(default_factory=dict)  # msgtype or eventtype
    #: Each actor's mailbox by actor name: trio's channel statistics and the batches taken.
    mailboxes: dict[str, MailboxStatistics] = msgspec.field(default_factory=dict)


class BotCore:
    """Router + handler dispatch. A mode subclasses it and supplies ``channel_for``."""

    mode = "?"

    def __init__(self, config: Any, handler: Handler, *, http_client: httpx.AsyncClient, rng: random.Random) -> None:
        self.config = config
        self.handler = handler
        self.http = http_client
        self.rng = rng
        self.ids = IdGen(rng)
        self.router = Router(
            dispatch=self.dispatch,
            on_busy=self.busy,
            handler_concurrency=config.handler_concurrency,
            session_queue_size=config.session_queue_size,
            max_pending=config.max_queued_messages,
            max_pending_bytes=config.max_queued_bytes,
            group_order=config.group_order,
        )
        self.streams = SessionStreams()
        self.counts = dict.fromkeys(("handler_errors", "replies_failed", "pushes"), 0)
        self.handle: Any = None
        self._handler_scopes: set[trio.CancelScope] = set()
        self._interrupting = False

    # --- supplied by the mode ----------------------------------------------------------------

    async def run(self, handle: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the mode's actors; ``started()`` once subscribed (long connection) or listening."""
        raise NotImplementedError

    async def push_markdown(self, chatid: str, text: str) -> None:
        """A proactive markdown message to ``chatid``."""
        raise NotImplementedError

    def channel_for(self, req_id: str, message: InboundMessage) -> ReplyChannel:
        raise NotImplementedError

    def media_key(self, ref: InboundMediaRef) -> bytes | str | None:
        """The key that decrypts ``ref`` (long connection: its aeskey; webhook: the EncodingAESKey)."""
        return ref.aeskey

    def new_stream_id(self, req_id: str) -> str:
        return self.ids.stream_id()

    # --- shared ------------------------------------------------------------------------------

    def turn(self, req_id: str, message: InboundMessage) -> Turn:
        return Turn(
            message,
            req_id=req_id,
            channel=self.channel_for(req_id, message),
            bot=self.handle,
            new_stream_id=self.new_stream_id,
            download=self.download,
            min_interval=self.config.stream_min_interval,
            streams=self.streams,
            bot_name=self.config.bot_name or None,
        )

    async def download(self, ref: InboundMediaRef) -> MediaPayload:
        from .media import MediaPolicy, download_media

        policy = MediaPolicy(
            max_bytes=self.config.media_max_bytes,
            timeout=self.config.media_timeout,
            allow_private=self.config.media_allow_private,
        )
        return await download_media(self.http, ref.url, key=self.media_key(ref), policy=policy)

    async def dispatch(self, req_id: str, message: InboundMessage) -> None:
        """Run the handler on one callback: the boundary where the user's bugs stop.

        While the bot is being interrupted (shutdown, drain time over), a message whose turn
        comes now gets the restart notice instead of a handler run."""
        if self._interrupting:
            await BotCore.busy(self, req_id, message)
            return
        turn = self.turn(req_id, message)
        with trio.CancelScope() as scope:  # interrupt_handlers() cancels it
            self._handler_scopes.add(scope)
            try:
                await self.handler(turn)
            except ReplyFailed as exc:
                log.error("%s", exc)
            except StaleReply as exc:
                # A welcome or card update past its 5-second window, or a req_id WeCom no longer
                # accepts: nothing can be delivered on it any more.
                log.warning("reply to msgid %s dropped: %s", message.msgid, exc)
            except Exception:
                # A bug in the user's handler must not stop the bot: log it, answer the user with
                # a short note, keep serving. (Cancelled is a BaseException and passes through.)
                self.counts["handler_errors"] += 1
                log.exception("handler %s failed on msgid %s", getattr(self.handler, "__name__", "?"), message.msgid)
                if not turn.replied and not turn.is_event:
                    await self.answer(turn, "Sorry, something went wrong while answering.")
            finally:
                self._handler_scopes.discard(scope)
                self.counts["replies_failed"] += sum(1 for s in turn.streams if s.failed)

    def interrupt_handlers(self) -> None:
        """Shutdown, once the drain time is over: cancel every running handler (its stream is
        finished with the text so far and the interrupted note, see ``Turn.stream``) while the
        transport stays up to deliver those final replies; messages still queued get the
        restart notice when their turn comes."""
        self._interrupting = True
        for scope in list(self._handler_scopes):
            scope.cancel()

    async def busy(self, req_id: str, message: InboundMessage) -> None:
        if isinstance(message, EventMessage):
            return
        text = BUSY_TEXT if self.router.accepting else RESTART_TEXT
        await self.answer(self.turn(req_id, message), text)

    async def answer(self, turn: Turn, text: str) -> None:
        try:
            await turn.reply_text(text)
        except RequestError as exc:
            log.error("could not answer msgid %s: %s", turn.message.msgid, exc)

    def statistics(self) -> BotStatistics:
        raise NotImplementedError

    def _base_mailboxes(self) -> dict[str, MailboxStatistics]:
        return {
            "session_streams": self.streams.mailbox_statistics(),
            "renderer": self.streams.renderer.mailbox_statistics(),
        }

    def _base_statistics(self, **mode_fields: Any) -> BotStatistics:
        router = self.router.statistics()
        mode_fields["mailboxes"] = {**self._base_mailboxes(), **mode_fields.get("mailboxes", {})}
        return BotStatistics(
            mode=self.mode,
            sessions=router.sessions,
            queued_messages=router.queued,
            running_handlers=router.running,
            received=router.received,
            duplicates=router.duplicates,
            busy_rejections=router.busy,
            handler_errors=self.counts["handler_errors"],
            replies_failed=self.counts["replies_failed"],
            pending_timers=self.streams.pending_timers,
            replies_sent=self.streams.replies_sent,
            stream_window_cuts=self.streams.window_cuts,
            received_by_type=dict(self.router.received_by_type),
            **mode_fields,
        )

    async def drain(self, grace: float) -> bool:
        """Stop taking new messages, give running handlers ``grace`` seconds, then cancel them:
        each stream still open is finished with what it has plus the interrupted note, over the
        still-live connection (bounded by ``FINAL_FRAME_BOUND``). True if everything finished
        within ``grace``; the caller cancels the bot afterwards."""
        self.router.stop_intake()
        with trio.move_on_after(grace):
            await self.router.wait_idle()
            return True
        self.interrupt_handlers()
        with trio.move_on_after(FINAL_FRAME_BOUND + 0.2):
            await self.router.wait_idle()
        return False
