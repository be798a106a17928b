"""A real ``redis-server`` for the tests: started from PATH on a free loopback port, in a temp dir.

Use the ``redis_server`` fixture (one server per test module) or :class:`RedisServer` directly
for a test that stops and restarts the server. Where ``redis-server`` is missing the tests skip
locally with a message naming the package to install, and fail when ``CI=true``.
"""

from __future__ import annotations

import inspect
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest
import trio

INSTALL_HINT = "redis-server not found on PATH: install it (apt-get install redis-server)"


def redis_binary() -> str:
    """The redis-server path; skips the test (fails it when CI=true) if there is none."""
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT + " (.ci/run installs it)")
        pytest.skip(INSTALL_HINT)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process (no persistence) on 127.0.0.1:``port``."""

    def __init__(self, port: int | None = None) -> None:
        self.binary = redis_binary()
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="wecom-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while True:  # bounded: the server answers PING within a few ms once it listens
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
                raise RuntimeError(f"redis-server exited at start: {err[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING within 10 s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module", name="redis_server")
def redis_server_fixture() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


async def eventually(check: Callable[[], bool | Awaitable[bool]], *, step: float = 0.01) -> None:
    """Poll ``check`` every ``step`` seconds until it is true (bound it with ``fail_after``)."""
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await trio.sleep(step)
