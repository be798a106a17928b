"""Bounded, SSRF-guarded download and decryption of callback media (image, file, video URLs).

WeCom hands the bot a URL (valid five minutes) and, in long-connection mode, a per-URL base64
``aeskey``; in webhook mode the key is the bot's EncodingAESKey. :func:`download_media` fetches
the blob with the caller's :class:`httpx.AsyncClient` and decrypts it with
:func:`wecom_actors.crypto.decrypt_media`.

Guards, all configured by :class:`MediaPolicy`:

* only ``http``/``https`` URLs;
* the host is resolved first and refused if **any** address is loopback, private, link-local,
  multicast, reserved, unspecified or otherwise not globally routable (``ipaddress``'s
  ``is_global``), or in ``192.0.0.0/24`` (IETF protocol assignments) or ``64:ff9b:1::/48``
  (local-use NAT64), unless ``allow_private``; literal IPs are checked the same way. An IPv6
  address that carries an IPv4 address (IPv4-mapped ``::ffff:0:0/96``, 6to4 ``2002::/16``,
  the NAT64 well-known prefix ``64:ff9b::/96``, Teredo ``2001::/32``) is also judged by the
  IPv4 address it carries, since a relay or translator may deliver to it;
* redirects are followed by hand, at most ``max_redirects`` times, and every hop is re-checked;
* the whole download (resolution included) runs under ``trio.fail_after(timeout)``;
* the body is streamed and abandoned as soon as it exceeds ``max_bytes`` (a larger
  ``Content-Length`` is refused before reading).

Every failure raises :class:`~wecom_actors.errors.MediaError` naming the URL's host (never the
query string, which carries the storage signature, never a key, and never the address a name
resolved to: the message may be shown to the chat user, and internal addresses are not theirs to
see; the address is logged at DEBUG, escaped), chained to its cause.

Known limit: the check resolves the name, then httpx resolves it again to connect, so a DNS
server that answers differently within that window (DNS rebinding) is not stopped here. Pin the
addresses in the transport, or use an egress proxy, where that matters.
"""

from __future__ import annotations

import codecs
import hashlib
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

import httpx
import msgspec
import trio

from ._logging import escape
from .crypto import decrypt_media
from .errors import CryptoError, MediaError

__all__ = ["MediaPayload", "MediaPolicy", "Resolver", "check_host", "default_resolver", "download_media"]

#: ``resolver(host, port) -> [address, ...]``; the default uses ``trio.socket.getaddrinfo``.
Resolver = Callable[[str, int], Awaitable[list[str]]]

_DEFAULT_PORTS = {"http": 80, "https": 443}

