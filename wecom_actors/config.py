"""Typed bot configuration: :class:`BotConfig`, from flags, environment, a TOML file and defaults.

Precedence: flags > environment > config file > defaults. An environment variable set
to the empty string (or only whitespace) counts as unset. Every problem raises one
:class:`~wecom_actors.errors.ConfigError` whose ``setting`` is the environment variable's name and
whose message says what is wrong and what is expected; a secret's value is never echoed.

Every field of :class:`BotConfig` is a setting: the environment variable is ``WECOM_`` plus the
field name in upper case (``port`` -> ``WECOM_PORT``), the TOML key is the field name (also
accepted under a ``[wecom]`` table). docs/index.md lists every setting with its meaning and
default; a test checks that it names them all.

Secrets: the values of every secret setting (from flags, environment and config file) are
registered for masking (:func:`wecom_actors._logging.register_secret`) before anything is
validated, so a secret pasted into the wrong variable (``WECOM_PORT=<token>``) is not echoed
in the error message either.

An unknown ``WECOM_*`` variable is not an error (other tools share the prefix) but logs one
warning naming the closest known setting, so a misspelling does not go unnoticed.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any, Literal, NoReturn, get_args

import msgspec

from ._config_rules import _RULES, LOG_FORMATS, LOG_LEVELS, MODES
from ._config_urls import _register_url_password, ws_host_is_loopback
from ._logging import contains_secret, register_secret
from .errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "MODES",
    "SECRET_FIELDS",
    "BotConfig",
    "env_var",
    "unknown_env_warnings",
]

log = logging.getLogger("wecom_actors.config")

ENV_PREFIX = "WECOM_"
SECRET_FIELDS = frozenset({"bot_secret", "token", "encoding_aes_key"})
_REDACTED = "***"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_CREDENTIALS = {
    "long-connection": ("bot_id", "bot_secret"),
    "webhook": ("token", "encoding_aes_key"),
}


class BotConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every setting of one bot. Build it with :meth:`from_env`, :meth:`from_toml` or :meth:`load`.

    Direct construction validates too; secrets are redacted in ``repr()``/``str()``.
    """

    mode: Literal["long-connection", "webhook"]
    bot_id: str = ""
    bot_secret: str = ""
    ws_url: str = "wss://openws.work.weixin.qq.com"
    ws_allow_insecure: bool = False
    heartbeat_interval: float = 30.0
    token: str = ""
    encoding_aes_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    callback_path: str = "/wecom/callback"
    media_allow_private: bool = False
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one JSON object a line
    admin_port: int = 0  # /metrics, /healthz, /readyz on host:admin_port; 0 = off
    # tuning
    ack_timeout: float = 5.0
    connect_timeout: float = 10.0
    reconnect_initial: float = 1.0
    reconnect_max: float = 30.0
    reconnect_jitter: float = 0.2
    restart_intensity: int = 10
    restart_period: float = 60.0
    auth_max_attempts: int = 5
    max_frame_bytes: int = 1048576
    handler_concurrency: int = 64
    session_queue_size: int = 1000
    max_queued_messages: int = 20000
    max_queued_bytes: int = 67108864
    group_order: str = "sender"  # or "chat": strict order for a whole group chat
    drain_timeout: float = 3.5
    stream_min_interval: float = 0.1
    media_max_bytes: int = 20971520
    media_timeout: float = 30.0
    webhook_max_body: int = 1048576
    webhook_timestamp_window: float = 600.0
    webhook_header_timeout: float = 5.0
    webhook_keep_alive_timeout: float = 75.0
    webhook_body_timeout: float = 10.0
    webhook_max_connections: int = 512
    transport: str = "wsproto"  # or "trio-websocket": the long-connection WebSocket engine
    bot_name: str = ""  # the bot's display name: only "@<bot_name>" is stripped from group text
    redis_url: str = ""  # replicas: the lease / the shared webhook state live in this Redis; "" = off
    lease_ttl: float = 10.0

    def __post_init__(self) -> None:
        for name in SECRET_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str):
                register_secret(value)
        _register_url_password(self.redis_url)
        values = {name: getattr(self, name) for name in self.__struct_fields__}
        for name, value in values.items():
            checked = _check_typed(name, value, None)
            if checked != value or type(checked) is not type(value):
                msgspec.structs.force_setattr(self, name, checked)  # int -> float, log level case
                values[name] = checked
        _validate(values, {})

    # --- constructors ----------------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BotConfig:
        """The environment variables (default ``os.environ``) over the defaults."""
        return cls.load(environ=environ)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> BotConfig:
        """A TOML file (a flat table of field names, or a ``[wecom]`` table) over the defaults."""
        _register_secrets(None, {}, path)
        return _build([_read_toml(path)])

    @classmethod
    def load(
        cls,
        *,
        flags: Mapping[str, object] | None = None,
        environ: Mapping[str, str] | None = None,
        config_file: str | os.PathLike[str] | None = None,
    ) -> BotConfig:
        """Merge flags > environment > config file > defaults.

        ``flags`` maps field names to values; ``None`` means "not given". A string flag value is
        parsed like an environment variable; anything else must already have the field's type.
        """
        environ = os.environ if environ is None else environ
        _register_secrets(flags, environ, config_file)
        layers = []
        if config_file is not None:
            layers.append(_read_toml(config_file))
        layers.append(_read_env(environ))
        if flags:
            layers.append(_read_flags(flags))
        return _build(layers)

    def replace(self, **changes: Any) -> BotConfig:
        """A copy with ``changes`` applied, validated again."""
        unknown = sorted(set(changes) - set(self.__struct_fields__))
        if unknown:
            raise TypeError(f"BotConfig has no setting {unknown[0]!r}")
        return msgspec.structs.replace(self, **changes)

    # --- redaction -------------------------------------------------------------------------------

    def redacted(self) -> dict[str, Any]:
        """Every setting as a dict, secrets replaced by ``'***'`` (empty ones stay ``''``)."""
        return dict(self._redacted_items())

    def _redacted_items(self) -> Iterator[tuple[str, Any]]:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if name == "redis_url" and value:
                from .redis_link import display_url

                value = display_url(value)
            yield name, (_REDACTED if name in SECRET_FIELDS and value else value)

    def __repr__(self) -> str:
        body = ", ".join(f"{name}={value!r}" for name, value in self._redacted_items())
        return f"{type(self).__name__}({body})"

    __str__ = __repr__

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return list(self._redacted_items())


