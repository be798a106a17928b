"""Scale: many bots in one process, and many in-flight streams in one bot.

    python benchmarks/bench_scale.py [--part bots|streams|all] [--bots N] [--streams N]

Part ``bots``: N bots (default 100) in one trio program (``_scale_bots.py``: N ``serve_bot``,
each its own bot id and its own connection to the fake, the ``echo`` handler). Measured on that
process: RSS and CPU while idle (``--idle`` s, default 10) and under light load (every bot gets
``--rate`` messages a second, default 1, each from a new user, for ``--load-seconds``, default
10), with the replies checked (the echo contract) and their latency.

Part ``streams``: one bot process (``wecom-actors run --handler _hold_handler:hold``) gets N
messages (default 10,000) from distinct users; each handler opens a stream, appends its text
once, flushes, and waits until released. Once the first frame of every stream has been accepted
by the fake, the bot's RSS above its idle RSS, divided by N, is the memory per in-flight stream.
Then one ``/release`` message lets every stream finish; all N must finish with the right text.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import _common
import _procs
import _procstats
from _procs import Child, LoadGen, ProgressLine

DEFAULT_JSON = _common.RESULTS_DIR / "scale.json"
SECRET = "bench-secret"
TARGET_BOTS_MB = 150.0
TARGET_STREAMS_MB = 40.0


def part_bots(args: argparse.Namespace, progress: ProgressLine) -> dict[str, Any]:
    n = args.bots
    prefix = "scale-bot-"
    bot_ids = [f"{prefix}{i:03d}" for i in range(n)]
    with _procs.children() as procs:
        lg = LoadGen(procs, dict.fromkeys(bot_ids, SECRET), name="scale-bots-loadgen")
        t0 = time.monotonic()
        bots = Child(
            "scale-bots",
            [
                sys.executable,
                str(_procs.HERE / "_scale_bots.py"),
                "--url",
                lg.url,
                "--count",
                str(n),
                "--prefix",
                prefix,
                "--secret",
                SECRET,
                *(["--share-http"] if args.share_http else []),
            ],
            env=_procs.clean_env(),
        )
        procs.append(bots)
        for i, bot_id in enumerate(bot_ids, 1):
            progress.show(f"{n} bots: waiting for subscribes {i}/{n}")
            lg.wait_subscribed(bots, bot_id, 1, seconds=60.0)
        startup = time.monotonic() - t0
        stats = lg.call("stats")
        progress.log(
            f"{n} bots subscribed in {startup:.1f} s ({stats['live_connections']} live connections)"
        )
        # a first message per bot: lazy imports and first-use allocations are not "idle"
        lg.call(
            "steady",
            bot_ids=bot_ids,
            rate=2.0,
            seconds=0.5,
            timeout=60.0,
            tag="w",
            on_progress=progress.bar(f"{n} bots: warm-up"),
        )
        lg.call("reset")
        progress.show(f"{n} bots: idle {args.idle:.0f} s")
        cpu0 = _procstats.cpu_seconds(bots.pid)
        time.sleep(args.idle)
        idle_cpu = _procstats.cpu_seconds(bots.pid) - cpu0
        idle_mem = _procstats.memory_mb(bots.pid)
        progress.log(
            f"{n} bots idle: RSS {idle_mem['rss_mb']:.1f} MB, CPU {idle_cpu / args.idle * 100:.2f}% of a core"
        )
        cpu0 = _procstats.cpu_seconds(bots.pid)
        t_load = time.monotonic()
        res = lg.call(
            "steady",
            bot_ids=bot_ids,
            rate=args.rate,
            seconds=args.load_seconds,
            timeout=args.load_seconds + 60.0,
            tag="l",
            on_progress=progress.bar(f"{n} bots: {args.rate:g} msg/s each"),
        )
        wall = time.monotonic() - t_load
        load_cpu = _procstats.cpu_seconds(bots.pid) - cpu0
        load_mem = _procstats.memory_mb(bots.pid)
        if not bots.alive():
            raise RuntimeError(f"the bots' process died:\n{bots.log_tail()}")
        lg.quit()
    msgs = res["messages"]
    lat = _procstats.latency_summary(res["latencies"])
    out = {
        "bots": n,
        "share_http": args.share_http,
        "startup_s": startup,
        "idle_seconds": args.idle,
        "idle_rss_mb": idle_mem["rss_mb"],
        "idle_cpu_percent": idle_cpu / args.idle * 100,
        "load_rate_per_bot": args.rate,
        "load_seconds": args.load_seconds,
        "load_messages": msgs,
        "load_rss_mb": load_mem["rss_mb"],
        "load_peak_rss_mb": load_mem["peak_rss_mb"],
        "load_cpu_percent": load_cpu / wall * 100,
        "load_cpu_us_per_msg": load_cpu / msgs * 1e6 if msgs else float("nan"),
        "load_lost": res["lost"] + res["unsent"],
        "load_duplicated": res["duplicated"],
        "load_wrong": res["wrong"],
        **{f"load_{k}": v for k, v in lat.items()},
        "target_mb": TARGET_BOTS_MB,
        "met": load_mem["peak_rss_mb"] < TARGET_BOTS_MB,
        "log": str(bots.log_path.relative_to(_procs.ROOT)),
    }
    progress.log(
        f"{n} bots under load: peak RSS {out['load_peak_rss_mb']:.1f} MB, CPU {out['load_cpu_us_per_msg']:.0f} µs/msg, "
        f"p99 {lat['p99_ms']:.1f} ms, lost {out['load_lost']}"
    )
    return out


def part_streams(args: argparse.Namespace, progress: ProgressLine) -> dict[str, Any]:
    n = args.streams
    bot_id = "hold-bot"
    extra = {"PYTHONTRACEMALLOC": "8"} if args.tracemalloc else {}
    snapshots = [_common.RESULTS_DIR / f"tracemalloc-streams-{s}.bin" for s in ("idle", "held")]
    with _procs.children() as procs:
        lg = LoadGen(procs, {bot_id: SECRET}, name="scale-streams-loadgen")
        bot = _procs.start_our_bot(
            "scale-streams",
            lg.url,
            bot_id,
            SECRET,
            handler="_hold_handler:hold",
            WECOM_HANDLER_CONCURRENCY=str(n + 100),
            WECOM_ACK_TIMEOUT="60",
            **extra,
        )
        procs.append(bot)
        lg.wait_subscribed(bot, bot_id, 1)
        # warm-up: a small hold/release cycle, so the idle figure includes the code paths
        lg.call("hold", bot_id=bot_id, count=50, timeout=60.0, tag="w")
        warm = lg.call("release", bot_id=bot_id, timeout=60.0)
        if warm["lost"] or warm["wrong"]:
            raise RuntimeError(f"warm-up failed: {warm}\n{bot.log_tail()}")
        lg.call("reset")
        time.sleep(1.0)
        idle = _procstats.memory_mb(bot.pid)
        if args.tracemalloc:
            lg.call("say", bot_id=bot_id, text=f"/snapshot {snapshots[0]}", timeout=60.0)
        progress.log(f"{n} streams: idle RSS {idle['rss_mb']:.1f} MB")
        cpu0 = _procstats.cpu_seconds(bot.pid)
        held = lg.call(
            "hold",
            bot_id=bot_id,
            count=n,
            timeout=args.timeout,
            tag="h",
            on_progress=progress.bar(f"{n} streams: opening"),
        )
        open_cpu = _procstats.cpu_seconds(bot.pid) - cpu0
        time.sleep(1.0)
        loaded = _procstats.memory_mb(bot.pid)
        if args.tracemalloc:
            lg.call("say", bot_id=bot_id, text=f"/snapshot {snapshots[1]}", timeout=120.0)
        progress.log(
            f"{held['streams_open']}/{n} streams open after {held['seconds']:.1f} s: RSS {loaded['rss_mb']:.1f} MB "
            f"(+{loaded['rss_mb'] - idle['rss_mb']:.1f} MB)"
        )
        cpu0 = _procstats.cpu_seconds(bot.pid)
        rel = lg.call(
            "release",
            bot_id=bot_id,
            timeout=args.timeout,
            on_progress=progress.bar(f"{n} streams: finishing"),
        )
        release_cpu = _procstats.cpu_seconds(bot.pid) - cpu0
        time.sleep(1.0)
        after = _procstats.memory_mb(bot.pid)
        if not bot.alive():
            raise RuntimeError(f"the bot died:\n{bot.log_tail()}")
        lg.quit()
    above = loaded["rss_mb"] - idle["rss_mb"]
    if args.tracemalloc:
        print(tracemalloc_diff(*snapshots, n), flush=True)
    out = {
        "streams": n,
        "idle_rss_mb": idle["rss_mb"],
        "held_rss_mb": loaded["rss_mb"],
        "held_peak_rss_mb": loaded["peak_rss_mb"],
        "rss_above_idle_mb": above,
        "kb_per_stream": above * 1024 / n,
        "streams_open": held["streams_open"],
        "open_seconds": held["seconds"],
        "open_cpu_us_per_stream": open_cpu / n * 1e6,
        "finished": rel["messages"] - rel["lost"],
        "lost": rel["lost"],
        "duplicated": rel["duplicated"],
        "wrong": rel["wrong"],
        "examples": rel["examples"],
        "release_seconds": rel["release_seconds"],
        "release_cpu_us_per_stream": release_cpu / n * 1e6,
        "after_release_rss_mb": after["rss_mb"],
        "target_mb": TARGET_STREAMS_MB,
        "met": above < TARGET_STREAMS_MB and held["streams_open"] == n and rel["lost"] == 0,
        "log": str(bot.log_path.relative_to(_procs.ROOT)),
    }
    progress.log(
        f"{n} streams: {out['finished']} finished after release in {out['release_seconds']:.1f} s "
        f"(lost {out['lost']}, wrong {out['wrong']}); {out['kb_per_stream']:.2f} KB per stream"
    )
    return out


def tracemalloc_diff(before: Path, after: Path, n: int, top: int = 20) -> str:
    """What the in-flight streams allocated: by the line that allocated, and by the innermost
    frame of ours (wecom_actors or the benchmark's handler) on the allocation's stack, so that
    trio's objects are charged to the line of ours that made them."""
    import tracemalloc

    old, new = tracemalloc.Snapshot.load(str(before)), tracemalloc.Snapshot.load(str(after))
    root = str(_procs.ROOT) + "/"

    def where(frame: tracemalloc.Frame) -> str:
        name = frame.filename.replace(root, "").split("site-packages/")[-1]
        return f"{name.split('lib/python3')[-1]}:{frame.lineno}"

    stats = new.compare_to(old, "traceback")
    total = sum(s.size_diff for s in stats)
    by_line: dict[str, list[int]] = {}
    by_owner: dict[str, list[int]] = {}
    for s in stats:
        frames = list(s.traceback)  # oldest first
        ours = [f for f in frames if "wecom_actors" in f.filename or "benchmarks" in f.filename]
        for key, table in (
            (where(frames[-1]), by_line),
            (where(ours[-1]) if ours else "?", by_owner),
        ):
            acc = table.setdefault(key, [0, 0])
            acc[0] += s.size_diff
            acc[1] += s.count_diff
    lines = [
        f"tracemalloc: what {n:,} in-flight streams hold: {total / 2**20:.1f} MiB, "
        f"{total / n:,.0f} B per stream"
    ]
    for title, table in (("by allocating line", by_line), ("by owning line of ours", by_owner)):
        lines.append(f"  {title} (bytes and blocks per stream):")
        for key, (size, count) in sorted(table.items(), key=lambda kv: -kv[1][0])[:top]:
            lines.append(f"    {size / n:7.0f} B  {count / n:5.2f}  {key}")
    return "\n".join(lines)


def render(results: dict[str, Any]) -> str:
    rows: list[list[str]] = []
    if "bots" in results:
        b = results["bots"]
        n = b["bots"]
        rows += [
            [f"{n} bots, one process: start to all subscribed", f"{b['startup_s']:.1f} s", "", ""],
            [
                f"{n} bots idle ({b['idle_seconds']:.0f} s): RSS",
                f"{b['idle_rss_mb']:.1f} MB",
                f"< {TARGET_BOTS_MB:.0f} MB",
                "yes" if b["idle_rss_mb"] < TARGET_BOTS_MB else "NO",
            ],
            [f"{n} bots idle: CPU", f"{b['idle_cpu_percent']:.2f}% of a core", "", ""],
            [
                f"{n} bots, {b['load_rate_per_bot']:g} msg/s each: peak RSS",
                f"{b['load_peak_rss_mb']:.1f} MB",
                f"< {TARGET_BOTS_MB:.0f} MB",
                "yes" if b["met"] else "NO",
            ],
            [f"{n} bots under load: CPU", f"{b['load_cpu_percent']:.1f}% of a core", "", ""],
            [f"{n} bots under load: CPU per message", f"{b['load_cpu_us_per_msg']:.0f} µs", "", ""],
            [
                f"{n} bots under load: latency p50 / p99",
                f"{b['load_p50_ms']:.1f} / {b['load_p99_ms']:.1f} ms",
                "",
                "",
            ],
            [
                f"{n} bots under load: lost / dup / wrong of {b['load_messages']}",
                f"{b['load_lost']} / {b['load_duplicated']} / {b['load_wrong']}",
                "0",
                "yes" if not (b["load_lost"] or b["load_duplicated"] or b["load_wrong"]) else "NO",
            ],
        ]
    if "streams" in results:
        s = results["streams"]
        n = s["streams"]
        rows += [
            ["one bot: idle RSS", f"{s['idle_rss_mb']:.1f} MB", "", ""],
            [
                f"{n:,} in-flight streams: RSS above idle",
                f"{s['rss_above_idle_mb']:.1f} MB",
                f"< {TARGET_STREAMS_MB:.0f} MB",
                "yes" if s["rss_above_idle_mb"] < TARGET_STREAMS_MB else "NO",
            ],
            ["memory per in-flight stream", f"{s['kb_per_stream']:.2f} KB", "", ""],
            [
                f"{n:,} streams open (first frame acked)",
                f"{s['streams_open']} in {s['open_seconds']:.1f} s",
                "",
                "",
            ],
            [
                "CPU per stream: open / finish",
                f"{s['open_cpu_us_per_stream']:.0f} / {s['release_cpu_us_per_stream']:.0f} µs",
                "",
                "",
            ],
            [
                "finished after release (lost / dup / wrong)",
                f"{s['finished']} in {s['release_seconds']:.1f} s ({s['lost']} / {s['duplicated']} / {s['wrong']})",
                f"{n}",
                "yes" if s["finished"] == n and not (s["duplicated"] or s["wrong"]) else "NO",
            ],
            ["RSS after release", f"{s['after_release_rss_mb']:.1f} MB", "", ""],
        ]
    return _common.format_table(["figure", "value", "target", "met"], rows, "<>>>")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("bots", "streams", "all"), default="all")
    parser.add_argument("--bots", type=int, default=100, help="bots in one process (default 100)")
    parser.add_argument("--idle", type=float, default=10.0, help="idle seconds (default 10)")
    parser.add_argument("--rate", type=float, default=1.0, help="messages/s per bot (default 1)")
    parser.add_argument("--load-seconds", type=float, default=10.0, help="default 10")
    parser.add_argument(
        "--share-http",
        action="store_true",
        help="bots part: one httpx.AsyncClient shared by all bots (serve_bot(http_client=...)) "
        "instead of one per bot",
    )
    parser.add_argument(
        "--streams", type=int, default=10_000, help="in-flight streams (default 10000)"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per streams phase")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="streams part: run the bot with tracemalloc and print what the streams allocate "
        "(slower, and the RSS figures then include tracemalloc's own overhead)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
    args = parser.parse_args(argv)
    progress = ProgressLine()
    run = _common.ProcessRun("scale", args, load_start=False)
    results: dict[str, Any] = {}
    if args.part in ("bots", "all"):
        results["bots"] = part_bots(args, progress)
    if args.part in ("streams", "all"):
        results["streams"] = part_streams(args, progress)
    progress.done()
    run.report(render(results))
    run.write(
        packages=_common.package_versions(
            "wecom-actors", "trio", "trio-websocket", "msgspec", "httpx"
        ),
        results={"results": results},
    )
    return 0


if __name__ == "__main__":
    _common.run_script(main)
