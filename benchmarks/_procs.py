"""Coordinator-side helpers of the process benchmarks (bench_longconn, bench_scale, bench_webhook).

Standard library only: child processes that are always stopped, the bots under test, the
load-generator client, the reference bots' virtual environments, the progress display and py-spy
attached to a process. What is read from the processes (CPU time, RSS, percentiles, profile
summaries) is in ``_procstats``.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
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
# the minimal webhook echo bot (reference_webhook_bot.py) and its own venv
REF_WEBHOOK_VENV = HERE / ".venv-ref-webhook"
REF_WEBHOOK_PACKAGES = ("aiohttp==3.14.5", "pycryptodome==4.4.0")

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


# --- the reference bots' virtual environments ----------------------------------------------------


def ref_python(venv_dir: Path = REF_VENV) -> Path:
    return venv_dir / "bin" / "python"


def ensure_venv(
    venv_dir: Path, packages: Sequence[str], version_of: str, log: Callable[[str], None]
) -> str:
    """Create ``venv_dir`` with ``packages`` (pip, from the package index) on first use; return
    the installed version of ``version_of``. Delete the directory to rebuild it."""
    py = ref_python(venv_dir)
    check = [str(py), "-c", f"import importlib.metadata as m; print(m.version({version_of!r}))"]
    if py.exists():
        done = subprocess.run(check, capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.strip()
    log(f"creating {venv_dir.relative_to(ROOT)} with {' '.join(packages)} (first run only) ...")
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    # self-ignoring, like Python 3.13's venv does: never committed
    (venv_dir / ".gitignore").write_text("*\n")
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages],
        check=True,
    )
    return subprocess.run(check, capture_output=True, text=True, check=True).stdout.strip()


def ensure_ref_venv(log: Callable[[str], None]) -> str:
    """benchmarks/.venv-ref with the official SDK; returns the SDK's version."""
    return ensure_venv(REF_VENV, [REF_SDK], "wecom-aibot-python-sdk", log)


def ensure_ref_webhook_venv(log: Callable[[str], None]) -> str:
    """benchmarks/.venv-ref-webhook with aiohttp + pycryptodome; returns aiohttp's version."""
    return ensure_venv(REF_WEBHOOK_VENV, REF_WEBHOOK_PACKAGES, "aiohttp", log)


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
