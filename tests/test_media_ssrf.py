"""Tests of wecom_actors.media.download_media: the SSRF guard, redirects and URL checks.

No real network: httpx.MockTransport for HTTP, a fake resolver for names (media_helpers.py).
"""

from __future__ import annotations

import httpx
import pytest
import trio

from wecom_actors.errors import MediaError
from wecom_actors.media import MediaPolicy, download_media

from .media_helpers import (
    ABSOLUTE_TIMEOUT,
    EAK,
    HOST,
    MEDIA_CIPHER,
    MEDIA_PLAIN,
    POLICY,
    PUBLIC_IP,
    PUBLIC_IP6,
    URL,
    FakeResolver,
    Recorder,
    fetch,
    serve,
)

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
