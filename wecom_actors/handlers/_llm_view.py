"""What the user sees of a model's answer while it streams: :class:`AnswerWriter`.

While the model reasons, the reply shows a collapsed quote: a "Thinking…" line and the last
few lines of the reasoning (or only the "Thinking…" line when reasoning display is off). When
the answer proper starts, the quote is replaced by the answer, which then only grows, so the
final text is the answer alone (plus a note when something went wrong).

Replacing text is safe only while the stream is still open: WeCom's 6-minute window is closed
by the library with the text shown at that moment, and the rest follows as messages. So from a
little before the window closes, the writer only appends.
"""

from __future__ import annotations

from typing import Any

import trio

from ..protocol.limits import STREAM_WINDOW_SECONDS

__all__ = ["AnswerWriter", "render_reasoning"]

THINKING = "> **Thinking…**"
#: How much of the reasoning the collapsed quote shows (its end), in characters and lines.
TAIL_CHARS = 300
TAIL_LINES = 4
#: Stop replacing text this long before the stream's window closes.
FREEZE_MARGIN = 2.0


def render_reasoning(reasoning: str, *, show: bool) -> str:
    """The collapsed quote: the heading, then the end of ``reasoning`` as quoted lines."""
    if not show:
        return THINKING
    tail = reasoning.strip()
    cut = len(tail) > TAIL_CHARS
    if cut:
        tail = tail[-TAIL_CHARS:]
        space = tail.find(" ")
        tail = tail[space + 1 :] if 0 <= space < 40 else tail
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    if len(lines) > TAIL_LINES:
        lines, cut = lines[-TAIL_LINES:], True
    if not lines:
        return THINKING
    if cut:
        lines[0] = "…" + lines[0]
    return THINKING + "\n" + "\n".join("> " + line for line in lines)


class AnswerWriter:
    """Writes reasoning and answer deltas into one ``ReplyStream``."""

    def __init__(self, stream: Any, *, show_reasoning: bool) -> None:
        self.stream = stream
        self.show_reasoning = show_reasoning
        self.answer = ""
        self.reasoning = ""
        self._quote_shown = False
        self._freeze_at: float | None = None

    def _frozen(self) -> bool:
        return self._freeze_at is not None and trio.current_time() >= self._freeze_at

    def _started(self) -> None:
        if self._freeze_at is None:
            window = getattr(self.stream, "window", STREAM_WINDOW_SECONDS - 30.0)
            self._freeze_at = trio.current_time() + window - FREEZE_MARGIN

    async def add_reasoning(self, text: str) -> None:
        if self.answer:
            return  # reasoning after the answer started is not shown (nor kept)
        self.reasoning = (self.reasoning + text)[-4 * TAIL_CHARS :]
        if self._frozen():
            return
        self._started()
        await self.stream.set(render_reasoning(self.reasoning, show=self.show_reasoning))
        self._quote_shown = True

    async def add_content(self, text: str) -> None:
        if not text:
            return
        first = not self.answer
        self.answer += text
        self._started()
        if first and self._quote_shown:
            if self._frozen():
                await self.stream.append("\n\n" + text)
            else:
                await self.stream.set(text)
            self._quote_shown = False
        else:
            await self.stream.append(text)

    async def end(self, note: str = "") -> None:
        """The last words: ``note`` (if any) after the answer, in parentheses."""
        if not note:
            return
        shown = f"({note})"
        if not self.answer and self._quote_shown and not self._frozen():
            await self.stream.set(shown)  # the quote goes; the note replaces it
        elif self.answer or self._quote_shown:
            await self.stream.append("\n\n" + shown)
        else:
            await self.stream.append(shown)
