"""Identifiers shaped like WeCom's: message ids and response codes.

WeCom's msgids look like ``CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=``: standard base64 (with ``+``, ``/``
and ``=`` padding) of a few protobuf-style varint fields, the first two always ``08 02 10`` (hence
the ``CAIQ`` prefix), the second a unix timestamp. The fakes build theirs the same way, so code
that stores, logs or escapes msgids meets the characters it will meet in production.
"""

from __future__ import annotations

import base64
import random

__all__ = ["new_msgid", "new_response_code"]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def new_msgid(rng: random.Random, wall: int, serial: int) -> str:
    """A ``CAIQ...`` msgid: unique per ``serial``, carrying the unix time ``wall``."""
    raw = (
        b"\x08\x02\x10" + _varint(max(wall, 0))
        + b"\x18" + _varint(rng.getrandbits(52) | 1 << 51)
        + b"\x20" + _varint(serial)
    )  # fmt: skip
    return base64.b64encode(raw).decode()


def new_response_code(rng: random.Random) -> str:
    """An opaque response code for a ``response_url`` (URL-safe, 43 characters)."""
    return base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")
