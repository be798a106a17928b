"""The ReplyRenderer actor: stream frames from SessionStreams -> the mode's protocol requests.

SessionStreams posts the frames of one batch (one list) to the renderer's mailbox. For each
frame the renderer asks the frame's reply channel to turn it into the mode's request:

* a channel with ``send_stream_frame`` (the long connection) builds the ``aibot_respond_msg``
  body and posts the encoded request to the Correlator's mailbox with SessionStreams' mailbox as
  the settlement's destination: no task, no waiting for the ack;
* a channel with ``put_frame`` (webhook) takes the frame synchronously: it becomes the
  exchange table's snapshot, which the HTTP tasks answer the POST and the refresh polls from.
  ``put_frame`` returns the settlement when it is known at once (a final frame, a stream WeCom
  does not poll) or ``None``: the table posts it to SessionStreams when an answer carried the
  frame. The settlements known at once go back as one list per batch;
* any other channel is driven by a short task per frame that posts the outcome to
  SessionStreams.

A frame is ``(channel, stream_id, content, finish, feedback_id, msg_items, card, token)``; the
settlement SessionStreams gets is an object with ``token`` and ``error`` (None on success).
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from .errors import RequestError
from .mailbox import MailboxStatistics, fill, mailbox_statistics, post

__all__ = ["Frame", "ReplyRenderer", "Settled"]

log = logging.getLogger("wecom_actors.renderer")

#: The renderer's mailbox, in lists of frames (one per SessionStreams batch).
MAILBOX_SIZE = 1024

Frame = tuple[Any, str, str, bool, "str | None", "list[Any] | None", Any, tuple[int, int, int]]


class Settled:
    """The outcome of a frame sent by a task: what SessionStreams gets from that path."""

    __slots__ = ("error", "token")

    def __init__(self, token: tuple[int, int, int], error: BaseException | None) -> None:
        self.token = token
        self.error = error


class ReplyRenderer:
    def __init__(self, settlements: trio.MemorySendChannel[Any]) -> None:
        self._settlements = settlements
        self.mailbox, self._rx = trio.open_memory_channel[list[Frame]](MAILBOX_SIZE)
        self.batches = self.messages = 0

    def mailbox_statistics(self) -> MailboxStatistics:
        return mailbox_statistics(self._rx, self.batches, self.messages)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        rx, settlements = self._rx, self._settlements
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                batch = fill(rx, [await rx.receive()])
                self.batches += 1
                settled: list[Settled] = []
                for frames in batch:
                    self.messages += len(frames)
                    for frame in frames:
                        channel, stream_id, content, finish, feedback_id, msg_items, card, token = frame
                        send = getattr(channel, "send_stream_frame", None)
                        if send is not None:
                            await send(
                                stream_id,
                                content,
                                finish,
                                reply=settlements,
                                token=token,
                                feedback_id=feedback_id,
                                msg_items=msg_items,
                                card=card,
                            )
                            continue
                        put = getattr(channel, "put_frame", None)
                        if put is not None:
                            try:
                                outcome = put(
                                    stream_id, content, finish, token=token, feedback_id=feedback_id, msg_items=msg_items, card=card
                                )
                            except Exception as exc:  # a channel's bug costs this frame, not the bot
                                log.exception("stream %s: taking a frame failed unexpectedly", stream_id)
                                outcome = Settled(token, exc)
                            if outcome is not None:
                                settled.append(outcome)
                            continue
                        nursery.start_soon(self._by_task, frame)
                if settled:
                    await post(settlements, settled)

    async def _by_task(self, frame: Frame) -> None:
        channel, stream_id, content, finish, feedback_id, msg_items, card, token = frame
        error: BaseException | None = None
        try:
            await channel.stream_frame(stream_id, content, finish, feedback_id=feedback_id, msg_items=msg_items, card=card)
        except RequestError as exc:
            error = exc
        except Exception as exc:
            # This task runs in the renderer's nursery: a channel's bug must cost this frame,
            # not the whole bot.
            log.exception("stream %s: sending a frame failed unexpectedly", stream_id)
            error = exc
        try:
            await post(self._settlements, [Settled(token, error)])
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # SessionStreams is stopping
        finally:
            del error  # an exception kept here would hold this frame (a reference cycle)
