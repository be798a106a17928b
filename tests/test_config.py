"""BotConfig: defaults, environment, TOML, flags, precedence, validation, redaction."""

from __future__ import annotations

import pytest

from wecom_actors.config import BotConfig
from wecom_actors.errors import ConfigError

SECRET = "S3cr3t-Value-xyzzy"
TOKEN = "Tok3n-Value-plugh"
AES_KEY = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456"  # 43 characters
LC = {"WECOM_BOT_ID": "bot-1", "WECOM_BOT_SECRET": SECRET}
WH = {"WECOM_TOKEN": TOKEN, "WECOM_ENCODING_AES_KEY": AES_KEY}


def write(tmp_path, text: str):
    path = tmp_path / "wecom.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(**kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        BotConfig.load(**kwargs)
    return info.value


# --- defaults and environment ----------------------------------------------------------------------


def test_defaults():
    config = BotConfig.from_env(LC)
    assert config.mode == "long-connection"
    assert (config.bot_id, config.bot_secret) == ("bot-1", SECRET)
    assert config.ws_url == "wss://openws.work.weixin.qq.com"
    assert config.heartbeat_interval == 30.0
    assert (config.token, config.encoding_aes_key) == ("", "")
    assert (config.host, config.port, config.callback_path) == (
        "127.0.0.1",
        8080,
        "/wecom/callback",
    )
    assert config.media_allow_private is False
    assert config.log_level == "INFO"
    assert config.ack_timeout == 5.0 and config.connect_timeout == 10.0
    assert (config.reconnect_initial, config.reconnect_max, config.reconnect_jitter) == (
        1.0,
        30.0,
        0.2,
    )
    assert (config.restart_intensity, config.restart_period) == (10, 60.0)
    assert config.auth_max_attempts == 5
    assert config.max_frame_bytes == 1048576
    assert (config.handler_concurrency, config.session_queue_size) == (64, 1000)
    assert (config.max_queued_messages, config.max_queued_bytes, config.group_order) == (20000, 64 << 20, "sender")
    assert (config.drain_timeout, config.stream_min_interval) == (3.5, 0.1)
    assert (config.media_max_bytes, config.media_timeout) == (20971520, 30.0)
    assert (config.webhook_max_body, config.webhook_timestamp_window) == (1048576, 600.0)


def test_from_env_reads_os_environ(monkeypatch):
    for name, value in WH.items():
        monkeypatch.setenv(name, value)
    assert BotConfig.from_env().mode == "webhook"


