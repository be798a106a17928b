"""An experiment: our webhook bot with hypercorn swapped for a bare HTTP/1.1 loop on h11.

    python benchmarks/_webhook_h11_bot.py      # same settings as ``wecom-actors run --mode webhook``

Started by ``bench_webhook.py --h11`` to measure how much of the bot's CPU per callback is the
HTTP server's: everything else (WebhookApp, the crypto, the actors, the echo handler) is the
package's own code, unchanged. The loop is ``trio.serve_tcp`` plus h11 (the HTTP/1.1 state
machine hypercorn also uses): one task per connection, the ASGI app awaited inline (HTTP/1.1
answers one request at a time anyway), and the response written with one ``send_all``.
Bounded: 64 KiB of incomplete head, the app's own body limit, 75 s keep-alive idle. It is a
measurement aid, not a server the package ships.
"""

from __future__ import annotations

import sys
from email.utils import formatdate
from functools import partial
from typing import Any

import h11
import trio

import wecom_actors.webhook.bot as webhook_bot
import wecom_actors.webhook.server as webhook_server
from wecom_actors.cli import main

IDLE_TIMEOUT = 75.0
MAX_HEAD = 64 * 1024


class H11Server:
    """The WebhookServer interface (``run(task_status)`` -> the port, ``shutdown()``,
    ``stop()``) on h11."""

    graceful_timeout = 3.0

    def __init__(self, app: Any, *, host: str, port: int, **_: Any) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._stop = trio.Event()

    def shutdown(self) -> None:
        self._stop.set()

    async def stop(self) -> None:
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                partial(trio.serve_tcp, self._connection, self.requested_port, host=self.host)
            )
            self.port = listeners[0].socket.getsockname()[1]
            task_status.started(self.port)
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    async def _connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        try:
            while True:
                event = await self._next(conn, stream)
                if not isinstance(event, h11.Request):
                    return
                body: list[bytes] = []
                while True:
                    part = await self._next(conn, stream)
                    if isinstance(part, h11.Data):
                        body.append(bytes(part.data))
                    elif isinstance(part, h11.EndOfMessage):
                        break
                    else:
                        return
                await stream.send_all(await self._call_app(conn, event, b"".join(body)))
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            return
        finally:
            await stream.aclose()

    async def _next(self, conn: h11.Connection, stream: trio.SocketStream) -> Any:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            with trio.fail_after(IDLE_TIMEOUT):
                data = await stream.receive_some(65536)
            conn.receive_data(data)

    async def _call_app(self, conn: h11.Connection, request: h11.Request, body: bytes) -> bytes:
        path, _, query = request.target.partition(b"?")
        scope = {
            "type": "http",
            "http_version": request.http_version.decode(),
            "method": request.method.decode("ascii"),
            "path": path.decode("latin-1"),
            "raw_path": path,
            "query_string": query,
            "headers": list(request.headers),
        }
        sent = False
        start: dict[str, Any] = {}
        out: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await trio.sleep_forever()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                out.append(message.get("body", b""))

        await self.app(scope, receive, send)
        status = start.get("status", 500)
        headers = [*start.get("headers", []), (b"date", formatdate(usegmt=True).encode())]
        data = conn.send(h11.Response(status_code=status, headers=headers))
        data += conn.send(h11.Data(data=b"".join(out))) + conn.send(h11.EndOfMessage())
        return data


if __name__ == "__main__":
    # wherever the bot (or a runner that shares one server between bots) makes its server
    webhook_bot.WebhookServer = H11Server  # type: ignore[misc,assignment]
    webhook_server.WebhookServer = H11Server  # type: ignore[misc,assignment]
    sys.exit(main(["run", "--mode", "webhook", "--handler", "echo", "--log-level", "WARNING"]))