# --- field metadata --------------------------------------------------------------------------------

_FIELDS: dict[str, Any] = {f.name: f.type for f in msgspec.structs.fields(BotConfig)}
_DEFAULTS: dict[str, Any] = {
    f.name: f.default
    for f in msgspec.structs.fields(BotConfig)
    if f.default is not msgspec.NODEFAULT
}
assert MODES == get_args(_FIELDS["mode"])


def env_var(name: str) -> str:
    """The environment variable of a field: ``port`` -> ``WECOM_PORT``."""
    return ENV_PREFIX + name.upper()


assert set(_RULES) == set(_FIELDS)


# --- conversion ------------------------------------------------------------------------------------


def _shown(name: str, value: object) -> str:
    if name in SECRET_FIELDS:
        n = len(value) if isinstance(value, str) else None
        return "(hidden)" if n is None else f"(hidden, {n} characters)"
    shown = repr(value)
    hidden = contains_secret(str(value)) or contains_secret(shown)
    return "(hidden: it contains the value of a secret setting)" if hidden else shown


def _register_secrets(
    flags: Mapping[str, object] | None, environ: Mapping[str, str], config_file: str | os.PathLike[str] | None
) -> None:
    """Register every secret value of every source for masking, before anything is validated."""
    candidates: list[object] = []
    for name in SECRET_FIELDS:
        candidates.append(environ.get(env_var(name)))
        if flags:
            candidates.append(flags.get(name))
    if config_file is not None:
        try:
            with open(config_file, "rb") as f:
                doc = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError):
            doc = {}  # _read_toml reports it
        table = doc.get("wecom")
        for source in (doc, table if isinstance(table, dict) else {}):
            candidates.extend(source.get(name) for name in SECRET_FIELDS)
    for value in candidates:
        if isinstance(value, str):
            register_secret(value.strip())
            register_secret(value)
    _register_url_password(environ.get(env_var("redis_url")))
    if flags:
        _register_url_password(flags.get("redis_url"))


