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
from pathlib import Path
from typing import Any

import _common
import _procs
import _procstats
from _longconn_report import format_steps, render, summarize
from _longconn_rounds import MODES, SECRET, Rounds, sides_for
from _procs import LoadGen, ProgressLine

DEFAULT_JSON = _common.RESULTS_DIR / "longconn.json"


def _modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise argparse.ArgumentTypeError(f"phases are {', '.join(MODES)}, not {text!r}")
    return modes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent users (default 50)")
    parser.add_argument("--messages", type=int, default=20, help="messages per user (default 20)")
    parser.add_argument("--paced-users", type=int, default=20, help="users of the paced phase (default 20)")
    parser.add_argument(
        "--paced-messages", type=int, default=20, help="messages per user in the paced phase (default 20)"
    )
    parser.add_argument(
        "--paced-rate", type=float, default=20.0, help="messages a second in all, paced phase (default 20)"
    )
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
        "--profile-modes",
        type=_modes,
        default=MODES,
        help="phases the --profile pass records, comma-separated, one profile each "
        f"(default {','.join(MODES)})",
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
    run = _common.ProcessRun("longconn", args)
    ref_version = None
    if any(s.reference for s in sides):
        ref_version = _procs.ensure_ref_venv(progress.log)
    rounds: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    steps: dict[str, Any] = {}
    with _procs.children() as procs:
        lg = LoadGen(procs, {s.bot_id: SECRET for s in sides})
        progress.log(
            f"fake WeCom at {lg.url} (pid {lg.pid}); {args.users} users x {args.messages} messages, "
            f"{args.rounds} rounds, {' / '.join(s.label for s in sides)} interleaved"
        )
        passes = Rounds(lg, args, progress, procs)
        for rnd in range(1, args.rounds + 1):
            for side in sides:
                rounds.append(passes.round(side, rnd))
        if args.profile:
            for side in sides:
                profiles[side.key] = passes.profile(side)
        if args.count_steps:
            for side in sides:
                if not side.reference:
                    steps[side.key] = passes.steps(side)
        lg.quit()
    progress.done()
    summary = summarize(rounds, sides)
    run.report(
        render(summary, sides),
        before=f"{args.users} users x {args.messages} messages per phase, "
        f"{args.rounds} rounds per bot; ",
        after=". Ratios below 1 favour ours, except for throughput.",
    )
    for key, by_mode in profiles.items():
        for mode, prof in by_mode.items():
            print(f"\nprofile of {summary['sides'][key]}, {mode} (py-spy, CPU samples): {prof['path']}")
            print(_procstats.format_profile(prof))
    for key, st in steps.items():
        print()
        print(format_steps(summary["sides"][key], st))
    run.write(
        packages={
            **_common.package_versions(
                "wecom-actors", "trio", "trio-websocket", "wsproto", "msgspec"
            ),
            "wecom-aibot-python-sdk (reference venv)": ref_version,
        },
        results={"summary": summary, "rounds": rounds, "profiles": profiles, "steps": steps},
        setup={
            "sides": [
                {
                    "key": s.key,
                    "label": s.label,
                    "settings": dict(s.settings),
                    "reference": s.reference,
                }
                for s in sides
            ]
        },
    )
    return 0


if __name__ == "__main__":
    _common.run_script(main)
