"""Shared helpers for the benchmarks: timing, table printing, JSON results, machine facts.

Kept small and general on purpose; every ``bench_*.py`` script imports it as ``_common`` (the
scripts are run as files, so their own directory is on ``sys.path``). The process benchmarks
(bench_longconn, bench_scale, bench_webhook) share the frame of a run: ``ProcessRun`` and
``run_script``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import _procstats

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Timing:
    """Repeated measurements of one operation. ``ns_per_op`` is the median over ``repeats``."""

    ns_per_op: float
    ops_per_s: float
    repeats: list[float]  # ns/op of every repeat
    loops: int  # operations per repeat
    min_ns: float
    max_ns: float


@dataclass
class Row:
    """One line of a result table; ``extra`` ends up in the JSON only."""

    operation: str
    implementation: str
    timing: Timing
    ratio: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _calibrate(fn: Callable[[], object], warmup: float) -> float:
    """Warm ``fn`` up (caches, lazy imports, allocator) for at least ``warmup`` seconds and
    return its approximate cost in ns/op, from a loop that took at least 20 ms."""
    loops = 1
    deadline = time.perf_counter_ns() + int(warmup * 1e9)
    while True:
        t0 = time.perf_counter_ns()
        for _ in range(loops):
            fn()
        elapsed = time.perf_counter_ns() - t0
        if elapsed < 20_000_000:
            loops *= 2
        elif time.perf_counter_ns() >= deadline:
            return elapsed / loops


def measure_all(
    fns: Sequence[Callable[[], object]],
    *,
    seconds: float = 2.0,
    repeats: int = 7,
    warmup: float = 0.2,
) -> list[Timing]:
    """Time several operations with ``time.perf_counter_ns``, their repeats interleaved.

    Each function is warmed up and calibrated, then ``repeats`` rounds run one timed loop of
    every function in turn (so a change of machine load hits all of them alike, which keeps
    their ratios stable). Each function's loops together take about ``seconds``. The garbage
    collector is off during the timed loops (as ``timeit`` does); the median repeat is reported.
    """
    loops = [max(1, int(seconds * 1e9 / repeats / _calibrate(fn, warmup))) for fn in fns]
    results: list[list[float]] = [[] for _ in fns]
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            for fn, n, out in zip(fns, loops, results, strict=True):
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    fn()
                out.append((time.perf_counter_ns() - t0) / n)
    finally:
        if gc_was_enabled:
            gc.enable()
    timings = []
    for n, out in zip(loops, results, strict=True):
        median = statistics.median(out)
        timings.append(
            Timing(
                ns_per_op=median,
                ops_per_s=1e9 / median,
                repeats=out,
                loops=n,
                min_ns=min(out),
                max_ns=max(out),
            )
        )
    return timings


def measure(
    fn: Callable[[], object], *, seconds: float = 2.0, repeats: int = 7, warmup: float = 0.2
) -> Timing:
    """:func:`measure_all` for one operation."""
    return measure_all([fn], seconds=seconds, repeats=repeats, warmup=warmup)[0]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A plain-text table; ``align`` has one ``<`` or ``>`` per column (default: text left,
    the rest right)."""
    align = align or "<" * min(2, len(headers)) + ">" * (len(headers) - 2)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def rows_table(rows: Sequence[Row]) -> str:
    """The standard table: operation, implementation, ops/s, µs/op, ratio."""
    cells = [
        [
            r.operation,
            r.implementation,
            f"{r.timing.ops_per_s:,.0f}",
            f"{r.timing.ns_per_op / 1000:.2f}",
            "" if r.ratio is None else f"{r.ratio:.2f}x",
        ]
        for r in rows
    ]
    return format_table(["operation", "implementation", "ops/s", "µs/op", "ratio"], cells)


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
    }


def package_versions(*names: str) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_results(
    path: Path, *, benchmark: str, settings: dict[str, Any], rows: Sequence[Row], **extra: Any
) -> Path:
    """Write one benchmark run as JSON (parent directories created) and return the path."""
    payload = {
        "benchmark": benchmark,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "settings": settings,
        **extra,
        "results": [
            {
                "operation": r.operation,
                "implementation": r.implementation,
                "ops_per_s": r.timing.ops_per_s,
                "us_per_op": r.timing.ns_per_op / 1000,
                "ratio": r.ratio,
                "timing": asdict(r.timing),
                **r.extra,
            }
            for r in rows
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def argument_parser(
    description: str, default_json: Path, default_seconds: float
) -> argparse.ArgumentParser:
    """The common command line: ``--seconds`` (timed seconds per row), ``--repeats``, ``--json``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--seconds",
        type=float,
        default=default_seconds,
        help=f"timed seconds per table row, split over the repeats (default {default_seconds})",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=7,
        help="timed repeats per row; the median is reported (default 7)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=default_json,
        help=f"where to write the JSON results (default {default_json})",
    )
    return parser


# --- the frame of a process benchmark's run -------------------------------------------------------


class ProcessRun:
    """One run of a process benchmark, from its start (time, and load average unless
    ``load_start`` is false) to its closing line and its JSON record at ``args.json``."""

    def __init__(self, benchmark: str, args: argparse.Namespace, *, load_start: bool = True):
        self.benchmark = benchmark
        self.args = args
        self.t_start = time.monotonic()
        self.load_start = os.getloadavg() if load_start else None
        self.machine: dict[str, Any] = {}
        self.elapsed = 0.0

    def report(self, table: str, *, before: str = "", after: str = "") -> None:
        """Print the result table, then one line: ``before``, Python and the CPUs, the time the
        run took, the load average at its start (when taken), ``after``."""
        print(table)
        self.machine = m = machine_info() | _procstats.machine()
        self.elapsed = time.monotonic() - self.t_start
        load = (
            "" if self.load_start is None else f"; load average {self.load_start[0]:.2f} at start"
        )
        print(
            f"\n{before}{m['python']}, {m['cpu_count']} x {m['cpu_model']}; "
            f"{self.elapsed:.0f} s in all{load}{after}"
        )

    def write(
        self,
        packages: dict[str, Any],
        results: dict[str, Any],
        *,
        setup: dict[str, Any] | None = None,
    ) -> None:
        """Write the JSON record (after :meth:`report`): the machine, the load averages, the
        command-line settings, ``setup`` (what was compared, if anything beyond the settings), the
        package versions, the time taken and ``results``."""
        payload = {
            "benchmark": self.benchmark,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": self.machine,
            **({} if self.load_start is None else {"loadavg_start": self.load_start}),
            "loadavg_end": os.getloadavg(),
            "settings": {k: v for k, v in vars(self.args).items() if k != "json"},
            **(setup or {}),
            "packages": packages,
            "elapsed_s": self.elapsed,
            **results,
        }
        path: Path = self.args.json
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"results written to {path}")


def run_script(main: Callable[[], int]) -> NoReturn:
    """A process benchmark's ``__main__``: exit with ``main()``'s code, or 130 on Ctrl-C or
    SIGTERM (by then ``_procs.children`` has stopped every process the run started)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; every process started was stopped", file=sys.stderr)
        sys.exit(130)