@pytest.mark.parametrize(
    ("var", "raw", "field", "expected"),
    [
        ("WECOM_MODE", "long-connection", "mode", "long-connection"),
        ("WECOM_MODE", " Long_Connection ", "mode", "long-connection"),
        ("WECOM_BOT_ID", "other-bot", "bot_id", "other-bot"),
        ("WECOM_WS_URL", "ws://127.0.0.1:9000/ws", "ws_url", "ws://127.0.0.1:9000/ws"),
        ("WECOM_HEARTBEAT_INTERVAL", "2.5", "heartbeat_interval", 2.5),
        ("WECOM_HEARTBEAT_INTERVAL", "7", "heartbeat_interval", 7.0),
        ("WECOM_HOST", "0.0.0.0", "host", "0.0.0.0"),
        ("WECOM_PORT", "9001", "port", 9001),
        ("WECOM_PORT", "0", "port", 0),
        ("WECOM_CALLBACK_PATH", "/cb", "callback_path", "/cb"),
        ("WECOM_MEDIA_ALLOW_PRIVATE", "1", "media_allow_private", True),
        ("WECOM_MEDIA_ALLOW_PRIVATE", "0", "media_allow_private", False),
        ("WECOM_MEDIA_ALLOW_PRIVATE", "true", "media_allow_private", True),
        ("WECOM_MEDIA_ALLOW_PRIVATE", "False", "media_allow_private", False),
        ("WECOM_MEDIA_ALLOW_PRIVATE", "YES", "media_allow_private", True),
        ("WECOM_MEDIA_ALLOW_PRIVATE", "no", "media_allow_private", False),
        ("WECOM_MEDIA_ALLOW_PRIVATE", "on", "media_allow_private", True),
        ("WECOM_LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("WECOM_LOG_LEVEL", "Warning", "log_level", "WARNING"),
        ("WECOM_ACK_TIMEOUT", "0.5", "ack_timeout", 0.5),
        ("WECOM_CONNECT_TIMEOUT", "3", "connect_timeout", 3.0),
        ("WECOM_RECONNECT_INITIAL", "0.25", "reconnect_initial", 0.25),
        ("WECOM_RECONNECT_MAX", "120", "reconnect_max", 120.0),
        ("WECOM_RECONNECT_JITTER", "0", "reconnect_jitter", 0.0),
        ("WECOM_RESTART_INTENSITY", "3", "restart_intensity", 3),
        ("WECOM_RESTART_PERIOD", "10", "restart_period", 10.0),
        ("WECOM_AUTH_MAX_ATTEMPTS", "2", "auth_max_attempts", 2),
        ("WECOM_MAX_FRAME_BYTES", "65536", "max_frame_bytes", 65536),
        ("WECOM_HANDLER_CONCURRENCY", "4", "handler_concurrency", 4),
        ("WECOM_SESSION_QUEUE_SIZE", "2", "session_queue_size", 2),
        ("WECOM_DRAIN_TIMEOUT", "0", "drain_timeout", 0.0),
        ("WECOM_STREAM_MIN_INTERVAL", "0.05", "stream_min_interval", 0.05),
        ("WECOM_MEDIA_MAX_BYTES", "1024", "media_max_bytes", 1024),
        ("WECOM_MEDIA_TIMEOUT", "5", "media_timeout", 5.0),
        ("WECOM_WEBHOOK_MAX_BODY", "4096", "webhook_max_body", 4096),
        ("WECOM_WEBHOOK_TIMESTAMP_WINDOW", "0", "webhook_timestamp_window", 0.0),
    ],
)
def test_each_env_var(var, raw, field, expected):
    config = BotConfig.from_env({**LC, var: raw})
    value = getattr(config, field)
    assert value == expected and type(value) is type(expected)


def test_webhook_env_vars():
    config = BotConfig.from_env({"WECOM_MODE": "webhook", **WH})
    assert (config.mode, config.token, config.encoding_aes_key) == ("webhook", TOKEN, AES_KEY)


@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_env_var_is_unset(tmp_path, blank):
    path = write(tmp_path, "port = 9100\nlog_level = 'debug'\n")
    env = {**LC, "WECOM_PORT": blank, "WECOM_LOG_LEVEL": blank, "WECOM_MODE": blank}
    config = BotConfig.load(environ=env, config_file=path)
    assert (config.port, config.log_level, config.mode) == (9100, "DEBUG", "long-connection")
    assert BotConfig.from_env({**LC, "WECOM_HOST": ""}).host == "127.0.0.1"


# --- precedence ------------------------------------------------------------------------------------


def test_precedence_flags_env_file_defaults(tmp_path):
    path = write(tmp_path, "port = 9001\nhost = '10.0.0.1'\nlog_level = 'error'\nack_timeout = 2\n")
    env = {**LC, "WECOM_PORT": "9002", "WECOM_HOST": "10.0.0.2"}
    config = BotConfig.load(flags={"port": 9003, "host": None}, environ=env, config_file=path)
    assert config.port == 9003  # flag over env over file
    assert config.host == "10.0.0.2"  # env over file (a None flag is "not given")
    assert config.log_level == "ERROR"  # file over default
    assert config.ack_timeout == 2.0
    assert config.connect_timeout == 10.0  # default


@pytest.mark.parametrize(
    ("flags", "env", "toml", "expected"),
    [
        ({}, {}, "", 8080),
        ({}, {}, "port = 1", 1),
        ({}, {"WECOM_PORT": "2"}, "port = 1", 2),
        ({"port": 3}, {"WECOM_PORT": "2"}, "port = 1", 3),
        ({"port": "4"}, {"WECOM_PORT": "2"}, "", 4),
    ],
)
def test_precedence_layers(tmp_path, flags, env, toml, expected):
    path = write(tmp_path, toml)
    config = BotConfig.load(flags=flags, environ={**LC, **env}, config_file=path)
    assert config.port == expected


def test_credentials_from_file(tmp_path):
    path = write(tmp_path, f"[wecom]\ntoken = '{TOKEN}'\nencoding_aes_key = '{AES_KEY}'\n")
    config = BotConfig.from_toml(path)
    assert (config.mode, config.token) == ("webhook", TOKEN)
    assert BotConfig.load(environ=LC, config_file=path, flags={"mode": "webhook"}).mode == "webhook"


# --- mode inference and credentials ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "mode"),
    [(LC, "long-connection"), (WH, "webhook"), ({**WH, "WECOM_BOT_ID": "x"}, "webhook")],
)
def test_mode_inferred(env, mode):
    assert BotConfig.from_env(env).mode == mode


def test_mode_ambiguous():
    error = error_of(environ={**LC, **WH})
    assert error.setting == "WECOM_MODE"
    assert "WECOM_MODE" in str(error) and "both" in str(error)


def test_mode_given_resolves_ambiguity():
    assert BotConfig.from_env({**LC, **WH, "WECOM_MODE": "webhook"}).mode == "webhook"


