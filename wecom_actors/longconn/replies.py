"""The long-connection ReplyChannel: replies are requests to the Correlator's mailbox."""

from __future__ import annotations

from typing import Any

import trio

from ..errors import AckError, StaleReply
from ..protocol.frames import Cmd
from ..protocol.limits import EVENT_REPLY_WINDOW_SECONDS, ErrCode
from ..protocol.replies import MsgItem, TemplateCard, UpdateCardReply
from ..render import stream_reply
from .correlator import Requester

__all__ = ["LongConnReplies"]


def _stale(error: Exception) -> Exception:
    """846605 (invalid req_id) means WeCom no longer takes replies on it: a StaleReply."""
    if isinstance(error, AckError) and error.errcode == ErrCode.INVALID_REQ_ID:
        return StaleReply(str(error), errcode=error.errcode, errmsg=error.errmsg)
    return error


class LongConnReplies:
    """Replies to one callback (``req_id``) in conversation ``conversation``."""

    __slots__ = ("_correlator", "_push", "_received_at", "conversation", "req_id")

    def __init__(self, correlator: Requester, req_id: str, conversation: str, push) -> None:  # type: ignore[no-untyped-def]
        self._correlator = correlator
        self.req_id = req_id
        self.conversation = conversation
        self._push = push
        self._received_at = trio.current_time()

    async def _respond(self, cmd: str, body: object, *, idempotent: bool) -> None:
        try:
            await self._correlator.request(cmd, self.req_id, body, idempotent=idempotent)
        except AckError as exc:
            stale = _stale(exc)
            if stale is exc:
                raise
            raise stale from exc

    async def stream_frame(
        self,
        stream_id: str,
        content: str,
        finish: bool,
        *,
        feedback_id: str | None = None,
        msg_items: list[MsgItem] | None = None,
        card: TemplateCard | None = None,
    ) -> None:
        body = stream_reply(stream_id, content, finish, feedback_id=feedback_id, msg_items=msg_items, card=card)
        # Full-replace content makes a stream frame safe to send again after a reconnect.
        await self._respond(Cmd.RESPOND_MSG, body, idempotent=True)

    async def send_stream_frame(
        self,
        stream_id: str,
        content: str,
        finish: bool,
        *,
        reply: trio.MemorySendChannel[Any],
        token: object,
        feedback_id: str | None = None,
        msg_items: list[MsgItem] | None = None,
        card: TemplateCard | None = None,
    ) -> None:
        """Post a stream frame to the Correlator without waiting for its ack: the settlement
        goes to ``reply`` (the SessionStreams mailbox) with ``token``."""
        body = stream_reply(stream_id, content, finish, feedback_id=feedback_id, msg_items=msg_items, card=card)
        await self._correlator.submit(Cmd.RESPOND_MSG, self.req_id, body, reply=reply, token=token, idempotent=True)

    async def reply(self, body: object) -> None:
        await self._respond(Cmd.RESPOND_MSG, body, idempotent=False)

    def _check_window(self, what: str) -> None:
        late = trio.current_time() - self._received_at
        if late > EVENT_REPLY_WINDOW_SECONDS:
            raise StaleReply(f"{what} {late:.1f} s after the event: its 5-second window has passed")

    async def welcome(self, body: object) -> None:
        self._check_window("welcome")
        await self._respond(Cmd.RESPOND_WELCOME, body, idempotent=False)

    async def update_card(self, body: UpdateCardReply) -> None:
        self._check_window("card update")
        await self._respond(Cmd.RESPOND_UPDATE, body, idempotent=True)

    async def fallback(self, text: str) -> None:
        await self._push(self.conversation, text)
