from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Awaitable, Callable

import pytest
import trio
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


#: Wall-clock seconds any one async test may take, however its clock runs (virtual time under
#: MockClock jumps, so the bound is real time, kept by a timer thread). WECOM_TEST_TIMEOUT overrides.
TEST_TIMEOUT = float(os.environ.get("WECOM_TEST_TIMEOUT", "120"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every async test an absolute timeout (no hand-written timeout in each test)."""
    for item in items:
        function = getattr(item, "obj", None)
        if function is not None and inspect.iscoroutinefunction(function):
            item.obj = _with_absolute_timeout(function)  # type: ignore[attr-defined]


def _with_absolute_timeout(test: Callable[..., Awaitable[object]]) -> Callable[..., Awaitable[object]]:
    @functools.wraps(test)
    async def bounded(*args: object, **kwargs: object) -> object:
        token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            # The timer thread cancels the test's scope from outside trio, in real time.
            timer = threading.Timer(TEST_TIMEOUT, token.run_sync_soon, args=(scope.cancel,))
            timer.daemon = True
            timer.start()
            try:
                return await test(*args, **kwargs)
            finally:
                timer.cancel()
        raise TimeoutError(f"{test.__name__} ran longer than {TEST_TIMEOUT:g} s of real time")

    return bounded
