"""A throwaway certificate authority for the fake's ``wss://`` listener.

``FakeTLS.create()`` makes a fresh CA (with ``trustme``, a test dependency) and a server
certificate for loopback names; clients trust the CA through ``client_context`` (Python),
``write_ca()`` + ``NODE_EXTRA_CA_CERTS`` (Node) or ``SSL_CERT_FILE`` (OpenSSL-based clients that
use the default trust store). Nothing here is meant for anything but tests.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FakeTLS"]

_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class FakeTLS:
    server_context: ssl.SSLContext
    client_context: ssl.SSLContext
    ca_pem: bytes

    @classmethod
    def create(cls, *hosts: str) -> FakeTLS:
        """A new CA and a certificate for ``hosts`` (default: 127.0.0.1, localhost, ::1)."""
        try:
            import trustme
        except ImportError:  # pragma: no cover - depends on the environment
            raise RuntimeError("the fake's wss:// listener needs trustme: pip install trustme") from None
        ca = trustme.CA(organization_name="wecom-actors fake WeCom (throwaway)")
        cert = ca.issue_cert(*(hosts or _HOSTS))
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(server)
        client = ssl.create_default_context()
        ca.configure_trust(client)
        return cls(server, client, ca.cert_pem.bytes())

    def write_ca(self, path: str | Path) -> Path:
        """Write the CA certificate (PEM) to ``path`` for clients in other processes."""
        path = Path(path)
        path.write_bytes(self.ca_pem)
        return path
