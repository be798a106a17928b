"""Many bots in one process: N ``serve_bot`` in one trio program, each its own bot id and its own
connection to the fake (used by ``bench_scale.py``; not run by hand).

    python benchmarks/_scale_bots.py --url ws://127.0.0.1:PORT --count 100 --prefix bot- --secret S

Bot ``i`` is ``{prefix}{i:03d}`` with the shared secret and the built-in ``echo`` handler, log
level WARNING. By default each bot makes its own httpx client (``serve_bot``'s default);
``--share-http`` passes one shared ``httpx.AsyncClient`` to all (``serve_bot(http_client=...)``).
Runs until SIGINT/SIGTERM, then stops every bot (cancels the nursery).
"""

from __future__ import annotations

import argparse
import functools
import signal

import httpx
import trio

import wecom_actors
from wecom_actors._logging import setup_logging


async def main(url: str, count: int, prefix: str, secret: str, share_http: bool) -> None:
    setup_logging("WARNING")
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with (
            httpx.AsyncClient(follow_redirects=False) as shared,
            trio.open_nursery() as nursery,
        ):
            kwargs = {"http_client": shared} if share_http else {}
            for i in range(count):
                config = wecom_actors.BotConfig(
                    mode="long-connection",
                    bot_id=f"{prefix}{i:03d}",
                    bot_secret=secret,
                    ws_url=url,
                    log_level="WARNING",
                )
                nursery.start_soon(
                    functools.partial(wecom_actors.serve_bot, config, wecom_actors.echo, **kwargs)
                )
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--prefix", default="bot-")
    parser.add_argument("--secret", required=True)
    parser.add_argument(
        "--share-http",
        action="store_true",
        help="one httpx.AsyncClient for all bots (http_client=)",
    )
    args = parser.parse_args()
    trio.run(main, args.url, args.count, args.prefix, args.secret, args.share_http)
