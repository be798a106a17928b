"""The built-in ``echo`` handler (fixed behaviour, both modes; described in docs/index.md).

It exercises every feature so that a user, or a conformance tool, can see each one work.
"""

from __future__ import annotations

import logging
import re

import trio

from ..cards import Button, CardError, MainTitle, button_interaction, updated
from ..errors import MediaError, RequestError, StaleReply
from ..protocol.inbound import (
    EnterChatEvent,
    FeedbackEvent,
    FileMessage,
    ImageMessage,
    MixedMessage,
    TemplateCardEvent,
    VideoMessage,
)
from ..protocol.replies import TemplateCard
from .turn import Turn

__all__ = ["echo", "long_text"]

log = logging.getLogger("wecom_actors.echo")

WELCOME = "Hello! I am the wecom-actors echo bot. Send me text, a voice note, an image or a file."
PATTERN = "0123456789"


def long_text(n: int) -> str:
    """Exactly ``n`` bytes of ASCII: ``0123456789`` repeated and cut to ``n``."""
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


async def echo(turn: Turn) -> None:
    msg = turn.message
    if isinstance(msg, EnterChatEvent):
        await turn.welcome(WELCOME)
        return
    if isinstance(msg, TemplateCardEvent):
        await _update_card(turn, msg)
        return
    if isinstance(msg, FeedbackEvent):
        log.info("feedback %s: type %s %r", msg.feedback.id, msg.feedback.type, msg.feedback.content or "")
        return
    if turn.is_event:
        return
    if isinstance(msg, ImageMessage | FileMessage | VideoMessage | MixedMessage):
        await _echo_media(turn)
        return
    text = turn.text
    command, _, rest = text.strip().partition(" ")
    if command == "/slow":
        await _slow(turn, rest)
    elif command == "/long":
        await _long(turn, rest)
    elif command == "/card":
        await turn.reply_card(_card(_task_id(turn)))
    elif command == "/push":
        await turn.reply_text("ok")
        await turn.push_markdown(rest)
    elif command == "/upload":
        await _upload(turn, rest)
    else:
        await _echo_text(turn, text)


async def _echo_text(turn: Turn, text: str) -> None:
    # Two frames at least: the first half, then the final frame with the whole text.
    cut = max(1, len(text) // 2)
    async with turn.stream() as s:
        await s.append(text[:cut])
        await s.flush()
        await s.append(text[cut:])


async def _slow(turn: Turn, rest: str) -> None:
    seconds_text, _, text = rest.partition(" ")
    try:
        seconds = float(seconds_text)
        if not 0 <= seconds <= 300:
            raise ValueError
    except ValueError:
        await turn.reply_text("usage: /slow SECONDS TEXT (0 <= SECONDS <= 300)")
        return
    words = text.split(" ")
    step = seconds / len(words)
    async with turn.stream() as s:
        start = trio.current_time()
        for i, word in enumerate(words):
            await trio.sleep_until(start + i * step)
            await s.append(word if i == 0 else " " + word)
        await trio.sleep_until(start + seconds)


async def _long(turn: Turn, rest: str) -> None:
    try:
        n = int(rest)
        if not 0 < n <= 1_000_000:
            raise ValueError
    except ValueError:
        await turn.reply_text("usage: /long N (1 <= N <= 1000000)")
        return
    # The stream finishes with the first 20480 bytes; the rest follows as continuation messages.
    async with turn.stream() as s:
        await s.set(long_text(n))


def _card(task_id: str) -> TemplateCard:
    return button_interaction(
        main_title=MainTitle(title="Echo card", desc="Pick one"),
        button_list=[Button(text="Yes", key="yes", style=1), Button(text="No", key="no", style=2)],
        task_id=task_id,
    )


def _task_id(turn: Turn) -> str:
    """Unique per bot: the bot's id generator and RNG (a callback's req_id, sanitised, when
    the handler runs without a BotHandle)."""
    new_task_id = getattr(turn.bot, "new_task_id", None)
    if new_task_id is not None:
        return str(new_task_id("echo"))
    return re.sub(r"[^0-9A-Za-z_\-@]", "_", f"echo_{turn.req_id}")[:128]


async def _update_card(turn: Turn, event: TemplateCardEvent) -> None:
    key = event.event_key or "?"
    if not event.task_id:
        log.warning("template_card_event without a task_id (msgid %s): nothing to update", event.msgid)
        return
    try:
        card = updated(_card(event.task_id), main_title=MainTitle(title=f"You clicked {key}", desc="Thanks"))
    except CardError as exc:
        log.warning("cannot update the card of msgid %s: %s", event.msgid, exc)
        return
    await turn.update_card(card)


async def _upload(turn: Turn, rest: str) -> None:
    upload = getattr(turn.bot, "upload_media", None)
    if upload is None:
        await turn.reply_text("/upload is not available in this mode or version")
        return
    try:
        n = int(rest)
        if not 0 < n <= 50 * 1024 * 1024:
            raise ValueError
    except ValueError:
        await turn.reply_text("usage: /upload N (1 <= N <= 52428800)")
        return
    try:
        media_id = await upload("file", "echo.txt", long_text(n).encode("ascii"))
    except NotImplementedError:
        await turn.reply_text("/upload is not available in this mode")
        return
    except (ValueError, RequestError) as exc:  # UploadError (too large, ...) or refused by WeCom
        log.warning("/upload %d failed: %s", n, exc)
        await turn.reply_text(f"upload failed: {exc}")
        return
    try:
        await turn.reply_media("file", media_id)
    except StaleReply:
        # The connection changed during the upload, so the callback's req_id is gone: the
        # file goes to the same chat as a proactive message instead.
        log.info("/upload: reply req_id is stale; sending the file with aibot_send_msg")
        await turn.bot.send_media(turn.conversation, "file", media_id)


async def _echo_media(turn: Turn) -> None:
    lines = []
    async with turn.stream() as s:
        await s.append(f"Received {turn.message.msgtype}; downloading...")
        await s.flush()
        if turn.text:
            lines.append(f"text: {turn.text}")
        for ref in turn.media_refs():
            try:
                payload = await turn.download(ref)
            except MediaError as exc:
                lines.append(f"download failed: {exc}")
                continue
            name = f" {payload.filename}" if payload.filename else ""
            lines.append(f"md5 {payload.md5} ({len(payload.data)} bytes{name})")
        await s.set("\n".join(lines) if lines else "no media found")

