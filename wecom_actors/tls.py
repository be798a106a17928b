"""One TLS client context per process, shared by every bot's WebSocket dial and HTTP client.

Loading the CA bundle costs about 0.9 MB and tens of milliseconds per context; a process running
100 bots would otherwise pay that 200 times (benchmarks.md). An ``ssl.SSLContext`` is safe to
share between connections; nothing here is mutable bot state.
"""

from __future__ import annotations

import functools
import ssl

__all__ = ["client_context"]


@functools.cache
def client_context() -> ssl.SSLContext:
    """The default-verified client context (system CA store, hostname checks on)."""
    return ssl.create_default_context()