def _invalid(name: str, value: object, source: str | None) -> ConfigError:
    where = f" (from {source})" if source else ""
    if name == "redis_url" and isinstance(value, str):
        from .redis_link import check_redis_url, display_url

        reason = check_redis_url(value) or "not a Redis URL"
        return ConfigError(
            env_var(name), f"invalid value {_shown(name, display_url(value))}{where}: {reason}; expected {_RULES[name][1]}"
        )
    return ConfigError(
        env_var(name), f"invalid value {_shown(name, value)}{where}: expected {_RULES[name][1]}"
    )


def _parse_text(name: str, text: str, source: str | None) -> Any:
    """Convert a string (environment, command line) to the field's type."""
    kind = _FIELDS[name]
    text = text.strip()
    value: Any
    try:
        if kind is int:
            value = int(text, 10)
        elif kind is float:
            value = float(text)
        elif kind is bool:
            low = text.lower()
            if low not in _TRUE | _FALSE:
                raise ValueError(text)
            value = low in _TRUE
        elif name == "mode":
            value = text.lower().replace("_", "-")
        else:
            value = text
    except ValueError:
        raise _invalid(name, text, source) from None
    try:
        return _check_typed(name, value, source)
    except ConfigError:
        raise _invalid(name, text, source) from None  # as typed (and masked), not as converted


def _check_typed(name: str, value: object, source: str | None) -> Any:
    """Check that an already typed value (TOML, code) has the field's type; normalise it."""
    kind = _FIELDS[name]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is float:
        if not number or not math.isfinite(value):  # type: ignore[arg-type]
            raise _invalid(name, value, source)
        return float(value)  # type: ignore[arg-type]
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is bool:
        ok = isinstance(value, bool)
    else:  # str, and the mode Literal
        ok = isinstance(value, str)
    if not ok:
        raise _invalid(name, value, source)
    if name == "log_level":
        return str(value).upper()
    if name == "log_format":
        return str(value).lower()
    return value


# A layer: field name -> (typed value, human-readable source).
_Layer = dict[str, tuple[Any, str]]


#: ``WECOM_*`` variables that are not settings of a bot but are known (no warning).
OTHER_KNOWN_VARIABLES: set[str] = set()


