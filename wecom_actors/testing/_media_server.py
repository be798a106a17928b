"""The fake's loopback media host: encrypted media behind short-lived URLs.

The scheme is described in docs/protocol-notes.md, 'Media decryption'.

Each media payload the fake puts into a callback (image, file, video, mixed images) gets a fresh
32-byte AES key and its own URL. ``GET <url>`` returns the ciphertext (AES-256-CBC, IV = key[:16],
PKCS#7 padded to a multiple of 32 bytes) until ``ttl`` seconds of trio time have passed, then 404
(WeCom's media URLs are valid 5 minutes). Served by hypercorn's trio worker through a tiny ASGI app.
"""

from __future__ import annotations

import base64
import logging
import random
from dataclasses import dataclass
from functools import partial
from typing import Any, NoReturn
from urllib.parse import quote

import trio

__all__ = ["MediaStore", "serve_media"]

logger = logging.getLogger("wecom_actors.testing.media")


@dataclass(frozen=True, slots=True)
class _Item:
    ciphertext: bytes
    filename: str | None
    created: float


class MediaStore:
    """Media URLs handed out in callbacks, keyed by the URL's token."""

    def __init__(self, *, ttl: float, rng: random.Random) -> None:
        self.ttl = ttl
        self.base_url = ""
        self._rng = rng
        self._items: dict[str, _Item] = {}

    def add(self, data: bytes, *, filename: str | None, now: float) -> tuple[str, str]:
        """Encrypt ``data`` under a fresh key; return ``(url, aeskey)`` for the callback body.

        The aeskey is base64 without ``=`` padding, which is how clients must expect it (the official
        SDKs add the missing ``=`` padding before decoding).
        """
        if not self.base_url:
            raise RuntimeError("the fake's media server is not serving yet")
        from wecom_actors.crypto import encrypt_media  # lazily: the fake must not need it to import

        key = self._rng.randbytes(32)
        token = f"{self._rng.getrandbits(128):032x}"
        self._items[token] = _Item(encrypt_media(data, key), filename, now)
        return f"{self.base_url}/media/{token}", base64.b64encode(key).decode().rstrip("=")

    def get(self, token: str, now: float) -> _Item | None:
        item = self._items.get(token)
        if item is not None and now - item.created > self.ttl:
            del self._items[token]
            return None
        return item


def _content_disposition(filename: str) -> bytes:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}".encode()


def make_media_app(store: MediaStore) -> Any:
    """The ASGI app: ``GET``/``HEAD /media/<token>`` -> ciphertext or 404."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        item = None
        if path.startswith("/media/"):
            item = store.get(path.removeprefix("/media/"), trio.current_time())
        if scope["method"] not in ("GET", "HEAD"):
            status, headers, body = 405, [(b"allow", b"GET, HEAD")], b""
        elif item is None:
            status, headers, body = 404, [(b"content-type", b"text/plain")], b"not found\n"
        else:
            status, body = 200, item.ciphertext
            headers = [(b"content-type", b"application/octet-stream")]
            if item.filename is not None:
                headers.append((b"content-disposition", _content_disposition(item.filename)))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    return app


async def serve_media(
    store: MediaStore,
    *,
    host: str,
    port: int,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve ``store`` over HTTP; ``started()`` with the base URL (``http://host:port``)."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logger
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve, make_media_app(store), config, mode="asgi")
        )
        store.base_url = binds[0]
        task_status.started(binds[0])
        await trio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover
