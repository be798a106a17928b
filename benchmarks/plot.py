"""Plot the long-connection results: latency percentiles and CPU per message, ours vs reference.

    python benchmarks/plot.py [--json benchmarks/results/longconn.json] [--out docs/benchmarks-longconn.png]

Needs matplotlib (``pip install matplotlib``; not a dependency of the package). Reads the JSON
written by ``bench_longconn.py`` and draws, per bot, the medians over the rounds: latency
p50/p95/p99/max in closed-loop and burst mode (ms) and bot CPU time per message. The
PNG is small (about 40 KB) so it can be committed under docs/.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "longconn.json"
DEFAULT_OUT = HERE.parent / "docs" / "benchmarks-longconn.png"
PERCENTILES = ("p50", "p95", "p99", "max")
COLOURS = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"]  # ours variants first, reference last


def _bars(
    ax: Any,
    sides: list[tuple[str, str]],
    groups: dict[str, dict[str, float]],
    ylabel: str,
    title: str,
) -> None:
    """Per group (tick label -> a figure of the summary), one bar per side, side by side."""
    width = 0.8 / len(sides)
    for i, (key, label) in enumerate(sides):
        values = [figure[key] for figure in groups.values()]
        xs = [j + (i - (len(sides) - 1) / 2) * width for j in range(len(groups))]
        ax.bar(xs, values, width, label=label, color=COLOURS[i % len(COLOURS)])
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)


def plot(data: dict[str, Any], out: Path) -> Path:
    summary = data["summary"]
    sides = list(summary["sides"].items())  # key -> label, in run order (reference last)
    figures = summary["figures"]
    fig, axes = plt.subplots(
        1, 3, figsize=(11, 3.8), dpi=100, gridspec_kw={"width_ratios": [2, 2, 1.3]}
    )
    for ax, mode, title in (
        (axes[0], "closed", "latency, closed loop"),
        (axes[1], "burst", "latency, burst"),
    ):
        _bars(ax, sides, {p: figures[f"{mode}.{p}_ms"] for p in PERCENTILES}, "ms", title)
    cpu = {m: figures[f"{m}.cpu_us_per_msg"] for m in ("closed", "burst")}
    _bars(axes[2], sides, cpu, "µs per message", "bot CPU per message")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(sides), fontsize=8, frameon=False)
    s = data["settings"]
    m = data["machine"]
    fig.suptitle(
        f"echo bot, {s['users']} users x {s['messages']} messages, medians of {s['rounds']} "
        f"interleaved rounds; {m['cpu_count']} x {m['cpu_model']}, Python {m['python']}",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    args = parser.parse_args(argv)
    data = json.loads(args.json.read_text(encoding="utf-8"))
    out = plot(data, args.out)
    print(f"plot written to {out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
