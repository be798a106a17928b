"""The few ASGI pieces our plain apps share (the webhook app and the admin routes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["JSON", "TEXT", "Receive", "Scope", "Send", "respond", "serve_lifespan"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

TEXT = b"text/plain; charset=utf-8"
JSON = b"application/json"


async def respond(
    send: Send, status: int, body: bytes, content_type: bytes = TEXT, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """One whole response: status, content type and length, ``headers``, then ``body``."""
    all_headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer the server's lifespan events until shutdown (nothing to start or stop)."""
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
