"""Settings of the ``openai`` handler: environment variables, an ``[llm]`` TOML table, defaults.

Precedence: environment > config file > defaults; an environment variable set to the empty
string counts as unset. Every problem raises one :class:`~wecom_actors.errors.ConfigError` whose
``setting`` is the environment variable's name; the API key's value is never echoed.

The endpoint, key and model use the conventional ``OPENAI_*`` names; everything else is
``WECOM_LLM_<FIELD NAME IN UPPER CASE>``. The TOML key is the field name, in an ``[llm]`` table.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from .._logging import register_secret
from ..errors import ConfigError

__all__ = ["FAKE_BASE_URL", "LLMSettings", "env_var"]

#: The base URL the bundled fake model answers on (never resolved: it is served in process).
FAKE_BASE_URL = "http://fake-openai.invalid/v1"
_REDACTED = "***"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_CONVENTIONAL = {"base_url": "OPENAI_BASE_URL", "api_key": "OPENAI_API_KEY", "model": "OPENAI_MODEL"}
_SECRET = "api_key"
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant answering in a WeCom chat. Answer concisely; "
    "you may use Markdown."
)
DEFAULT_WELCOME = "Hello! Ask me anything. Send /reset to start a new conversation."


class LLMSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every setting of the ``openai`` handler. Build it with :meth:`load`, or directly (checked).

    ``base_url`` and ``api_key`` both empty means: answer with the bundled fake model.
    """

    base_url: str = ""
    api_key: str = ""
    model: str = "gpt-4o-mini"
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float = 60.0
    max_duration: float = 900.0
    max_answer_bytes: int = 100_000
    history_turns: int = 10
    history_bytes: int = 16_000
    history_conversations: int = 1000
    show_reasoning: bool = True
    multimodal: bool = False
    image_max_bytes: int = 5 * 1024 * 1024
    welcome: str = DEFAULT_WELCOME

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            checked = _check_typed(name, value, None)
            if checked != value or type(checked) is not type(value):
                msgspec.structs.force_setattr(self, name, checked)
            if not _RULES[name][0](checked):
                raise _invalid(name, checked, None)

    @property
    def uses_fake(self) -> bool:
        """No endpoint and no key: the bundled fake model answers."""
        return not self.base_url and not self.api_key

    @property
    def endpoint(self) -> str:
        """The chat completions URL."""
        base = (FAKE_BASE_URL if self.uses_fake else self.base_url or "https://api.openai.com/v1").rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"

    @classmethod
    def load(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        config_file: str | os.PathLike[str] | None = None,
    ) -> LLMSettings:
        """The environment (default ``os.environ``) over the ``[llm]`` table of ``config_file``
        over the defaults; the API key is registered as a secret for the log filter."""
        values: dict[str, Any] = {}
        if config_file is not None:
            values.update(_read_toml(config_file))
        values.update(_read_env(os.environ if environ is None else environ))
        settings = cls(**values)
        register_secret(settings.api_key)
        return settings

    def redacted(self) -> dict[str, Any]:
        return {
            name: (_REDACTED if name == _SECRET and getattr(self, name) else getattr(self, name))
            for name in self.__struct_fields__
        }

    def __repr__(self) -> str:
        body = ", ".join(f"{name}={value!r}" for name, value in self.redacted().items())
        return f"{type(self).__name__}({body})"

    __str__ = __repr__


_FIELDS: dict[str, Any] = {f.name: f.type for f in msgspec.structs.fields(LLMSettings)}


def env_var(name: str) -> str:
    """``model`` -> ``OPENAI_MODEL``, ``timeout`` -> ``WECOM_LLM_TIMEOUT``."""
    return _CONVENTIONAL.get(name) or "WECOM_LLM_" + name.upper()


def _http_url(v: str) -> bool:
    scheme, sep, rest = v.partition("://")
    return v == "" or (bool(sep) and scheme.lower() in ("http", "https") and bool(rest.split("/", 1)[0]))


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


