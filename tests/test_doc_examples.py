"""Every Python block of README.md and docs/*.md, so the examples cannot rot.

* A block that calls ``trio.run(`` is a program: it runs in a subprocess with the ``WECOM_*``
  settings of a bundled fake WeCom served by the test; the test subscribes it, writes to it,
  waits for its streamed answer, sends SIGTERM, and expects exit 0.
* A block that defines ``async def test_...`` functions is executed and each test is run, unless
  it is a sketch (a ``...`` stands for code left out).
* Any other block is a fragment: it must compile (top-level ``await`` allowed).
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from wecom_actors.testing import FakeWeCom, serve_fake_openws

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
#: Blocks that show a signature, not code (file name, first line).
SIGNATURES = {("testing-fake-openws.md", "FakeWeCom(")}


def blocks() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for i, match in enumerate(_BLOCK.finditer(path.read_text(encoding="utf-8"))):
            found.append((f"{path.name}#{i + 1}", match.group(1)))
    return found


def is_sketch(code: str) -> bool:
    tree = ast.parse(code)
    return any(isinstance(n, ast.Constant) and n.value is Ellipsis for n in ast.walk(tree))


ALL = blocks()
PROGRAMS = [(name, code) for name, code in ALL if "trio.run(" in code]
TESTS = [
    (name, code)
    for name, code in ALL
    if "trio.run(" not in code and "async def test_" in code and not is_sketch(code)
]
FRAGMENTS = [(name, code) for name, code in ALL if (name, code) not in PROGRAMS + TESTS]


def test_the_docs_have_programs_and_tests():
    assert any(name.startswith("README.md") for name, _ in PROGRAMS)
    assert TESTS  # docs/testing.md's examples


@pytest.mark.parametrize(("name", "code"), FRAGMENTS, ids=[n for n, _ in FRAGMENTS])
def test_fragment_compiles(name, code):
    if (name.split("#")[0], code.splitlines()[0]) in SIGNATURES:
        pytest.skip("a signature, not code")  # pragma: no cover
    compile(code, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.parametrize(("name", "code"), TESTS, ids=[n for n, _ in TESTS])
def test_doc_test_functions_pass(name, code):
    namespace: dict[str, object] = {"__name__": f"doc_{name}"}
    exec(compile(code, name, "exec"), namespace)
    tests = [fn for key, fn in namespace.items() if key.startswith("test_") and callable(fn)]
    assert tests
    for fn in tests:
        trio.run(fn)


@pytest.mark.parametrize(("name", "code"), PROGRAMS, ids=[n for n, _ in PROGRAMS])
async def test_program_runs_against_the_fake(name, code, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    fake = FakeWeCom()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_fake_openws, fake)
        env.update(
            WECOM_WS_URL=fake.url, WECOM_BOT_ID=fake.bot_id, WECOM_BOT_SECRET=fake.secret,
            WECOM_MEDIA_ALLOW_PRIVATE="1",
        )
        done: list[subprocess.CompletedProcess[bytes]] = []
        exited = trio.Event()

        async def run(task_status: trio.TaskStatus[trio.Process]) -> None:
            done.append(
                await trio.run_process(
                    [sys.executable, str(script)], env=env, cwd=tmp_path, capture_stdout=True,
                    capture_stderr=True, check=False, task_status=task_status,
                )
            )
            exited.set()

        process: trio.Process = await nursery.start(run)
        with trio.fail_after(60):
            await fake.wait_subscribed()
            callback = await fake.send_text("hello from the docs", userid="alice")
            view = await fake.wait_stream_finished(callback.req_id)
        assert view.content.strip() == "hello from the docs"
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            await exited.wait()
        nursery.cancel_scope.cancel()
    [result] = done
    assert result.returncode == 0, result.stderr.decode()
    if name.startswith("README.md"):
        assert b"not sent: 846607" in result.stdout