def test_no_credentials():
    error = error_of(environ={})
    assert error.setting == "WECOM_BOT_ID"
    assert "WECOM_TOKEN" in str(error)  # mentions the webhook alternative


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"WECOM_BOT_ID": "b"}, "WECOM_BOT_SECRET"),
        ({"WECOM_BOT_SECRET": SECRET}, "WECOM_BOT_ID"),
        ({"WECOM_TOKEN": TOKEN}, "WECOM_ENCODING_AES_KEY"),
        ({"WECOM_ENCODING_AES_KEY": AES_KEY}, "WECOM_TOKEN"),
        ({"WECOM_MODE": "long-connection", **WH}, "WECOM_BOT_ID"),
        ({"WECOM_MODE": "webhook", **LC}, "WECOM_TOKEN"),
        ({"WECOM_MODE": "webhook", "WECOM_TOKEN": TOKEN}, "WECOM_ENCODING_AES_KEY"),
    ],
)
def test_missing_credential_names_variable(env, setting):
    error = error_of(environ=env)
    assert error.setting == setting
    assert SECRET not in str(error) and TOKEN not in str(error) and AES_KEY not in str(error)


# --- invalid values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("WECOM_MODE", "websocket"),
        ("WECOM_PORT", "http"),
        ("WECOM_PORT", "65536"),
        ("WECOM_PORT", "-1"),
        ("WECOM_PORT", "80.5"),
        ("WECOM_HEARTBEAT_INTERVAL", "-1"),
        ("WECOM_HEARTBEAT_INTERVAL", "0"),
        ("WECOM_HEARTBEAT_INTERVAL", "nan"),
        ("WECOM_HEARTBEAT_INTERVAL", "inf"),
        ("WECOM_HEARTBEAT_INTERVAL", "soon"),
        ("WECOM_LOG_LEVEL", "verbose"),
        ("WECOM_WS_URL", "https://openws.work.weixin.qq.com"),
        ("WECOM_WS_URL", "openws.work.weixin.qq.com"),
        ("WECOM_WS_URL", "wss://"),
        ("WECOM_CALLBACK_PATH", "wecom/callback"),
        ("WECOM_MEDIA_ALLOW_PRIVATE", "maybe"),
        ("WECOM_ACK_TIMEOUT", "0"),
        ("WECOM_CONNECT_TIMEOUT", "-5"),
        ("WECOM_RECONNECT_INITIAL", "0"),
        ("WECOM_RECONNECT_MAX", "0.5"),  # below reconnect_initial (1.0)
        ("WECOM_RECONNECT_JITTER", "1.5"),
        ("WECOM_RECONNECT_JITTER", "-0.1"),
        ("WECOM_RESTART_INTENSITY", "-1"),
        ("WECOM_RESTART_PERIOD", "0"),
        ("WECOM_AUTH_MAX_ATTEMPTS", "0"),
        ("WECOM_MAX_FRAME_BYTES", "0"),
        ("WECOM_HANDLER_CONCURRENCY", "0"),
        ("WECOM_SESSION_QUEUE_SIZE", "0"),
        ("WECOM_DRAIN_TIMEOUT", "-1"),
        ("WECOM_STREAM_MIN_INTERVAL", "-0.1"),
        ("WECOM_MEDIA_MAX_BYTES", "0"),
        ("WECOM_MEDIA_TIMEOUT", "0"),
        ("WECOM_WEBHOOK_MAX_BODY", "-1"),
        ("WECOM_WEBHOOK_TIMESTAMP_WINDOW", "-1"),
    ],
)
def test_invalid_value_names_setting(var, raw):
    error = error_of(environ={**LC, var: raw})
    assert error.setting == var
    assert str(error).startswith(f"{var}: ")
    assert "expected" in str(error)


@pytest.mark.parametrize(
    "key",
    [
        AES_KEY[:-1],  # 42 characters
        AES_KEY + "7",  # 44 characters
        AES_KEY[:-1] + "=",  # base64 padding is not part of the key
        AES_KEY[:-1] + "+",
        AES_KEY[:-1] + "é",
    ],
)
def test_bad_aes_key(key):
    error = error_of(environ={"WECOM_TOKEN": TOKEN, "WECOM_ENCODING_AES_KEY": key})
    assert error.setting == "WECOM_ENCODING_AES_KEY"
    assert "43" in str(error)
    assert key not in str(error)  # a secret is never echoed


def test_invalid_flag_names_env_var_and_flag():
    error = error_of(flags={"port": "99999"}, environ=LC)
    assert error.setting == "WECOM_PORT"
    assert "--port" in str(error) and "99999" in str(error)


def test_direct_construction_validates():
    with pytest.raises(ConfigError) as info:
        BotConfig(mode="webhook", token=TOKEN, encoding_aes_key=AES_KEY, port=-1)
    assert info.value.setting == "WECOM_PORT"
    config = BotConfig(mode="long-connection", bot_id="b", bot_secret=SECRET, log_level="debug")
    assert config.log_level == "DEBUG"


