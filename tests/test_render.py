"""Tests of wecom_actors.render: pure functions from handler output to protocol bodies.

Synchronous: the renderer holds no state and never waits.
"""

from __future__ import annotations

import base64
import hashlib
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wecom_actors.protocol.limits import MAX_CONTENT_BYTES, MAX_MSG_ITEM_IMAGE_BYTES
from wecom_actors.protocol.replies import (
    MainTitle,
    MsgItem,
    StreamReply,
    StreamWithCardReply,
    TemplateCard,
)
from wecom_actors.render import (
    first_part,
    msg_item_image,
    split_content,
    stream_reply,
    strip_mention,
)

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"


def b(text: str) -> int:
    return len(text.encode("utf-8"))


# =================================================================================================
# split_content
# =================================================================================================

# Text mixing 1-, 2-, 3- and 4-byte characters and plenty of newlines.
mixed_text = st.text(
    alphabet=st.sampled_from(["a", "b", " ", "\n", "é", "ß", "字", "汉", "😀", "𝄞", "\r"])
    | st.characters(codec="utf-8"),
    max_size=400,
)


def _check_parts(text: str, parts: list[str], limit: int) -> None:
    assert "".join(parts) == text
    assert b"".join(p.encode() for p in parts) == text.encode()
    assert all(b(p) <= limit for p in parts)
    if text:
        assert all(parts), "no empty parts"
    else:
        assert parts == [""]


@settings(max_examples=400, deadline=None)
@given(text=mixed_text, limit=st.integers(min_value=4, max_value=120))
def test_split_content_properties(text: str, limit: int) -> None:
    parts = split_content(text, limit)
    _check_parts(text, parts, limit)
    data = text.encode()
    pos = 0
    for part in parts[:-1]:
        raw = part.encode()
        pos += len(raw)
        # never cut inside a UTF-8 sequence: the next part starts on a lead byte
        assert (data[pos] & 0xC0) != 0x80
        if raw.endswith(b"\n"):
            continue
        # not cut after a newline: then there was no newline in the last quarter of the part
        assert b"\n" not in raw[(limit * 3) // 4 :]
        # and the part is as long as it can be: the next character would not have fitted
        next_char = data[pos:].decode()[0]
        assert len(raw) + b(next_char) > limit


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="ab字", min_size=0, max_size=30), min_size=1, max_size=30),
    limit=st.integers(min_value=40, max_value=100),
)
def test_split_content_prefers_newline_cuts(lines: list[str], limit: int) -> None:
    """With lines far shorter than a quarter of the limit, every cut falls after a newline."""
    text = "".join(line[: limit // 4 // 3 - 1] + "\n" for line in lines)
    parts = split_content(text, limit)
    _check_parts(text, parts, limit)
    assert all(p.endswith("\n") for p in parts)


def test_split_content_default_limit_is_the_content_limit() -> None:
    assert MAX_CONTENT_BYTES == 20480
    text = "字" * 10_000  # 30 000 bytes
    parts = split_content(text)
    assert len(parts) == 2
    assert b(parts[0]) == 20478  # 6826 characters; the 6827th would straddle 20480
    _check_parts(text, parts, MAX_CONTENT_BYTES)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("", 10, [""]),
        ("a", 10, ["a"]),
        ("a" * 10, 10, ["a" * 10]),  # exactly at the limit: one part
        ("a" * 11, 10, ["a" * 10, "a"]),  # limit + 1: two parts
        ("a" * 20, 10, ["a" * 10, "a" * 10]),
        ("a" * 21, 10, ["a" * 10, "a" * 10, "a"]),
        ("a" * 8 + "é", 10, ["a" * 8 + "é"]),  # two-byte char ending exactly at the limit
        ("a" * 9 + "é", 10, ["a" * 9, "é"]),  # two-byte char straddling the limit
        ("a" * 8 + "字", 10, ["a" * 8, "字"]),  # three bytes: 9..11
        ("a" * 7 + "字", 10, ["a" * 7 + "字"]),  # three bytes: 8..10, fits exactly
        ("a" * 9 + "😀", 10, ["a" * 9, "😀"]),
        ("a" * 7 + "😀", 10, ["a" * 7, "😀"]),
        ("a" * 6 + "😀", 10, ["a" * 6 + "😀"]),
        ("😀" * 3, 4, ["😀"] * 3),  # the smallest limit that holds any character
        ("字字字", 5, ["字", "字", "字"]),
        ("aaaaaaaa\nbbbbbbbbbb", 10, ["aaaaaaaa\n", "bbbbbbbbbb"]),  # newline at byte 8 of 10
        ("aaaaaaa\nbbbbbbbbbbb", 10, ["aaaaaaa\n", "bbbbbbbbbb", "b"]),  # at byte 7 (>= 3/4)
        ("a\nbbbbbbbbbbbbbbbbbb", 10, ["a\nbbbbbbbb", "bbbbbbbbbb"]),  # too early: plain cut
        ("aaaaaaaaa\n", 10, ["aaaaaaaaa\n"]),
        ("aaaaaaaaaa\n", 10, ["aaaaaaaaaa", "\n"]),
        ("\n" * 25, 10, ["\n" * 10, "\n" * 10, "\n" * 5]),
        ("abc\nabc\nabc\n", 4, ["abc\n"] * 3),
        ("ab\ncd\n", 4, ["ab\nc", "d\n"]),  # newline before the last quarter: not used
    ],
    ids=lambda v: None,
)
def test_split_content_edges(text: str, limit: int, expected: list[str]) -> None:
    assert split_content(text, limit) == expected
    _check_parts(text, expected, limit)


