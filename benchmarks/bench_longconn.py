"""Long-connection load, side by side with the official Python SDK, in one run.

    python benchmarks/bench_longconn.py [--users U] [--messages M] [--rounds R] [--only ours|ref]
                                        [--transport default|trio-websocket|wsproto|both]
                                        [--profile] [--count-steps]

Three processes: the load generator (``_loadgen.py``: the bundled fake WeCom on 127.0.0.1), and
one bot under test at a time, started fresh for each round: ours (``python -m wecom_actors.cli
run --handler echo --log-level WARNING``) or the reference echo bot on the official
``wecom-aibot-python-sdk`` 1.0.2 (``reference_bot.py``, in ``benchmarks/.venv-ref``, created on
first run). Rounds are interleaved: ours, reference, ours, reference, ...

Each round, per bot: subscribe, a short warm-up (not measured), then U users x M text messages
closed loop (each user sends its next message once the finish frame of the previous one is in),
then the same burst (all U x M pushed at once). Measured: latency callback pushed -> finish frame
received (p50/p95/p99/max), throughput, the echo contract (lost / duplicated / wrong final
content), the bot process's CPU time per message (``/proc/<pid>/task/*/schedstat``, read before
and after each phase) and its peak RSS (VmHWM). The table shows medians over the rounds and the
ratio ours / reference for every figure. ``--transport both`` runs our bot twice per round, once
on each WebSocket engine (``WECOM_TRANSPORT``); ``--profile`` and ``--count-steps`` add an
unmeasured pass under py-spy and under a trio instrument counting task steps per message.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common
import _procs
from _procs import LoadGen, ProgressLine

DEFAULT_JSON = _common.RESULTS_DIR / "longconn.json"
SECRET = "bench-secret"


@dataclass(frozen=True)
class Side:
    """One bot under test: ours (with some WECOM_* settings) or the reference."""

    key: str
    label: str
    settings: tuple[tuple[str, str], ...] = ()
    reference: bool = False

    @property
    def bot_id(self) -> str:
        return f"bot-{self.key}"


REF = Side("ref", "reference", reference=True)


def sides_for(transport: str, only: str | None) -> list[Side]:
    """ours (one per transport asked for) and the reference, in the order rounds run them."""
    if transport == "both":
        ours = [
            Side("ours-tw", "ours[tw]", (("WECOM_TRANSPORT", "trio-websocket"),)),
            Side("ours-wsproto", "ours[wsproto]", (("WECOM_TRANSPORT", "wsproto"),)),
        ]
    elif transport == "default":
        ours = [Side("ours", "ours")]
    else:
        short = "tw" if transport == "trio-websocket" else transport
        ours = [Side("ours", f"ours[{short}]", (("WECOM_TRANSPORT", transport),))]
    if only == "ours":
        return ours
    if only == "ref":
        return [REF]
    return [*ours, REF]


# figure key, label, unit format, target ratio (ours/ref must be <= it), lower is better
FIGURES: list[tuple[str, str, str, float | None, bool]] = [
    ("closed.cpu_us_per_msg", "bot CPU per message, closed loop (µs)", "{:.0f}", 0.8, True),
    ("burst.cpu_us_per_msg", "bot CPU per message, burst (µs)", "{:.0f}", 0.8, True),
    ("closed.p50_ms", "latency p50, closed loop (ms)", "{:.2f}", None, True),
    ("closed.p95_ms", "latency p95, closed loop (ms)", "{:.2f}", None, True),
    ("closed.p99_ms", "latency p99, closed loop (ms)", "{:.2f}", 1.0, True),
    ("closed.max_ms", "latency max, closed loop (ms)", "{:.2f}", None, True),
    ("burst.p50_ms", "latency p50, burst (ms)", "{:.0f}", None, True),
    ("burst.p95_ms", "latency p95, burst (ms)", "{:.0f}", None, True),
    ("burst.p99_ms", "latency p99, burst (ms)", "{:.0f}", 1.0, True),
    ("burst.max_ms", "latency max, burst (ms)", "{:.0f}", None, True),
    ("closed.throughput", "throughput, closed loop (msg/s)", "{:.0f}", None, False),
    ("burst.throughput", "throughput, burst (msg/s)", "{:.0f}", None, False),
    ("peak_rss_mb", "peak RSS (MB)", "{:.1f}", 1.0, True),
    ("startup_s", "start to subscribed (s)", "{:.2f}", None, True),
]
COUNTS = ["lost", "duplicated", "wrong"]


def run_phase(
    lg: LoadGen,
    bot: _procs.Child,
    side: Side,
    mode: str,
    args: argparse.Namespace,
    tag: str,
    progress: ProgressLine,
    label: str,
) -> dict[str, Any]:
    n = args.users * args.messages
    lg.call("reset")
    cpu0 = _procs.cpu_seconds(bot.pid)
    ticks0 = _procs.cpu_ticks_seconds(bot.pid)
    res = lg.call(
        "load",
        bot_id=side.bot_id,
        mode=mode,
        users=args.users,
        messages=args.messages,
        timeout=args.timeout,
        tag=tag,
        on_progress=progress.bar(label),
    )
    cpu = _procs.cpu_seconds(bot.pid) - cpu0
    ticks = _procs.cpu_ticks_seconds(bot.pid) - ticks0
    lat = _procs.latency_summary(res["latencies"])
    return {
        **lat,
        "messages": n,
        "replied": len(res["latencies"]),
        "lost": res["lost"] + res["unsent"],
        "duplicated": res["duplicated"],
        "wrong": res["wrong"],
        "examples": res["examples"],
        "duration_s": res["duration"],
        "throughput": n / res["duration"] if res["duration"] > 0 else float("nan"),
        "cpu_s": cpu,
        "cpu_us_per_msg": cpu / n * 1e6,
        "cpu_ticks_us_per_msg": ticks / n * 1e6,
        "loadgen_cpu_us_per_msg": res["loadgen_cpu"] / n * 1e6,
        "latencies_ms": [round(x * 1e3, 3) for x in res["latencies"]],
    }


def start_bot(lg: LoadGen, side: Side, name: str, args: argparse.Namespace) -> _procs.Child:
    if side.reference:
        return _procs.start_reference_bot(name, lg.url, side.bot_id, SECRET)
    # A burst queues M messages per user: the per-conversation queue must hold them
    # (default 8; beyond it a message is answered "busy" by design).
    settings = {
        "WECOM_SESSION_QUEUE_SIZE": str(max(8, args.messages)),
        "WECOM_HANDLER_CONCURRENCY": str(max(64, args.users)),
        **dict(side.settings),
    }
    return _procs.start_our_bot(name, lg.url, side.bot_id, SECRET, **settings)


def start_and_warm(
    lg: LoadGen,
    side: Side,
    name: str,
    args: argparse.Namespace,
    subscribes: dict[str, int],
    procs: list[_procs.Child],
    tag: str,
) -> _procs.Child:
    bot = start_bot(lg, side, name, args)
    procs.append(bot)
    subscribes[side.key] = subscribes.get(side.key, 0) + 1
    lg.wait_subscribed(bot, side.bot_id, subscribes[side.key])
    # warm-up, not measured: imports, first-use allocations, caches
    lg.call(
        "load",
        bot_id=side.bot_id,
        mode="closed",
        users=min(10, args.users),
        messages=3,
        timeout=30.0,
        tag=tag,
    )
    return bot


def run_round(
    lg: LoadGen,
    side: Side,
    rnd: int,
    args: argparse.Namespace,
    subscribes: dict[str, int],
    progress: ProgressLine,
    procs: list[_procs.Child],
) -> dict[str, Any]:
    name = f"longconn-{side.key}-r{rnd}"
    label = f"round {rnd}/{args.rounds} {side.label}"
    t0 = time.monotonic()
    progress.show(f"{label}: starting")
    bot = start_and_warm(lg, side, name, args, subscribes, procs, f"w{rnd}{side.key}")
    try:
        startup = time.monotonic() - t0
        load0 = os.getloadavg()[0]
        closed = run_phase(
            lg, bot, side, "closed", args, f"c{rnd}{side.key}", progress, f"{label} closed"
        )
        burst = run_phase(
            lg, bot, side, "burst", args, f"b{rnd}{side.key}", progress, f"{label} burst "
        )
        mem = _procs.memory_kb(bot.pid)
        if not bot.alive():
            raise RuntimeError(f"{name} died:\n{bot.log_tail()}")
    finally:
        code = bot.stop()
        procs.remove(bot)
    progress.log(
        f"{label}: closed {closed['cpu_us_per_msg']:.0f} µs/msg, p99 {closed['p99_ms']:.1f} ms; "
        f"burst {burst['cpu_us_per_msg']:.0f} µs/msg, p99 {burst['p99_ms']:.0f} ms; "
        f"peak RSS {mem['VmHWM'] / 1024:.1f} MB; lost {closed['lost'] + burst['lost']}, "
        f"dup {closed['duplicated'] + burst['duplicated']}, wrong {closed['wrong'] + burst['wrong']}"
    )
    return {
        "round": rnd,
        "bot": side.key,
        "closed": closed,
        "burst": burst,
        "peak_rss_mb": mem["VmHWM"] / 1024,
        "rss_mb": mem["VmRSS"] / 1024,
        "startup_s": startup,
        "exit_code": code,
        "loadavg_1min_before": load0,
        "log": str(bot.log_path.relative_to(_procs.ROOT)),
    }


def profile_pass(
    lg: LoadGen,
    side: Side,
    args: argparse.Namespace,
    subscribes: dict[str, int],
    progress: ProgressLine,
    procs: list[_procs.Child],
) -> dict[str, Any]:
    """One more closed + burst pass with py-spy attached (its figures are not reported)."""
    bot = start_and_warm(
        lg, side, f"longconn-{side.key}-profile", args, subscribes, procs, f"wp{side.key}"
    )
    path = _common.RESULTS_DIR / f"profile-longconn-{side.key}.txt"
    try:
        spy = _procs.PySpy(procs, bot.pid, path)
        try:
            for mode in ("closed", "burst"):
                lg.call("reset")
                lg.call(
                    "load",
                    bot_id=side.bot_id,
                    mode=mode,
                    users=args.users,
                    messages=args.messages,
                    timeout=args.timeout,
                    tag=f"p{mode[0]}{side.key}",
                    on_progress=progress.bar(f"profiling {side.label} {mode}"),
                )
        finally:
            spy.stop()
            procs.remove(spy.child)
    finally:
        bot.stop()
        procs.remove(bot)
    progress.done()
    summary = _procs.profile_summary(path, strip=str(_procs.ROOT) + "/")
    return {"path": str(path.relative_to(_procs.ROOT)), **summary}


def steps_pass(
    lg: LoadGen,
    side: Side,
    args: argparse.Namespace,
    subscribes: dict[str, int],
    progress: ProgressLine,
    procs: list[_procs.Child],
) -> dict[str, Any]:
    """Task steps (scheduler wake-ups) and tasks spawned per message, by task name, per mode:
    our bot under ``_steps_bot.py`` (a trio instrument), one process per mode."""
    out: dict[str, Any] = {}
    n = args.users * args.messages
    for mode in ("closed", "burst"):
        path = _common.RESULTS_DIR / f"steps-{side.key}-{mode}.json"
        path.unlink(missing_ok=True)
        settings = {
            "WECOM_SESSION_QUEUE_SIZE": str(max(8, args.messages)),
            "WECOM_HANDLER_CONCURRENCY": str(max(64, args.users)),
            "WECOM_WS_URL": lg.url,
            "WECOM_BOT_ID": side.bot_id,
            "WECOM_BOT_SECRET": SECRET,
            "WECOM_LOG_LEVEL": "WARNING",
            **dict(side.settings),
        }
        argv = [sys.executable, str(_procs.HERE / "_steps_bot.py"), "--out", str(path)]
        bot = _procs.Child(
            f"longconn-{side.key}-steps-{mode}", argv, env=_procs.clean_env(**settings)
        )
        procs.append(bot)
        try:
            subscribes[side.key] = subscribes.get(side.key, 0) + 1
            lg.wait_subscribed(bot, side.bot_id, subscribes[side.key])
            lg.call("load", bot_id=side.bot_id, mode="closed", users=min(10, args.users),
                    messages=3, timeout=30.0, tag=f"ws{mode[0]}{side.key}")  # fmt: skip
            lg.call("reset")
            bot.proc.send_signal(signal.SIGUSR1)
            time.sleep(0.2)
            lg.call("load", bot_id=side.bot_id, mode=mode, users=args.users,
                    messages=args.messages, timeout=args.timeout, tag=f"s{mode[0]}{side.key}",
                    on_progress=progress.bar(f"counting steps {side.label} {mode}"))  # fmt: skip
        finally:
            bot.stop()
            procs.remove(bot)
        data = json.loads(path.read_text())
        steps, spawned = data["steps"], data["spawned"]
        out[mode] = {
            "steps_per_msg": sum(steps.values()) / n,
            "spawned_per_msg": sum(spawned.values()) / n,
            "by_task": {k: v / n for k, v in sorted(steps.items(), key=lambda kv: -kv[1])},
            "spawned_by_task": {
                k: v / n for k, v in sorted(spawned.items(), key=lambda kv: -kv[1])
            },
        }
    progress.done()
    return out


def format_steps(label: str, steps: dict[str, Any], top: int = 10) -> str:
    lines = []
    for mode, d in steps.items():
        lines.append(
            f"{label}, {mode}: {d['steps_per_msg']:.1f} task steps and "
            f"{d['spawned_per_msg']:.2f} tasks spawned per message"
        )
        for name, per in list(d["by_task"].items())[:top]:
            lines.append(f"  {per:6.2f}  {name}")
    return "\n".join(lines)


def _get(r: dict[str, Any], key: str) -> float:
    obj: Any = r
    for part in key.split("."):
        obj = obj[part]
    return float(obj)


def summarize(rounds: list[dict[str, Any]], sides: list[Side]) -> dict[str, Any]:
    ref = next((s for s in sides if s.reference), None)
    ours = [s for s in sides if not s.reference]
    summary: dict[str, Any] = {
        "sides": {s.key: s.label for s in sides},
        "figures": {},
        "counts": {},
    }
    for key, label, _, target, lower in FIGURES:
        row: dict[str, Any] = {"label": label, "target_ratio": target, "lower_is_better": lower}
        for side in sides:
            row[side.key] = _procs.median([_get(r, key) for r in rounds if r["bot"] == side.key])
        if ref is not None:
            for side in ours:
                if row[ref.key]:
                    row[f"ratio:{side.key}"] = ratio = row[side.key] / row[ref.key]
                    if target is not None:
                        row[f"met:{side.key}"] = ratio <= target
        summary["figures"][key] = row
    for side in sides:
        mine = [r for r in rounds if r["bot"] == side.key]
        counts = {c: sum(r[m][c] for r in mine for m in ("closed", "burst")) for c in COUNTS}
        counts["messages"] = sum(r[m]["messages"] for r in mine for m in ("closed", "burst"))
        summary["counts"][side.key] = counts
    return summary


def render(summary: dict[str, Any], sides: list[Side]) -> str:
    ref = next((s for s in sides if s.reference), None)
    ours = [s for s in sides if not s.reference]
    compare = ours if ref is not None else []
    many = len(compare) > 1
    headers = ["figure (median over rounds)", *(s.label for s in sides)]
    headers += [f"{s.label}/ref" if many else "ours/ref" for s in compare]
    if compare:
        headers.append("target")
    headers += [f"met {s.label}" if many else "met" for s in compare]
    cells = []
    for key, _, fmt, target, _ in FIGURES:
        row = summary["figures"][key]
        line = [row["label"], *(fmt.format(row[s.key]) for s in sides)]
        line += [f"{row[f'ratio:{s.key}']:.2f}" if f"ratio:{s.key}" in row else "" for s in compare]
        if compare:
            line.append(f"<= {target:.1f}" if target is not None else "")
        line += [
            ("yes" if row[f"met:{s.key}"] else "NO") if f"met:{s.key}" in row else ""
            for s in compare
        ]
        cells.append(line)
    for c in COUNTS:
        counts = summary["counts"]
        line = [f"{c} replies (all rounds)", *(str(counts[s.key][c]) for s in sides)]
        line += ["" for _ in compare]
        if compare:
            line.append("0")
        line += ["yes" if counts[s.key][c] == 0 else "NO" for s in compare]
        cells.append(line)
    align = "<" + ">" * (len(headers) - 1)
    return _common.format_table(headers, cells, align)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent users (default 50)")
    parser.add_argument("--messages", type=int, default=20, help="messages per user (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per bot (default 5)")
    parser.add_argument("--only", choices=("ours", "ref"), help="run one bot only")
    parser.add_argument(
        "--transport",
        choices=("default", "trio-websocket", "wsproto", "both"),
        default="default",
        help="our bot's WECOM_TRANSPORT: the package default (not set), one engine, or both "
        "engines as two bots side by side (default: default)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per phase (default 60)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the rounds, one more (unmeasured) pass of each bot under py-spy; prints the "
        "top functions and writes the collapsed stacks to benchmarks/results/profile-*.txt",
    )
    parser.add_argument(
        "--count-steps",
        action="store_true",
        help="after the rounds, one more (unmeasured) pass of our bot under a trio instrument: "
        "task steps (wake-ups) and tasks spawned per message, by task name",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
    args = parser.parse_args(argv)
    sides = sides_for(args.transport, args.only)
    progress = ProgressLine()
    t_start = time.monotonic()
    load_start = os.getloadavg()
    ref_version = None
    if any(s.reference for s in sides):
        ref_version = _procs.ensure_ref_venv(progress.log)
    rounds: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    steps: dict[str, Any] = {}
    subscribes: dict[str, int] = {}
    with _procs.children() as procs:
        lg = LoadGen(procs, {s.bot_id: SECRET for s in sides})
        progress.log(
            f"fake WeCom at {lg.url} (pid {lg.pid}); {args.users} users x {args.messages} messages, "
            f"{args.rounds} rounds, {' / '.join(s.label for s in sides)} interleaved"
        )
        for rnd in range(1, args.rounds + 1):
            for side in sides:
                rounds.append(run_round(lg, side, rnd, args, subscribes, progress, procs))
        if args.profile:
            for side in sides:
                profiles[side.key] = profile_pass(lg, side, args, subscribes, progress, procs)
        if args.count_steps:
            for side in sides:
                if not side.reference:
                    steps[side.key] = steps_pass(lg, side, args, subscribes, progress, procs)
        lg.quit()
    progress.done()
    summary = summarize(rounds, sides)
    print(render(summary, sides))
    m = _common.machine_info() | _procs.machine()
    elapsed = time.monotonic() - t_start
    print(
        f"\n{args.users} users x {args.messages} messages per phase, {args.rounds} rounds per bot; "
        f"{m['python']}, {m['cpu_count']} x {m['cpu_model']}; {elapsed:.0f} s in all; load average "
        f"{load_start[0]:.2f} at start. Ratios below 1 favour ours, except for throughput."
    )
    for key, prof in profiles.items():
        print(
            f"\nprofile of {summary['sides'][key]} (closed + burst, py-spy, CPU samples): {prof['path']}"
        )
        print(_procs.format_profile(prof))
    for key, st in steps.items():
        print()
        print(format_steps(summary["sides"][key], st))
    payload = {
        "benchmark": "longconn",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": m,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "sides": [
            {"key": s.key, "label": s.label, "settings": dict(s.settings), "reference": s.reference}
            for s in sides
        ],
        "packages": {
            **_common.package_versions(
                "wecom-actors", "trio", "trio-websocket", "wsproto", "msgspec"
            ),
            "wecom-aibot-python-sdk (reference venv)": ref_version,
        },
        "elapsed_s": elapsed,
        "summary": summary,
        "rounds": rounds,
        "profiles": profiles,
        "steps": steps,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; every process started was stopped", file=sys.stderr)
        sys.exit(130)
