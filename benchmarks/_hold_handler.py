"""A handler that keeps its stream open until released (used by ``bench_scale.py``).

    PYTHONPATH=benchmarks wecom-actors run --handler _hold_handler:hold

A text message opens one stream, appends the text once, flushes it (the first frame, finish
false, is acked) and then waits until a ``/release`` message arrives; then the stream finishes
with the same text (the echo contract). ``/release`` itself gets no reply; it releases every
stream held so far, and later messages are held again until the next ``/release``.

``/snapshot PATH`` (only when the process runs with ``tracemalloc`` on, e.g.
``PYTHONTRACEMALLOC=10``): dumps a tracemalloc snapshot to PATH and replies ``snapshot``.
"""

from __future__ import annotations

import gc
import tracemalloc

import trio

from wecom_actors import Turn

_release: trio.Event | None = None


async def hold(turn: Turn) -> None:
    global _release
    if _release is None:
        _release = trio.Event()
    text = turn.text
    if text == "/release":
        released, _release = _release, trio.Event()
        released.set()
        return
    if text.startswith("/snapshot ") and tracemalloc.is_tracing():
        gc.collect()
        tracemalloc.take_snapshot().dump(text.split(" ", 1)[1])
        await turn.reply_text("snapshot")
        return
    release = _release
    async with turn.stream() as s:
        await s.append(text)
        await s.flush()
        await release.wait()
