"""Tests of wecom_actors.media.download_media: success, filenames, caps, timeouts, errors.

No real network and no real sleeps: the timeout tests run on the autojump clock. Helpers are in
media_helpers.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest
import trio

from wecom_actors.crypto import encrypt_media
from wecom_actors.errors import CryptoError, DecryptError, InvalidKeyError, MediaError, PaddingError
from wecom_actors.media import MediaPayload, MediaPolicy, filename_from_disposition

from .media_helpers import (
    AES_KEY,
    EAK,
    HOST,
    LC_AESKEY,
    LC_KEY,
    MEDIA_CIPHER,
    MEDIA_PLAIN,
    PUBLIC_IP,
    URL,
    FakeResolver,
    Recorder,
    assert_no_secrets,
    fetch,
    serve,
)

# --- success -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [EAK, EAK + "=", AES_KEY], ids=["eak", "padded", "raw"])
async def test_success_with_decrypt_and_md5(key):
    handler = serve()
    resolver = FakeResolver()
    payload = await fetch(handler, key=key, resolver=resolver)
    assert payload == MediaPayload(
        data=MEDIA_PLAIN,
        filename=None,
        content_type="application/octet-stream",
        md5=hashlib.md5(MEDIA_PLAIN).hexdigest(),
    )
    assert len(payload.md5) == 32 and payload.md5 == payload.md5.lower()
    assert resolver.calls == [(HOST, 443)]
    (request,) = handler.requests
    assert str(request.url) == URL
    assert request.headers["accept-encoding"] == "identity"


async def test_long_connection_aeskey():
    blob = b"\xff\xd8\xff" + bytes(range(256)) * 40
    payload = await fetch(serve(encrypt_media(blob, LC_KEY)), key=LC_AESKEY)
    assert payload.data == blob
    assert payload.md5 == hashlib.md5(blob).hexdigest()


async def test_no_key_returns_raw_bytes():
    payload = await fetch(
        serve(b"plain bytes", headers={"content-type": "Image/PNG; q=1"}), key=None
    )
    assert payload.data == b"plain bytes"
    assert payload.md5 == hashlib.md5(b"plain bytes").hexdigest()
    assert payload.content_type == "image/png"


async def test_ipv6_public_host_and_http_port():
    resolver = FakeResolver()
    payload = await fetch(serve(), "http://public.example:8080/x", resolver=resolver)
    assert payload.data == MEDIA_PLAIN
    assert resolver.calls == [("public.example", 8080)]


# --- Content-Disposition -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, expected",
    [
        ('attachment; filename="fallback.png"', "fallback.png"),
        (
            "attachment; filename*=UTF-8''%E4%BD%A0%E5%A5%BD.png; filename=\"fallback.png\"",
            "你好.png",
        ),
    ],
    ids=["quoted", "rfc5987"],
)
async def test_content_disposition_in_payload(header, expected):
    payload = await fetch(serve(headers={"content-disposition": header}))
    assert payload.filename == expected


@pytest.mark.parametrize(
    "header, expected",
    [
        ('attachment; filename="report.pdf"', "report.pdf"),
        ("attachment; filename*=UTF-8''%E4%BD%A0%E5%A5%BD.png", "你好.png"),
        ("attachment; filename=\"fallback.png\"; filename*=UTF-8''%E4%BD%A0.png", "你.png"),
        ("attachment; FILENAME*=utf-8'zh-cn'%E6%96%87.doc", "文.doc"),
        ('attachment; filename="%E6%96%87%E4%BB%B6.txt"', "文件.txt"),
        ("inline; filename=plain.txt", "plain.txt"),
        ('attachment; filename="a \\"quoted\\" name.txt"', 'a "quoted" name.txt'),
        ("attachment; filename*=bogus-charset''abc; filename=\"x.bin\"", "x.bin"),
        ('attachment; filename*=noquotes; filename="y.bin"', "y.bin"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="C:\\\\Windows\\\\evil.exe"', "evil.exe"),
        ('attachment; filename="..%2F..%2Fsecret"', "secret"),
        ('attachment; filename=".."', None),
        ('attachment; filename=""', None),
        ("attachment", None),
        ("", None),
        (None, None),
    ],
)
def test_filename_from_disposition(header, expected):
    assert filename_from_disposition(header) == expected


# --- size caps -----------------------------------------------------------------------------------


class MustNotBeRead(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        raise AssertionError("the body was read although Content-Length is over the cap")
        yield b""  # pragma: no cover


async def test_size_cap_by_content_length():
    policy = MediaPolicy(max_bytes=1000)
    handler = Recorder(
        lambda request: httpx.Response(
            200, headers={"content-length": "1001"}, stream=MustNotBeRead()
        )
    )
    with pytest.raises(MediaError, match="Content-Length") as info:
        await fetch(handler, policy=policy)
    assert HOST in str(info.value)


async def test_size_cap_while_streaming():
    chunk = b"\x00" * 4096
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 1
            yield chunk

    policy = MediaPolicy(max_bytes=10 * 4096)
    handler = Recorder(lambda request: httpx.Response(200, content=endless()))
    with pytest.raises(MediaError, match="limit") as info:
        await fetch(handler, policy=policy)
    assert sent == 11  # aborted on the first chunk past the cap
    assert HOST in str(info.value)


@pytest.mark.parametrize("declared", [True, False])
async def test_body_exactly_at_cap_is_accepted(declared):
    body = b"z" * 4096

    async def chunks() -> AsyncIterator[bytes]:
        yield body[:1000]
        yield body[1000:]

    headers = {"content-length": "4096"} if declared else {}
    handler = Recorder(lambda request: httpx.Response(200, content=chunks(), headers=headers))
    payload = await fetch(handler, key=None, policy=MediaPolicy(max_bytes=4096))
    assert payload.data == body


# --- timeout -------------------------------------------------------------------------------------


async def test_timeout_waiting_for_headers(autojump_clock):
    async def hang(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()

    start = trio.current_time()
    with pytest.raises(MediaError, match="timed out") as info:
        await fetch(Recorder(hang), policy=MediaPolicy(timeout=5.0))
    assert trio.current_time() - start == 5.0
    assert isinstance(info.value.__cause__, trio.TooSlowError)
    assert HOST in str(info.value)
    assert_no_secrets(info.value)


async def test_timeout_while_streaming(autojump_clock):
    async def drip() -> AsyncIterator[bytes]:
        yield b"x" * 16
        await trio.sleep(2.5)
        yield b"x" * 16
        await trio.sleep_forever()

    start = trio.current_time()
    with pytest.raises(MediaError, match="timed out"):
        await fetch(
            Recorder(lambda request: httpx.Response(200, content=drip())),
            policy=MediaPolicy(timeout=7.5),
        )
    assert trio.current_time() - start == 7.5


async def test_timeout_covers_slow_resolution(autojump_clock):
    class SlowResolver(FakeResolver):
        async def __call__(self, host: str, port: int) -> list[str]:
            await trio.sleep(100)
            return [PUBLIC_IP]

    start = trio.current_time()
    with pytest.raises(MediaError, match="timed out"):
        await fetch(serve(), resolver=SlowResolver(), policy=MediaPolicy(timeout=3.0))
    assert trio.current_time() - start == 3.0


# --- HTTP errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 403, 500, 304])
async def test_http_error_status(status):
    with pytest.raises(MediaError, match=f"HTTP {status}") as info:
        await fetch(serve(b"nope", status=status))
    assert HOST in str(info.value)
    assert_no_secrets(info.value)


async def test_transport_error_is_wrapped():
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(MediaError, match="ConnectError") as info:
        await fetch(Recorder(broken))
    assert isinstance(info.value.__cause__, httpx.ConnectError)


# --- bad payloads --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, key, cause",
    [
        (MEDIA_CIPHER[:-16] + MEDIA_CIPHER[:16], EAK, PaddingError),  # last block replaced
        (encrypt_media(MEDIA_PLAIN, LC_KEY), EAK, PaddingError),  # wrong key
        (MEDIA_CIPHER[:-1], EAK, DecryptError),  # not a multiple of 16
        (b"", EAK, DecryptError),
        (MEDIA_CIPHER, EAK[:42], InvalidKeyError),
        (MEDIA_CIPHER, b"short", InvalidKeyError),
    ],
    ids=["bad-padding", "wrong-key", "truncated", "empty", "bad-key-42", "bad-raw-key"],
)
async def test_bad_payload(body, key, cause):
    with pytest.raises(MediaError, match="decrypt") as info:
        await fetch(serve(body), key=key)
    assert type(info.value.__cause__) is cause
    assert isinstance(info.value.__cause__, CryptoError)
    assert HOST in str(info.value)
    assert_no_secrets(info.value)


def test_policy_defaults_and_strictness():
    assert MediaPolicy() == MediaPolicy(
        max_bytes=20 * 1024 * 1024, timeout=30.0, allow_private=False, max_redirects=3
    )
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"max_byte": 1}, MediaPolicy)