class _Hang(Exception):
    pass


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Turn an endless pure-Python loop into an exception (main thread only, Unix)."""

    def on_alarm(signum: int, frame: object) -> None:
        raise _Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize(("text", "limit"), [("é", 1), ("字", 2), ("😀", 3), ("a", 0)])
def test_split_content_limit_below_one_character_raises(text: str, limit: int) -> None:
    with _deadline(0.2), pytest.raises(ValueError):
        split_content(text, limit)


# =================================================================================================
# first_part
# =================================================================================================


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("", 10),
        ("short", 10),
        ("a" * 10, 10),
        ("a" * 11, 10),
        ("字" * 4, 10),  # 12 bytes but only 4 characters: the cheap length check must not pass
        ("字" * 3, 10),
        ("aaaaaaaa\nbbbbbbbbbb", 10),
        ("x" * 50_000, MAX_CONTENT_BYTES),
    ],
    ids=lambda v: None,
)
def test_first_part_is_the_first_split(text: str, limit: int) -> None:
    part = first_part(text, limit)
    assert part == split_content(text, limit)[0]
    assert b(part) <= limit
    assert text.startswith(part)


def test_first_part_returns_fitting_text_unchanged() -> None:
    text = "hello 世界"
    assert first_part(text) is text
    assert first_part(text, b(text)) is text


@settings(max_examples=200, deadline=None)
@given(text=mixed_text, limit=st.integers(min_value=4, max_value=120))
def test_first_part_properties(text: str, limit: int) -> None:
    assert first_part(text, limit) == split_content(text, limit)[0]


# =================================================================================================
# strip_mention
# =================================================================================================


@pytest.mark.parametrize(
    ("text", "group", "bot_name", "expected"),
    [
        # group, no bot_name: the leading mention is the bot's
        ("@RobotA hello robot", True, None, "hello robot"),
        ("@机器人 这是今日的测试情况", True, None, "这是今日的测试情况"),
        ("  @RobotA   hi", True, None, "hi"),
        ("@RobotA\u2005hi", True, None, "hi"),  # WeCom puts U+2005 after a mention
        ("@RobotA", True, None, ""),
        ("@Alice @RobotA hi", True, None, "@RobotA hi"),  # only the first one goes
        ("hello @RobotA", True, None, "hello @RobotA"),  # mention not first: left alone
        ("no mention", True, None, "no mention"),
        ("", True, None, ""),
        # group with bot_name: only the bot's own mention, wherever it stands
        ("@RobotA hello robot", True, "RobotA", "hello robot"),
        ("hello @RobotA robot", True, "RobotA", "hello robot"),
        ("hello robot @RobotA", True, "RobotA", "hello robot"),
        ("@Alice @RobotA hi", True, "RobotA", "@Alice hi"),
        ("@RobotA @Alice hi", True, "RobotA", "@Alice hi"),
        ("@Alice hi", True, "RobotA", "@Alice hi"),  # another user's mention stays
        ("@RobotAB hi", True, "RobotA", "@RobotAB hi"),  # a longer name is someone else
        ("mail a@RobotA.com", True, "RobotA", "mail a@RobotA.com"),  # not a mention
        ("@Robot.A hi", True, "Robot.A", "hi"),  # regex metacharacters in the name
        ("@RobotX hi", True, "Robot.", "@RobotX hi"),
        ("@机器人 你好", True, "机器人", "你好"),
        ("@RobotA hi @RobotA", True, "RobotA", "hi @RobotA"),  # removed once
        # single chat: never touched
        ("@RobotA hello robot", False, None, "@RobotA hello robot"),
        ("@RobotA hello robot", False, "RobotA", "@RobotA hello robot"),
        ("  spaced  ", False, "RobotA", "  spaced  "),
    ],
    ids=lambda v: None,
)
def test_strip_mention(text: str, group: bool, bot_name: str | None, expected: str) -> None:
    assert strip_mention(text, group=group, bot_name=bot_name) == expected


def test_strip_mention_keeps_newlines_inside_the_message() -> None:
    text = "@RobotA line one\nline two\n\n- item"
    assert strip_mention(text, group=True) == "line one\nline two\n\n- item"
    assert strip_mention(text, group=True, bot_name="RobotA") == "line one\nline two\n\n- item"


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60), name=st.text(alphabet="abcXYZ字.", min_size=1, max_size=8))
def test_strip_mention_single_chat_is_identity(text: str, name: str) -> None:
    assert strip_mention(text, group=False) == text
    assert strip_mention(text, group=False, bot_name=name) == text


@settings(max_examples=200, deadline=None)
@given(
    body=st.text(
        alphabet=st.characters(blacklist_characters="@", blacklist_categories=["Z", "Cc"]),
        min_size=1,
        max_size=40,
    ),
    name=st.text(alphabet="abcXYZ字._-", min_size=1, max_size=8),
)
def test_strip_mention_removes_exactly_the_leading_bot_mention(body: str, name: str) -> None:
    text = f"@{name} {body}"
    assert strip_mention(text, group=True) == body
    assert strip_mention(text, group=True, bot_name=name) == body


# =================================================================================================
# msg_item_image
# =================================================================================================


@pytest.mark.parametrize(
    "data",
    [
        PNG,
        PNG + bytes(range(256)) * 4,
        JPEG,
        JPEG + b"\xe0\x00\x10JFIF\x00" + b"\x00" * 100,
        JPEG + b"\xe1" + b"Exif" * 10,
    ],
    ids=["png-magic", "png", "jpeg-magic", "jpeg-jfif", "jpeg-exif"],
)
def test_msg_item_image_accepts_png_and_jpeg(data: bytes) -> None:
    item = msg_item_image(data)
    assert isinstance(item, MsgItem)
    assert item.msgtype == "image"
    assert base64.b64decode(item.image.base64, validate=True) == data
    assert item.image.base64 == base64.b64encode(data).decode("ascii")
    assert item.image.md5 == hashlib.md5(data).hexdigest()
    assert len(item.image.md5) == 32 and item.image.md5 == item.image.md5.lower()


def test_msg_item_image_md5_is_of_the_raw_bytes_not_the_base64() -> None:
    data = PNG + b"payload"
    item = msg_item_image(data)
    assert item.image.md5 != hashlib.md5(item.image.base64.encode()).hexdigest()
    assert item.image.md5 == f"{int.from_bytes(hashlib.md5(data).digest(), 'big'):032x}"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a" + b"\x00" * 10,
        b"BM" + b"\x00" * 10,  # BMP
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b"\x89PNG\r\n\x1a",  # truncated PNG signature
        b"\x89png\r\n\x1a\n",
        b"\xff\xd8",  # truncated JPEG SOI
        b"hello",
        b"\x00" + PNG,
    ],
    ids=["empty", "gif", "bmp", "webp", "png-short", "png-lower", "jpeg-short", "text", "offset"],
)
def test_msg_item_image_rejects_other_data(data: bytes) -> None:
    with pytest.raises(ValueError, match="PNG or JPEG"):
        msg_item_image(data)


def test_msg_item_image_size_limit() -> None:
    assert MAX_MSG_ITEM_IMAGE_BYTES == 10 * 1024 * 1024
    at_limit = PNG + b"\x00" * (MAX_MSG_ITEM_IMAGE_BYTES - len(PNG))
    assert msg_item_image(at_limit).image.md5 == hashlib.md5(at_limit).hexdigest()
    with pytest.raises(ValueError, match="limited"):
        msg_item_image(at_limit + b"\x00")
    with pytest.raises(ValueError, match="limited"):
        msg_item_image(JPEG + b"\x00" * MAX_MSG_ITEM_IMAGE_BYTES)


# =================================================================================================
# stream_reply
# =================================================================================================

CARD = TemplateCard(card_type="text_notice", main_title=MainTitle(title="T"), task_id="T1")
ITEM = msg_item_image(PNG + b"x")


@pytest.mark.parametrize("finish", [False, True])
def test_stream_reply_plain(finish: bool) -> None:
    reply = stream_reply("S1", "content so far", finish)
    assert type(reply) is StreamReply
    assert (reply.stream.id, reply.stream.content, reply.stream.finish) == (
        "S1",
        "content so far",
        finish,
    )
    assert reply.stream.msg_item is None
    assert reply.stream.feedback is None


def test_stream_reply_msg_items_only_on_finish() -> None:
    assert stream_reply("S", "c", False, msg_items=[ITEM]).stream.msg_item is None
    assert stream_reply("S", "c", True, msg_items=[ITEM, ITEM]).stream.msg_item == [ITEM, ITEM]
    assert stream_reply("S", "c", True, msg_items=[]).stream.msg_item is None


def test_stream_reply_feedback() -> None:
    reply = stream_reply("S", "c", False, feedback_id="FB1")
    assert reply.stream.feedback is not None and reply.stream.feedback.id == "FB1"
    assert stream_reply("S", "c", False, feedback_id="").stream.feedback is None
    assert stream_reply("S", "c", False, feedback_id=None).stream.feedback is None


@pytest.mark.parametrize("finish", [False, True])
def test_stream_reply_with_card(finish: bool) -> None:
    reply = stream_reply("S", "c", finish, card=CARD, msg_items=[ITEM], feedback_id="FB")
    assert type(reply) is StreamWithCardReply
    assert reply.template_card == CARD
    assert reply.stream.id == "S" and reply.stream.content == "c" and reply.stream.finish is finish
    assert reply.stream.msg_item == ([ITEM] if finish else None)
    assert reply.stream.feedback is not None and reply.stream.feedback.id == "FB"


def test_stream_reply_without_card_is_never_the_combined_type() -> None:
    assert type(stream_reply("S", "c", True, card=None)) is StreamReply
