"""Settings of the openai handler, its memory bounds, and how ``--handler openai`` is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from wecom_actors import BotConfig, ConfigError
from wecom_actors._logging import mask_secrets
from wecom_actors.cli import EXIT_CONFIG, main
from wecom_actors.handlers._llm_config import FAKE_BASE_URL, LLMSettings
from wecom_actors.handlers._llm_memory import CUT, Memory, memory_key
from wecom_actors.handlers.loading import load_handler
from wecom_actors.handlers.openai import OpenAIHandler

KEY = "sk-test-0123456789abcdef"


def test_defaults_use_the_bundled_fake() -> None:
    s = LLMSettings.load(environ={})
    assert s.uses_fake and s.endpoint == FAKE_BASE_URL + "/chat/completions"
    assert s.temperature is None and s.max_tokens is None and s.show_reasoning and not s.multimodal


def test_environment_over_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "bot.toml"
    path.write_text(
        'bot_id = "b"\nbot_secret = "s"\n\n[llm]\nbase_url = "http://127.0.0.1:11434/v1/"\n'
        'model = "qwen3"\ntemperature = 1\nhistory_turns = 3\nmultimodal = true\n'
        'system_prompt = "Be brief."\n',
        encoding="utf-8",
    )
    env = {"OPENAI_MODEL": "llama3.2", "WECOM_LLM_MAX_TOKENS": "512", "WECOM_LLM_SHOW_REASONING": "off",
           "WECOM_LLM_TIMEOUT": "  ", "OPENAI_API_KEY": KEY}  # fmt: skip
    s = LLMSettings.load(environ=env, config_file=path)
    assert s.endpoint == "http://127.0.0.1:11434/v1/chat/completions" and not s.uses_fake
    assert (s.model, s.temperature, s.max_tokens, s.history_turns) == ("llama3.2", 1.0, 512, 3)
    assert type(s.temperature) is float and s.multimodal and not s.show_reasoning
    assert s.timeout == 60.0 and s.system_prompt == "Be brief."
    # The main loader accepts the file, [llm] table included.
    assert BotConfig.load(environ={}, config_file=path).bot_id == "b"


def test_the_key_is_a_secret() -> None:
    s = LLMSettings.load(environ={"OPENAI_API_KEY": KEY})
    assert KEY not in repr(s) and KEY not in str(s) and s.redacted()["api_key"] == "***"
    assert mask_secrets(f"key {KEY}!") == "key ***!"  # registered for the log filter
    with pytest.raises(ConfigError) as info:
        LLMSettings.load(environ={"OPENAI_API_KEY": "sk-with a-space-12345"})
    assert info.value.setting == "OPENAI_API_KEY" and "a-space" not in str(info.value)


@pytest.mark.parametrize(
    ("env", "setting", "expected"),
    [
        ({"WECOM_LLM_TEMPERATURE": "hot"}, "WECOM_LLM_TEMPERATURE", "from 0 to 2"),
        ({"WECOM_LLM_TEMPERATURE": "2.5"}, "WECOM_LLM_TEMPERATURE", "from 0 to 2"),
        ({"WECOM_LLM_TEMPERATURE": "nan"}, "WECOM_LLM_TEMPERATURE", "from 0 to 2"),
        ({"WECOM_LLM_MAX_TOKENS": "0"}, "WECOM_LLM_MAX_TOKENS", ">= 1"),
        ({"WECOM_LLM_MAX_TOKENS": "1.5"}, "WECOM_LLM_MAX_TOKENS", ">= 1"),
        ({"WECOM_LLM_TIMEOUT": "-1"}, "WECOM_LLM_TIMEOUT", "seconds > 0"),
        ({"WECOM_LLM_HISTORY_TURNS": "-1"}, "WECOM_LLM_HISTORY_TURNS", ">= 0"),
        ({"WECOM_LLM_MULTIMODAL": "maybe"}, "WECOM_LLM_MULTIMODAL", "true or false"),
        ({"OPENAI_BASE_URL": "127.0.0.1:11434"}, "OPENAI_BASE_URL", "http:// or https://"),
        ({"OPENAI_BASE_URL": "ftp://host/v1"}, "OPENAI_BASE_URL", "http:// or https://"),
    ],
)
def test_bad_environment_values_name_the_setting(env: dict[str, str], setting: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        LLMSettings.load(environ=env)
    assert info.value.setting == setting and expected in str(info.value)
    assert "the environment" in str(info.value)


@pytest.mark.parametrize(
    ("table", "setting", "expected"),
    [
        ("temprature = 1", "bot.toml", "did you mean 'temperature'"),
        ('temperature = "1"', "WECOM_LLM_TEMPERATURE", "llm.temperature"),
        ("max_tokens = true", "WECOM_LLM_MAX_TOKENS", "llm.max_tokens"),
        ("history_bytes = -5", "WECOM_LLM_HISTORY_BYTES", "llm.history_bytes"),
    ],
)
def test_bad_config_file_values_name_the_setting(tmp_path: Path, table: str, setting: str, expected: str) -> None:
    path = tmp_path / "bot.toml"
    path.write_text(f"[llm]\n{table}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        LLMSettings.load(environ={}, config_file=path)
    assert info.value.setting.endswith(setting) and expected in str(info.value)


def test_llm_must_be_a_table(tmp_path: Path) -> None:
    path = tmp_path / "bot.toml"
    path.write_text('llm = "gpt"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[llm\]"):
        LLMSettings.load(environ={}, config_file=path)


def test_direct_construction_is_checked() -> None:
    with pytest.raises(ConfigError, match="WECOM_LLM_HISTORY_CONVERSATIONS"):
        LLMSettings(history_conversations=0)
    with pytest.raises(ConfigError, match="WECOM_LLM_TEMPERATURE"):
        LLMSettings(temperature="0.5")  # type: ignore[arg-type]
    assert LLMSettings(max_tokens=None, temperature=0).temperature == 0.0


def test_handler_openai_is_loaded_with_its_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bot.toml"
    path.write_text('[llm]\nbase_url = "http://127.0.0.1:8000/v1"\nmodel = "m1"\n', encoding="utf-8")
    monkeypatch.setenv("WECOM_LLM_HISTORY_TURNS", "4")
    handler = load_handler("openai", config_file=path)
    assert isinstance(handler, OpenAIHandler)
    assert (handler.settings.model, handler.settings.history_turns, handler.uses_fake) == ("m1", 4, False)
    monkeypatch.setenv("WECOM_LLM_TEMPERATURE", "warm")
    with pytest.raises(ConfigError) as info:
        load_handler("openai", config_file=path)
    assert info.value.setting == "WECOM_LLM_TEMPERATURE"


def test_run_with_a_bad_llm_setting_exits_2_naming_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WECOM_BOT_ID", "bot")
    monkeypatch.setenv("WECOM_BOT_SECRET", "secret-value")
    monkeypatch.setenv("WECOM_LLM_MAX_TOKENS", "lots")
    assert main(["run", "--handler", "openai"]) == EXIT_CONFIG
    assert "WECOM_LLM_MAX_TOKENS" in capsys.readouterr().err


# --- memory ---------------------------------------------------------------------------------------


def test_memory_keys_are_per_sender_in_groups() -> None:
    a = memory_key(bot="b", chat="G1", group=True, user="alice")
    b = memory_key(bot="b", chat="G1", group=True, user="bob")
    single = memory_key(bot="b", chat=None, group=False, user="alice")
    other_group = memory_key(bot="b", chat="G2", group=True, user="alice")
    assert len({a, b, single, other_group}) == 4


def test_memory_is_bounded_in_turns() -> None:
    m = Memory(turns=3, max_bytes=10_000, conversations=10)
    for i in range(5):
        m.add("k", f"q{i}", f"a{i}")
    assert m.history("k") == [("q2", "a2"), ("q3", "a3"), ("q4", "a4")]


def test_memory_is_bounded_in_bytes() -> None:
    m = Memory(turns=100, max_bytes=1000, conversations=10)
    for i in range(10):
        m.add("k", f"q{i}", "é" * 150)  # 300 bytes of answer + 2 of question
    assert m.history("k") == [(f"q{i}", "é" * 150) for i in (7, 8, 9)]
    m.add("k", "long one", "x" * 5000)  # cut to fit, alone
    [(question, answer)] = m.history("k")
    assert question == "long one" and answer.endswith(CUT)
    assert len(question.encode()) + len(answer.encode()) <= 1000
    m.add("k", "q" * 950, "answer")  # the question nearly fills it: nothing kept
    assert m.history("k") == [("long one", answer)]


def test_memory_forgets_the_least_recently_used_conversation() -> None:
    m = Memory(turns=5, max_bytes=1000, conversations=2)
    m.add("a", "q", "a")
    m.add("b", "q", "b")
    m.history("a")  # "a" is used again, so "b" is the oldest
    m.add("c", "q", "c")
    assert (m.history("a"), m.history("b"), m.history("c")) == ([("q", "a")], [], [("q", "c")])
    assert len(m) == 2


def test_memory_off_and_clear() -> None:
    off = Memory(turns=0, max_bytes=1000, conversations=2)
    off.add("a", "q", "a")
    assert off.history("a") == [] and not off.clear("a")
    m = Memory(turns=5, max_bytes=1000, conversations=2)
    m.add("a", "q", "a")
    assert m.clear("a") and m.history("a") == [] and not m.clear("a")
