"""A first run that just works: handler from the current folder, ``python -m``, misspelled
variables, truthful help."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import wecom_actors.cli as cli
from wecom_actors._version import __version__
from wecom_actors.config import BotConfig, unknown_env_warnings
from wecom_actors.handlers.loading import load_handler

ROOT = Path(cli.__file__).resolve().parents[1]
LC = {"WECOM_BOT_ID": "bot-1", "WECOM_BOT_SECRET": "S3cr3t-Value-xyzzy"}


def test_handler_module_in_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "wecom_first_run_bot.py").write_text("async def handler(turn):\n    return None\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "wecom_first_run_bot", raising=False)
    handler = load_handler("wecom_first_run_bot:handler")
    assert handler.__module__ == "wecom_first_run_bot" and handler.__name__ == "handler"
    assert sys.path[0] == str(tmp_path)


def test_handler_from_the_current_folder_subprocess(tmp_path):
    # The reported failure: `wecom-actors run --handler mybot:handler` next to mybot.py. The
    # handler loads, then the settings check stops the run (no credentials): exit 2 on
    # WECOM_BOT_ID, not "cannot import module".
    (tmp_path / "mybot.py").write_text("async def handler(turn):\n    return None\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", "import sys, wecom_actors.cli as c; sys.exit(c.main())",
         "run", "--handler", "mybot:handler"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )
    assert done.returncode == cli.EXIT_CONFIG
    assert "cannot import" not in done.stderr
    assert "WECOM_BOT_ID" in done.stderr


def test_python_dash_m_wecom_actors():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "wecom_actors", "--version"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wecom-actors {__version__}"


@pytest.mark.parametrize(
    ("var", "suggestion"),
    [
        ("WECOM_BOT_SECRT", "WECOM_BOT_SECRET"),
        ("WECOM_HEARTBEAT_INTERVALL", "WECOM_HEARTBEAT_INTERVAL"),
        ("WECOM_ADMINPORT", "WECOM_ADMIN_PORT"),
        ("WECOM_LOGFORMAT", "WECOM_LOG_FORMAT"),
    ],
)
def test_misspelled_variable_warns_with_the_closest_setting(caplog, var, suggestion):
    with caplog.at_level(logging.WARNING, logger="wecom_actors.config"):
        config = BotConfig.from_env({**LC, var: "1"})
    assert config.bot_id == "bot-1"
    [record] = [r for r in caplog.records if r.name == "wecom_actors.config"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"unknown environment variable {var} is ignored; did you mean {suggestion}?"


def test_known_and_foreign_variables_do_not_warn():
    env = {**LC, "WECOM_LOG_FORMAT": "json", "WECOM_ADMIN_PORT": "9100", "HOME": "/root", "WECOMX": "1"}
    assert unknown_env_warnings(env) == []
    config = BotConfig.from_env(env)
    assert (config.log_format, config.admin_port) == ("json", 9100)


def test_unrelated_unknown_variable_lists_the_known_ones():
    [message] = unknown_env_warnings({"WECOM_ZZZZZZZZZZZZZZZZZZZZ": "1"})
    assert message.startswith("unknown environment variable WECOM_ZZZZZZZZZZZZZZZZZZZZ is ignored; known: ")
    assert "WECOM_BOT_ID" in message


def test_fake_server_help_names_the_real_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["fake-server", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "default: fake-bot" in out and "default: fake-secret" in out
    assert "any" not in out


async def test_a_first_push_to_a_stranger_is_a_plain_explained_ack_error(autojump_clock) -> None:
    import trio

    import wecom_actors
    from wecom_actors.testing import open_fake_wecom

    async with open_fake_wecom() as fake:
        config = BotConfig(mode="long-connection", bot_id=fake.bot_id, bot_secret=fake.secret, ws_url=fake.url)
        with pytest.raises(wecom_actors.AckError) as info:  # bare through open_bot: no ExceptionGroup
            async with wecom_actors.open_bot(config, "echo") as bot:
                await bot.send_markdown("stranger", "hello?")
        assert type(info.value) is wecom_actors.AckError and info.value.errcode == 846607
        assert "has never written to the bot" in str(info.value) and "'stranger'" in str(info.value)
        with trio.fail_after(5):
            async with wecom_actors.open_bot(config, "echo") as bot:
                await fake.send_text("hi", userid="friend")
                await fake.wait_until(lambda: bool(fake.conversation("friend")))
                await bot.send_markdown("friend", "hello again")  # once the user wrote, it goes
        assert [b.content for b in fake.conversation("friend")][-1] == "hello again"


def test_admin_port_equal_to_the_webhook_port_is_a_settings_error(monkeypatch, capsys):
    for name in list(os.environ):
        if name.startswith("WECOM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("WECOM_TOKEN", "token-123456")
    monkeypatch.setenv("WECOM_ENCODING_AES_KEY", "a" * 43)
    monkeypatch.setenv("WECOM_PORT", "9100")
    monkeypatch.setenv("WECOM_ADMIN_PORT", "9100")
    monkeypatch.setattr(cli, "_serve", lambda config, handler: pytest.fail("must not start"))
    assert cli.main(["run"]) == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert "admin_port" in err and "webhook port 9100" in err
