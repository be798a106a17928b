"""The CLI's runtime: the demo, `run` with a SIGINT drain, `fake-server`, as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import trio
import trio.testing

from wecom_actors.demo import longconn_demo, tiny_png
from wecom_actors.testing import open_fake_wecom

from .fake_bot import cli_run, signal_and_wait


async def test_demo_plays_the_whole_script(autojump_clock: trio.testing.MockClock) -> None:
    lines: list[str] = []
    with trio.fail_after(120):
        assert await longconn_demo(print_fn=lines.append) == 0
    text = "\n".join(lines)
    assert "bot (welcome): Hello!" in text
    assert "final frame" in text and "Hello, bot!" in text
    assert "You clicked yes" in text
    assert "0 handler errors, 0 failed replies" in text


def test_tiny_png_is_a_png() -> None:
    data = tiny_png()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")


def _env(fake_url: str, bot_id: str, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    env.update(
        WECOM_WS_URL=fake_url,
        WECOM_BOT_ID=bot_id,
        WECOM_BOT_SECRET=secret,
        WECOM_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    return env


async def test_run_drains_in_flight_streams_on_sigint_and_exits_0_within_5s() -> None:
    # Real time and a real child process: the signal path cannot be faked in-process.
    with trio.fail_after(60):
        async with open_fake_wecom() as fake:
            async with cli_run(_env(fake.url, fake.bot_id, fake.secret)) as proc:
                await fake.wait_subscribed()
                cb = await fake.send_text("/slow 1.5 draining on shutdown works")
                await fake.wait_until(lambda: (fake.stream(cb.req_id) or _NONE).accepted_frames >= 1)
                code, took = await signal_and_wait(proc, signal.SIGINT)
            stderr = (await proc.stderr.receive_some(1 << 20)).decode() if proc.stderr else ""  # type: ignore[union-attr]
            assert code == 0, stderr
            assert took < 5
            # The final frame left before the process exited; give the fake (this process) the
            # moment it needs to read it from its socket.
            with trio.fail_after(5):
                view = await fake.wait_stream_finished(cb.req_id)
            assert view.content == "draining on shutdown works"
            assert fake.secret not in stderr


class _NoStream:
    accepted_frames = 0


_NONE = _NoStream()


def test_run_with_wrong_secret_exits_3() -> None:
    async def main() -> tuple[int, str]:
        async with open_fake_wecom() as fake:
            env = _env(fake.url, fake.bot_id, "wrong-secret")
            env["WECOM_RECONNECT_INITIAL"] = "0.01"
            env["WECOM_RECONNECT_MAX"] = "0.02"
            result = await trio.run_process(
                [sys.executable, "-m", "wecom_actors.cli", "run"], env=env, capture_stderr=True, check=False
            )
            return result.returncode, result.stderr.decode()

    code, stderr = trio.run(main)
    assert code == 3, stderr
    assert "WECOM_BOT_SECRET" in stderr and "wrong-secret" not in stderr


def test_fake_server_prints_where_to_connect_and_stops_on_sigint() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wecom_actors.cli", "fake-server", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        assert first.startswith("fake WeCom (long connection) listening at ws://127.0.0.1:")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
