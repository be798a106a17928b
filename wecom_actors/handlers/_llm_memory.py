"""Conversation memory of the ``openai`` handler: in process, bounded three ways.

Each conversation keeps its last exchanges (a user message and the answer), at most ``turns`` of
them and at most ``max_bytes`` of text (UTF-8) in all; the oldest exchanges go first, and an
answer too long to fit at all is kept cut (its beginning). At most
``conversations`` conversations are kept; the one used least recently is forgotten first.
Images are remembered as a short placeholder, never as data.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable

from ..render import truncate_utf8

__all__ = ["Exchange", "Memory", "memory_key"]

Exchange = tuple[str, str]  # (the user's text, the answer)
#: Ends an answer that was cut to fit in the memory.
CUT = "…"



def memory_key(*, bot: str, chat: str | None, group: bool, user: str) -> Hashable:
    """One memory per single chat, and one per sender in each group chat."""
    return (bot, chat or "", user) if group else (bot, "", user)


def _size(exchange: Exchange) -> int:
    return len(exchange[0].encode("utf-8")) + len(exchange[1].encode("utf-8"))


class Memory:
    def __init__(self, *, turns: int, max_bytes: int, conversations: int) -> None:
        self.turns = turns
        self.max_bytes = max_bytes
        self.conversations = conversations
        self._data: OrderedDict[Hashable, deque[Exchange]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def history(self, key: Hashable) -> list[Exchange]:
        exchanges = self._data.get(key)
        if exchanges is None:
            return []
        self._data.move_to_end(key)
        return list(exchanges)

    def add(self, key: Hashable, user: str, answer: str) -> None:
        """Remember one exchange (nothing when memory is off or the exchange alone is too big)."""
        if self.turns == 0:
            return
        budget = self.max_bytes - len(user.encode("utf-8"))
        if budget < 100:
            return  # the question alone (nearly) fills the memory: keep nothing
        if len(answer.encode("utf-8")) > budget:
            answer = truncate_utf8(answer, budget - len(CUT.encode("utf-8"))) + CUT
        exchange = (user, answer)
        exchanges = self._data.setdefault(key, deque())
        self._data.move_to_end(key)
        exchanges.append(exchange)
        total = sum(_size(e) for e in exchanges)
        while len(exchanges) > self.turns or total > self.max_bytes:
            total -= _size(exchanges.popleft())
        while len(self._data) > self.conversations:
            self._data.popitem(last=False)

    def clear(self, key: Hashable) -> bool:
        """Forget one conversation; ``True`` when there was something to forget."""
        return self._data.pop(key, None) is not None
