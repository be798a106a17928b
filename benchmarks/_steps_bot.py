"""Our bot with a trio instrument that counts task steps (wake-ups) per task name.

    WECOM_WS_URL=... WECOM_BOT_ID=... WECOM_BOT_SECRET=... \\
        python benchmarks/_steps_bot.py --out steps.json [--handler echo]

The same bot as ``wecom-actors run`` (``runner.serve_until_signal`` with the config from the
environment), run under ``trio.run(..., instruments=[...])``. SIGUSR1 zeroes the counters (the
benchmark sends it after the warm-up); on SIGINT/SIGTERM the bot drains and stops, and the
counts (task steps and tasks spawned, per task name, since the last reset) and each actor's
mailbox batches and messages since the reset (from ``BotHandle.statistics().mailboxes``) are
written to ``--out`` as JSON. Used by ``bench_longconn.py --count-steps``: task steps per message say how
many times the scheduler had to wake one of the bot's tasks for each message.
"""

from __future__ import annotations

import argparse
import json
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import trio

from wecom_actors._logging import setup_logging
from wecom_actors.bot import resolve_handler
from wecom_actors.config import BotConfig
from wecom_actors.runner import serve_until_signal


class StepCounter(trio.abc.Instrument):
    def __init__(self) -> None:
        self.steps: Counter[str] = Counter()
        self.spawned: Counter[str] = Counter()
        self.reset_requested = False

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.reset_requested:
            self.reset_requested = False
            self.steps.clear()
            self.spawned.clear()
        self.steps[task.name] += 1

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned[task.name] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--handler", default="echo")
    args = parser.parse_args()
    config = BotConfig.from_env()
    setup_logging("WARNING")
    counter = StepCounter()
    inner = resolve_handler(args.handler)
    seen: dict[str, Any] = {}  # the BotHandle (handlers get it as turn.bot), baseline mailboxes

    async def handler(turn: Any) -> None:
        seen.setdefault("bot", turn.bot)
        await inner(turn)

    def mailboxes() -> dict[str, tuple[int, int]]:
        bot = seen.get("bot")
        if bot is None:
            return {}
        return {name: (m.batches, m.messages) for name, m in bot.statistics().mailboxes.items()}

    def on_usr1(signum: int, frame: object) -> None:
        counter.reset_requested = True
        seen["base"] = mailboxes()

    async def serve() -> None:
        try:
            await serve_until_signal(config, handler)
        finally:
            # Read while trio runs: statistics() reads trio's clock (the last ack's age).
            seen["final"] = mailboxes()

    signal.signal(signal.SIGUSR1, on_usr1)
    try:
        trio.run(serve, instruments=[counter])
    finally:
        base = seen.get("base", {})
        batches = {
            name: {"batches": b - base.get(name, (0, 0))[0], "messages": m - base.get(name, (0, 0))[1]}
            for name, (b, m) in seen.get("final", {}).items()
        }
        args.out.write_text(
            json.dumps(
                {"steps": dict(counter.steps), "spawned": dict(counter.spawned), "mailboxes": batches}, indent=1
            )
        )


if __name__ == "__main__":
    main()