def unknown_env_warnings(environ: Mapping[str, str]) -> list[str]:
    """One message per unknown ``WECOM_*`` variable, naming the closest known setting."""
    known = [env_var(name) for name in _FIELDS]
    messages = []
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var in known or var in OTHER_KNOWN_VARIABLES:
            continue
        close = difflib.get_close_matches(var, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
        messages.append(f"unknown environment variable {var} is ignored; {hint}")
    return messages


def _read_env(environ: Mapping[str, str]) -> _Layer:
    for message in unknown_env_warnings(environ):
        log.warning("%s", message)
    layer: _Layer = {}
    for name in _FIELDS:
        var = env_var(name)
        raw = environ.get(var)
        if raw is None or not raw.strip():
            continue
        layer[name] = (_parse_text(name, raw, "the environment"), "the environment")
    return layer


def _read_flags(flags: Mapping[str, object]) -> _Layer:
    layer: _Layer = {}
    for name, raw in flags.items():
        if name not in _FIELDS:
            raise TypeError(f"unknown setting {name!r} in flags")
        if raw is None:
            continue
        source = "--" + name.replace("_", "-")
        if isinstance(raw, str):
            layer[name] = (_parse_text(name, raw, source), source)
        else:
            layer[name] = (_check_typed(name, raw, source), source)
    return layer


def read_toml_document(path: str | os.PathLike[str], what: str = "config file") -> dict[str, Any]:
    """The TOML document at ``path``; a ConfigError naming the file if it cannot be read or parsed."""
    shown = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(shown, f"cannot read the {what}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(shown, f"the {what} is not valid TOML: {exc}") from None


def _read_toml(path: str | os.PathLike[str]) -> _Layer:
    shown = os.fspath(path)
    doc = read_toml_document(path)
    # [llm] holds the openai handler's settings (wecom_actors.handlers._llm_config reads it).
    items = [(key, key, value) for key, value in doc.items() if key not in ("wecom", "llm")]
    table = doc.get("wecom")
    if table is not None:
        if not isinstance(table, dict):
            raise ConfigError(shown, "'wecom' must be a table of settings ([wecom])")
        items += [(key, f"wecom.{key}", value) for key, value in table.items()]
    layer: _Layer = {}
    for name, key, value in items:
        if name not in _FIELDS:
            close = difflib.get_close_matches(name, list(_FIELDS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(_FIELDS)
            raise ConfigError(shown, f"unknown key {key!r} in the config file; {hint}")
        if name in layer:
            raise ConfigError(shown, f"key {name!r} is set twice (top level and [wecom])")
        source = f"{shown}, key {key!r}"
        layer[name] = (_check_typed(name, value, source), source)
    return layer


# --- merging and validation ------------------------------------------------------------------------


def _build(layers: list[_Layer]) -> BotConfig:
    """Merge layers (lowest precedence first) over the defaults, infer the mode, validate."""
    merged: _Layer = {}
    for layer in layers:
        merged.update(layer)
    values = {**_DEFAULTS, **{name: value for name, (value, _) in merged.items()}}
    sources = {name: source for name, (_, source) in merged.items()}
    if "mode" not in merged:
        values["mode"] = _infer_mode(values)
    _validate(values, sources)
    return BotConfig(**values)


def _infer_mode(values: Mapping[str, Any]) -> str:
    complete = [m for m, names in _CREDENTIALS.items() if all(values[n] for n in names)]
    partial = [m for m, names in _CREDENTIALS.items() if any(values[n] for n in names)]
    if len(complete) == 1:
        return complete[0]
    if len(complete) == 2 or len(partial) == 2:
        return _raise(
            "WECOM_MODE",
            "cannot infer the mode: credentials of both modes are set "
            "(WECOM_BOT_ID/WECOM_BOT_SECRET and WECOM_TOKEN/WECOM_ENCODING_AES_KEY); "
            "set WECOM_MODE to long-connection or webhook",
        )
    if len(partial) == 1:
        return partial[0]  # the missing half is reported by _validate
    return _raise(
        "WECOM_BOT_ID",
        "no credentials: set WECOM_BOT_ID and WECOM_BOT_SECRET for long-connection mode, "
        "or WECOM_TOKEN and WECOM_ENCODING_AES_KEY for webhook mode",
    )


def _raise(setting: str, message: str) -> NoReturn:
    raise ConfigError(setting, message)


def _validate(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Raise one ConfigError for the first invalid setting (field order), then cross-checks."""
    for name, value in values.items():
        if not _RULES[name][0](value):
            raise _invalid(name, value, sources.get(name))
    if (
        values["mode"] == "long-connection"
        and values["ws_url"].lower().startswith("ws://")
        and not values["ws_allow_insecure"]
        and not ws_host_is_loopback(values["ws_url"])
    ):
        _raise(
            "WECOM_WS_URL",
            "a ws:// URL to a host that is not loopback would send the bot secret in clear: "
            "use wss://, or set WECOM_WS_ALLOW_INSECURE=1 if the network path is trusted",
        )
    if values["reconnect_max"] < values["reconnect_initial"]:
        _raise(
            "WECOM_RECONNECT_MAX",
            f"invalid value {values['reconnect_max']!r}: expected a number of seconds >= "
            f"WECOM_RECONNECT_INITIAL ({values['reconnect_initial']!r})",
        )
    mode = values["mode"]
    for name in _CREDENTIALS[mode]:
        if not values[name]:
            first, second = (env_var(n) for n in _CREDENTIALS[mode])
            _raise(env_var(name), f"missing: {mode} mode needs {first} and {second}")
