"""`wecom-actors fake-server` (control API, webhook mode, wss://) and `wecom-actors chat`, run as
a user runs them: real child processes, driven over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from wecom_actors import cli

URL = re.compile(r"(https?|wss?)://127\.0\.0\.1:\d+")


async def _start(*args: str) -> tuple[trio.Process, list[str]]:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "wecom_actors.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    lines: list[str] = []
    buf = b""
    with trio.fail_after(30):
        while not any("control API" in line for line in lines):
            chunk = await proc.stdout.receive_some(4096)  # type: ignore[union-attr]
            assert chunk, f"exited early: {lines}"
            buf += chunk
            *done, buf = buf.split(b"\n")
            lines += [d.decode() for d in done]
    return proc, lines


async def _stop(proc: trio.Process) -> int:
    proc.send_signal(signal.SIGINT)
    with trio.fail_after(10):
        return await proc.wait()


def _url(lines: list[str], label: str) -> str:
    line = next(line for line in lines if line.startswith(label))
    match = URL.search(line)
    assert match, line
    return match.group(0)


async def test_fake_server_serves_the_control_api_and_the_page() -> None:
    proc, lines = await _start("fake-server", "--port", "0", "--control-port", "0")
    try:
        assert _url(lines, "fake WeCom (long connection)").startswith("ws://")
        base = _url(lines, "control API")
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            page = await http.get("/")
            assert page.status_code == 200 and "<title>wecom-actors simulator</title>" in page.text
            assert (await http.get("/static/app.js")).status_code == 200
            status = (await http.get("/api/v1/status")).json()
            assert (status["mode"], status["subscribed"], status["bot_id"]) == ("long-connection", False, "fake-bot")
            r = await http.post("/api/v1/messages", json={"type": "text", "text": "hi"})
            assert r.status_code == 409  # no bot connected yet
    finally:
        assert await _stop(proc) == 0


async def test_fake_server_wss_writes_its_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    proc, lines = await _start("fake-server", "--tls-ca-file", str(ca))
    try:
        assert _url(lines, "fake WeCom (long connection)").startswith("wss://")
        assert ca.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        assert any(f"NODE_EXTRA_CA_CERTS={ca.resolve()}" in line for line in lines)
    finally:
        assert await _stop(proc) == 0


async def test_chat_starts_fake_bot_and_page() -> None:
    proc, lines = await _start("chat", "--handler", "echo")
    try:
        base = _url(lines, "control API")
        async with httpx.AsyncClient(base_url=base + "/api/v1", timeout=10) as http:
            with trio.fail_after(20):
                while True:  # another process: polled over HTTP
                    if (await http.get("/status")).json()["subscribed"]:
                        break
                    await trio.sleep(0.05)
            assert (await http.post("/messages", json={"type": "text", "text": "ping me"})).status_code == 202
            with trio.fail_after(20):
                while True:
                    msgs = (await http.get("/conversations/alice")).json()["messages"]
                    if msgs[-1]["from"] == "bot" and msgs[-1]["finished"]:
                        break
                    await trio.sleep(0.05)
            assert msgs[-1]["content"] == "ping me"
    finally:
        assert await _stop(proc) == 0


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["fake-server", "--mode", "webhook"], "--bot-url"),
        (["fake-server", "--mode", "webhook", "--bot-url", "http://127.0.0.1:1/cb"], "--token"),
        (["chat", "--handler", "no_such_module_xyz:handle"], "--handler"),
    ],
)
def test_bad_settings_exit_2_naming_the_flag(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == cli.EXIT_CONFIG
    assert needle in capsys.readouterr().err


async def test_fake_server_in_webhook_mode_calls_the_bot() -> None:
    from wecom_actors import BotConfig, serve_bot

    token, key = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
    config = BotConfig(mode="webhook", token=token, encoding_aes_key=key, host="127.0.0.1", port=0,
                       media_allow_private=True)  # fmt: skip
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(serve_bot, config, "echo")
        bot_url = f"http://127.0.0.1:{handle.runtime.port}{config.callback_path}"
        proc, lines = await _start("fake-server", "--mode", "webhook", "--bot-url", bot_url,
                                   "--token", token, "--encoding-aes-key", key)  # fmt: skip
        try:
            assert not any(key in line or token in line for line in lines)  # secrets never printed
            base = _url(lines, "control API")
            async with httpx.AsyncClient(base_url=base + "/api/v1", timeout=10) as http:
                assert (await http.get("/status")).json()["mode"] == "webhook"
                r = await http.post("/messages", json={"type": "text", "userid": "jo", "text": "over webhook"})
                assert r.status_code == 202, r.text
                with trio.fail_after(20):
                    while True:  # another process: polled over HTTP
                        msgs = (await http.get("/conversations/jo")).json()["messages"]
                        if msgs[-1]["from"] == "bot" and msgs[-1]["finished"]:
                            break
                        await trio.sleep(0.05)
                assert msgs[-1]["content"] == "over webhook"
        finally:
            assert await _stop(proc) == 0
        nursery.cancel_scope.cancel()
