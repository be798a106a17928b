"""Splitting a streamed answer into reasoning and content at ``<think>...</think>`` (sans-IO).

Reasoning models served by Ollama, vLLM or llama.cpp often put their reasoning into the content,
between ``<think>`` and ``</think>``, and a stream may cut a tag anywhere (``<thi`` + ``nk>``).
:class:`ThinkSplitter` is fed the content deltas in order and returns what each delta resolves
to; a possible partial tag is held back until the next delta (or :meth:`close`) decides it.

Only a ``<think>`` at the very start of the answer (after whitespace) opens a reasoning block, so
an answer that merely talks about the tag, in a code sample say, is left alone. Whitespace right
after ``</think>`` is dropped.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["Part", "ThinkSplitter"]

OPEN = "<think>"
CLOSE = "</think>"

Kind = Literal["reasoning", "content"]
Part = tuple[Kind, str]


def _held_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a proper start of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


class ThinkSplitter:
    """Feed content deltas; get ``("reasoning", text)`` and ``("content", text)`` parts back."""

    __slots__ = ("_buf", "_state")

    def __init__(self) -> None:
        self._buf = ""
        # start: only whitespace so far; think: inside the block; after: just after </think>;
        # answer: everything else is content.
        self._state: Literal["start", "think", "after", "answer"] = "start"

    @property
    def in_reasoning(self) -> bool:
        return self._state == "think"

    def feed(self, text: str) -> list[Part]:
        out: list[Part] = []
        self._buf += text
        while self._buf:
            buf = self._buf
            if self._state == "start":
                stripped = buf.lstrip()
                if not stripped or (OPEN.startswith(stripped) and stripped != OPEN):
                    break  # only whitespace or a partial "<think>" so far: wait
                if stripped.startswith(OPEN):
                    self._state, self._buf = "think", stripped[len(OPEN) :]
                else:
                    self._state = "answer"
            elif self._state == "think":
                end = buf.find(CLOSE)
                if end >= 0:
                    _add(out, "reasoning", buf[:end])
                    self._state, self._buf = "after", buf[end + len(CLOSE) :]
                else:
                    keep = _held_suffix(buf, CLOSE)
                    _add(out, "reasoning", buf[: len(buf) - keep])
                    self._buf = buf[len(buf) - keep :]
                    break
            elif self._state == "after":
                self._buf = buf.lstrip()
                if self._buf:
                    self._state = "answer"
            else:
                _add(out, "content", buf)
                self._buf = ""
        return out

    def close(self) -> list[Part]:
        """The end of the answer: whatever is still held back, resolved."""
        out: list[Part] = []
        buf, self._buf = self._buf, ""
        if self._state == "think":
            _add(out, "reasoning", buf)  # an unterminated block is still reasoning
        elif self._state == "start":
            _add(out, "content", buf.strip() and buf)
        self._state = "answer"
        return out


def _add(out: list[Part], kind: Kind, text: str) -> None:
    if not text:
        return
    if out and out[-1][0] == kind:
        out[-1] = (kind, out[-1][1] + text)
    else:
        out.append((kind, text))
