"""Replica takeover benchmark: how long a bot is without a subscribed replica when its holder goes.

    python benchmarks/bench_lease.py [--kills N] [--ttl S] [--modes crash,frozen,release] [--json PATH]

Three replicas of one long-connection bot (``serve_bot`` with ``redis_url``, the echo handler)
run in this process against the bundled fake WeCom and a ``redis-server`` started from PATH on
a free loopback port. For each mode the holder is killed ``--kills`` times (a new replica is
started after each kill, so there are always three):

* ``crash``: the holder is cancelled without releasing its lease (a process that died): the
  standbys wait for the lease to expire in Redis;
* ``frozen``: the holder's Redis calls hang (it stops renewing): it must close its own
  connection before its TTL ends, and a standby subscribes once the lease expired;
* ``release``: a clean stop: the holder deletes its lease on the way out.

Takeover time = from the kill to the fake's next successful subscribe of the bot. Also reported:
kick-outs (``disconnected_event`` frames; 0 means the old connection always closed first) and
the lease's Redis calls per replica per second while idle (renewals and standby polls).

Webhook part (``--webhook-users N``, 0 to skip): two webhook replicas of one bot (echo handler,
``redis_url`` set) behind a round-robin in-process balancer (callbacks go straight into each
replica's ASGI app, signed and encrypted with the bundled fake's crypto); N users at once, one
message each, then refresh polls every ``--poll-interval`` seconds until the stream finishes.
Reported: Redis calls per message (both replicas' calls divided by N), callbacks per message.
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import trio

from wecom_actors import BotConfig, BotHandle, echo, serve_bot
from wecom_actors.lease import Lease
from wecom_actors.testing import FakeWeCom, open_fake_wecom

DEFAULT_JSON = _common.RESULTS_DIR / "lease.json"
MODES = ("crash", "frozen", "release")


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server not found on PATH: install it (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            time.sleep(0.02)
    proc.kill()
    sys.exit("redis-server did not answer within 10 s")


class Replica:
    def __init__(self, n: int) -> None:
        self.n = n
        self.scope = trio.CancelScope()
        self.handle: BotHandle | None = None

    @property
    def lease(self) -> Lease:
        assert self.handle is not None
        lease: Lease = self.handle.runtime.lease  # type: ignore[attr-defined]
        return lease

    async def run(self, config: BotConfig, *, task_status: trio.TaskStatus[None]) -> None:
        def keep(handle: BotHandle) -> None:
            self.handle = handle

        with self.scope:
            await serve_bot(config, echo, rng=random.Random(self.n), on_handle=keep, task_status=task_status)


class Hang:
    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any) -> Any:
            await trio.sleep_forever()

        return call



async def run_mode(fake: FakeWeCom, config: BotConfig, mode: str, kills: int, ttl: float) -> dict[str, Any]:
    times: list[float] = []
    async with trio.open_nursery() as nursery:
        replicas: list[Replica] = []

        async def add() -> None:
            replica = Replica(len(replicas) + 1000 * MODES.index(mode))
            replicas.append(replica)
            await nursery.start(replica.run, config)

        for _ in range(3):
            await add()
        with trio.fail_after(ttl * 3 + 5):
            while True:
                if fake.is_subscribed() and any(r.lease.state == "held" for r in replicas):
                    break
                await trio.sleep(0.01)
        idle_start = trio.current_time()
        calls_start = sum(r.lease.link.calls for r in replicas if r.lease.link is not None)
        await trio.sleep(2 * ttl)
        calls = sum(r.lease.link.calls for r in replicas if r.lease.link is not None) - calls_start
        idle_rate = calls / 3 / (trio.current_time() - idle_start)
        kicked_before = fake.kick_count()
        for _ in range(kills):
            holder = next(r for r in replicas if not r.scope.cancel_called and r.lease.state == "held")
            subscribes = fake.subscribe_count()
            start = trio.current_time()
            if mode == "crash":

                async def no_release() -> None:
                    return None

                holder.lease._release = no_release  # type: ignore[method-assign]
                holder.scope.cancel()
            elif mode == "frozen":
                holder.lease.store = Hang()
            else:
                holder.scope.cancel()
            await fake.wait_until(lambda n=subscribes: fake.subscribe_count() > n, timeout=ttl * 3 + 5)
            times.append(trio.current_time() - start)
            holder.scope.cancel()
            await add()
        nursery.cancel_scope.cancel()
    return {
        "mode": mode,
        "takeover_s": times,
        "min_s": min(times),
        "median_s": statistics.median(times),
        "max_s": max(times),
        "kickouts": fake.kick_count() - kicked_before,
        "redis_calls_per_replica_per_s_idle": idle_rate,
    }


async def bench_webhook(args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    import itertools
    import json

    from wecom_actors.testing._webhook_crypto import aes_key, decrypt_msg, encrypt_msg, sign

    token, key, path = "benchToken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "/wecom/callback"
    config = BotConfig(
        mode="webhook", token=token, encoding_aes_key=key, host="127.0.0.1", port=0, callback_path=path,
        redis_url=redis_url,
    )  # fmt: skip
    aes = aes_key(key)
    ids = itertools.count(1)
    callbacks = 0

    async def post(app: Any, payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal callbacks
        callbacks += 1
        n = next(ids)
        encrypt = encrypt_msg(aes, json.dumps(payload).encode(), n.to_bytes(16, "big"))
        ts, nonce = str(int(time.time())), str(1000000000 + n)
        body = json.dumps({"encrypt": encrypt}).encode()
        scope = {
            "type": "http", "http_version": "1.1", "method": "POST", "path": path,
            "query_string": f"msg_signature={sign(token, ts, nonce, encrypt)}&timestamp={ts}&nonce={nonce}".encode(),
            "headers": [(b"content-length", str(len(body)).encode())],
        }  # fmt: skip
        sent: list[dict[str, Any]] = []
        given = False

        async def receive() -> dict[str, Any]:
            nonlocal given
            if given:
                await trio.sleep_forever()
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        assert sent[0]["status"] == 200, sent[0]
        return dict(json.loads(decrypt_msg(aes, json.loads(sent[1]["body"])["encrypt"])))

    async with trio.open_nursery() as nursery:
        handles = [await nursery.start(serve_bot, config, echo) for _ in range(2)]
        apps = [h.runtime.app for h in handles]
        turn = itertools.count()
        links = [h.runtime.shared.link for h in handles]
        calls_before = sum(link.calls for link in links)
        finished = 0

        async def user(n: int) -> None:
            nonlocal finished
            text = f"user {n}: an echo through two replicas"
            payload = {
                "msgid": f"bench-{n}-{random.getrandbits(32)}", "aibotid": "bot", "chattype": "single",
                "from": {"userid": f"u{n}"}, "msgtype": "text", "text": {"content": text},
            }  # fmt: skip
            answer = await post(apps[next(turn) % 2], payload)
            stream = answer["stream"]
            while not stream["finish"]:
                await trio.sleep(args.poll_interval)
                poll = {
                    "msgid": f"poll-{next(ids)}", "aibotid": "bot", "chattype": "single", "from": {"userid": f"u{n}"},
                    "msgtype": "stream", "stream": {"id": stream["id"]},
                }  # fmt: skip
                stream = (await post(apps[next(turn) % 2], poll))["stream"]
            assert stream["content"] == text
            finished += 1

        start = trio.current_time()
        with trio.fail_after(120):
            async with trio.open_nursery() as users:
                for n in range(args.webhook_users):
                    users.start_soon(user, n)
        elapsed = trio.current_time() - start
        calls = sum(link.calls for link in links) - calls_before
        nursery.cancel_scope.cancel()
    users_n = args.webhook_users
    return {
        "users": users_n,
        "finished": finished,
        "redis_calls": calls,
        "redis_calls_per_message": calls / users_n,
        "callbacks_per_message": callbacks / users_n,
        "elapsed_s": elapsed,
    }


async def bench(args: argparse.Namespace, redis_url: str) -> list[dict[str, Any]]:
    results = []
    for mode in args.modes:
        async with open_fake_wecom() as fake:
            config = BotConfig(
                mode="long-connection", bot_id=fake.bot_id, bot_secret=fake.secret, ws_url=fake.url,
                reconnect_jitter=0.0, redis_url=redis_url, lease_ttl=args.ttl,
            )  # fmt: skip
            results.append(await run_mode(fake, config, mode, args.kills, args.ttl))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kills per mode (default 20)")
    parser.add_argument("--ttl", type=float, default=1.0, help="WECOM_LEASE_TTL in seconds (default 1.0)")
    parser.add_argument(
        "--modes", type=lambda v: [m for m in v.split(",") if m], default=list(MODES),
        help="comma-separated: crash, frozen, release (default all)",
    )  # fmt: skip
    parser.add_argument("--webhook-users", type=int, default=100, help="webhook part: users (0: skip; default 100)")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="webhook part: seconds between polls")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
    args = parser.parse_args()
    bad = [m for m in args.modes if m not in MODES]
    if bad or args.kills < 1 or args.ttl < 0.5 or args.webhook_users < 0 or args.poll_interval <= 0:
        parser.error(f"modes are {', '.join(MODES)}; --kills >= 1; --ttl >= 0.5; --webhook-users >= 0")
    # The holder's renewal warnings and "lease lost" errors are expected here: keep the table clean.
    logging.getLogger("wecom_actors").setLevel(logging.CRITICAL)
    run = _common.ProcessRun("lease", args)
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir:
        proc, port = start_redis(workdir)
        try:
            results = trio.run(bench, args, f"redis://127.0.0.1:{port}/0") if args.modes else []
            webhook = trio.run(bench_webhook, args, f"redis://127.0.0.1:{port}/0") if args.webhook_users else None
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    rows = [
        [r["mode"], f"{r['min_s']:.3f}", f"{r['median_s']:.3f}", f"{r['max_s']:.3f}",
         f"{r['median_s'] / args.ttl:.2f}", str(r["kickouts"]), f"{r['redis_calls_per_replica_per_s_idle']:.2f}"]
        for r in results
    ]  # fmt: skip
    headers = ["kill", "min s", "median s", "max s", "median / TTL", "kick-outs", "Redis calls/replica/s"]
    table = _common.format_table(headers, rows) if rows else "(no lease modes run)"
    if webhook is not None:
        table += (
            f"\n\nwebhook, 2 replicas round-robin, {webhook['users']} users, polls every {args.poll_interval} s: "
            f"{webhook['redis_calls_per_message']:.1f} Redis calls per message, "
            f"{webhook['callbacks_per_message']:.1f} callbacks per message, {webhook['finished']} streams finished "
            f"in {webhook['elapsed_s']:.1f} s"
        )
    run.report(table, before=f"{args.kills} kills per mode, TTL {args.ttl} s, 3 replicas; ")
    run.write(_common.package_versions("wecom-actors", "coredis", "trio"), {"modes": results, "webhook": webhook})
    return 0


if __name__ == "__main__":
    _common.run_script(main)
