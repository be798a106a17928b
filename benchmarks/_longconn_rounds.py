"""What ``bench_longconn.py`` runs: the bots under test (``Side``) and the passes of each bot
against one load generator: the measured rounds (closed loop, then burst), the py-spy pass and
the task-steps pass.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import _common
import _procs
import _procstats
from _procs import Child, LoadGen, ProgressLine

SECRET = "bench-secret"
MODES = ("closed", "burst", "paced")


@dataclass(frozen=True)
class Side:
    """One bot under test: ours (with some WECOM_* settings) or the reference."""

    key: str
    label: str
    settings: tuple[tuple[str, str], ...] = ()
    reference: bool = False

    @property
    def bot_id(self) -> str:
        return f"bot-{self.key}"


REF = Side("ref", "reference", reference=True)


def sides_for(transport: str, only: str | None) -> list[Side]:
    """ours (one per transport asked for) and the reference, in the order rounds run them."""
    if transport == "both":
        ours = [
            Side("ours-tw", "ours[tw]", (("WECOM_TRANSPORT", "trio-websocket"),)),
            Side("ours-wsproto", "ours[wsproto]", (("WECOM_TRANSPORT", "wsproto"),)),
        ]
    elif transport == "default":
        ours = [Side("ours", "ours")]
    else:
        short = "tw" if transport == "trio-websocket" else transport
        ours = [Side("ours", f"ours[{short}]", (("WECOM_TRANSPORT", transport),))]
    if only == "ours":
        return ours
    if only == "ref":
        return [REF]
    return [*ours, REF]


class Rounds:
    """The passes of the bots against one load generator. Each pass starts a fresh bot, keeps it
    in ``procs`` while it runs (so ``_procs.children`` stops it on any exit) and stops it at the
    end of the pass."""

    def __init__(
        self, lg: LoadGen, args: argparse.Namespace, progress: ProgressLine, procs: list[Child]
    ) -> None:
        self.lg = lg
        self.args = args
        self.progress = progress
        self.procs = procs
        self.subscribes: dict[str, int] = {}  # subscribes of each side's bot id so far

    # --- bots and loads ---------------------------------------------------------------------------

    def _our_settings(self, side: Side) -> dict[str, str]:
        # The defaults: queues are sized for bursts, so nothing here is tuned for the load.
        return dict(side.settings)

    def _start(self, side: Side, name: str) -> Child:
        if side.reference:
            return _procs.start_reference_bot(name, self.lg.url, side.bot_id, SECRET)
        settings = self._our_settings(side)
        return _procs.start_our_bot(
            name, self.lg.url, side.bot_id, SECRET, handler="_gc_handler:handler", **settings
        )

    @contextlib.contextmanager
    def _running(self, side: Side, bot: Child, warm_tag: str) -> Iterator[Child]:
        """``bot`` subscribed and warmed up for the block, stopped after it."""
        self.procs.append(bot)
        try:
            self.subscribes[side.key] = self.subscribes.get(side.key, 0) + 1
            self.lg.wait_subscribed(bot, side.bot_id, self.subscribes[side.key])
            # warm-up, not measured: imports, first-use allocations, caches
            users = min(10, self.args.users)
            self.lg.call("load", bot_id=side.bot_id, mode="closed", users=users, messages=3,
                         timeout=30.0, tag=warm_tag)  # fmt: skip
            yield bot
        finally:
            bot.stop()
            self.procs.remove(bot)

    def _size(self, mode: str) -> tuple[int, int]:
        """(users, messages per user) of a phase: the paced phase has its own."""
        args = self.args
        if mode == "paced":
            return args.paced_users, args.paced_messages
        return args.users, args.messages

    def _load(self, side: Side, mode: str, tag: str, label: str) -> dict[str, Any]:
        """The full load (U users x M messages) in ``mode``, with a progress bar."""
        args = self.args
        users, messages = self._size(mode)
        timeout = args.timeout + (users * messages / args.paced_rate if mode == "paced" else 0.0)
        return self.lg.call("load", bot_id=side.bot_id, mode=mode, users=users,
                            messages=messages, timeout=timeout, tag=tag, rate=args.paced_rate,
                            on_progress=self.progress.bar(label))  # fmt: skip

    # --- the measured rounds ----------------------------------------------------------------------

    def _phase(self, bot: Child, side: Side, mode: str, tag: str, label: str) -> dict[str, Any]:
        users, messages = self._size(mode)
        n = users * messages
        self.lg.call("reset")
        gc0 = self._gc_collections(side)
        cpu0 = _procstats.cpu_seconds(bot.pid)
        ticks0 = _procstats.cpu_ticks_seconds(bot.pid)
        sys0 = _procstats.cpu_ticks_split(bot.pid)[1]
        res = self._load(side, mode, tag, label)
        cpu = _procstats.cpu_seconds(bot.pid) - cpu0
        ticks = _procstats.cpu_ticks_seconds(bot.pid) - ticks0
        sys_ticks = _procstats.cpu_ticks_split(bot.pid)[1] - sys0
        gc1 = self._gc_collections(side)
        lat = _procstats.latency_summary(res["latencies"])
        return {
            # collections by generation during the phase, and gen-2 ones per 10,000 messages
            "gc_collections": [b - a for a, b in zip(gc0, gc1, strict=True)],
            "gen2_per_10k": (gc1[2] - gc0[2]) * 10_000 / n,
            **lat,
            "messages": n,
            "replied": len(res["latencies"]),
            "lost": res["lost"] + res["unsent"],
            "duplicated": res["duplicated"],
            "wrong": res["wrong"],
            "examples": res["examples"],
            "duration_s": res["duration"],
            "throughput": n / res["duration"] if res["duration"] > 0 else float("nan"),
            "cpu_s": cpu,
            "cpu_us_per_msg": cpu / n * 1e6,
            "cpu_ticks_us_per_msg": ticks / n * 1e6,
            # the part spent in the kernel (system calls: socket reads and writes, epoll), ticks
            "cpu_sys_ticks_us_per_msg": sys_ticks / n * 1e6,
            "loadgen_cpu_us_per_msg": res["loadgen_cpu"] / n * 1e6,
            "latencies_ms": [round(x * 1e3, 3) for x in res["latencies"]],
        }

    def _gc_collections(self, side: Side) -> list[int]:
        """The bot's garbage-collector runs per generation so far (``/gcstats``; the reply
        itself is a one-frame stream, outside the measured load)."""
        content = self.lg.call("say", bot_id=side.bot_id, text="/gcstats", user="gc-operator")["content"]
        return list(json.loads(content)["collections"])

    def round(self, side: Side, rnd: int) -> dict[str, Any]:
        """One measured round of ``side``: a fresh bot, the closed loop, then the burst."""
        name = f"longconn-{side.key}-r{rnd}"
        label = f"round {rnd}/{self.args.rounds} {side.label}"
        t0 = time.monotonic()
        self.progress.show(f"{label}: starting")
        with self._running(side, self._start(side, name), f"w{rnd}{side.key}") as bot:
            startup = time.monotonic() - t0
            load0 = os.getloadavg()[0]
            closed = self._phase(bot, side, "closed", f"c{rnd}{side.key}", f"{label} closed")
            burst = self._phase(bot, side, "burst", f"b{rnd}{side.key}", f"{label} burst ")
            paced = self._phase(bot, side, "paced", f"q{rnd}{side.key}", f"{label} paced ")
            mem = _procstats.memory_mb(bot.pid)
            if not bot.alive():
                raise RuntimeError(f"{name} died:\n{bot.log_tail()}")
        self.progress.log(
            f"{label}: closed {closed['cpu_us_per_msg']:.0f} µs/msg, p99 {closed['p99_ms']:.1f} ms; "
            f"burst {burst['cpu_us_per_msg']:.0f} µs/msg, p99 {burst['p99_ms']:.0f} ms; "
            f"paced {paced['cpu_us_per_msg']:.0f} µs/msg, p99 {paced['p99_ms']:.1f} ms; "
            f"peak RSS {mem['peak_rss_mb']:.1f} MB; "
            f"lost {sum(p['lost'] for p in (closed, burst, paced))}, "
            f"dup {sum(p['duplicated'] for p in (closed, burst, paced))}, "
            f"wrong {sum(p['wrong'] for p in (closed, burst, paced))}"
        )
        return {
            "round": rnd,
            "bot": side.key,
            "closed": closed,
            "burst": burst,
            "paced": paced,
            "peak_rss_mb": mem["peak_rss_mb"],
            "rss_mb": mem["rss_mb"],
            "startup_s": startup,
            "exit_code": bot.proc.returncode,
            "loadavg_1min_before": load0,
            "log": str(bot.log_path.relative_to(_procs.ROOT)),
        }

    # --- the unmeasured passes --------------------------------------------------------------------

    def profile(self, side: Side) -> dict[str, Any]:
        """One more pass with py-spy attached, one recording per phase (``--profile-modes``;
        the pass's figures are not reported): {mode: summary}."""
        out: dict[str, Any] = {}
        bot = self._start(side, f"longconn-{side.key}-profile")
        with self._running(side, bot, f"wp{side.key}"):
            for mode in self.args.profile_modes:
                path = _common.RESULTS_DIR / f"profile-longconn-{side.key}-{mode}.txt"
                self.lg.call("reset")
                spy = _procs.PySpy(self.procs, bot.pid, path)
                try:
                    self._load(side, mode, f"p{mode[0]}{side.key}", f"profiling {side.label} {mode}")
                finally:
                    spy.stop()
                    self.procs.remove(spy.child)
                summary = _procstats.profile_summary(path, strip=str(_procs.ROOT) + "/")
                out[mode] = {"path": str(path.relative_to(_procs.ROOT)), **summary}
        self.progress.done()
        return out

    def steps(self, side: Side) -> dict[str, Any]:
        """Task steps (scheduler wake-ups) and tasks spawned per message, by task name, per mode:
        our bot under ``_steps_bot.py`` (a trio instrument), one process per mode."""
        out: dict[str, Any] = {}
        for mode in MODES:
            users, messages = self._size(mode)
            n = users * messages
            path = _common.RESULTS_DIR / f"steps-{side.key}-{mode}.json"
            path.unlink(missing_ok=True)
            env = _procs.clean_env(WECOM_WS_URL=self.lg.url, WECOM_BOT_ID=side.bot_id,
                                   WECOM_BOT_SECRET=SECRET, WECOM_LOG_LEVEL="WARNING",
                                   **self._our_settings(side))  # fmt: skip
            argv = [sys.executable, str(_procs.HERE / "_steps_bot.py"), "--out", str(path)]
            bot = Child(f"longconn-{side.key}-steps-{mode}", argv, env=env)
            with self._running(side, bot, f"ws{mode[0]}{side.key}"):
                self.lg.call("reset")
                bot.proc.send_signal(signal.SIGUSR1)
                time.sleep(0.2)
                self._load(
                    side, mode, f"s{mode[0]}{side.key}", f"counting steps {side.label} {mode}"
                )
            data = json.loads(path.read_text())
            steps, spawned = data["steps"], data["spawned"]
            out[mode] = {
                "steps_per_msg": sum(steps.values()) / n,
                "spawned_per_msg": sum(spawned.values()) / n,
                "by_task": {k: v / n for k, v in sorted(steps.items(), key=lambda kv: -kv[1])},
                "spawned_by_task": {
                    k: v / n for k, v in sorted(spawned.items(), key=lambda kv: -kv[1])
                },
                # messages per mailbox batch, per actor (how well each actor batches)
                "mailbox_batches": {
                    name: {**mb, "per_batch": mb["messages"] / mb["batches"] if mb["batches"] else 0.0}
                    for name, mb in data.get("mailboxes", {}).items()
                },
            }
        self.progress.done()
        return out
