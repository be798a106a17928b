"""Smaller hardening fixes: strict query parameters, escaped and rate-limited logs, replay,
secrets masked before validation, ws:// only to loopback, the media guard's IPv6 forms."""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import time
from typing import Any
from urllib.parse import quote

import pytest
import trio
import trio.testing

from wecom_actors import BotConfig, ConfigError, Turn
from wecom_actors._logging import LogLimiter, escape
from wecom_actors.errors import MediaError
from wecom_actors.media import MediaPolicy, check_host, refusal_reason

from .test_webhook import KEY, TOKEN, bot_and_fake
from .test_webhook_http import CRYPTO, GOOD_ENC, webhook_bot

# --- query parameters: 400, never 500 -------------------------------------------------------------


def signed(ts: str, nonce: str = "1234567890") -> str:
    sig = CRYPTO.signature(ts, nonce, GOOD_ENC)
    return f"msg_signature={sig}&timestamp={quote(ts)}&nonce={quote(nonce)}"


MALFORMED = {
    "superscript-digits": dict(ts="¹²³"),
    "arabic-indic-digits": dict(ts="١٧٠٠٠٠٠٠٠٠"),
    "5000-digits": dict(ts="9" * 5000),
    "negative": dict(ts="-5"),
    "nonce-too-long": dict(ts="1700000000", nonce="n" * 65),
    "nonce-with-a-space": dict(ts="1700000000", nonce="a b"),
    "nonce-non-ascii": dict(ts="1700000000", nonce="ñ"),
}


@pytest.mark.parametrize("window", [600.0, 0.0])
@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_but_validly_signed_parameters_are_400(
    autojump_clock: trio.testing.MockClock, case: str, window: float
) -> None:
    q = signed(**MALFORMED[case])
    async with webhook_bot(webhook_timestamp_window=window) as (handle, path, client):
        r = await client.post(f"{path}?{q}", content=json.dumps({"encrypt": GOOD_ENC}))
        assert r.status_code == 400, r.text
        assert handle.statistics().received == 0
        assert (await client.get("/healthz")).status_code == 200


# --- logs: peer strings escaped, rejections rate-limited --------------------------------------------


