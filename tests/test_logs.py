"""Logs: a start-up line per bot, one INFO line per handled turn, JSON lines with secrets masked."""

from __future__ import annotations

import json
import logging

import pytest
import trio
import trio.testing

import wecom_actors
from wecom_actors import _logging
from wecom_actors.testing import open_fake_wecom

SECRET = "fake-secret"


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]):
    logger = logging.getLogger(_logging.LOGGER_NAME)
    saved = (logger.handlers[:], logger.level, logger.propagate, set(_logging._secrets))
    _logging.register_secret(SECRET)
    _logging.setup_logging("INFO", "json")

    def lines() -> list[dict[str, object]]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]

    yield lines
    logger.handlers[:], logger.level, logger.propagate = saved[:3]
    _logging._secrets.clear()
    _logging._secrets.update(saved[3])


async def failing(turn: wecom_actors.Turn) -> None:
    if turn.is_event:
        return
    if turn.text == "boom":
        raise RuntimeError(f"the handler leaked {SECRET}")
    async with turn.stream() as s:
        await s.append(turn.text)


async def test_startup_and_turn_lines_as_json_with_secrets_masked(autojump_clock: trio.testing.MockClock, json_logs) -> None:
    async with open_fake_wecom() as fake:
        config = wecom_actors.BotConfig(mode="long-connection", bot_id=fake.bot_id, bot_secret=fake.secret, ws_url=fake.url)
        async with wecom_actors.open_bot(config, failing):
            cb = await fake.send_text("hi", userid="alice")
            await fake.wait_stream_finished(cb.req_id)
            cb = await fake.send_text("boom", userid="bob")
            await fake.wait_stream_finished(cb.req_id)
            await fake.send_enter_chat(userid="carol")
            await trio.sleep(1)  # the event's turn ends at once (no reply)
    records = json_logs()
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    text = json.dumps(records)
    assert SECRET not in text and "***" in text  # the handler's exception message, masked
    [up] = [r for r in records if "up (" in str(r["message"])]
    assert up["level"] == "INFO" and up["bot"] == "fa…" and up["mode"] == "long-connection"
    assert f"wecom-actors {wecom_actors.__version__}" in str(up["message"]) and fake.url in str(up["message"])
    assert "bot id fa…" in str(up["message"]) and "fake-bot" not in str(up["message"])
    turns = [r for r in records if r["logger"] == "wecom_actors.turn"]
    assert [(r["conversation"], r["msgtype"], r["outcome"]) for r in turns] == [
        ("alice", "text", "ok"),
        ("bob", "text", "error"),
        ("carol", "enter_chat", "ok"),
    ]
    assert all(r["level"] == "INFO" and r["bot"] == "fa…" and isinstance(r["duration"], float) for r in turns)
    assert "(RuntimeError)" in str(turns[1]["message"])


def test_text_format_stays_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger(_logging.LOGGER_NAME)
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        _logging.setup_logging("INFO")
        logging.getLogger("wecom_actors.x").info("plain %s", "line")
        err = capsys.readouterr().err
        assert err.rstrip().endswith("INFO wecom_actors.x: plain line")
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
