"""Fleets: loading fleet files (every bad input refused before any bot starts), running many bots
with isolated failures, one shared webhook server, the admin routes and the metrics."""

from __future__ import annotations

import json
import socket
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

import wecom_actors.cli as cli
from wecom_actors import BotConfig, ConfigError, FleetConfig, KickedOut, TerminalError, serve_fleet
from wecom_actors.crypto import WeComCrypto
from wecom_actors.fleet import FleetBot, FleetHandle
from wecom_actors.testing import FakeWeCom, open_fake_wecom

SECRET_A, SECRET_B = "secret-aaaa-123", "secret-bbbb-456"
TOKEN_A, TOKEN_B = "token-aaaa", "token-bbbb"
KEY_A = "A" * 43
KEY_B = "b" * 43

GOOD = f"""
admin_port = 0
ack_timeout = 2

[[bots]]
name = "sales"
bot_id = "bot-a"
bot_secret = "{SECRET_A}"

[[bots]]
name = "ops"
bot_id = "bot-b"
bot_secret = "{SECRET_B}"
handler = "echo"
ack_timeout = 3

[[bots]]
name = "support"
token = "{TOKEN_A}"
encoding_aes_key = "{KEY_A}"
callback_path = "/wecom/support"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def no_wecom_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("WECOM_"):
            monkeypatch.delenv(name)


# --- loading -----------------------------------------------------------------------------------


def test_a_fleet_file_loads_with_top_level_settings_for_every_bot(tmp_path: Path) -> None:
    fleet = FleetConfig.from_toml(write(tmp_path, GOOD), environ={"WECOM_HEARTBEAT_INTERVAL": "7"})
    assert [b.name for b in fleet.bots] == ["sales", "ops", "support"]
    sales, ops, support = (b.config for b in fleet.bots)
    assert (sales.mode, sales.bot_id, sales.ack_timeout) == ("long-connection", "bot-a", 2.0)
    assert ops.ack_timeout == 3.0  # the bot's table over the top level
    assert {sales.heartbeat_interval, ops.heartbeat_interval, support.heartbeat_interval} == {7.0}
    assert (support.mode, support.callback_path) == ("webhook", "/wecom/support")
    assert [b.handler for b in fleet.bots] == ["echo", "echo", "echo"]


BAD = [
    ("duplicate name", GOOD.replace('name = "ops"', 'name = "sales"'), "bot 'sales', name", "already used by bot 'sales'"),
    ("duplicate bot id", GOOD.replace('"bot-b"', '"bot-a"'), "bot 'ops', bot_id", "already used by bot 'sales'"),
    (
        "duplicate path",
        GOOD + f'[[bots]]\nname = "two"\ntoken = "t2t2t2"\nencoding_aes_key = "{KEY_B}"\ncallback_path = "/wecom/support"\n',
        "bot 'two', callback_path",
        "already used by bot 'support'",
    ),
    ("admin path", GOOD.replace('"/wecom/support"', '"/metrics"'), "bot 'support', callback_path", "admin routes"),
    ("no name", GOOD.replace('name = "ops"\n', ""), "[[bots]] #2, name", "each bot needs a name"),
    ("bad name", GOOD.replace('name = "ops"', 'name = "o p s"'), "[[bots]] #2, name", "each bot needs a name"),
    ("unknown key", GOOD.replace("ack_timeout = 3", "ack_timout = 3"), "bot 'ops', ack_timout", "did you mean 'ack_timeout'"),
    ("process key in a bot", GOOD.replace("ack_timeout = 3", "port = 9000"), "bot 'ops', port", "top level"),
    ("bad value", GOOD.replace("ack_timeout = 3", "ack_timeout = -1"), "bot 'ops', ack_timeout", "> 0"),
    ("wrong type", GOOD.replace("ack_timeout = 3", 'ack_timeout = "x"'), "bot 'ops', ack_timeout", "expected"),
    ("missing secret", GOOD.replace(f'bot_secret = "{SECRET_B}"\n', ""), "bot 'ops', bot_secret", "missing"),
    ("bad handler", GOOD.replace('handler = "echo"', 'handler = "nowhere_at_all:h"'), "bot 'ops', handler", "cannot import"),
    ("no bots", "admin_port = 1\nbots = []\n", "fleet.toml", "[[bots]]"),
    ("admin on webhook port", GOOD.replace("admin_port = 0", "admin_port = 8080"), "admin_port", "webhook port"),
]


@pytest.mark.parametrize(("text", "where", "what"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_fleet_file_names_the_bot_and_the_field(tmp_path: Path, text: str, where: str, what: str) -> None:
    with pytest.raises(ConfigError) as info:
        FleetConfig.from_toml(write(tmp_path, text))
    assert where in info.value.setting, info.value
    assert what in str(info.value)


def test_the_cli_refuses_a_bad_fleet_with_exit_2_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[Any] = []
    monkeypatch.setattr(cli, "_serve_fleet", started.append)
    path = write(tmp_path, GOOD.replace('"bot-b"', '"bot-a"'))
    assert cli.main(["run", "--config", str(path)]) == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith("wecom-actors: error: ") and "bot 'ops', bot_id" in err
    assert SECRET_A not in err and SECRET_B not in err
    assert started == []


def test_the_cli_runs_a_good_fleet_through_the_seam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[FleetConfig] = []
    monkeypatch.setattr(cli, "_serve_fleet", lambda fleet: seen.append(fleet) or 0)
    assert cli.main(["run", "--config", str(write(tmp_path, GOOD)), "--log-level", "warning"]) == 0
    [fleet] = seen
    assert {b.config.log_level for b in fleet.bots} == {"WARNING"}
    assert cli.main(["run", "--config", str(write(tmp_path, GOOD)), "--mode", "webhook"]) == cli.EXIT_CONFIG
    assert cli.main(["run", "--config", str(write(tmp_path, GOOD)), "--handler", "echo"]) == cli.EXIT_CONFIG


def test_a_fleet_built_in_code_is_checked_too() -> None:
    a = BotConfig(mode="long-connection", bot_id="x", bot_secret="s")
    with pytest.raises(ConfigError, match="already used"):
        FleetConfig([FleetBot("one", a), FleetBot("two", a)])
    with pytest.raises(ConfigError, match="process setting"):
        FleetConfig([FleetBot("one", a), FleetBot("two", a.replace(bot_id="y", admin_port=9))])


# --- running -----------------------------------------------------------------------------------


def lc(fake: FakeWeCom, bot_id: str, secret: str, **more: Any) -> BotConfig:
    return BotConfig(mode="long-connection", bot_id=bot_id, bot_secret=secret, ws_url=fake.url, **more)


def metrics_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


async def test_one_bot_kicked_out_stops_alone_and_shows_in_readyz_and_metrics(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_wecom(bots={"bot-a": SECRET_A, "bot-b": SECRET_B}) as fake:
        port = free_port()
        fleet = FleetConfig(
            [
                FleetBot("sales", lc(fake, "bot-a", SECRET_A, admin_port=port)),
                FleetBot("ops", lc(fake, "bot-b", SECRET_B, admin_port=port)),
            ]
        )
        async with trio.open_nursery() as nursery:
            handle: FleetHandle = await nursery.start(serve_fleet, fleet)
            base = f"http://127.0.0.1:{handle.admin_port}"
            async with httpx.AsyncClient(base_url=base) as http:
                ready = await http.get("/readyz")
                assert ready.status_code == 200 and ready.json()["ready"] is True
                assert (await http.get("/healthz")).text == "ok\n"

                fake.faults.kick(bot_id="bot-b")
                await fake.wait_until(lambda: "ops" in handle.errors)
                assert isinstance(handle.errors["ops"], KickedOut)

                cb = await fake.send_text("still here", userid="alice", bot_id="bot-a")
                view = await fake.wait_stream_finished(cb.req_id)
                assert view.content == "still here"

                ready = await http.get("/readyz")
                assert ready.status_code == 503
                doc = ready.json()
                assert doc["bots"]["sales"]["state"] == "subscribed" and doc["bots"]["sales"]["ready"]
                assert doc["bots"]["ops"] == {
                    "mode": "long-connection", "state": "stopped", "ready": False,
                    "connects": 1, "reconnects": 0, "sessions": 0, "last_ack_age_seconds": None,
                    "error": "KickedOut", "exit_code": 4,
                }

                scraped = await http.get("/metrics")
                assert scraped.headers["content-type"].startswith("text/plain")
                m = metrics_of(scraped.text)
                assert m[("wecom_bot_up", (("bot", "sales"),))] == 1.0
                assert m[("wecom_bot_up", (("bot", "ops"),))] == 0.0
                assert m[("wecom_bot_exit_code", (("bot", "ops"),))] == 4.0
                assert m[("wecom_messages_received_total", (("bot", "sales"),))] == 1.0
                assert m[("wecom_messages_handled_total", (("bot", "sales"), ("msgtype", "text"), ("outcome", "ok")))] == 1.0
                assert m[("wecom_handler_duration_seconds_count", (("bot", "sales"),))] == 1.0
                assert m[("wecom_handler_duration_seconds_bucket", (("bot", "sales"), ("le", "+Inf")))] == 1.0
                assert m[("wecom_connects_total", (("bot", "sales"),))] == 1.0
            nursery.cancel_scope.cancel()


async def test_the_fleet_ends_with_the_last_bots_terminal_error(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_wecom(bots={"bot-a": SECRET_A, "bot-b": SECRET_B}) as fake:
        fleet = FleetConfig(
            [FleetBot("sales", lc(fake, "bot-a", SECRET_A)), FleetBot("ops", lc(fake, "bot-b", "wrong-secret", auth_max_attempts=1))]
        )
        handles: list[FleetHandle] = []

        async def kick_the_survivor() -> None:
            await fake.wait_until(lambda: bool(handles) and list(handles[0].bots) == ["sales"])
            assert type(handles[0].errors["ops"]).__name__ == "AuthError"  # failed at start, alone
            fake.faults.kick(bot_id="bot-a")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(kick_the_survivor)
            with pytest.raises(KickedOut):
                await serve_fleet(fleet, on_handle=handles.append)
        assert handles[0].last_error is handles[0].errors["sales"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_webhook_bots_share_one_server_each_on_its_path(autojump_clock: trio.testing.MockClock) -> None:
    def wh(token: str, key: str, path: str) -> BotConfig:
        return BotConfig(mode="webhook", token=token, encoding_aes_key=key, callback_path=path, port=0)

    fleet = FleetConfig([FleetBot("one", wh(TOKEN_A, KEY_A, "/one")), FleetBot("two", wh(TOKEN_B, KEY_B, "/two"))])
    async with trio.open_nursery() as nursery:
        handle: FleetHandle = await nursery.start(serve_fleet, fleet)
        assert handle.admin_port is None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{handle.webhook_port}") as http:
            for path, token, key in (("/one", TOKEN_A, KEY_A), ("/two", TOKEN_B, KEY_B)):
                crypto = WeComCrypto(token, key)
                echostr = crypto.encrypt(path.encode())
                query = {"msg_signature": crypto.signature("1", "n", echostr), "timestamp": "1", "nonce": "n", "echostr": echostr}
                assert (await http.get(path, params=query)).content == path.encode()
                other = "/two" if path == "/one" else "/one"
                assert (await http.get(other, params=query)).status_code == 403  # the other bot's key
            assert {b.runtime.port for b in handle.bots.values()} == {handle.webhook_port}  # type: ignore[attr-defined]
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and set(ready.json()["bots"]) == {"one", "two"}
            assert "wecom_bot_up" in (await http.get("/metrics")).text
            assert (await http.get("/elsewhere")).status_code == 404
            assert await handle.bots["one"].drain(1.0)
            r = await http.get("/one", params=query)
            assert r.status_code == 503 and r.text == "this bot has stopped\n"  # WeCom retries later
            assert (await http.get("/two", params=query)).content == b"/two"  # the other bot serves on
        nursery.cancel_scope.cancel()


async def test_an_admin_port_in_use_fails_at_start_naming_the_setting(autojump_clock: trio.testing.MockClock) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = BotConfig(mode="long-connection", bot_id="x", bot_secret="s", ws_url="ws://127.0.0.1:9", admin_port=port)
        with pytest.raises(TerminalError, match=f"WECOM_ADMIN_PORT: cannot listen on 127.0.0.1:{port}"):
            await serve_fleet(FleetConfig.single(config))


def test_readyz_json_is_valid_before_any_bot_started() -> None:
    from wecom_actors.admin import readiness
    from wecom_actors.fleet import BotSlot

    slot = BotSlot(FleetBot("a", BotConfig(mode="long-connection", bot_id="x", bot_secret="s")))
    ready, doc = readiness([slot])
    assert not ready and json.loads(json.dumps(doc))["bots"]["a"]["state"] == "starting"


async def test_healthz_turns_503_when_the_process_shuts_down() -> None:
    from wecom_actors.admin import HttpRoutes
    from wecom_actors.metrics import fleet_registry

    routes = HttpRoutes(list, lambda: fleet_registry(list))

    async def get(path: str) -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(event: dict[str, Any]) -> None:
            sent.append(event)

        await routes({"type": "http", "method": "GET", "path": path}, receive, send)
        return sent[0]["status"], sent[1]["body"]

    assert await get("/healthz") == (200, b"ok\n")
    assert (await get("/readyz"))[0] == 503  # no bot: not ready
    routes.draining = True
    assert await get("/healthz") == (503, b"draining\n")


async def test_a_callback_before_its_bot_mounted_its_path_is_refused_as_retryable() -> None:
    from wecom_actors.admin import HttpRoutes
    from wecom_actors.fleet import BotSlot
    from wecom_actors.metrics import fleet_registry

    config = BotConfig(mode="webhook", token="t", encoding_aes_key="k" * 43, callback_path="/hook")
    slots = [BotSlot(FleetBot("a", config))]
    routes = HttpRoutes(lambda: slots, lambda: fleet_registry(lambda: slots))

    async def post(path: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(event: dict[str, Any]) -> None:
            sent.append(event)

        await routes({"type": "http", "method": "POST", "path": path}, receive, send)
        return sent[0]["status"], sent[1]["body"], list(sent[0].get("headers", []))

    status, body, headers = await post("/hook")
    assert (status, body) == (503, b"this bot is starting\n") and (b"retry-after", b"1") in headers
    assert (await post("/elsewhere"))[:2] == (404, b"not found\n")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"served"})

    routes.mount("/hook", app)
    assert (await post("/hook"))[:2] == (200, b"served")
    slots[0].stopped = True
    routes.unmount("/hook")
    assert (await post("/hook"))[:2] == (503, b"this bot has stopped\n")


async def poll(http: httpx.AsyncClient, done: Any) -> None:
    """GET /readyz until ``done(response)`` (the caller bounds the wait)."""
    for _ in range(10_000):
        if done(await http.get("/readyz")):
            return
        await trio.sleep(0.05)


async def test_the_command_runs_a_fleet_and_exits_with_the_last_bots_code() -> None:
    # Real time and a real child process: `wecom-actors run --config fleet.toml` as an operator runs it.
    import os
    import subprocess
    import sys
    import tempfile

    admin = free_port()
    async with open_fake_wecom(bots={"bot-a": SECRET_A, "bot-b": SECRET_B}) as fake:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "fleet.toml"
            path.write_text(
                f'admin_port = {admin}\nws_url = "{fake.url}"\nlog_format = "json"\n'
                f'[[bots]]\nname = "sales"\nbot_id = "bot-a"\nbot_secret = "{SECRET_A}"\n'
                f'[[bots]]\nname = "ops"\nbot_id = "bot-b"\nbot_secret = "{SECRET_B}"\n'
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "wecom_actors", "run", "--config", str(path)],
                env=env, stderr=subprocess.PIPE,
            )
            try:
                with trio.fail_after(60):
                    await fake.wait_subscribed("bot-a")
                    await fake.wait_subscribed("bot-b")
                    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{admin}") as http:
                        await poll(http, lambda r: r.status_code == 200)
                        fake.faults.kick(bot_id="bot-b")
                        await poll(http, lambda r: r.json()["bots"]["ops"]["state"] == "stopped")
                        cb = await fake.send_text("fleet", bot_id="bot-a")
                        assert (await fake.wait_stream_finished(cb.req_id)).content == "fleet"
                    fake.faults.kick(bot_id="bot-a")
                    code = await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            assert proc.stderr is not None
            stderr = b""
            while chunk := await proc.stderr.receive_some(1 << 16):
                stderr += chunk
    assert code == 4, stderr.decode()
    lines = stderr.decode().splitlines()
    assert lines[-1].startswith("wecom-actors: error: ")  # the last bot's error, as plain text
    records = [json.loads(line) for line in lines[:-1]]  # everything else: one JSON object a line
    assert {r["bot"] for r in records if "up (" in r["message"]} == {"sales", "ops"}
    assert SECRET_A not in stderr.decode() and SECRET_B not in stderr.decode()


async def test_readyz_shows_a_bot_that_cannot_connect_yet(autojump_clock: trio.testing.MockClock) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{closed.getsockname()[1]}"  # bound, not listening: refused
        config = BotConfig(mode="long-connection", bot_id="bot-z", bot_secret="s", ws_url=url, admin_port=free_port())
        handles: list[FleetHandle] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(serve_fleet, FleetConfig.single(config, name="z"), on_handle=handles.append))
            await trio.sleep(3)
            [handle] = handles
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{handle.admin_port}") as http:
                ready = await http.get("/readyz")
                assert (await http.get("/healthz")).status_code == 200
            assert ready.status_code == 503
            bot = ready.json()["bots"]["z"]
            assert bot["state"] in ("connecting", "backoff") and bot["ready"] is False and "reconnects" in bot
            assert handle.bots == {}  # not started yet
            nursery.cancel_scope.cancel()
