"""Identifier generation, owned by each bot (no global state; seedable in tests)."""

from __future__ import annotations

import itertools
import random

__all__ = ["IdGen"]


class IdGen:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._counter = itertools.count(1)
        self._prefix = f"{rng.getrandbits(32):08x}"

    def req_id(self, cmd: str) -> str:
        """``<cmd>_<counter>_<random>``: unique per bot, readable in logs."""
        return f"{cmd}_{next(self._counter)}_{self._prefix}"

    def stream_id(self) -> str:
        return f"s{next(self._counter)}{self._rng.getrandbits(48):012x}"
