"""The sans-IO parts of the openai handler: the <think> splitter and the reasoning quote."""

from __future__ import annotations

import pytest

from wecom_actors.handlers._llm_view import THINKING, render_reasoning
from wecom_actors.handlers._think import ThinkSplitter


def run(chunks: list[str]) -> tuple[str, str]:
    """Feed ``chunks``, close; return (reasoning, content) and check the parts alternate."""
    splitter = ThinkSplitter()
    parts = [p for chunk in chunks for p in splitter.feed(chunk)] + splitter.close()
    assert all(text for _, text in parts), parts
    reasoning = "".join(t for k, t in parts if k == "reasoning")
    content = "".join(t for k, t in parts if k == "content")
    return reasoning, content


CASES = [
    # (whole content, expected reasoning, expected content)
    ("<think>plan it</think>\n\nThe answer.", "plan it", "The answer."),
    ("\n  <think>\nstep 1\nstep 2\n</think>Yes", "\nstep 1\nstep 2\n", "Yes"),
    ("No reasoning here.", "", "No reasoning here."),
    ("Use <think> tags like this: <think>x</think>", "", "Use <think> tags like this: <think>x</think>"),
    ("<think>unterminated reasoning", "unterminated reasoning", ""),
    ("<think></think>Only the answer", "", "Only the answer"),
    ("<thinking is not the tag", "", "<thinking is not the tag"),
    ("<thi", "", "<thi"),
    ("   ", "", ""),
    ("<think>a < b and </thin c</think>done", "a < b and </thin c", "done"),
    ("<think>一步一步</think>答案是 42。", "一步一步", "答案是 42。"),
    ("", "", ""),
]


@pytest.mark.parametrize(("text", "reasoning", "content"), CASES)
def test_whole_text(text: str, reasoning: str, content: str) -> None:
    assert run([text]) == (reasoning, content)


@pytest.mark.parametrize(("text", "reasoning", "content"), CASES)
def test_every_single_cut(text: str, reasoning: str, content: str) -> None:
    """Cut anywhere (inside a tag too), the result is the same."""
    for i in range(len(text) + 1):
        assert run([text[:i], text[i:]]) == (reasoning, content), i


@pytest.mark.parametrize(("text", "reasoning", "content"), CASES)
def test_one_character_at_a_time(text: str, reasoning: str, content: str) -> None:
    assert run(list(text)) == (reasoning, content)


def test_parts_come_out_as_soon_as_they_are_known() -> None:
    s = ThinkSplitter()
    assert s.feed("<thi") == []
    assert s.feed("nk>I wonder") == [("reasoning", "I wonder")]
    assert s.in_reasoning
    assert s.feed(" more</th") == [("reasoning", " more")]  # "</th" is held back
    assert s.feed("ink>\n\n") == []
    assert not s.in_reasoning
    assert s.feed("Answer") == [("content", "Answer")]
    assert s.feed(" <think>inside</think>") == [("content", " <think>inside</think>")]
    assert s.close() == []


def test_a_held_partial_closing_tag_that_is_not_one_is_reasoning() -> None:
    s = ThinkSplitter()
    assert s.feed("<think>x </thin") == [("reasoning", "x ")]
    assert s.feed("g>") == [("reasoning", "</thing>")]
    assert s.close() == []


@pytest.mark.parametrize(
    ("reasoning", "show", "expected"),
    [
        ("", True, THINKING),
        ("anything", False, THINKING),
        ("first idea", True, THINKING + "\n> first idea"),
        ("line one\n\nline two\n", True, THINKING + "\n> line one\n> line two"),
        ("a\nb\nc\nd\ne\nf", True, THINKING + "\n> …c\n> d\n> e\n> f"),
    ],
)
def test_the_reasoning_quote(reasoning: str, show: bool, expected: str) -> None:
    assert render_reasoning(reasoning, show=show) == expected


def test_the_quote_shows_only_the_end_of_long_reasoning() -> None:
    long = " ".join(f"word{i}" for i in range(500))
    quote = render_reasoning(long, show=True)
    assert quote.startswith(THINKING + "\n> …")
    assert quote.endswith("word499")
    assert len(quote) < 400
    assert all(line.startswith(">") for line in quote.splitlines())
