"""What ``bench_webhook.py`` runs: the bots under test (``Side``) and one pass of a bot.

A pass is a fresh bot process on a free port of 127.0.0.1 and a fresh load generator
(``_webhook_loadgen.py``, the fake WeCom's webhook driver): the load generator waits until the
bot answers URL verification, warms it up, then (after the bot's CPU time and RSS are read)
runs U users x M messages closed loop, each message then polled every ``poll_interval`` s
until ``finish``. Both processes are stopped at the end of the pass.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _procs
import _procstats
from _procs import Child, ProgressLine

TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"  # the spec's example EncodingAESKey
PATH = "/wecom/callback"


@dataclass(frozen=True)
class Side:
    key: str
    label: str
    reference: bool = False
    script: str | None = None  # ours, run by this script instead of the CLI


OURS = Side("ours", "ours")
OURS_H11 = Side("ours-h11", "ours[h11]", script="_webhook_h11_bot.py")
REF = Side("ref", "reference", reference=True)


def sides_for(only: str | None, h11: bool = False) -> list[Side]:
    ours = [OURS, OURS_H11] if h11 else [OURS]
    return ours if only == "ours" else [REF] if only == "ref" else [*ours, REF]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_bot(side: Side, name: str, port: int, users: int) -> Child:
    env = _procs.clean_env(
        WECOM_MODE="webhook",
        WECOM_TOKEN=TOKEN,
        WECOM_ENCODING_AES_KEY=KEY,
        WECOM_HOST="127.0.0.1",
        WECOM_PORT=str(port),
        WECOM_CALLBACK_PATH=PATH,
        WECOM_HANDLER_CONCURRENCY=str(max(64, users)),
    )
    if side.reference:
        py = _procs.ref_python(_procs.REF_WEBHOOK_VENV)
        return Child(name, [str(py), str(_procs.HERE / "reference_webhook_bot.py")], env=env)
    if side.script is not None:
        return Child(name, [sys.executable, str(_procs.HERE / side.script)], env=env)
    argv = [sys.executable, "-m", "wecom_actors.cli", "run", "--mode", "webhook",
            "--handler", "echo", "--log-level", "WARNING"]  # fmt: skip
    return Child(name, argv, env=env)


def run_pass(
    side: Side,
    procs: list[Child],
    progress: ProgressLine,
    *,
    name: str,
    label: str,
    users: int,
    messages: int,
    poll_interval: float,
    timeout: float,
    profile_path: Path | None = None,
) -> dict[str, Any]:
    """One pass of ``side``: a fresh bot and load generator; returns the figures."""
    port = free_port()
    bot = start_bot(side, name, port, users)
    procs.append(bot)
    lg = Child(
        f"{name}-loadgen",
        [sys.executable, str(_procs.HERE / "_webhook_loadgen.py"),
         "--url", f"http://127.0.0.1:{port}{PATH}", "--token", TOKEN, "--key", KEY,
         "--users", str(users), "--messages", str(messages),
         "--poll-interval", str(poll_interval), "--timeout", str(timeout)],
        env=_procs.clean_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )  # fmt: skip
    procs.append(lg)
    spy: _procs.PySpy | None = None
    try:
        assert lg.proc.stdout is not None and lg.proc.stdin is not None
        result: dict[str, Any] | None = None
        cpu0 = rss0 = 0.0
        bar = progress.bar(label)
        progress.show(f"{label}: waiting for the bot")
        for raw in lg.proc.stdout:
            msg = json.loads(raw)
            if msg.get("event") == "warm":
                if profile_path is not None:
                    spy = _procs.PySpy(procs, bot.pid, profile_path)
                rss0 = _procstats.memory_mb(bot.pid)["rss_mb"]
                cpu0 = _procstats.cpu_seconds(bot.pid)
                lg.proc.stdin.write(b"go\n")
                lg.proc.stdin.flush()
            elif "progress" in msg:
                bar(msg["progress"], msg["total"])
            elif "result" in msg:
                result = msg["result"]
                break
        if result is None:
            raise RuntimeError(
                f"the webhook load generator stopped:\n{lg.log_tail()}\n{name}:\n{bot.log_tail()}"
            )
        cpu = _procstats.cpu_seconds(bot.pid) - cpu0
        mem = _procstats.memory_mb(bot.pid)
        if not bot.alive():
            raise RuntimeError(f"{name} died:\n{bot.log_tail()}")
        lg.wait_exit(10.0)
    finally:
        if spy is not None:
            spy.stop()
            procs.remove(spy.child)
        for child in (lg, bot):
            child.stop()
            procs.remove(child)
    progress.done()
    return figures(result, cpu, rss0, mem, users, messages, poll_interval, bot)


def figures(
    result: dict[str, Any],
    cpu: float,
    rss0: float,
    mem: dict[str, float],
    users: int,
    messages: int,
    poll_interval: float,
    bot: Child,
) -> dict[str, Any]:
    recs = result["records"]
    n = len(recs)
    callbacks = n + sum(r["refreshes"] for r in recs)
    first = [r["first_reply"] for r in recs if r["status"] == 200]
    finish = [r["finish"] for r in recs if r["finish"] is not None]
    requests = result["requests"]
    return {
        "users": users,
        "messages_per_user": messages,
        "poll_interval_s": poll_interval,
        "messages": n,
        "callbacks": callbacks,
        "callbacks_per_msg": callbacks / n if n else float("nan"),
        "duration_s": result["duration"],
        "callbacks_per_s": callbacks / result["duration"],
        "first_reply": _procstats.latency_summary(first),
        "finish": _procstats.latency_summary(finish),
        "requests": requests["count"],
        "request_max_ms": requests["max"] * 1e3,
        "requests_over_1s": requests["over_1s"],
        "lost": result["unsent"] + sum(1 for r in recs if not r["finished"]),
        "wrong": sum(1 for r in recs if r["finished"] and not r["right"]),
        "http_errors": sum(1 for r in recs if r["status"] != 200),
        "protocol_errors": sum(1 for r in recs if r["errors"]),
        "error_examples": [e for r in recs for e in r["errors"]][:5],
        "cpu_s": cpu,
        "cpu_us_per_callback": cpu / callbacks * 1e6 if callbacks else float("nan"),
        "cpu_us_per_msg": cpu / n * 1e6 if n else float("nan"),
        "loadgen_cpu_us_per_callback": result["loadgen_cpu"] / callbacks * 1e6 if callbacks else 0,
        "idle_rss_mb": rss0,
        "rss_mb": mem["rss_mb"],
        "peak_rss_mb": mem["peak_rss_mb"],
        "log": str(bot.log_path.relative_to(_procs.ROOT)),
    }
