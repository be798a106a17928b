"""The echo handler plus ``/gcstats``: the bot's garbage-collector counters, as JSON.

    PYTHONPATH=benchmarks wecom-actors run --handler _gc_handler:handler

``/gcstats`` replies (one frame) with ``{"collections": [gen0, gen1, gen2], "collected": [...],
"uncollectable": [...]}`` from :func:`gc.get_stats`; every other message goes to the built-in
``echo``. Used by ``bench_soak.py`` and ``bench_longconn.py`` to count collections per message.
"""

from __future__ import annotations

import gc
import json

from wecom_actors import Turn, echo


def gc_counters() -> dict[str, list[int]]:
    stats = gc.get_stats()
    return {key: [gen[key] for gen in stats] for key in ("collections", "collected", "uncollectable")}


async def handler(turn: Turn) -> None:
    if turn.text.strip() == "/gcstats":
        await turn.reply_text(json.dumps(gc_counters()))
        return
    await echo(turn)
