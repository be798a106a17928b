"""Shared helpers for the download_media tests (test_media_*): keys, a fake resolver, a recorder.

HTTP goes through httpx.MockTransport and names through FakeResolver: no real network.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import trio

from wecom_actors.media import MediaPayload, MediaPolicy, download_media

EAK = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
AES_KEY = bytes.fromhex("8d69989bbaabe67328014c194631ad0719b3dca035b64023df292447aab60760")
MEDIA_PLAIN = bytes.fromhex("89504e470d0a1a0a000102030405060708090a0b0c0d0e0f1011121314151617")
MEDIA_CIPHER = base64.b64decode(
    "3hKHD3g0zfH7oBK+G7p5kGpyOt1jJ/3kU4kqegn2GJJZl5bq1LapohI/0l+9eWDYR9mjoIajogCDj0wwKnEZdQ=="
)
LC_KEY = bytes(range(100, 132))
LC_AESKEY = base64.b64encode(LC_KEY).decode()

HOST = "ww-aibot-img-1258476243.cos.ap-guangzhou.myqcloud.com"
SIGNED_QUERY = "q-sign-algorithm=sha1&q-signature=TOPSECRETSIGNATURE"
URL = f"https://{HOST}/img/abc?{SIGNED_QUERY}"
PUBLIC_IP = "93.184.216.34"
PUBLIC_IP6 = "2606:2800:220:1:248:1893:25c8:1946"
POLICY = MediaPolicy()
ABSOLUTE_TIMEOUT = 30.0

Handler = Callable[[httpx.Request], httpx.Response]


class FakeResolver:
    """Maps host names to address lists and records every lookup."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = {HOST: [PUBLIC_IP], "public.example": [PUBLIC_IP, PUBLIC_IP6]}
        self.table.update(table or {})
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        await trio.lowlevel.checkpoint()
        if host not in self.table:
            raise OSError(f"unknown host {host}")
        return self.table[host]


class Recorder:
    """A MockTransport handler that records requests and delegates to ``respond``."""

    def __init__(self, respond) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.respond(request)
        if not isinstance(response, httpx.Response):
            response = await response
        return response


def serve(body: bytes = MEDIA_CIPHER, status: int = 200, headers: dict[str, str] | None = None):
    hdrs = {"content-type": "application/octet-stream"}
    hdrs.update(headers or {})
    return Recorder(lambda request: httpx.Response(status, content=body, headers=hdrs))


async def fetch(
    handler,
    url: str = URL,
    *,
    key: bytes | str | None = EAK,
    policy: MediaPolicy = POLICY,
    resolver: FakeResolver | None = None,
) -> MediaPayload:
    # follow_redirects=True on purpose: download_media must never delegate redirects.
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handler), follow_redirects=True
    ) as client:
        with trio.fail_after(ABSOLUTE_TIMEOUT):
            return await download_media(
                client,
                url,
                key=key,
                policy=policy,
                resolver=FakeResolver() if resolver is None else resolver,
            )


def assert_no_secrets(exc: BaseException) -> None:
    text = f"{exc} {exc!r}"
    for secret in (EAK, LC_AESKEY, AES_KEY.hex(), "TOPSECRETSIGNATURE"):
        assert secret not in text
