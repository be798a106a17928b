"""A user's bot written against the public API only, checked by ``mypy --strict`` in CI (and run
by tests/test_typecheck_user_bot.py against the bundled fake, so it stays working code)."""

from __future__ import annotations

import trio

import wecom_actors
from wecom_actors import (
    AckError,
    BotConfig,
    BotHandle,
    BotStatistics,
    DisconnectedEvent,
    EnterChatEvent,
    FeedbackEvent,
    FileMessage,
    FleetBot,
    FleetConfig,
    FleetHandle,
    ImageMessage,
    MixedMessage,
    ReplyStream,
    TemplateCard,
    TemplateCardEvent,
    TextMessage,
    Turn,
    TurnStatistics,
    UnknownEvent,
    UnknownMessage,
    VideoMessage,
    VoiceMessage,
    cards,
)

CARDS: dict[str, TemplateCard] = {}
SEEN: list[str] = []


async def stream_words(s: ReplyStream, text: str) -> None:
    for word in text.split():
        await s.append(word + " ")
    await s.flush()


async def handler(turn: Turn) -> None:
    bot: BotHandle = turn.bot
    match turn.message:
        case TextMessage(text=text) if text.content.startswith("/card"):
            card = cards.button_interaction(
                main_title="Pick one",
                button_list=[cards.Button(text="Yes", key="yes", style=1)],
                task_id=bot.new_task_id("pick"),
            )
            CARDS[card.task_id or ""] = card
            await turn.reply_card(card)
        case TextMessage() | VoiceMessage() | MixedMessage():
            async with turn.stream() as s:
                await stream_words(s, turn.text)
        case ImageMessage() | FileMessage() | VideoMessage():
            payloads = await turn.media()
            await turn.reply_text(", ".join(p.md5 for p in payloads))
        case EnterChatEvent():
            await turn.welcome("Hello!")
        case TemplateCardEvent(task_id=task_id, event_key=key) if task_id is not None and task_id in CARDS:
            await turn.update_card(cards.updated(CARDS[task_id], main_title=f"You chose {key}"))
        case FeedbackEvent(feedback=feedback):
            SEEN.append(feedback.id)
        case DisconnectedEvent() | UnknownEvent() | UnknownMessage():
            SEEN.append(turn.message.msgtype)
        case _:
            pass


async def push(bot: BotHandle, chatid: str) -> bool:
    try:
        await bot.send_markdown(chatid, "**hello**")
    except AckError as exc:
        return exc.errcode != 846607
    stats: BotStatistics = bot.statistics()
    turns: TurnStatistics = bot.turn_statistics()
    return stats.state == "subscribed" and turns.duration_count >= 0


async def run_one(config: BotConfig) -> str:
    async with wecom_actors.open_bot(config, handler) as bot:
        sent = await push(bot, "nobody")
        return f"{bot.name}: pushed={sent}"


async def run_many(a: BotConfig, b: BotConfig) -> list[str]:
    fleet = FleetConfig([FleetBot("a", a, handler), FleetBot("b", b, "echo")])
    async with trio.open_nursery() as nursery:
        handle: FleetHandle = await nursery.start(wecom_actors.serve_fleet, fleet)
        names = sorted(handle.bots)
        nursery.cancel_scope.cancel()
    return names
