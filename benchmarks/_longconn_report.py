"""The report of ``bench_longconn.py``: the figures compared (``FIGURES``), their medians over
the rounds and ratios ours / reference (``summarize``), the table (``render``) and the task-steps
summary (``format_steps``).
"""

from __future__ import annotations

from typing import Any

import _common
import _procstats
from _longconn_rounds import MODES, Side

# figure key, label, unit format, target ratio (ours/ref must be <= it), lower is better
FIGURES: list[tuple[str, str, str, float | None, bool]] = [
    ("closed.cpu_us_per_msg", "bot CPU per message, closed loop (µs)", "{:.0f}", 1.0, True),
    ("burst.cpu_us_per_msg", "bot CPU per message, burst (µs)", "{:.0f}", 0.8, True),
    ("closed.p50_ms", "latency p50, closed loop (ms)", "{:.2f}", None, True),
    ("closed.p95_ms", "latency p95, closed loop (ms)", "{:.2f}", None, True),
    ("closed.p99_ms", "latency p99, closed loop (ms)", "{:.2f}", 1.0, True),
    ("closed.max_ms", "latency max, closed loop (ms)", "{:.2f}", None, True),
    ("burst.p50_ms", "latency p50, burst (ms)", "{:.0f}", None, True),
    ("burst.p95_ms", "latency p95, burst (ms)", "{:.0f}", None, True),
    ("burst.p99_ms", "latency p99, burst (ms)", "{:.0f}", 1.0, True),
    ("burst.max_ms", "latency max, burst (ms)", "{:.0f}", None, True),
    ("paced.cpu_us_per_msg", "bot CPU per message, paced (µs)", "{:.0f}", 1.0, True),
    ("paced.p50_ms", "latency p50, paced (ms)", "{:.2f}", None, True),
    ("paced.p99_ms", "latency p99, paced (ms)", "{:.2f}", 1.0, True),
    ("closed.throughput", "throughput, closed loop (msg/s)", "{:.0f}", None, False),
    ("burst.throughput", "throughput, burst (msg/s)", "{:.0f}", None, False),
    ("closed.gen2_per_10k", "gen-2 collections per 10,000 msgs, closed", "{:.2f}", None, True),
    ("burst.gen2_per_10k", "gen-2 collections per 10,000 msgs, burst", "{:.2f}", None, True),
    ("peak_rss_mb", "peak RSS (MB)", "{:.1f}", 1.0, True),
    ("startup_s", "start to subscribed (s)", "{:.2f}", None, True),
]
COUNTS = ["lost", "duplicated", "wrong"]


def format_steps(label: str, steps: dict[str, Any], top: int = 10) -> str:
    lines = []
    for mode, d in steps.items():
        lines.append(
            f"{label}, {mode}: {d['steps_per_msg']:.1f} task steps and "
            f"{d['spawned_per_msg']:.2f} tasks spawned per message"
        )
        for name, per in list(d["by_task"].items())[:top]:
            lines.append(f"  {per:6.2f}  {name}")
        for name, mb in d.get("mailbox_batches", {}).items():
            lines.append(
                f"  mailbox {name}: {mb['messages']} messages in {mb['batches']} batches, "
                f"{mb['per_batch']:.2f} per batch"
            )
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
            row[side.key] = _procstats.median(
                [_get(r, key) for r in rounds if r["bot"] == side.key]
            )
        if ref is not None:
            for side in ours:
                if row[ref.key]:
                    row[f"ratio:{side.key}"] = ratio = row[side.key] / row[ref.key]
                    if target is not None:
                        row[f"met:{side.key}"] = ratio <= target
        summary["figures"][key] = row
    for side in sides:
        mine = [r for r in rounds if r["bot"] == side.key]
        counts = {c: sum(r[m][c] for r in mine for m in MODES) for c in COUNTS}
        counts["messages"] = sum(r[m]["messages"] for r in mine for m in MODES)
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