log = logging.getLogger("wecom_actors.media")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Refused although some Python versions call (parts of) them global.
_ALSO_REFUSED = (
    (ipaddress.ip_network("192.0.0.0/24"), "an IETF protocol assignment"),
    (ipaddress.ip_network("64:ff9b:1::/48"), "local-use NAT64"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class MediaPayload(msgspec.Struct, frozen=True):
    """A downloaded (and, when a key was given, decrypted) media blob."""

    data: bytes
    #: From ``Content-Disposition`` (RFC 5987 ``filename*`` preferred), URL-decoded, no path.
    filename: str | None
    #: The media type of the ``Content-Type`` header, lower case, parameters dropped.
    content_type: str | None
    #: Lowercase hex MD5 of ``data`` (the decrypted bytes).
    md5: str


class MediaPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Limits of one download."""

    max_bytes: int = 20 * 1024 * 1024
    timeout: float = 30.0
    allow_private: bool = False
    max_redirects: int = 3


async def download_media(
    client: httpx.AsyncClient,
    url: str,
    *,
    key: bytes | str | None,
    policy: MediaPolicy,
    resolver: Resolver | None = None,
) -> MediaPayload:
    """Download ``url`` under ``policy`` and decrypt it with ``key`` (raw bytes when ``None``).

    ``key`` is the 32-byte AES key or its base64 form (a long-connection ``aeskey`` or the
    webhook EncodingAESKey). ``client`` belongs to the caller; redirects are never delegated to
    it. Raises :class:`MediaError` on any failure.
    """
    resolve = default_resolver if resolver is None else resolver
    host = _host_for_message(url)
    try:
        with trio.fail_after(policy.timeout):
            body, response, host = await _fetch(client, url, policy, resolve)
    except trio.TooSlowError as exc:
        raise MediaError(f"media download from {host} timed out after {policy.timeout:g}s") from exc

    if key is None:
        data = body
    else:
        try:
            data = decrypt_media(body, key)
        except CryptoError as exc:
            raise MediaError(
                f"media from {host} did not decrypt ({type(exc).__name__}: {exc})"
            ) from exc
    return MediaPayload(
        data=data,
        filename=filename_from_disposition(response.headers.get("content-disposition")),
        content_type=_media_type(response.headers.get("content-type")),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )


# --- fetching ------------------------------------------------------------------------------------


async def _fetch(
    client: httpx.AsyncClient, url: str, policy: MediaPolicy, resolve: Resolver
) -> tuple[bytes, httpx.Response, str]:
    """Follow redirects by hand; return the body, the final response and its host."""
    target = _parse_url(url)
    redirects = 0
    while True:
        host = target.host
        await check_host(host, target.port or _DEFAULT_PORTS[target.scheme], policy, resolve)
        try:
            async with client.stream(
                "GET",
                target,
                headers={"Accept-Encoding": "identity"},
                follow_redirects=False,
            ) as response:
                if response.has_redirect_location:
                    if redirects >= policy.max_redirects:
                        raise MediaError(
                            f"media download from {host}: more than "
                            f"{policy.max_redirects} redirects"
                        )
                    redirects += 1
                    target = _parse_url(response.headers["location"], base=target)
                    continue
                if not response.is_success:
                    raise MediaError(
                        f"media download from {host} failed: HTTP {response.status_code}"
                    )
                body = await _read_bounded(response, host, policy.max_bytes)
                return body, response, host
        except httpx.HTTPError as exc:
            raise MediaError(f"media download from {host} failed: {type(exc).__name__}") from exc


async def _read_bounded(response: httpx.Response, host: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise MediaError(
            f"media from {host} is {int(declared)} bytes (Content-Length), over the "
            f"{max_bytes}-byte limit"
        )
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise MediaError(f"media from {host} exceeds the {max_bytes}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_url(url: str | httpx.URL, *, base: httpx.URL | None = None) -> httpx.URL:
    try:
        target = httpx.URL(url) if base is None else base.join(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise MediaError("media URL is not a valid URL") from exc
    if target.scheme not in _DEFAULT_PORTS:
        raise MediaError(f"media URL scheme {target.scheme!r} is not http or https")
    if not target.host:
        raise MediaError("media URL has no host")
    return target


def _host_for_message(url: str) -> str:
    try:
        return httpx.URL(url).host or "<no host>"
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid URL>"


# --- address checks ------------------------------------------------------------------------------


async def default_resolver(host: str, port: int) -> list[str]:
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_host(host: str, port: int, policy: MediaPolicy, resolve: Resolver) -> None:
    if policy.allow_private:
        return
    literal = _as_ip(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            resolved = await resolve(host, port)
        except OSError as exc:
            raise MediaError(f"cannot resolve media host {host}: {exc}") from exc
        if not resolved:
            raise MediaError(f"media host {host} resolved to no address")
        addresses = []
        for text in resolved:
            address = _as_ip(text)
            if address is None:
                raise MediaError(f"media host {host} resolved to a non-IP address")
            addresses.append(address)
    for address in addresses:
        reason = refusal_reason(address)
        if reason is not None:
            log.debug("media host %s refused: %s is %s", escape(host), address, reason)
            what = "is" if literal is not None else "resolves to"
            raise MediaError(f"media host {host} refused: it {what} an address that is {reason}")


def _as_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries, and the form: IPv4-mapped, 6to4, NAT64
    (well-known prefix) or Teredo (the client's address)."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    if address in _NAT64:
        return "NAT64", ipaddress.IPv4Address(address.packed[-4:])
    if address.teredo is not None:
        return "Teredo", address.teredo[1]
    return None


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` must not be fetched from, or ``None`` when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(address.packed)  # drop any %scope
        embedded = embedded_ipv4(address)
        if embedded is not None:
            form, inner = embedded
            inner_reason = refusal_reason(inner)
            if inner_reason is not None:
                return f"{form}, carrying an IPv4 address that is {inner_reason}"
            if form in ("IPv4-mapped", "NAT64"):
                return None  # it is (a translation to) that public IPv4 address: DNS64 networks
    for network, name in _ALSO_REFUSED:
        if address.version == network.version and address in network:
            return name
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
    )
    for name, hit in checks:
        if hit:
            return name
    return None


# --- headers -------------------------------------------------------------------------------------

_EXT_FILENAME = re.compile(r"(?:^|;)\s*filename\*\s*=\s*([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'(?:^|;)\s*filename\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', re.IGNORECASE)


def filename_from_disposition(header: str | None) -> str | None:
    """The filename of a ``Content-Disposition`` header, or ``None``.

    Prefers RFC 5987 ``filename*=charset'lang'percent-encoded``, else ``filename="..."`` (or a
    bare token), URL-decoded either way. Directory parts are dropped so the name is safe to join
    to a directory.
    """
    if not header:
        return None
    name = None
    match = _EXT_FILENAME.search(header)
    if match:
        name = _decode_ext_value(match.group(1).strip())
    if name is None:
        match = _FILENAME.search(header)
        if match:
            raw = match.group(1).strip()
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            name = unquote(raw, errors="replace")
    return _safe_name(name)


def _decode_ext_value(value: str) -> str | None:
    parts = value.strip('"').split("'", 2)
    if len(parts) != 3:
        return None
    charset, _lang, encoded = parts
    try:
        codecs.lookup(charset or "utf-8")
    except LookupError:
        return None
    return unquote(encoded, encoding=charset or "utf-8", errors="replace")


def _safe_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip()
    if name in ("", ".", ".."):
        return None
    return name


def _media_type(header: str | None) -> str | None:
    if not header:
        return None
    media_type = header.split(";", 1)[0].strip().lower()
    return media_type or None
