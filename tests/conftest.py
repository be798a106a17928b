from __future__ import annotations

import pytest
import trio.testing


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    """Virtual time that only moves when a test says so (safe with wait_all_tasks_blocked)."""
    return trio.testing.MockClock()
