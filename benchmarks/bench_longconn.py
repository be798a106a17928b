"""Long-connection load, side by side with the official Python SDK, in one run.

    python benchmarks/bench_longconn.py [--users U] [--messages M] [--rounds R] [--only ours|ref]

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
ratio ours / reference for every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import _common
import _procs
from _procs import LoadGen, ProgressLine

DEFAULT_JSON = _common.RESULTS_DIR / "longconn.json"
OURS, REF = "bot-ours", "bot-ref"
SECRET = "bench-secret"
SIDES = {OURS: "ours (wecom_actors)", REF: "reference (official SDK)"}

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
    lg: LoadGen, bot: _procs.Child, bot_id: str, mode: str, args: argparse.Namespace,
    tag: str, progress: ProgressLine, label: str,
) -> dict[str, Any]:  # fmt: skip
    n = args.users * args.messages
    lg.call("reset")
    cpu0 = _procs.cpu_seconds(bot.pid)
    ticks0 = _procs.cpu_ticks_seconds(bot.pid)
    res = lg.call(
        "load", bot_id=bot_id, mode=mode, users=args.users, messages=args.messages,
        timeout=args.timeout, tag=tag, on_progress=progress.bar(label),
    )  # fmt: skip
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


def run_round(
    lg: LoadGen, bot_id: str, rnd: int, args: argparse.Namespace, subscribes: dict[str, int],
    progress: ProgressLine, procs: list[_procs.Child],
) -> dict[str, Any]:  # fmt: skip
    name = f"longconn-{'ours' if bot_id == OURS else 'ref'}-r{rnd}"
    label = f"round {rnd}/{args.rounds} {'ours' if bot_id == OURS else 'ref '}"
    t0 = time.monotonic()
    if bot_id == OURS:
        # A burst queues M messages per user: the per-conversation queue must hold them
        # (default 8; beyond it a message is answered "busy" by design).
        bot = _procs.start_our_bot(
            name, lg.url, OURS, SECRET,
            WECOM_SESSION_QUEUE_SIZE=str(max(8, args.messages)),
            WECOM_HANDLER_CONCURRENCY=str(max(64, args.users)),
        )  # fmt: skip
    else:
        bot = _procs.start_reference_bot(name, lg.url, REF, SECRET)
    procs.append(bot)
    try:
        subscribes[bot_id] += 1
        progress.show(f"{label} starting")
        try:
            lg.call("wait_subscribed", bot_id=bot_id, count=subscribes[bot_id], timeout=30.0)
        except _procs.LoadGenError:
            raise RuntimeError(f"{name} did not subscribe:\n{bot.log_tail()}") from None
        startup = time.monotonic() - t0
        lg.call("load", bot_id=bot_id, mode="closed", users=min(10, args.users), messages=3,
                timeout=30.0, tag=f"w{rnd}{bot_id[-1]}")  # fmt: skip  # warm-up
        closed = run_phase(lg, bot, bot_id, "closed", args, f"c{rnd}{bot_id[-1]}", progress,
                           f"{label} closed")  # fmt: skip
        burst = run_phase(lg, bot, bot_id, "burst", args, f"b{rnd}{bot_id[-1]}", progress,
                          f"{label} burst ")  # fmt: skip
        mem = _procs.memory_kb(bot.pid)
        if not bot.alive():
            raise RuntimeError(f"{name} died:\n{bot.log_tail()}")
    finally:
        code = bot.stop()
        procs.remove(bot)
    progress.log(
        f"{label}: closed cpu {closed['cpu_us_per_msg']:.0f} µs/msg, p99 {closed['p99_ms']:.1f} ms; "
        f"burst cpu {burst['cpu_us_per_msg']:.0f} µs/msg, p99 {burst['p99_ms']:.0f} ms; "
        f"peak RSS {mem['VmHWM'] / 1024:.1f} MB; lost {closed['lost'] + burst['lost']}, "
        f"dup {closed['duplicated'] + burst['duplicated']}, wrong {closed['wrong'] + burst['wrong']}"
    )
    return {
        "round": rnd,
        "bot": bot_id,
        "closed": closed,
        "burst": burst,
        "peak_rss_mb": mem["VmHWM"] / 1024,
        "rss_mb": mem["VmRSS"] / 1024,
        "startup_s": startup,
        "exit_code": code,
        "log": str(bot.log_path.relative_to(_procs.ROOT)),
    }


def profile_pass(
    lg: LoadGen, bot_id: str, args: argparse.Namespace, subscribes: dict[str, int],
    progress: ProgressLine, procs: list[_procs.Child],
) -> dict[str, Any]:  # fmt: skip
    """One more closed + burst pass with py-spy attached (its figures are not reported)."""
    side = "ours" if bot_id == OURS else "ref"
    if bot_id == OURS:
        bot = _procs.start_our_bot(
            f"longconn-{side}-profile", lg.url, OURS, SECRET,
            WECOM_SESSION_QUEUE_SIZE=str(max(8, args.messages)),
            WECOM_HANDLER_CONCURRENCY=str(max(64, args.users)),
        )  # fmt: skip
    else:
        bot = _procs.start_reference_bot(f"longconn-{side}-profile", lg.url, REF, SECRET)
    procs.append(bot)
    path = _common.RESULTS_DIR / f"profile-longconn-{side}.txt"
    try:
        subscribes[bot_id] += 1
        lg.call("wait_subscribed", bot_id=bot_id, count=subscribes[bot_id], timeout=30.0)
        lg.call("load", bot_id=bot_id, mode="closed", users=min(10, args.users), messages=3,
                timeout=30.0, tag=f"wp{bot_id[-1]}")  # fmt: skip
        spy = _procs.PySpy(procs, bot.pid, path)
        try:
            for mode in ("closed", "burst"):
                lg.call("load", bot_id=bot_id, mode=mode, users=args.users, messages=args.messages,
                        timeout=args.timeout, tag=f"p{mode[0]}{bot_id[-1]}",
                        on_progress=progress.bar(f"profiling {side} {mode}"))  # fmt: skip
        finally:
            spy.stop()
            procs.remove(spy.child)
    finally:
        bot.stop()
        procs.remove(bot)
    progress.done()
    summary = _procs.profile_summary(path, strip=str(_procs.ROOT) + "/")
    return {"path": str(path.relative_to(_procs.ROOT)), **summary}


def _get(r: dict[str, Any], key: str) -> float:
    obj: Any = r
    for part in key.split("."):
        obj = obj[part]
    return float(obj)


def summarize(rounds: list[dict[str, Any]], sides: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {"figures": {}, "counts": {}}
    for key, label, _, target, lower in FIGURES:
        row: dict[str, Any] = {"label": label, "target_ratio": target, "lower_is_better": lower}
        for side in sides:
            row[side] = _procs.median([_get(r, key) for r in rounds if r["bot"] == side])
        if OURS in sides and REF in sides and row[REF]:
            row["ratio"] = row[OURS] / row[REF]
            if target is not None:
                row["met"] = row["ratio"] <= target
        summary["figures"][key] = row
    for side in sides:
        mine = [r for r in rounds if r["bot"] == side]
        summary["counts"][side] = {
            c: sum(r[m][c] for r in mine for m in ("closed", "burst")) for c in COUNTS
        }
        summary["counts"][side]["messages"] = sum(
            r[m]["messages"] for r in mine for m in ("closed", "burst")
        )
    return summary


def render(summary: dict[str, Any], sides: list[str]) -> str:
    both = OURS in sides and REF in sides
    headers = ["figure (median over rounds)", *(SIDES[s].split(" ")[0] for s in sides)]
    if both:
        headers += ["ours/ref", "target", "met"]
    cells = []
    for key, _, fmt, target, _ in FIGURES:
        row = summary["figures"][key]
        line = [row["label"], *(fmt.format(row[s]) for s in sides)]
        if both:
            line += [
                f"{row['ratio']:.2f}" if "ratio" in row else "",
                f"<= {target:.1f}" if target is not None else "",
                ("yes" if row["met"] else "NO") if "met" in row else "",
            ]
        cells.append(line)
    for c in COUNTS:
        line = [f"{c} replies (all rounds)", *(str(summary["counts"][s][c]) for s in sides)]
        if both:
            ok = all(summary["counts"][s][c] == 0 for s in sides)
            ours_ok = summary["counts"][OURS][c] == 0
            line += ["", "0 (ours)", "yes" if ours_ok else "NO"]
            if not ok and ours_ok:
                line[-1] = "yes (ref not 0)"
        cells.append(line)
    align = "<" + ">" * (len(headers) - 1)
    return _common.format_table(headers, cells, align)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent users (default 50)")
    parser.add_argument("--messages", type=int, default=20, help="messages per user (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per bot (default 5)")
    parser.add_argument("--only", choices=("ours", "ref"), help="run one bot only")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per phase (default 60)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the rounds, one more (unmeasured) pass of each bot under py-spy; prints the "
        "top functions and writes the collapsed stacks to benchmarks/results/profile-*.txt",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
    args = parser.parse_args(argv)
    sides = [OURS, REF] if args.only is None else [OURS if args.only == "ours" else REF]
    progress = ProgressLine()
    t_start = time.monotonic()
    ref_version = None
    if REF in sides:
        ref_version = _procs.ensure_ref_venv(progress.log)
    rounds: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    subscribes = dict.fromkeys((OURS, REF), 0)
    with _procs.children() as procs:
        lg = LoadGen(procs, {OURS: SECRET, REF: SECRET})
        progress.log(
            f"fake WeCom at {lg.url} (pid {lg.pid}); {args.users} users x {args.messages} messages, "
            f"{args.rounds} rounds, {' / '.join(SIDES[s] for s in sides)} interleaved"
        )
        for rnd in range(1, args.rounds + 1):
            for side in sides:
                rounds.append(run_round(lg, side, rnd, args, subscribes, progress, procs))
        if args.profile:
            for side in sides:
                profiles[side] = profile_pass(lg, side, args, subscribes, progress, procs)
        lg.quit()
    progress.done()
    summary = summarize(rounds, sides)
    print(render(summary, sides))
    m = _common.machine_info() | _procs.machine()
    elapsed = time.monotonic() - t_start
    print(
        f"\n{args.users} users x {args.messages} messages per phase, {args.rounds} rounds per bot; "
        f"{m['python']}, {m['cpu_count']} x {m['cpu_model']}; {elapsed:.0f} s in all. "
        "Ratios < 1 are better for ours, except throughput."
    )
    payload = {
        "benchmark": "longconn",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": m,
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "packages": {
            **_common.package_versions("wecom-actors", "trio", "trio-websocket", "msgspec"),
            "wecom-aibot-python-sdk (reference venv)": ref_version,
        },
        "elapsed_s": elapsed,
        "summary": summary,
        "rounds": rounds,
        "profiles": profiles,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for side, prof in profiles.items():
        print(f"\nprofile of {SIDES[side]} (closed + burst, py-spy, CPU samples): {prof['path']}")
        print(_procs.format_profile(prof))
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; every process started was stopped", file=sys.stderr)
        sys.exit(130)
