"""The repository's docs stand alone: no pointer to files outside it (design notes, style guides,
protocol spec files, a shared folder, section signs into them, issue numbers).

Checked on the user-facing docs and the operational modules; other files are being cleaned up
module by module and join the list as they are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = [
    "README.md",
    "Dockerfile",
    "docs/index.md",
    "docs/api.md",
    "docs/deploy.md",
    "docs/sdk-mapping.md",
    "wecom_actors/__init__.py",
    "wecom_actors/__main__.py",
    "wecom_actors/admin.py",
    "wecom_actors/bot.py",
    "wecom_actors/cli.py",
    "wecom_actors/config.py",
    "wecom_actors/fleet.py",
    "wecom_actors/fleet_config.py",
    "wecom_actors/metrics.py",
    "wecom_actors/turnlog.py",
    "wecom_actors/handlers/loading.py",
    "tests/typecheck/user_bot.py",
]
OUTSIDE = re.compile(
    r"DESIGN\.md|STYLE\.md|ws-protocol|webhook-protocol|\bspec/|\.\./shared|§|\bissue\s*#?\d+|DESIGN\s+§?\d",
    re.IGNORECASE,
)


@pytest.mark.parametrize("name", CHECKED)
def test_no_reference_outside_the_repository(name: str) -> None:
    hits = [
        f"{name}:{n}: {line.strip()}"
        for n, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert hits == []


def test_the_pattern_catches_what_it_should() -> None:
    for text in ("see DESIGN.md", "(DESIGN §5)", "ws-protocol.md §3.8", "../shared/x", "fixes issue 11"):
        assert OUTSIDE.search(text), text
    assert not OUTSIDE.search("the design of the fleet; an issue with the port")
