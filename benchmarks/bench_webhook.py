"""Webhook mode, side by side with a minimal aiohttp webhook echo bot, in one run.

    python benchmarks/bench_webhook.py [--users U] [--messages M] [--poll-interval S]
                                       [--rounds R] [--only ours|ref] [--profile]
                                       [--check-users N] [--check-messages K]

Per pass, two processes: the bot under test on a free port of 127.0.0.1 and the load generator
(``_webhook_loadgen.py``: the bundled fake WeCom's webhook driver, real HTTP on loopback). The
bots: ours (``wecom-actors run --mode webhook --handler echo --log-level WARNING``, hypercorn's
trio worker) and the reference (``reference_webhook_bot.py`` on aiohttp, in
``benchmarks/.venv-ref-webhook``, created on first run). Both echo the same way: the POST is
answered with the first half of the text, a refresh with the whole text and ``finish``.

Rounds, interleaved (ours, reference, ours, ...), each a fresh bot: U users (50) x M messages
(10), closed loop per user, refresh polls every S s (0.2) until ``finish``. Measured per round:
callbacks per message (POSTs: the message and its refreshes), the bot's CPU time per callback
and per message (``/proc/<pid>/task/*/schedstat``), time to first reply and to finish, peak
RSS (VmHWM), the echo contract (lost / wrong). The table shows medians over the rounds and
ours / reference. Then the check: N users (100) x K messages (5) at WeCom's poll rate (1 s),
one pass per bot: no request (message or refresh) may take above 1 s. ``--profile`` adds an
unmeasured pass of each bot under py-spy.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import _common
import _procs
import _procstats
from _procs import ProgressLine
from _webhook_rounds import Side, run_pass, sides_for

DEFAULT_JSON = _common.RESULTS_DIR / "webhook.json"
SLOW_REQUEST_MS = 1000.0
#: (figure, key in a round's figures, ours/ref target or None)
RATIO_ROWS: tuple[tuple[str, tuple[str, ...], float | None], ...] = (
    ("callbacks per message", ("callbacks_per_msg",), 1.0),
    ("bot CPU per callback (µs)", ("cpu_us_per_callback",), 1.5),
    ("bot CPU per message (µs)", ("cpu_us_per_msg",), None),
    ("time to first reply p50 (ms)", ("first_reply", "p50_ms"), None),
    ("time to first reply p99 (ms)", ("first_reply", "p99_ms"), None),
    ("time to finish p50 (ms)", ("finish", "p50_ms"), None),
    ("time to finish p99 (ms)", ("finish", "p99_ms"), 1.2),
    ("time to finish max (ms)", ("finish", "max_ms"), None),
    ("callbacks per second", ("callbacks_per_s",), None),
    ("slowest request (ms)", ("request_max_ms",), None),
    ("peak RSS (MB)", ("peak_rss_mb",), 1.2),
)


def _get(r: dict[str, Any], path: tuple[str, ...]) -> float:
    value: Any = r
    for key in path:
        value = value[key]
    return float(value)


def summarize(rounds: list[dict[str, Any]], sides: list[Side]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in sides:
        mine = [r for r in rounds if r["bot"] == side.key]
        out[side.key] = {
            "label": side.label,
            "medians": {
                figure: _procstats.median([_get(r, path) for r in mine])
                for figure, path, _ in RATIO_ROWS
            },
            "per_round": {
                figure: [round(_get(r, path), 2) for r in mine] for figure, path, _ in RATIO_ROWS
            },
            "lost": sum(r["lost"] for r in mine),
            "wrong": sum(r["wrong"] for r in mine),
            "http_errors": sum(r["http_errors"] for r in mine),
            "protocol_errors": sum(r["protocol_errors"] for r in mine),
        }
    return out


def render(summary: dict[str, Any], checks: dict[str, Any], sides: list[Side]) -> str:
    """Medians per bot; with the reference, each of ours / reference, the target and whether
    each of ours meets it (``yes / NO`` in the order of the columns)."""
    ours = [s for s in sides if not s.reference]
    ref = next((s for s in sides if s.reference), None)
    compare = ref is not None and bool(ours)
    headers = ["figure (median of the rounds)", *(s.label for s in sides)]
    if compare:
        headers += [f"{s.label}/ref" for s in ours] + ["target", "met"]

    def verdicts(oks: list[bool]) -> str:
        return " / ".join("yes" if ok else "NO" for ok in oks)

    rows = []
    for figure, _, target in RATIO_ROWS:
        vals = {s.key: summary[s.key]["medians"][figure] for s in sides}
        row = [figure, *(f"{v:.2f}" if v < 10 else f"{v:.0f}" for v in vals.values())]
        if compare:
            assert ref is not None
            ratios = [vals[s.key] / vals[ref.key] if vals[ref.key] else float("nan") for s in ours]
            # three decimals where there is a target, so 1.204 does not read as a passing 1.20
            row += [f"{r:.3f}" if target is not None else f"{r:.2f}" for r in ratios]
            row += ["", ""] if target is None else [f"<= {target:g}", verdicts([r <= target for r in ratios])]
        rows.append(row)
    errors = {s.key: summary[s.key] for s in sides}
    row = ["lost / wrong / HTTP / protocol errors (all rounds)"]
    row += [f"{e['lost']} / {e['wrong']} / {e['http_errors']} / {e['protocol_errors']}" for e in errors.values()]
    if compare:
        clean = [not any(errors[s.key][k] for k in ("lost", "wrong", "http_errors", "protocol_errors")) for s in ours]
        row += [""] * len(ours) + ["0", verdicts(clean)]
    rows.append(row)
    if checks:
        first = next(iter(checks.values()))
        what = f"{first['users']} users x {first['messages_per_user']}, polls {first['poll_interval_s']:g} s"
        for key, label, target in (("request_max_ms", "slowest request (ms)", "<= 1000"),
                                   ("requests_over_1s", "requests above 1 s", "0")):  # fmt: skip
            row = [f"{what}: {label}", *(f"{checks[s.key][key]:.0f}" if s.key in checks else "-" for s in sides)]
            if compare:
                oks = [s.key in checks and checks[s.key]["request_max_ms"] <= SLOW_REQUEST_MS for s in ours]
                row += [""] * len(ours) + [target, verdicts(oks)]
            rows.append(row)
    return _common.format_table(headers, rows, "<" + ">" * (len(headers) - 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent users (default 50)")
    parser.add_argument("--messages", type=int, default=10, help="messages per user (default 10)")
    parser.add_argument("--poll-interval", type=float, default=0.2,
                        help="seconds between refresh polls (default 0.2)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="rounds per bot (default 3)")
    parser.add_argument("--only", choices=("ours", "ref"), help="run one bot only")
    parser.add_argument("--check-users", type=int, default=100,
                        help="users of the slow-request check; 0 skips it (default 100)")  # fmt: skip
    parser.add_argument("--check-messages", type=int, default=5,
                        help="messages per user in the check (default 5)")  # fmt: skip
    parser.add_argument("--check-poll-interval", type=float, default=1.0,
                        help="seconds between refresh polls in the check (default 1, WeCom's)")  # fmt: skip
    parser.add_argument("--h11", action="store_true",
                        help="also run ours with hypercorn swapped for a bare h11 loop "
                        "(_webhook_h11_bot.py, an experiment)")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="one more (unmeasured) pass of each bot under py-spy")  # fmt: skip
    parser.add_argument("--profile-messages", type=int, default=40,
                        help="messages per user in the profiling pass (default 40)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per pass")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
    args = parser.parse_args(argv)
    sides = sides_for(args.only, args.h11)
    progress = ProgressLine()
    run = _common.ProcessRun("webhook", args)
    ref_version = None
    if any(s.reference for s in sides):
        ref_version = _procs.ensure_ref_webhook_venv(progress.log)
    rounds: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    profiles: dict[str, Any] = {}
    common = {"poll_interval": args.poll_interval, "timeout": args.timeout}
    with _procs.children() as procs:
        for rnd in range(1, args.rounds + 1):
            for side in sides:
                label = f"round {rnd}/{args.rounds} {side.label}"
                r = run_pass(side, procs, progress, name=f"webhook-{side.key}-r{rnd}", label=label,
                             users=args.users, messages=args.messages, **common)  # fmt: skip
                progress.log(
                    f"{label}: {r['callbacks_per_msg']:.2f} callbacks/msg, "
                    f"{r['cpu_us_per_callback']:.0f} µs/callback, finish p50 "
                    f"{r['finish']['p50_ms']:.0f} p99 {r['finish']['p99_ms']:.0f} ms, peak RSS "
                    f"{r['peak_rss_mb']:.1f} MB, lost {r['lost']}, wrong {r['wrong']}"
                )
                rounds.append({"round": rnd, "bot": side.key, **r})
        if args.check_users > 0:
            for side in sides:
                label = f"check {args.check_users} users {side.label}"
                checks[side.key] = c = run_pass(
                    side, procs, progress, name=f"webhook-{side.key}-check", label=label,
                    users=args.check_users, messages=args.check_messages,
                    poll_interval=args.check_poll_interval, timeout=args.timeout,
                )  # fmt: skip
                progress.log(f"{label}: slowest request {c['request_max_ms']:.0f} ms, "
                             f"{c['requests_over_1s']} above 1 s of {c['requests']}")  # fmt: skip
        if args.profile:
            for side in sides:
                path = _common.RESULTS_DIR / f"profile-webhook-{side.key}.txt"
                run_pass(side, procs, progress, name=f"webhook-{side.key}-profile",
                         label=f"profiling {side.label}", users=args.users,
                         messages=args.profile_messages, profile_path=path, **common)  # fmt: skip
                summary = _procstats.profile_summary(path, top=40, strip=str(_procs.ROOT) + "/")
                profiles[side.key] = {"path": str(path.relative_to(_procs.ROOT)), **summary}
    summary = summarize(rounds, sides)
    run.report(
        render(summary, checks, sides),
        before=f"{args.users} users x {args.messages} messages, polls every {args.poll_interval:g} s, "
        f"{args.rounds} rounds per bot; ",
        after=". Ratios below 1 favour ours.",
    )
    for key, prof in profiles.items():
        print(f"\nprofile of {summary.get(key, {}).get('label', key)} (py-spy, CPU samples): {prof['path']}")
        print(_procstats.format_profile(prof, top=30))
    run.write(
        packages={
            **_common.package_versions("wecom-actors", "hypercorn", "h11", "trio", "msgspec", "pycryptodome"),
            "aiohttp (reference venv)": ref_version,
        },
        results={"summary": summary, "rounds": rounds, "checks": checks, "profiles": profiles},
    )
    return 0


if __name__ == "__main__":
    _common.run_script(main)