def test_replace_revalidates():
    config = BotConfig.from_env(LC)
    assert config.replace(port=0).port == 0
    assert config.replace(ack_timeout=1).ack_timeout == 1.0
    with pytest.raises(ConfigError) as info:
        config.replace(callback_path="cb")
    assert info.value.setting == "WECOM_CALLBACK_PATH"
    with pytest.raises(ConfigError) as info:
        config.replace(mode="webhook")
    assert info.value.setting == "WECOM_TOKEN"
    with pytest.raises(TypeError):
        config.replace(prot=1)


# --- TOML ------------------------------------------------------------------------------------------


def test_toml_flat_and_table(tmp_path):
    path = write(
        tmp_path,
        f"mode = 'long-connection'\nbot_id = 'b'\n[wecom]\nbot_secret = '{SECRET}'\n"
        "media_allow_private = true\nheartbeat_interval = 5\n",
    )
    config = BotConfig.from_toml(path)
    assert (config.bot_id, config.bot_secret) == ("b", SECRET)
    assert config.media_allow_private is True
    assert config.heartbeat_interval == 5.0 and type(config.heartbeat_interval) is float


@pytest.mark.parametrize(
    ("text", "key"),
    [("prot = 9000", "prot"), ("[wecom]\nbotid = 'x'", "wecom.botid"), ("[other]\nx = 1", "other")],
)
def test_toml_unknown_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        BotConfig.load(environ=LC, config_file=path)
    assert repr(key) in str(info.value)
    assert str(path) in str(info.value)


def test_toml_typo_suggests(tmp_path):
    path = write(tmp_path, "prot = 9000")
    with pytest.raises(ConfigError, match="did you mean 'port'"):
        BotConfig.load(environ=LC, config_file=path)


@pytest.mark.parametrize(
    ("text", "setting"),
    [
        ("port = '8080'", "WECOM_PORT"),
        ("port = 80.0", "WECOM_PORT"),
        ("port = true", "WECOM_PORT"),
        ("heartbeat_interval = 'fast'", "WECOM_HEARTBEAT_INTERVAL"),
        ("heartbeat_interval = false", "WECOM_HEARTBEAT_INTERVAL"),
        ("media_allow_private = 1", "WECOM_MEDIA_ALLOW_PRIVATE"),
        ("host = 127", "WECOM_HOST"),
        ("bot_secret = 12345", "WECOM_BOT_SECRET"),
        ("callback_path = 'cb'", "WECOM_CALLBACK_PATH"),
    ],
)
def test_toml_wrong_type_or_value(tmp_path, text, setting):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        BotConfig.load(environ=LC, config_file=path)
    assert info.value.setting == setting
    assert str(path) in str(info.value)
    if setting == "WECOM_BOT_SECRET":
        assert "12345" not in str(info.value)


@pytest.mark.parametrize("text", ["port = ", "[wecom\n"])
def test_toml_syntax_error(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        BotConfig.from_toml(path)
    assert info.value.setting == str(path)


def test_toml_missing_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="cannot read") as info:
        BotConfig.from_toml(path)
    assert info.value.setting == str(path)


def test_toml_key_twice(tmp_path):
    path = write(tmp_path, "port = 1\n[wecom]\nport = 2\n")
    with pytest.raises(ConfigError, match="twice"):
        BotConfig.from_toml(path)


# --- redaction -------------------------------------------------------------------------------------


def test_repr_and_str_redact_secrets():
    config = BotConfig(
        mode="webhook", bot_id="bot-1", bot_secret=SECRET, token=TOKEN, encoding_aes_key=AES_KEY
    )
    for text in (repr(config), str(config), f"{config}", repr(config.redacted())):
        assert SECRET not in text and TOKEN not in text and AES_KEY not in text
        assert "bot-1" in text
    assert "bot_secret='***'" in repr(config) and "token='***'" in str(config)
    assert dict(config.__rich_repr__())["token"] == "***"
    assert config.redacted()["encoding_aes_key"] == "***"
    assert config.token == TOKEN  # the value itself is intact


def test_empty_secret_stays_empty_in_repr():
    config = BotConfig.from_env(LC)
    assert "token=''" in repr(config) and "encoding_aes_key=''" in repr(config)
    assert config.redacted()["token"] == ""


def test_docs_index_names_every_setting() -> None:
    from pathlib import Path

    from wecom_actors.config import env_var

    doc = (Path(__file__).resolve().parents[1] / "docs" / "index.md").read_text(encoding="utf-8")
    missing = [env_var(f) for f in BotConfig.__struct_fields__ if env_var(f) not in doc]
    assert missing == [], f"docs/index.md does not name {missing}"