async def test_a_path_with_a_line_break_or_escape_cannot_forge_a_log_line(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with webhook_bot() as (_, _path, client):
        r = await client.get("/x%0a2026-01-01 00:00:00,000 CRITICAL forged%1b[31m%e2%80%a8")
        assert r.status_code == 404
    lines = [rec.getMessage() for rec in caplog.records if "rejected with 404" in rec.getMessage()]
    assert len(lines) == 1
    line = lines[0]
    assert "\n" not in line and "\x1b" not in line and "\u2028" not in line
    assert "\\n2026-01-01" in line and "\\x1b[31m" in line and "\\u2028" in line


def test_escape_keeps_printable_ascii_and_cuts_long_text() -> None:
    assert escape("/wecom/callback") == "/wecom/callback"
    assert escape("a\r\nb\tc\x00") == "a\\r\\nb\\tc\\x00"
    assert escape("x" * 300, 10) == "x" * 10 + "..."


def test_log_limiter_allows_a_burst_per_period_and_counts_the_rest() -> None:
    limiter = LogLimiter(3, 10.0)
    assert [limiter.allow(t)[0] for t in (0, 1, 2, 3, 4)] == [True, True, True, False, False]
    assert limiter.allow(10.0) == (True, 2)
    assert limiter.allow(10.5) == (True, 0)


async def test_a_flood_of_bad_requests_logs_a_bounded_number_of_lines(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with webhook_bot() as (handle, _path, client):
        for _ in range(200):
            assert (await client.get("/nope")).status_code == 404
        await trio.sleep(11)
        assert (await client.get("/nope")).status_code == 404
        assert handle.runtime.webhook_statistics().rejected_by_status == {404: 201}  # all counted
    lines = [rec.getMessage() for rec in caplog.records if "rejected with" in rec.getMessage()]
    assert len(lines) == 21  # 20 in the first 10 s, then one that says how many were left out
    assert lines[-1].endswith("(180 rejections before this one were not logged)")


# --- replay --------------------------------------------------------------------------------------------


async def _count_runs(turn: Turn, runs: list[str]) -> None:
    runs.append(turn.message.msgid)
    await turn.reply_text("ok")


async def test_a_timestamp_590_s_ahead_is_refused_and_its_replay_at_616_s_handled_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs: list[str] = []
    base = time.time()
    async with bot_and_fake(lambda turn: _count_runs(turn, runs)) as (handle, fake):
        handle.runtime.app.wall_clock = lambda: base + trio.current_time()
        fake.strict = False
        fake.wall_clock = lambda: base + trio.current_time() + 590  # signs 590 s in the future
        payload = fake.message("u1", "text", {"text": {"content": "hi"}})
        first = await fake.deliver(copy.deepcopy(payload))
        assert first.status == 403 and runs == []
        # The same signed request replayed 616 s later: its timestamp is 26 s old now.
        await trio.sleep(616)
        fake.wall_clock = lambda: base + trio.current_time() - 26
        replay = await fake.deliver(copy.deepcopy(payload))
        assert replay.status == 200 and runs == [payload["msgid"]]  # handled once in all


async def test_dedupe_outlives_the_timestamp_window_of_a_request_signed_ahead(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs: list[str] = []
    base = time.time()
    async with bot_and_fake(lambda turn: _count_runs(turn, runs)) as (handle, fake):
        handle.runtime.app.wall_clock = lambda: base + trio.current_time()
        signed_at = trio.current_time() + 55  # 55 s ahead: within the allowed clock skew
        fake.wall_clock = lambda: base + signed_at
        payload = fake.message("u1", "text", {"text": {"content": "hi"}})
        first = await fake.deliver(copy.deepcopy(payload))
        assert first.finished and runs == [payload["msgid"]]
        # Replayed 650 s after receipt: 595 s after its timestamp, so still fresh; its exchange
        # was evicted (360 s) but its tombstone lasts until the window has closed.
        await trio.sleep(650 - (trio.current_time() - (signed_at - 55)))
        replay = await fake.deliver(copy.deepcopy(payload))
        assert replay.status == 200 and replay.first_reply is None
        assert runs == [payload["msgid"]]
        await trio.sleep(20)  # 670 s: outside the window now, refused as stale
        fake.strict = False
        assert (await fake.deliver(copy.deepcopy(payload))).status == 403


# --- configuration ------------------------------------------------------------------------------------

SECRET = "s3cr3t-token-value-42"


@pytest.mark.parametrize("var", ["WECOM_PORT", "WECOM_HEARTBEAT_INTERVAL", "WECOM_MODE", "WECOM_LOG_LEVEL"])
def test_a_secret_in_the_wrong_variable_is_not_echoed(var: str) -> None:
    env = {"WECOM_TOKEN": SECRET, "WECOM_ENCODING_AES_KEY": KEY, var: SECRET}
    with pytest.raises(ConfigError) as info:
        BotConfig.from_env(env)
    assert info.value.setting == var
    assert SECRET not in str(info.value) and "hidden" in str(info.value)


def test_a_secret_flag_in_the_wrong_place_is_not_echoed_either() -> None:
    with pytest.raises(ConfigError) as info:
        BotConfig.load(flags={"port": SECRET, "bot_secret": SECRET}, environ={"WECOM_BOT_ID": "b"})
    assert SECRET not in str(info.value)


def test_the_cli_does_not_echo_a_secret_in_the_wrong_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from wecom_actors.cli import EXIT_CONFIG, main

    for name in ("WECOM_BOT_ID", "WECOM_BOT_SECRET", "WECOM_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WECOM_TOKEN", "other-token-value-77")
    monkeypatch.setenv("WECOM_ENCODING_AES_KEY", KEY)
    monkeypatch.setenv("WECOM_PORT", "other-token-value-77")
    assert main(["run"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "WECOM_PORT" in err and "other-token-value-77" not in err


@pytest.mark.parametrize(
    "url, ok",
    [
        ("ws://127.0.0.1:9000", True),
        ("ws://127.8.0.1:9000", True),
        ("ws://localhost:9000/x", True),
        ("ws://[::1]:9000", True),
        ("wss://openws.example.com", True),
        ("ws://openws.example.com", False),
        ("ws://10.0.0.5:9000", False),
        ("WS://openws.example.com", False),
        ("ws://localhost.evil.example", False),
    ],
)
def test_ws_url_in_clear_only_to_loopback_unless_allowed(url: str, ok: bool) -> None:
    base: dict[str, Any] = dict(mode="long-connection", bot_id="b", bot_secret="secret-1", ws_url=url)
    if ok:
        assert BotConfig(**base).ws_url == url
    else:
        with pytest.raises(ConfigError) as info:
            BotConfig(**base)
        assert info.value.setting == "WECOM_WS_URL" and "WECOM_WS_ALLOW_INSECURE" in str(info.value)
        assert BotConfig(**base, ws_allow_insecure=True).ws_url == url
        env = {"WECOM_BOT_ID": "b", "WECOM_BOT_SECRET": "secret-1", "WECOM_WS_URL": url, "WECOM_WS_ALLOW_INSECURE": "1"}
        assert BotConfig.from_env(env).ws_allow_insecure


def test_a_webhook_config_ignores_ws_url() -> None:
    cfg = BotConfig(mode="webhook", token=TOKEN, encoding_aes_key=KEY, ws_url="ws://example.com")
    assert cfg.mode == "webhook"


# --- the media guard: IPv6 forms that carry an IPv4 address -------------------------------------------

REFUSED = {
    "6to4-private": "2002:a00:1::1",  # 10.0.0.1
    "6to4-loopback": "2002:7f00:1::",  # 127.0.0.1
    "6to4-metadata": "2002:a9fe:a9fe::1",  # 169.254.169.254
    "nat64-private": "64:ff9b::a00:1",
    "nat64-loopback": "64:ff9b::7f00:1",
    "nat64-local-use": "64:ff9b:1::808:808",
    "teredo": "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "ietf-192.0.0.8": "192.0.0.8",
    "ietf-192.0.0.9": "192.0.0.9",
    "ietf-192.0.0.170": "192.0.0.170",
    "mapped-ietf": "::ffff:192.0.0.9",
}


@pytest.mark.parametrize("address", REFUSED.values(), ids=REFUSED.keys())
def test_addresses_refused(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "2002:808:808::1", "64:ff9b::808:808", "2400:cb00::1", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


async def test_the_refusal_text_does_not_show_the_resolved_address(caplog: pytest.LogCaptureFixture) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["2002:a00:1::1"]

    caplog.set_level(logging.DEBUG, logger="wecom_actors.media")
    with pytest.raises(MediaError) as info:
        await check_host("media.example.com", 443, MediaPolicy(), resolve)
    text = str(info.value)
    assert "media.example.com" in text and "6to4" in text
    assert "2002" not in text and "10.0.0.1" not in text
    debug = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.DEBUG]
    assert any("2002:a00:1::1" in line for line in debug)  # kept for the operator, at DEBUG
