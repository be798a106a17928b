"""Tests of wecom_actors.media.download_media: httpx.MockTransport for HTTP, a fake resolver.

No real network and no real sleeps: the timeout tests run on the autojump clock.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable

import httpx
import msgspec
import pytest
import trio

from wecom_actors.crypto import encrypt_media
from wecom_actors.errors import CryptoError, DecryptError, InvalidKeyError, MediaError, PaddingError
from wecom_actors.media import (
    MediaPayload,
    MediaPolicy,
    download_media,
    filename_from_disposition,
)

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


# --- SSRF guard ----------------------------------------------------------------------------------

REFUSED_ADDRESSES = {
    "loopback": ["127.0.0.1"],
    "loopback-other": ["127.8.9.10"],
    "private-10": ["10.0.0.5"],
    "private-172": ["172.16.0.1"],
    "private-192": ["192.168.1.1"],
    "link-local-metadata": ["169.254.169.254"],
    "unspecified": ["0.0.0.0"],
    "multicast": ["224.0.0.1"],
    "reserved": ["240.0.0.1"],
    "cgnat": ["100.64.0.1"],
    "ipv6-loopback": ["::1"],
    "ipv6-unspecified": ["::"],
    "ipv6-link-local": ["fe80::1"],
    "ipv6-link-local-scoped": ["fe80::1%eth0"],
    "ipv6-ula": ["fd00::1"],
    "ipv6-multicast": ["ff02::1"],
    "ipv4-mapped-loopback": ["::ffff:127.0.0.1"],
    "ipv4-mapped-private": ["::ffff:10.0.0.1"],
    "ipv4-mapped-metadata": ["::ffff:169.254.169.254"],
    "any-of-several": [PUBLIC_IP, PUBLIC_IP6, "127.0.0.1"],
}


@pytest.mark.parametrize("addresses", REFUSED_ADDRESSES.values(), ids=REFUSED_ADDRESSES.keys())
async def test_refused_resolved_address(addresses):
    handler = serve()
    resolver = FakeResolver({"internal.example": addresses})
    with pytest.raises(MediaError, match="refused") as info:
        await fetch(handler, "https://internal.example/x", resolver=resolver)
    assert handler.requests == []
    assert "internal.example" in str(info.value)


LITERAL_URLS = [
    "http://127.0.0.1/x",
    "http://127.0.0.1:8080/x",
    "http://10.1.2.3/x",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/x",
    "http://[::ffff:127.0.0.1]/x",
    "http://[fe80::1]/x",
    "http://0.0.0.0/x",
]


@pytest.mark.parametrize("url", LITERAL_URLS)
async def test_refused_literal_ip(url):
    handler = serve()
    resolver = FakeResolver()
    with pytest.raises(MediaError):
        await fetch(handler, url, resolver=resolver)
    assert handler.requests == []
    assert resolver.calls == []


@pytest.mark.parametrize(
    "url", ["http://2130706433/x", "http://0x7f.1/x", "http://127.1/x", "http://[::1]:81/x"]
)
async def test_default_resolver_sees_through_numeric_aliases(url):
    # getaddrinfo reads these numeric forms locally (no DNS query) as 127.0.0.1 / ::1.
    handler = serve()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with trio.fail_after(ABSOLUTE_TIMEOUT), pytest.raises(MediaError, match="loopback"):
            await download_media(client, url, key=EAK, policy=POLICY)
    assert handler.requests == []


async def test_public_literal_ip_is_fetched_without_resolving():
    resolver = FakeResolver()
    payload = await fetch(serve(), f"https://{PUBLIC_IP}/x", resolver=resolver)
    assert payload.data == MEDIA_PLAIN
    assert resolver.calls == []


@pytest.mark.parametrize(
    "url, table",
    [
        ("http://127.0.0.1:8080/x", {}),
        ("http://[::1]/x", {}),
        ("http://localhost/x", {"localhost": ["127.0.0.1", "::1"]}),
        ("http://nas.lan/x", {"nas.lan": ["192.168.1.2"]}),
    ],
)
async def test_allow_private_permits_loopback(url, table):
    handler = serve()
    payload = await fetch(
        handler, url, resolver=FakeResolver(table), policy=MediaPolicy(allow_private=True)
    )
    assert payload.data == MEDIA_PLAIN
    assert len(handler.requests) == 1


@pytest.mark.parametrize("error", ["raise", "empty", "not-an-ip"])
async def test_resolution_failure(error):
    table = {"empty.example": [], "weird.example": ["not-an-ip"]}
    host = {"raise": "unknown.example", "empty": "empty.example", "not-an-ip": "weird.example"}[
        error
    ]
    handler = serve()
    with pytest.raises(MediaError, match=host):
        await fetch(handler, f"https://{host}/x", resolver=FakeResolver(table))
    assert handler.requests == []


# --- redirects -----------------------------------------------------------------------------------


def redirecting(chain: dict[str, str], final: bytes = MEDIA_CIPHER) -> Recorder:
    """Redirect each path in ``chain`` to its target; serve ``final`` elsewhere."""

    def respond(request: httpx.Request) -> httpx.Response:
        target = chain.get(request.url.path)
        if target is not None:
            return httpx.Response(302, headers={"location": target})
        return httpx.Response(200, content=final)

    return Recorder(respond)


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "https://internal.example/x",
        "//internal.example/x",
    ],
)
async def test_redirect_to_private_refused(location):
    handler = redirecting({"/img/abc": location})
    resolver = FakeResolver({"internal.example": ["10.0.0.7"]})
    with pytest.raises(MediaError, match="refused"):
        await fetch(handler, resolver=resolver)
    assert [r.url.host for r in handler.requests] == [HOST]


async def test_redirect_rechecks_each_hop():
    handler = redirecting({"/img/abc": "/moved", "/moved": "https://public.example/final"})
    resolver = FakeResolver()
    payload = await fetch(handler, resolver=resolver)
    assert payload.data == MEDIA_PLAIN
    assert [str(r.url) for r in handler.requests] == [
        URL,
        f"https://{HOST}/moved",
        "https://public.example/final",
    ]
    assert resolver.calls == [(HOST, 443), (HOST, 443), ("public.example", 443)]


@pytest.mark.parametrize("max_redirects", [0, 1, 3])
async def test_too_many_redirects(max_redirects):
    handler = Recorder(lambda request: httpx.Response(302, headers={"location": "/again"}))
    with pytest.raises(MediaError, match="redirects"):
        await fetch(handler, policy=MediaPolicy(max_redirects=max_redirects))
    assert len(handler.requests) == max_redirects + 1


async def test_exactly_max_redirects_is_fine():
    handler = redirecting({"/img/abc": "/1", "/1": "/2", "/2": "/3"})
    payload = await fetch(handler, policy=MediaPolicy(max_redirects=3))
    assert payload.data == MEDIA_PLAIN
    assert len(handler.requests) == 4


async def test_redirect_to_other_scheme_refused():
    handler = redirecting({"/img/abc": "ftp://public.example/x"})
    with pytest.raises(MediaError, match="scheme"):
        await fetch(handler)
    assert len(handler.requests) == 1


async def test_redirect_without_location_is_an_error():
    with pytest.raises(MediaError, match="HTTP 302"):
        await fetch(Recorder(lambda request: httpx.Response(302)))


# --- URL checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://public.example/x",
        "file:///etc/passwd",
        "gopher://public.example/x",
        "javascript:alert(1)",
        "data:text/plain,hello",
        "",
        "/relative/path",
        "http://",
        "https://exa mple.com/x",
    ],
)
async def test_non_http_or_invalid_url_refused(url):
    handler = serve()
    with pytest.raises(MediaError):
        await fetch(handler, url)
    assert handler.requests == []


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
