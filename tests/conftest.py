from __future__ import annotations

import pytest
import trio.testing
from hypothesis import settings

# No per-example deadline: CI machines are shared and slow; a deadline there only adds flakes.
settings.register_profile("wecom_actors", deadline=None)
settings.load_profile("wecom_actors")


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    """Virtual time that only moves when a test says so (safe with wait_all_tasks_blocked)."""
    return trio.testing.MockClock()
