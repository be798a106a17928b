"""Readings and figures of the process benchmarks (bench_longconn, bench_scale, bench_webhook).

Standard library only, and nothing here starts or stops a process: the /proc readings of a
running process (CPU time, RSS) and of the machine, percentiles over latencies, and the summary
of a py-spy profile (``_procs.PySpy`` records it).
"""

from __future__ import annotations

import contextlib
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")

# --- /proc readings -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of process ``pid`` so far, in seconds.

    The sum of ``sum_exec_runtime`` (ns) over the process's live threads
    (``/proc/<pid>/task/*/schedstat``): nanosecond resolution, where ``/proc/<pid>/stat``'s
    utime+stime come in clock ticks of 10 ms. Falls back to the ticks without schedstat.
    """
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
    except FileNotFoundError:
        return cpu_ticks_seconds(pid)
    return total / 1e9 if total else cpu_ticks_seconds(pid)


def cpu_ticks_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of ``/proc/<pid>/stat`` (all threads, clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # fields 14 and 15 of stat(5)


def cpu_ticks_seconds(pid: int) -> float:
    """utime+stime of ``/proc/<pid>/stat`` (all threads, clock ticks), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak RSS) of ``pid`` in KiB, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def memory_mb(pid: int) -> dict[str, float]:
    """:func:`memory_kb` in MiB: ``rss_mb`` (VmRSS) and ``peak_rss_mb`` (VmHWM)."""
    m = memory_kb(pid)
    return {"rss_mb": m["VmRSS"] / 1024, "peak_rss_mb": m["VmHWM"] / 1024}


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_total = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1])
    return {"cpu_model": model, "mem_total_mb": mem_total // 1024}


# --- figures --------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted values; NaN when empty."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def latency_summary(latencies: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean in milliseconds."""
    s = sorted(latencies)
    return {
        "p50_ms": percentile(s, 50) * 1e3,
        "p95_ms": percentile(s, 95) * 1e3,
        "p99_ms": percentile(s, 99) * 1e3,
        "max_ms": (s[-1] * 1e3) if s else float("nan"),
        "mean_ms": (statistics.fmean(s) * 1e3) if s else float("nan"),
    }


def median(values: Sequence[float]) -> float:
    vals = [v for v in values if v == v]  # drop NaN
    return statistics.median(vals) if vals else float("nan")


# --- py-spy profiles ------------------------------------------------------------------------------

# The event loop's poll: py-spy sometimes counts a thread blocked in epoll_wait as active.
POLL_FRAMES = ("EpollIOManager.get_events", "EpollSelector.select")


def profile_summary(raw: Path, *, top: int = 20, strip: str = "") -> dict[str, Any]:
    """Self and inclusive shares of the functions in a py-spy collapsed-stack file. Samples in
    the event loop's poll (``POLL_FRAMES``) are counted apart (``poll_share``) and left out of
    the shares: they are waiting, whether or not py-spy noticed."""
    self_n: dict[str, int] = {}
    incl_n: dict[str, int] = {}
    pkg_n: dict[str, int] = {}
    total = polled = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f.replace(strip, "") for f in stack.split(";")]
        if frames[-1].startswith(POLL_FRAMES):
            polled += n
            continue
        total += n
        self_n[frames[-1]] = self_n.get(frames[-1], 0) + n
        pkg = _package_of(frames[-1])
        pkg_n[pkg] = pkg_n.get(pkg, 0) + n
        for f in set(frames):
            incl_n[f] = incl_n.get(f, 0) + n

    def ranked(d: dict[str, int]) -> list[tuple[str, float]]:
        return (
            [(f, n / total) for f, n in sorted(d.items(), key=lambda kv: -kv[1])[:top]]
            if total
            else []
        )

    return {
        "samples": total,
        "poll_samples": polled,
        "self": ranked(self_n),
        "inclusive": ranked(incl_n),
        "self_by_package": ranked(pkg_n),
    }


def _package_of(frame: str) -> str:
    """``func (trio/_core/_run.py:12)`` -> ``trio``; stdlib modules -> ``stdlib``."""
    where = frame.rpartition("(")[2].rstrip(")")
    path = where.rpartition(":")[0]
    if "/" not in path:
        return "stdlib" if path.endswith(".py") or path.startswith("<frozen") else path or "?"
    top = path.split("/")[0]
    return "stdlib" if top in ("asyncio", "json", "collections", "concurrent", "logging") else top


def format_profile(summary: dict[str, Any], *, top: int = 15) -> str:
    lines = [
        f"{summary['samples']} samples (+{summary['poll_samples']} in the event loop's poll, left out)"
    ]
    lines.append(
        "  self time by package: "
        + ", ".join(f"{pkg} {share * 100:.0f}%" for pkg, share in summary["self_by_package"][:8])
    )
    for kind in ("self", "inclusive"):
        lines.append(f"  top {kind}:")
        for frame, share in summary[kind][:top]:
            lines.append(f"    {share * 100:5.1f}%  {frame}")
    return "\n".join(lines)
