"""Coordinator-side helpers of the process benchmarks (bench_longconn, bench_scale, bench_webhook).

Standard library only: child processes that are always stopped, the load-generator client, the
/proc readings (CPU time, RSS), the reference SDK's virtual environment, percentiles and the
progress display.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOG_DIR = HERE / "results" / "logs"
REF_VENV = HERE / ".venv-ref"
REF_SDK = "wecom-aibot-python-sdk==1.0.2"
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


# --- child processes ------------------------------------------------------------------------------


class Child:
    """A child process in its own session (Ctrl-C reaches only the coordinator, which stops it),
    stderr to a log file under benchmarks/results/logs/."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = subprocess.DEVNULL,
    ) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOG_DIR / f"{name}.log"
        self._log = open(self.log_path, "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=env,
            stdin=stdin,
            stdout=stdout,
            stderr=self._log,
            start_new_session=True,
        )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def wait_exit(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the process to end by itself; True if it did."""
        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, sig: int = signal.SIGINT, grace: float = 6.0) -> int | None:
        """Signal, wait ``grace`` seconds, then kill. Returns the exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._log.close()
        return self.proc.returncode


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def children() -> Iterator[list[Child]]:
    """Every Child appended to the yielded list is stopped on exit, error, KeyboardInterrupt or
    SIGTERM (turned into KeyboardInterrupt while the block runs)."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    procs: list[Child] = []
    try:
        yield procs
    finally:
        for child in reversed(procs):
            with contextlib.suppress(Exception):
                child.stop()
        signal.signal(signal.SIGTERM, previous)


def clean_env(**wecom: str) -> dict[str, str]:
    """The environment without any inherited WECOM_* setting, plus ``wecom``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    env.update(wecom)
    return env


def start_our_bot(
    name: str, url: str, bot_id: str, secret: str, *, handler: str = "echo", **settings: str
) -> Child:
    """``python -m wecom_actors.cli run --handler H --log-level WARNING`` against ``url``."""
    env = clean_env(WECOM_WS_URL=url, WECOM_BOT_ID=bot_id, WECOM_BOT_SECRET=secret, **settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")]))
    argv = [
        sys.executable,
        "-m",
        "wecom_actors.cli",
        "run",
        "--handler",
        handler,
        "--log-level",
        "WARNING",
    ]
    return Child(name, argv, env=env)


def start_reference_bot(name: str, url: str, bot_id: str, secret: str) -> Child:
    env = clean_env(
        WECOM_WS_URL=url, WECOM_BOT_ID=bot_id, WECOM_BOT_SECRET=secret, WECOM_LOG_LEVEL="WARNING"
    )
    return Child(name, [str(ref_python()), str(HERE / "reference_bot.py")], env=env)


def interrupted(exc: BaseException) -> bool:
    """True when ``exc`` is only KeyboardInterrupt / cancellation (possibly in groups): a child
    stopped with SIGINT exits quietly."""
    if isinstance(exc, BaseExceptionGroup):
        return all(interrupted(e) for e in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "Cancelled"


# --- the reference SDK's virtual environment ------------------------------------------------------


def ref_python() -> Path:
    return REF_VENV / "bin" / "python"


def ensure_ref_venv(log: Callable[[str], None]) -> str:
    """Create benchmarks/.venv-ref with the official SDK on first use; return its version."""
    py = ref_python()
    check = [
        str(py),
        "-c",
        "import importlib.metadata as m; print(m.version('wecom-aibot-python-sdk'))",
    ]
    if py.exists():
        done = subprocess.run(check, capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.strip()
    log(f"creating {REF_VENV.relative_to(ROOT)} with {REF_SDK} (first run only) ...")
    venv.EnvBuilder(with_pip=True, clear=True).create(REF_VENV)
    # self-ignoring, like Python 3.13's venv does: never committed
    (REF_VENV / ".gitignore").write_text("*\n")
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", REF_SDK],
        check=True,
    )
    return subprocess.run(check, capture_output=True, text=True, check=True).stdout.strip()


# --- the load generator ---------------------------------------------------------------------------


class LoadGenError(RuntimeError):
    pass


class LoadGen:
    """Client of ``_loadgen.py`` (the fake WeCom in its own process)."""

    def __init__(self, procs: list[Child], bots: dict[str, str], *, name: str = "loadgen") -> None:
        argv = [
            sys.executable,
            str(HERE / "_loadgen.py"),
            "--bots",
            ",".join(f"{b}:{s}" for b, s in bots.items()),
        ]
        self.child = Child(
            name, argv, env=clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        procs.append(self.child)
        self.pid = self.child.pid
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._ids = iter(range(1, 1 << 30))
        ready = self._next(30.0)
        if ready.get("event") != "ready":
            raise LoadGenError(f"unexpected first line from the load generator: {ready}")
        self.url: str = ready["url"]

    def _read(self) -> None:
        out = self.child.proc.stdout
        assert out is not None
        for line in out:
            self._lines.put(line.decode())
        self._lines.put(None)

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise LoadGenError(f"the load generator said nothing for {timeout:.0f} s") from None
        if line is None:
            raise LoadGenError(f"the load generator exited:\n{self.child.log_tail()}")
        return json.loads(line)

    def call(
        self,
        op: str,
        *,
        timeout: float = 60.0,
        on_progress: Callable[[int, int], None] | None = None,
        **args: Any,
    ) -> dict[str, Any]:
        cmd_id = next(self._ids)
        stdin = self.child.proc.stdin
        assert stdin is not None
        stdin.write(
            (json.dumps({"id": cmd_id, "op": op, "timeout": timeout, **args}) + "\n").encode()
        )
        stdin.flush()
        deadline = time.monotonic() + timeout + 30.0
        while True:
            msg = self._next(max(1.0, deadline - time.monotonic()))
            if msg.get("id") != cmd_id:
                continue
            if "progress" in msg:
                if on_progress is not None:
                    on_progress(msg["progress"], msg["total"])
                continue
            if "error" in msg:
                raise LoadGenError(f"{op}: {msg['error']}")
            return msg["result"]

    def wait_subscribed(self, bot: Child, bot_id: str, count: int, seconds: float = 30.0) -> None:
        """Until ``count`` subscribes of ``bot_id`` succeeded; fails at once if ``bot`` exits."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.call("wait_subscribed", bot_id=bot_id, count=count, timeout=1.0)
                return
            except LoadGenError:
                if not bot.alive():
                    raise LoadGenError(
                        f"{bot.name} exited ({bot.proc.returncode}) before subscribing:\n"
                        f"{bot.log_tail()}"
                    ) from None
                if time.monotonic() > deadline:
                    raise LoadGenError(
                        f"{bot.name} did not subscribe within {seconds:.0f} s:\n{bot.log_tail()}"
                    ) from None

    def quit(self) -> None:
        with contextlib.suppress(Exception):
            self.call("quit", timeout=5.0)
        self.child.wait_exit(5.0)


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


# --- progress display -----------------------------------------------------------------------------


class ProgressLine:
    """One status line on stderr, redrawn in place on a terminal; plain lines otherwise."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._t0 = time.monotonic()
        self._width = 0

    def show(self, text: str) -> None:
        """A transient status (redrawn in place on a terminal; not shown otherwise)."""
        if not self.tty:
            return
        line = f"[{time.monotonic() - self._t0:6.1f}s] {text}"
        pad = max(0, self._width - len(line))
        self.stream.write("\r" + line + " " * pad)
        self._width = len(line)
        self.stream.flush()

    def bar(self, label: str) -> Callable[[int, int], None]:
        """A progress callback for LoadGen.call: redraws on a terminal, silent otherwise."""

        def update(done: int, total: int) -> None:
            if not self.tty:
                return
            width = 24
            filled = int(width * done / total) if total else width
            self.show(f"{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")

        return update

    def log(self, text: str) -> None:
        """A permanent line (ends any status line first)."""
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(f"[{time.monotonic() - self._t0:6.1f}s] {text}\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


# --- profiling ------------------------------------------------------------------------------------


def _py_spy() -> str | None:
    import shutil

    found = shutil.which("py-spy")
    if found:
        return found
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else None


class PySpy:
    """``py-spy record`` on a running process, collapsed stacks (``--format raw``) to ``path``.
    Idle samples (threads blocked in a syscall) are left out, so the samples follow CPU time."""

    def __init__(self, procs: list[Child], pid: int, path: Path, *, rate: int = 250) -> None:
        exe = _py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed: pip install py-spy")
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            exe,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--output",
            str(path),
            "--rate",
            str(rate),
            "--nonblocking",
            "--function",
        ]
        self.child = Child(f"py-spy-{pid}", argv)
        procs.append(self.child)
        time.sleep(0.5)  # attached

    def stop(self) -> None:
        self.child.stop(signal.SIGINT, grace=15.0)


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