_SECONDS = "a number of seconds > 0"
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "base_url": (_http_url, "an http:// or https:// URL with a host (e.g. http://127.0.0.1:11434/v1)"),
    "api_key": (lambda v: not any(c.isspace() for c in v), "an API key without spaces"),
    "model": (bool, "a model name"),
    "system_prompt": (lambda v: True, "a text (empty: no system message)"),
    "temperature": (_optional(lambda v: 0 <= v <= 2), "a number from 0 to 2"),
    "max_tokens": (_optional(lambda v: v >= 1), "an integer >= 1"),
    "timeout": (lambda v: v > 0, _SECONDS),
    "max_duration": (lambda v: v > 0, _SECONDS),
    "max_answer_bytes": (lambda v: v >= 1000, "a number of bytes >= 1000"),
    "history_turns": (lambda v: v >= 0, "an integer >= 0 (0: no memory)"),
    "history_bytes": (lambda v: v >= 0, "a number of bytes >= 0"),
    "history_conversations": (lambda v: v >= 1, "an integer >= 1"),
    "show_reasoning": (lambda v: True, "true or false (environment: 1/0, true/false, yes/no, on/off)"),
    "multimodal": (lambda v: True, "true or false (environment: 1/0, true/false, yes/no, on/off)"),
    "image_max_bytes": (lambda v: v >= 1, "a number of bytes >= 1"),
    "welcome": (lambda v: True, "a text (empty: no welcome message)"),
}
assert set(_RULES) == set(_FIELDS)


def _shown(name: str, value: object) -> str:
    if name == _SECRET:
        return f"(hidden, {len(value)} characters)" if isinstance(value, str) else "(hidden)"
    return repr(value)


def _invalid(name: str, value: object, source: str | None) -> ConfigError:
    where = f" (from {source})" if source else ""
    return ConfigError(env_var(name), f"invalid value {_shown(name, value)}{where}: expected {_RULES[name][1]}")


def _base_kind(name: str) -> Any:
    kind = _FIELDS[name]
    for simple in (bool, int, float, str):
        if kind is simple or kind == simple | None:
            return simple
    raise AssertionError(f"unexpected type of {name}: {kind}")  # pragma: no cover


def _check_typed(name: str, value: object, source: str | None) -> Any:
    """An already typed value (TOML, code): check the type, normalise int -> float."""
    kind = _base_kind(name)
    if value is None and _FIELDS[name] != kind:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is float:
        if not number or not math.isfinite(value):  # type: ignore[arg-type]
            raise _invalid(name, value, source)
        return float(value)  # type: ignore[arg-type]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise _invalid(name, value, source)
    return value


def _parse_text(name: str, text: str, source: str) -> Any:
    kind = _base_kind(name)
    value: Any = text
    try:
        if kind is int:
            value = int(text.strip(), 10)
        elif kind is float:
            value = float(text.strip())
        elif kind is bool:
            low = text.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError(text)
            value = low in _TRUE
        elif name in ("base_url", "api_key", "model"):
            value = text.strip()
    except ValueError:
        raise _invalid(name, text, source) from None
    return _check_typed(name, value, source)


def _read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values = {}
    for name in _FIELDS:
        raw = environ.get(env_var(name))
        if raw is None or not raw.strip():
            continue
        values[name] = _parse_text(name, raw, "the environment")
        if not _RULES[name][0](values[name]):
            raise _invalid(name, raw, "the environment")
    return values


def _read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    from ..config import read_toml_document

    shown = os.fspath(path)
    doc = read_toml_document(path)
    table = doc.get("llm", {})
    if not isinstance(table, dict):
        raise ConfigError(shown, "'llm' must be a table of settings ([llm])")
    values = {}
    for key, value in table.items():
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, list(_FIELDS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(_FIELDS)
            raise ConfigError(shown, f"unknown key 'llm.{key}' in the config file; {hint}")
        values[key] = _check_typed(key, value, f"{shown}, key 'llm.{key}'")
        if not _RULES[key][0](values[key]):
            raise _invalid(key, value, f"{shown}, key 'llm.{key}'")
    return values
