"""Webhook load: U concurrent users POSTing signed + encrypted callbacks through real HTTP.

    python benchmarks/bench_webhook.py [--users U] [--messages M] [--poll-interval S]

Two processes: the bot (``wecom-actors run --mode webhook --handler echo --log-level WARNING``,
hypercorn on 127.0.0.1, a free port) and the load generator (``_webhook_loadgen.py``: the
bundled fake WeCom's webhook driver). Each of the U users (default 100) sends M text messages
(default 5) one after another; each message is a POST, answered with the first part of the
stream, then refresh POSTs every ``--poll-interval`` s (default 1, like WeCom) until the answer
says ``finish``. Measured: callbacks (POSTs: messages + refreshes) per second, time to first
reply and to finish (p50/p95/p99/max), the echo contract, bot CPU per callback
(``/proc/<pid>/task/*/schedstat``), its RSS. Target: no request above 1 s to first reply at 100
concurrent users.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import _common
import _procs
import _procstats
from _procs import Child, ProgressLine

DEFAULT_JSON = _common.RESULTS_DIR / "webhook.json"
TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"  # webhook-protocol.md §9.2
PATH = "/wecom/callback"
TARGET_FIRST_REPLY_S = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_load(args: argparse.Namespace, progress: ProgressLine) -> dict[str, Any]:
    port = free_port()
    with _procs.children() as procs:
        env = _procs.clean_env(
            WECOM_MODE="webhook",
            WECOM_TOKEN=TOKEN,
            WECOM_ENCODING_AES_KEY=KEY,
            WECOM_HOST="127.0.0.1",
            WECOM_PORT=str(port),
            WECOM_CALLBACK_PATH=PATH,
            WECOM_HANDLER_CONCURRENCY=str(max(64, args.users)),
        )
        argv = [sys.executable, "-m", "wecom_actors.cli", "run", "--mode", "webhook",
                "--handler", "echo", "--log-level", "WARNING"]  # fmt: skip
        bot = Child("webhook-bot", argv, env=env)
        procs.append(bot)
        lg = Child(
            "webhook-loadgen",
            [sys.executable, str(_procs.HERE / "_webhook_loadgen.py"),
             "--url", f"http://127.0.0.1:{port}{PATH}", "--token", TOKEN, "--key", KEY,
             "--users", str(args.users), "--messages", str(args.messages),
             "--poll-interval", str(args.poll_interval), "--timeout", str(args.timeout)],
            env=_procs.clean_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )  # fmt: skip
        procs.append(lg)
        assert lg.proc.stdout is not None and lg.proc.stdin is not None
        result: dict[str, Any] | None = None
        cpu0 = rss0 = 0.0
        bar = progress.bar(f"webhook: {args.users} users x {args.messages} messages")
        progress.show("webhook: waiting for the bot")
        for raw in lg.proc.stdout:
            msg = json.loads(raw)
            if msg.get("event") == "ready":
                progress.show("webhook: bot verified, warming up")
            elif msg.get("event") == "warm":
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
                f"the webhook load generator stopped:\n{lg.log_tail()}\nbot:\n{bot.log_tail()}"
            )
        cpu = _procstats.cpu_seconds(bot.pid) - cpu0
        mem = _procstats.memory_mb(bot.pid)
        if not bot.alive():
            raise RuntimeError(f"the bot died:\n{bot.log_tail()}")
        lg.wait_exit(10.0)
    progress.done()
    recs = result["records"]
    messages = len(recs)
    callbacks = messages + sum(r["refreshes"] for r in recs)
    first = [r["first_reply"] for r in recs if r["status"] == 200]
    finish = [r["finish"] for r in recs if r["finish"] is not None]
    over = sum(1 for x in first if x > TARGET_FIRST_REPLY_S)
    return {
        "users": args.users,
        "messages_per_user": args.messages,
        "poll_interval_s": args.poll_interval,
        "messages": messages,
        "callbacks": callbacks,
        "duration_s": result["duration"],
        "callbacks_per_s": callbacks / result["duration"],
        "messages_per_s": messages / result["duration"],
        "first_reply": _procstats.latency_summary(first),
        "finish": _procstats.latency_summary(finish),
        "first_reply_over_1s": over,
        "lost": result["unsent"] + sum(1 for r in recs if not r["finished"]),
        "wrong": sum(1 for r in recs if r["finished"] and not r["right"]),
        "http_errors": sum(1 for r in recs if r["status"] != 200),
        "protocol_errors": sum(1 for r in recs if r["errors"]),
        "error_examples": [e for r in recs for e in r["errors"]][:5],
        "cpu_s": cpu,
        "cpu_us_per_callback": cpu / callbacks * 1e6 if callbacks else float("nan"),
        "cpu_us_per_message": cpu / messages * 1e6 if messages else float("nan"),
        "loadgen_cpu_us_per_callback": result["loadgen_cpu"] / callbacks * 1e6 if callbacks else 0,
        "idle_rss_mb": rss0,
        "rss_mb": mem["rss_mb"],
        "peak_rss_mb": mem["peak_rss_mb"],
        "met": over == 0 and len(first) == messages,
        "log": str(bot.log_path.relative_to(_procs.ROOT)),
    }


def render(r: dict[str, Any]) -> str:
    f, d = r["first_reply"], r["finish"]
    rows = [
        ["users x messages (closed loop per user)", f"{r['users']} x {r['messages_per_user']}", "", ""],
        ["callbacks (messages + refreshes)", f"{r['callbacks']} in {r['duration_s']:.1f} s", "", ""],
        ["callbacks per second", f"{r['callbacks_per_s']:.0f}", "", ""],
        ["time to first reply p50 / p95 / p99 (ms)",
         f"{f['p50_ms']:.0f} / {f['p95_ms']:.0f} / {f['p99_ms']:.0f}", "", ""],
        ["time to first reply max (ms)", f"{f['max_ms']:.0f}", "<= 1000",
         "yes" if r["met"] else "NO"],
        ["first replies above 1 s", f"{r['first_reply_over_1s']} of {r['messages']}", "0",
         "yes" if r["first_reply_over_1s"] == 0 else "NO"],
        ["time to finish p50 / p99 (ms)", f"{d['p50_ms']:.0f} / {d['p99_ms']:.0f}", "", ""],
        ["bot CPU per callback (µs)", f"{r['cpu_us_per_callback']:.0f}", "", ""],
        ["bot CPU per message, refreshes included (µs)", f"{r['cpu_us_per_message']:.0f}", "", ""],
        ["bot RSS idle / after / peak (MB)",
         f"{r['idle_rss_mb']:.1f} / {r['rss_mb']:.1f} / {r['peak_rss_mb']:.1f}", "", ""],
        ["lost / wrong / HTTP errors / protocol errors",
         f"{r['lost']} / {r['wrong']} / {r['http_errors']} / {r['protocol_errors']}", "0",
         "yes" if not (r["lost"] or r["wrong"] or r["http_errors"] or r["protocol_errors"]) else "NO"],
    ]  # fmt: skip
    return _common.format_table(["figure", "value", "target", "met"], rows, "<>>>")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100, help="concurrent users (default 100)")
    parser.add_argument("--messages", type=int, default=5, help="messages per user (default 5)")
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, help="seconds between refreshes (default 1)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the load")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
    args = parser.parse_args(argv)
    progress = ProgressLine()
    run = _common.ProcessRun("webhook", args)
    result = run_load(args, progress)
    run.report(render(result))
    run.write(
        packages=_common.package_versions("wecom-actors", "hypercorn", "httpx", "pycryptodome"),
        results={"result": result},
    )
    return 0


if __name__ == "__main__":
    _common.run_script(main)
