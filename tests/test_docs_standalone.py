"""The repository stands alone: no file points at material outside it (design notes, style guides,
protocol spec files, a shared folder, section signs into them, issue numbers).

Every text file under the checked roots is scanned, so new files are covered without being listed;
protocol facts belong in docs/protocol-notes.md (or the doc of the feature) in our own words.
Only the short EXCLUDED list is skipped."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Files and folders (relative to the repository root) whose text files are scanned.
ROOTS = ["README.md", "Dockerfile", "pyproject.toml", ".ci", "docs", "wecom_actors", "benchmarks", "tests"]

#: Folders never scanned: caches, virtualenvs, vendored packages, build output (all untracked).
SKIPPED_DIRS = {"__pycache__", "node_modules", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"}
SKIPPED_DIR_GLOBS = (".venv*", "venv", "build", "dist", "*.egg-info", "results")

#: Files not scanned (fnmatch patterns on the posix path relative to the root). Keep it short.
EXCLUDED = [
    # This file: it holds the pattern and examples of what it catches.
    "tests/test_docs_standalone.py",
]

OUTSIDE = re.compile(
    r"DESIGN\.md|STYLE\.md|ws-protocol|webhook-protocol|\bspec/|\.\./shared|§|\bissue\s*#?\d+|DESIGN\s+§?\d",
    re.IGNORECASE,
)


def _skipped_dir(name: str) -> bool:
    return name in SKIPPED_DIRS or any(fnmatch.fnmatch(name, g) for g in SKIPPED_DIR_GLOBS)


def _candidates() -> list[str]:
    """Every file under ROOTS (posix paths relative to ROOT), skipped folders left out."""
    found: list[str] = []
    for top in ROOTS:
        path = ROOT / top
        if path.is_file():
            found.append(top)
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not _skipped_dir(d))
            for name in sorted(filenames):
                found.append((Path(dirpath) / name).relative_to(ROOT).as_posix())
    return found


def _excluded(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in EXCLUDED)


def _text(name: str) -> str | None:
    """The file's text, or None for a binary file (a NUL byte or not UTF-8, e.g. a PNG)."""
    data = (ROOT / name).read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


CANDIDATES = _candidates()
CHECKED = [name for name in CANDIDATES if not _excluded(name) and _text(name) is not None]


@pytest.mark.parametrize("name", CHECKED)
def test_no_reference_outside_the_repository(name: str) -> None:
    text = _text(name)
    assert text is not None
    hits = [f"{name}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert hits == []


def test_the_scan_covers_the_repository() -> None:
    # The walk must find the files that matter, and nothing it skips may hide a checked root.
    for name in ("README.md", "docs/protocol-notes.md", "wecom_actors/crypto.py", "tests/crypto_vectors.py"):
        assert name in CHECKED, name
    assert len(CHECKED) > 150, len(CHECKED)
    assert not any("__pycache__" in name or "node_modules" in name for name in CHECKED)


@pytest.mark.parametrize("pattern", EXCLUDED)
def test_every_exclusion_still_matches_a_file(pattern: str) -> None:
    # A stale entry would silently exempt a future file of that name: drop it once it matches nothing.
    assert any(fnmatch.fnmatch(name, pattern) for name in CANDIDATES), pattern


def test_the_pattern_catches_what_it_should() -> None:
    for text in (
        "see DESIGN.md",
        "(DESIGN §5)",
        "ws-protocol.md §3.8",
        "webhook-protocol.md",
        "# WS §3.3",
        "spec/ws.md",
        "../shared/x",
        "fixes issue 11",
        "(issue #9)",
        "STYLE.md habit 3",
    ):
        assert OUTSIDE.search(text), text
    for text in ("the design of the fleet; an issue with the port", "see docs/protocol-notes.md, 'Stream replies'"):
        assert not OUTSIDE.search(text), text
