"""Many bots in one process: N ``serve_bot`` in one trio program, each its own bot id and its own
connection to the fake (used by ``bench_scale.py``; not run by hand).

    python benchmarks/_scale_bots.py --url ws://127.0.0.1:PORT --count 100 --prefix bot- --secret S

Bot ``i`` is ``{prefix}{i:03d}`` with the shared secret and the built-in ``echo`` handler, log
level WARNING. Runs until SIGINT/SIGTERM, then stops every bot (cancels the nursery).
"""

from __future__ import annotations

import argparse
import signal

import trio

import wecom_actors
from wecom_actors._logging import setup_logging


async def main(url: str, count: int, prefix: str, secret: str) -> None:
    setup_logging("WARNING")
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            for i in range(count):
                config = wecom_actors.BotConfig(
                    mode="long-connection",
                    bot_id=f"{prefix}{i:03d}",
                    bot_secret=secret,
                    ws_url=url,
                    log_level="WARNING",
                )
                nursery.start_soon(wecom_actors.serve_bot, config, wecom_actors.echo)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--prefix", default="bot-")
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    trio.run(main, args.url, args.count, args.prefix, args.secret)
