"""The webhook load generator: the bundled fake WeCom's webhook driver, in its own process.

    python benchmarks/_webhook_loadgen.py --url URL --token T --key K --users U --messages M

Started by ``bench_webhook.py`` (not by hand, never by the test suite). It waits until the bot
answers URL verification, warms up, then runs U users concurrently, each sending M text messages
one after another (closed loop): every message is a signed and encrypted POST through real HTTP
on loopback, then stream-refresh POSTs every ``--poll-interval`` seconds until ``finish``
(``FakeWebhookWeCom.send_text``, non-strict: violations are counted, not raised). Prints JSON
lines on stdout: ``{"event": "ready"}`` once the bot answered verification, ``{"event":
"warm"}`` after the warm-up (then it waits for a line on stdin), progress lines ``{"progress": done, "total": n}``, and one
``{"result": {...}}`` with, per message: time to first reply (the POST's answer), time to finish
(the answer carrying ``finish: true``), the number of refreshes, and whether the final content
was the text; and over every request (messages and refreshes alike): how many, the slowest and
how many took over 1 s (from just before the POST is signed to its answer opened).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import _procs
import trio

from wecom_actors.testing._webhook import FakeWebhookWeCom

SLOW_REQUEST_S = 1.0

TEXT = "你好，机器人！请把这句话原样回给我：{tag} 用户 {user} 第 {i} 条消息。"
PROGRESS_EVERY = 0.25


class TimedFake(FakeWebhookWeCom):
    """The fake, timing every callback POST (the message's and each refresh's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_times: list[float] = []

    async def _post(self, view: Any, payload: dict[str, Any], *, record: bool = True) -> dict[str, Any] | None:
        t0 = trio.current_time()
        try:
            return await super()._post(view, payload, record=record)
        finally:
            self.request_times.append(trio.current_time() - t0)


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def _wait_ready(fake: FakeWebhookWeCom, limit: float) -> None:
    with trio.fail_after(limit):
        while True:
            try:
                if (await fake.verify_url()).ok:
                    return
            except Exception:  # the bot is not listening yet (connect refused, ...)
                pass
            await trio.sleep(0.1)


async def _run_users(
    fake: TimedFake, users: int, messages: int, tag: str, limit: float, progress: bool
) -> dict[str, Any]:
    records: list[dict[str, Any]] = []
    total = users * messages
    next_progress = 0.0
    fake.request_times.clear()
    cpu0 = time.process_time()
    t_first = trio.current_time()

    async def user_loop(u: int) -> None:
        nonlocal next_progress
        for i in range(messages):
            text = TEXT.format(tag=tag, user=u, i=i)
            t0 = trio.current_time()
            view = await fake.send_text(text, userid=f"{tag}-u{u:04d}")
            t1 = trio.current_time()
            records.append(
                {
                    "first_reply": view.latency,
                    "finish": t1 - t0 if view.finished else None,
                    "status": view.status,
                    "finished": view.finished,
                    "right": view.finished and view.content == text,
                    "refreshes": len(view.refreshes) + view.empty_refreshes,
                    "errors": view.errors[:2],
                }
            )
            now = time.monotonic()
            if progress and (now >= next_progress or len(records) == total):
                next_progress = now + PROGRESS_EVERY
                _emit({"progress": len(records), "total": total})

    with trio.move_on_after(limit):
        async with trio.open_nursery() as nursery:
            for u in range(users):
                nursery.start_soon(user_loop, u)
    duration = trio.current_time() - t_first
    times = fake.request_times
    return {
        "requests": {
            "count": len(times),
            "max": max(times, default=0.0),
            "over_1s": sum(1 for t in times if t > SLOW_REQUEST_S),
        },
        "records": records,
        "unsent": total - len(records),
        "duration": duration,
        "loadgen_cpu": time.process_time() - cpu0,
    }


async def main(args: argparse.Namespace) -> None:
    fake = TimedFake(
        args.url,
        token=args.token,
        encoding_aes_key=args.key,
        poll_interval=args.poll_interval,
        reply_timeout=args.reply_timeout,
        strict=False,
        seed=1,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(fake.run)
        await _wait_ready(fake, 30.0)
        _emit({"event": "ready"})
        await _run_users(fake, min(10, args.users), 2, "w", 60.0, progress=False)
        _emit({"event": "warm"})
        # the coordinator reads the bot's CPU time, then says "go" on stdin
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        with trio.fail_after(30.0):
            while b"\n" not in await stdin.receive_some(64):
                pass
        result = await _run_users(fake, args.users, args.messages, "m", args.timeout, progress=True)
        _emit({"result": result})
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--reply-timeout", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    try:
        trio.run(main, parser.parse_args())
    except BaseException as exc:  # stopped with SIGINT by the benchmark: exit quietly
        if not _procs.interrupted(exc):
            raise
