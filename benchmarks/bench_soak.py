"""Soak: does the bot's memory stay flat while it serves a long closed loop of echo messages?

    python benchmarks/bench_soak.py [--messages 250000] [--users 50] [--chunk 10000]

The fake WeCom runs in its own process (``_loadgen.py``), the bot in another (``wecom-actors run
--handler _gc_handler:handler``). The load is a closed loop: ``--users`` users, each sending its
next message once the previous reply's finish frame arrived, in chunks of ``--chunk`` messages.
After every chunk the bot's RSS (VmRSS) is sampled, and its garbage-collector counters are read
with ``/gcstats``. The slope (KB of RSS per 1,000 messages) is a least-squares fit over the
samples taken after the bounded caches have filled (``--fit-after``, default 120,000 messages:
the msgid dedupe keeps up to 100,000 ids). Target: under 100 KB per 1,000 messages.

Prints a table and writes ``benchmarks/results/soak.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import _common
import _procs
import _procstats
from _procs import LoadGen, ProgressLine

DEFAULT_JSON = _common.RESULTS_DIR / "soak.json"
BOT_ID, SECRET = "soak-bot", "soak-secret"
TARGET_KB_PER_1000 = 100.0


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else float("nan")


def gc_stats(lg: LoadGen) -> dict[str, list[int]]:
    content = lg.call("say", bot_id=BOT_ID, text="/gcstats", user="gc-operator", timeout=30.0)["content"]
    return json.loads(content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=250_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--fit-after", type=int, default=120_000)
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    args = parser.parse_args(argv)
    progress = ProgressLine()
    per_user = max(1, args.chunk // args.users)
    samples: list[dict[str, Any]] = []
    with _procs.children() as procs:
        lg = LoadGen(procs, {BOT_ID: SECRET}, name="soak-loadgen")
        bot = _procs.start_our_bot("soak-bot", lg.url, BOT_ID, SECRET, handler="_gc_handler:handler")
        procs.append(bot)
        lg.wait_subscribed(bot, BOT_ID, 1)
        gc0 = gc_stats(lg)
        mem0 = _procstats.memory_kb(bot.pid)
        samples.append({"messages": 0, "rss_kb": mem0["VmRSS"], "gen2": gc0["collections"][2]})
        done, lost, wrong, t0 = 0, 0, 0, time.monotonic()
        chunk_no = 0
        while done < args.messages:
            result = lg.call(
                "load", bot_id=BOT_ID, mode="closed", users=args.users, messages=per_user,
                tag=f"c{chunk_no}", users_tag="soak", timeout=600.0,
            )  # fmt: skip
            lg.call("reset")
            chunk_no += 1
            done += result["messages"]
            lost += result["lost"] + result["unsent"]
            wrong += result["wrong"] + result["duplicated"]
            stats = gc_stats(lg)
            rss = _procstats.memory_kb(bot.pid)["VmRSS"]
            samples.append({"messages": done, "rss_kb": rss, "gen2": stats["collections"][2]})
            rate = done / (time.monotonic() - t0)
            progress.show(f"{done:,}/{args.messages:,} messages, RSS {rss / 1024:.1f} MB, {rate:.0f} msg/s")
        progress.done()
        gc1 = gc_stats(lg)
        lg.quit()
    fit = [(s["messages"] / 1000, s["rss_kb"]) for s in samples if s["messages"] >= args.fit_after]
    kb_per_1000 = slope(fit)
    gen2 = gc1["collections"][2] - gc0["collections"][2]
    results = {
        "messages": done,
        "users": args.users,
        "lost": lost,
        "wrong_or_duplicated": wrong,
        "rss_start_mb": samples[0]["rss_kb"] / 1024,
        "rss_end_mb": samples[-1]["rss_kb"] / 1024,
        "kb_per_1000_messages": kb_per_1000,
        "fit_after": args.fit_after,
        "gen2_collections": gen2,
        "gen2_per_10000_messages": gen2 * 10_000 / done if done else float("nan"),
        "target_kb_per_1000": TARGET_KB_PER_1000,
        "samples": samples,
    }
    rows = [
        ["messages", f"{done:,}"],
        ["lost / wrong or duplicated", f"{lost} / {wrong}"],
        ["RSS start -> end", f"{results['rss_start_mb']:.1f} -> {results['rss_end_mb']:.1f} MB"],
        [f"RSS slope after {args.fit_after:,} msgs", f"{kb_per_1000:.1f} KB / 1,000 messages"],
        ["target", f"< {TARGET_KB_PER_1000:.0f} KB / 1,000 messages"],
        ["gen-2 collections per 10,000 messages", f"{results['gen2_per_10000_messages']:.2f}"],
    ]
    print(_common.format_table(["soak", "value"], rows))
    path = _common.write_results(
        Path(args.json), benchmark="soak", settings={"messages": args.messages, "users": args.users}, rows=[],
        machine_load=os.getloadavg(), soak=results,
    )
    print(f"results: {path}")
    return 0 if lost == 0 and wrong == 0 else 1


if __name__ == "__main__":
    _common.run_script(main)
