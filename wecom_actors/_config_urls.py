"""The URL settings' checks: the long-connection endpoint and the Redis URL of replicas."""

from __future__ import annotations

from ._logging import register_secret

__all__ = ["_redis_url", "_register_url_password", "_ws_url", "ws_host_is_loopback"]


def _ws_url(v: str) -> bool:
    scheme, sep, rest = v.partition("://")
    return bool(sep) and scheme.lower() in ("ws", "wss") and bool(rest.split("/", 1)[0])


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def ws_host_is_loopback(url: str) -> bool:
    """True if the host of a ``ws(s)://`` URL is ``localhost`` or a loopback address."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _redis_url(v: str) -> bool:
    from .redis_link import check_redis_url

    return v == "" or check_redis_url(v) is None


def _register_url_password(url: object) -> None:
    """The password inside a Redis URL is a secret: masked in logs and errors."""
    if isinstance(url, str) and url:
        from .redis_link import redis_password

        password = redis_password(url.strip())
        if password:
            register_secret(password)
