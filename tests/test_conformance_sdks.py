"""The official SDKs as judges: echo bots on ``@wecom/aibot-node-sdk`` (tests/conformance/node,
pinned in its package-lock.json) and on ``wecom-aibot-python-sdk`` 1.0.2 (in its own venv,
tests/conformance/.venv-py) against the bundled fake WeCom over ``wss://`` (a throwaway CA),
driven through the fake's control API as a user of any language would.

``.ci/run`` installs both; locally each test skips naming what to install (never when CI=true).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from wecom_actors.demo import tiny_png
from wecom_actors.testing import (
    FakeTLS,
    FakeWeCom,
    LongConnSimulator,
    open_fake_wecom,
    serve_control_api,
)

HERE = Path(__file__).parent / "conformance"
NODE_DIR = HERE / "node"
PY_VENV = HERE / ".venv-py"
PY_SDK = "wecom-aibot-python-sdk==1.0.2"
STEP = 20.0  # seconds any one step may take (real time: the SDKs run in their own processes)


def _missing(sdk: str) -> str | None:
    if sdk == "node":
        if not shutil.which("node"):
            return "node and npm (apt-get install nodejs npm)"
        if not (NODE_DIR / "node_modules" / "@wecom" / "aibot-node-sdk").is_dir():
            return "the Node SDK (npm ci --prefix tests/conformance/node)"
    elif not (PY_VENV / "bin" / "python").exists():
        return f"the Python SDK venv (python3 -m venv {PY_VENV} && {PY_VENV}/bin/pip install {PY_SDK})"
    return None


def need(sdk: str) -> None:
    missing = _missing(sdk)
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the conformance suite needs {missing}")
        pytest.skip(f"the conformance suite needs {missing}")


def _trust_for_python_sdk(tls: FakeTLS) -> None:
    """The Python SDK builds its TLS context from certifi's bundle alone (SSL_CERT_FILE is not
    read): add the fake's CA to that environment's bundle, keeping a pristine copy."""
    where = subprocess.run([str(PY_VENV / "bin" / "python"), "-c", "import certifi; print(certifi.where())"],
                           capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    bundle, pristine = Path(where), Path(where + ".pristine")
    if not pristine.exists():
        shutil.copyfile(bundle, pristine)
    bundle.write_bytes(pristine.read_bytes() + b"\n" + tls.ca_pem)


@dataclass
class Bot:
    """One SDK bot process and the events it reported."""

    events: list[dict[str, Any]] = field(default_factory=list)
    changed: trio.Event = field(default_factory=trio.Event)
    stderr: list[str] = field(default_factory=list)

    async def wait_event(self, name: str, count: int = 1) -> None:
        with trio.fail_after(STEP):
            while sum(e["event"] == name for e in self.events) < count:
                await self.changed.wait()

    def count(self, name: str) -> int:
        return sum(e["event"] == name for e in self.events)


async def _pump(stream: Any, sink: list[Any], bot: Bot, *, parse: bool) -> None:
    buf = b""
    async for chunk in stream:
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if parse and line.strip():
                sink.append(json.loads(line))
            elif line.strip():
                sink.append(line.decode(errors="replace"))
        bot.changed.set()
        bot.changed = trio.Event()


@asynccontextmanager
async def sdk_bot(sdk: str, fake: FakeWeCom, tls: FakeTLS, tmp: Path, *, secret: str | None = None) -> AsyncIterator[Bot]:
    env = {**os.environ, "WECOM_WS_URL": fake.url, "WECOM_BOT_ID": fake.bot_id,
           "WECOM_BOT_SECRET": secret or fake.secret, "HEARTBEAT_MS": "500"}  # fmt: skip
    if sdk == "node":
        env["NODE_EXTRA_CA_CERTS"] = str(tls.write_ca(tmp / "fake-ca.pem"))
        argv = ["node", str(NODE_DIR / "echo_bot.js")]
        cwd = NODE_DIR
    else:
        _trust_for_python_sdk(tls)
        argv = [str(PY_VENV / "bin" / "python"), str(HERE / "py_echo_bot.py")]
        cwd = HERE
    bot = Bot()
    proc = await trio.lowlevel.open_process(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _pump(proc.stdout, bot.events, bot, parse=True))
            nursery.start_soon(lambda: _pump(proc.stderr, bot.stderr, bot, parse=False))
            yield bot
            nursery.cancel_scope.cancel()
    finally:
        proc.terminate()
        with trio.move_on_after(5):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()


@asynccontextmanager
async def stage(**fake_kwargs: Any) -> AsyncIterator[tuple[FakeWeCom, FakeTLS, httpx.AsyncClient]]:
    tls = FakeTLS.create()
    async with open_fake_wecom(tls=tls, **fake_kwargs) as fake, trio.open_nursery() as nursery:
        url = await nursery.start(serve_control_api, LongConnSimulator(fake))
        async with httpx.AsyncClient(base_url=url + "/api/v1", timeout=10) as http:
            yield fake, tls, http
        nursery.cancel_scope.cancel()


async def post(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await http.post(path, json=body)
    assert r.status_code in (200, 202), r.text
    return r.json()


async def bot_messages(http: httpx.AsyncClient, conv: str, predicate: Any) -> list[dict[str, Any]]:
    with trio.fail_after(STEP):
        while True:
            r = await http.get(f"/conversations/{conv}")
            if r.status_code == 200:
                msgs = [m for m in r.json()["messages"] if m["from"] == "bot"]
                if predicate(msgs):
                    return msgs
            await trio.sleep(0.02)


def last_finished(msgs: list[dict[str, Any]]) -> bool:
    return bool(msgs) and msgs[-1]["kind"] == "stream" and msgs[-1]["finished"]


@pytest.mark.parametrize("sdk", ["node", "python"])
async def test_official_sdk_session(sdk: str, tmp_path: Path) -> None:
    need(sdk)
    async with stage() as (fake, tls, http), sdk_bot(sdk, fake, tls, tmp_path) as bot:
        await bot.wait_event("authenticated")
        await fake.wait_subscribed(timeout=STEP)
        # heartbeat: the SDK pings (every 0.5 s here) and each ping is acked
        await fake.wait_until(lambda: sum(f.cmd == "ping" for f in fake.frames) >= 2, timeout=STEP)
        who = "node" if sdk == "node" else "python"

        await post(http, "/enter_chat", {"userid": "u1"})
        msgs = await bot_messages(http, "u1", lambda m: any(b["kind"] == "text" for b in m))
        assert msgs[0]["content"] == f"welcome from {who}"

        cb = await post(http, "/messages", {"type": "text", "userid": "u1", "text": "hello sdk"})
        view = await fake.wait_stream_finished(cb["req_id"], timeout=STEP)
        assert (view.content, view.accepted_frames, view.rejected_frames) == ("hello sdk", 2, 0)

        png = tiny_png()
        await post(http, "/messages", {"type": "image", "userid": "u1", "data_base64": base64.b64encode(png).decode()})
        msgs = await bot_messages(http, "u1", lambda m: last_finished(m) and "image" in m[-1]["content"])
        assert msgs[-1]["content"].endswith(f"md5:{hashlib.md5(png).hexdigest()}")
        doc = b"a file's bytes\n" * 100
        await post(http, "/messages", {"type": "file", "userid": "u1", "filename": "notes.txt",
                                       "data_base64": base64.b64encode(doc).decode()})  # fmt: skip
        msgs = await bot_messages(http, "u1", lambda m: last_finished(m) and "file" in m[-1]["content"])
        assert msgs[-1]["content"] == f"file notes.txt md5:{hashlib.md5(doc).hexdigest()}"

        await post(http, "/messages", {"type": "text", "userid": "u1", "text": "/card"})
        msgs = await bot_messages(http, "u1", lambda m: m[-1]["kind"] == "template_card")
        task_id = msgs[-1]["card"]["task_id"]
        await post(http, "/card_click", {"userid": "u1", "task_id": task_id, "event_key": "yes"})
        msgs = await bot_messages(http, "u1", lambda m: m[-1]["updates"] == 1)
        assert msgs[-1]["card"]["main_title"]["title"] == "clicked yes"

        await post(http, "/messages", {"type": "text", "userid": "u1", "text": "/push pushed hello"})
        msgs = await bot_messages(http, "u1", lambda m: m[-1]["kind"] == "markdown")
        assert (msgs[-1]["content"], msgs[-1]["pushed"]) == ("pushed hello", True)

        if sdk == "node":  # the Python SDK 1.0.2 has no upload
            await post(http, "/messages", {"type": "text", "userid": "u1", "text": "/upload"})
            msgs = await bot_messages(http, "u1", lambda m: m[-1]["kind"] == "file")
            media = fake.media(msgs[-1]["media"].removeprefix("bot:"))
            assert media is not None and (media.data, media.filename) == (b"hello from node", "hello.txt")

        # drop: the SDK reconnects and re-subscribes; callbacks flow again
        assert (await post(http, "/faults", {"kind": "drop"}))["connections_hit"] == 1
        await fake.wait_subscribed(count=2, timeout=STEP)
        cb = await post(http, "/messages", {"type": "text", "userid": "u1", "text": "after the drop"})
        assert (await fake.wait_stream_finished(cb["req_id"], timeout=STEP)).content == "after the drop"

        # kick-out by a real second subscriber
        intruder = (await post(http, "/faults", {"kind": "kick_second_subscriber"}))["intruder_connection"]
        await bot.wait_event("kicked")
        assert bot.count("handler_error") == 0, bot.events
        # Both stop for good (as they should): Node on disconnected_event itself, Python 1.0.2
        # only because the fake closes with 1000 (see the next test and
        # docs/testing-conformance.md). The intruder keeps the bot.
        with trio.move_on_after(2):
            await fake.wait_subscribed(count=4)
        assert fake.subscribe_count() == 3 and fake.live_connection().id == intruder  # type: ignore[union-attr]


async def test_python_sdk_reconnects_after_a_kick_closed_with_another_code(tmp_path: Path) -> None:
    """Python SDK 1.0.2 has no kick handling: on a close code other than 1000 it reconnects,
    and so replaces the connection that replaced it (the ping-pong the protocol warns about)."""
    need("python")
    async with stage(close_codes={"kicked": 4000}) as (fake, tls, http), sdk_bot("python", fake, tls, tmp_path) as bot:
        await fake.wait_subscribed(timeout=STEP)
        intruder = (await post(http, "/faults", {"kind": "kick_second_subscriber"}))["intruder_connection"]
        await bot.wait_event("kicked")
        await fake.wait_subscribed(count=3, timeout=STEP)
        assert (await fake.wait_closed(intruder, timeout=STEP)).replaced


@pytest.mark.parametrize("sdk", ["node", "python"])
async def test_official_sdk_wrong_secret(sdk: str, tmp_path: Path) -> None:
    need(sdk)
    async with stage() as (fake, tls, _http), sdk_bot(sdk, fake, tls, tmp_path, secret="wrong") as bot:
        await fake.wait_until(lambda: fake.statistics().subscribes_refused >= 1, timeout=STEP)
        if sdk == "node":
            # Node retries with backoff, then gives up after maxAuthFailureAttempts (3 here).
            await bot.wait_event("error")
            await fake.wait_until(lambda: fake.statistics().subscribes_refused >= 3, timeout=STEP)
            assert any("auth" in e.get("name", "").lower() + e.get("message", "").lower()
                       for e in bot.events if e["event"] == "error"), bot.events  # fmt: skip
        else:
            # Python 1.0.2 reports the error; the fake's 1000 close after the refusal stops it.
            await bot.wait_event("error")
            with trio.move_on_after(2):
                await fake.wait_until(lambda: fake.statistics().subscribes_refused >= 2)
            assert fake.statistics().subscribes_refused == 1
        assert fake.subscribe_count() == 0 and not fake.is_subscribed()


def test_pinned_versions() -> None:
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@wecom/aibot-node-sdk"]["version"] == "1.0.7"
    assert json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["@wecom/aibot-node-sdk"] == "1.0.7"
    assert sys.version_info >= (3, 11)
