"""The one configuration loader: Collector-style YAML into typed dataclasses.

`load_yaml(path)` reads a file and expands the Collector's config providers the way its confmap does:
`${env:VAR}`, `${VAR}`, `${env:VAR:-default}`, `${file:PATH}` (the file's content, parsed as YAML, so a
whole value can be a mapping or a list), nested (`${env:${env:NAME}}`), and `$$` for a literal `$`.
A value that is one expansion and nothing else is typed as YAML would type it (`port: ${env:PORT}` is a
number), except where the setting is text, which keeps the text as written (`token: ${env:PIN}` with
PIN=0123 stays "0123"). `decode(ConfigClass, mapping, where, source=file)` turns a mapping into a
dataclass, strictly: an unknown key, a wrong type or a missing required value raises `ConfigError`
naming the file and the dotted key path, with a suggestion for a misspelt key. Collector durations
("5s", "500ms", "720h", "1h30m") become `Duration`s here, once. An optional section (`X | None`) may be
switched off with `enabled: false`, as the Collector's optional sections can.

Each component's config is a dataclass with defaults and a `validate()` method, which `decode` calls
after its nested sections are decoded (and validated). `validate()` raises `ConfigError(key, message)`
with `key` relative to its own dataclass; `decode` anchors it under the section's path. `check(config)`
validates a config built in code the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml

T = TypeVar("T")

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_NESTING = 100  # expansions inside one value, as the Collector bounds them
# Values (scalars, mappings and lists) a config may expand to: a real one has hundreds; YAML aliases
# repeating a node that repeats a node ("billion laughs") would otherwise expand without end.
MAX_CONFIG_VALUES = 100_000
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class ConfigError(ValueError):
    """A configuration problem: the file, the dotted key path it is about, and what is wrong."""

    def __init__(self, path: str, message: str, source: str = "") -> None:
        super().__init__(": ".join(part for part in (source, path, message) if part))
        self.path = path
        self.message = message
        self.source = source

    def within(self, prefix: str) -> ConfigError:
        """The same problem, its path taken as relative to the section at `prefix`."""
        return ConfigError(_join(prefix, self.path), self.message, self.source)

    def in_file(self, source: str) -> ConfigError:
        return self if self.source or not source else ConfigError(self.path, self.message, source)


class Duration(float):
    """A Collector duration as seconds: `Duration("1h30m") == 5400.0`; a bare number is seconds.

    A float, so it is used as seconds as it is (`time.sleep(config.check_interval)`). Never negative;
    a value that is not a duration raises ValueError (`decode` reports it as a ConfigError at its key).
    """

    def __new__(cls, value: str | float) -> Duration:
        if isinstance(value, str):
            seconds = _parse_duration(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        else:
            raise ValueError(f"expected a duration like 500ms, 5s, 10m or 720h, got {value!r}")
        if not seconds >= 0 or math.isinf(seconds):
            raise ValueError(f"a duration must be zero or more, got {value!r}")
        return super().__new__(cls, seconds)

    def __str__(self) -> str:
        seconds = float(self)
        if 0 < seconds < 1:
            return f"{seconds * 1000:g}ms"
        hours, rest = divmod(seconds, 3600)
        minutes, rest = divmod(rest, 60)
        parts = [f"{hours:.0f}h" if hours else "", f"{minutes:.0f}m" if minutes else "", f"{rest:g}s" if rest else ""]
        return "".join(parts) or "0s"

    def __repr__(self) -> str:
        return f"Duration({str(self)!r})"


def _parse_duration(text: str) -> float:
    value = text.strip()
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        raise ValueError(f"expected a duration like 500ms, 5s, 10m or 720h, got {text!r}")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def check_positive(section: object, *names: str) -> None:
    """For `validate()`: each named Duration (or number) of `section` must be greater than zero."""
    for name in names:
        value = getattr(section, name)
        if value <= 0:
            raise ConfigError(name, f"must be greater than zero, got {value}")


def url_problem(url: str) -> str:
    """For `validate()`: what makes an endpoint URL unusable (a space or control character, a broken IPv6 address, a
    port out of range, no host), or "". A mistyped endpoint otherwise runs, and fails at every send."""
    if any(character.isspace() or not character.isprintable() for character in url):
        return "a space or control character"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535"
        return str(exc).lower()
    return "" if parts.hostname else "no host"


Raw = typing.NewType("Raw", object)
"""A setting kept as it was read (with its `YamlScalar`s), for a section decoded later by its own
config class: the Collector document's component sections."""


class YamlScalar(str):
    """The text of a value that was one `${...}` expansion and nothing else: `decode` reads it as YAML
    (a number, a boolean, null) for a setting that is not text, and as the text itself for one that is."""

    def typed(self) -> Any:
        try:
            return yaml.safe_load(self) if self.strip() else None
        except yaml.YAMLError:
            return str(self)


# A loaded config written back out (to hand to another program) shows the value the expansion stood for.
yaml.SafeDumper.add_representer(YamlScalar, lambda dumper, value: dumper.represent_data(value.typed()))


def expand(text: str, environ: Mapping[str, str] | None = None) -> Any:
    """Expands the providers in one value. A value that is a single expansion gives what the provider
    returned (a mapping or list from `${file:...}`, else a `YamlScalar`); anything else gives text.
    Raises ValueError saying what is wrong."""
    env = os.environ if environ is None else environ
    parts, _ = _expand_parts(text, 0, env, depth=0, closing=False)
    if len(parts) == 1 and isinstance(parts[0], _Resolved):
        return parts[0].whole()
    return "".join(part.text() if isinstance(part, _Resolved) else part for part in parts)


class _Resolved:
    """What one `${scheme:...}` gave: `value` as the provider parsed it, `raw` its text."""

    def __init__(self, uri: str, value: Any, raw: str) -> None:
        self.uri, self.value, self.raw = uri, value, raw

    def whole(self) -> Any:
        if isinstance(self.value, dict | list):
            return self.value
        return YamlScalar(self.raw)

    def text(self) -> str:
        if isinstance(self.value, dict | list):
            raise ValueError(f"${{{self.uri}}} is a {_type_name(self.value)}; it can only be a whole value, "
                             "not part of a text")
        return self.raw


def _expand_parts(text: str, start: int, env: Mapping[str, str], depth: int,
                  closing: bool) -> tuple[list[str | _Resolved], int]:
    """Scans `text` from `start`: literal text and resolved `${...}`; with `closing`, stops at the `}` that
    ends the enclosing expansion and returns the index after it."""
    if depth > _MAX_NESTING:
        raise ValueError(f"more than {_MAX_NESTING} nested ${{...}} expansions")
    parts: list[str | _Resolved] = []
    literal: list[str] = []
    index = start
    while index < len(text):
        char = text[index]
        if text.startswith("$$", index):
            literal.append("$")  # an escaped dollar is never expanded again
            index += 2
        elif text.startswith("${", index):
            inner, index = _expand_parts(text, index + 2, env, depth + 1, closing=True)
            if literal:
                parts.append("".join(literal))
                literal = []
            uri = "".join(p.text() if isinstance(p, _Resolved) else p for p in inner)
            parts.append(_resolve(uri, env))
        elif closing and char == "}":
            if literal:
                parts.append("".join(literal))
            return parts, index + 1
        else:
            literal.append(char)
            index += 1
    if closing:
        raise ValueError(f"'${{' without its closing '}}' in {text!r}")
    if literal:
        parts.append("".join(literal))
    return parts, index


def _resolve(uri: str, env: Mapping[str, str]) -> _Resolved:
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme not in ("env", "file"):
        if _ENV_NAME.fullmatch(scheme) and (not colon or rest.startswith("-")):
            scheme, rest = "env", uri  # ${VAR} and ${VAR:-default}: the default scheme is env
        elif colon and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
            raise ValueError(f"${{{uri}}}: procsight resolves the env and file providers only, not '{scheme}:'")
        else:
            raise ValueError(f"${{{uri}}}: expected ${{env:NAME}}, ${{NAME}} or ${{file:PATH}}")
    if scheme == "file":
        return _read_file(uri, rest)
    name, has_default, default = rest.partition(":-")
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(f"${{{uri}}}: {name!r} is not an environment variable name "
                         "(letters, digits and _, not starting with a digit)")
    value = env.get(name)
    if value is None:
        value = default if has_default else ""
    return _Resolved(uri, value, value)


def _read_file(uri: str, path: str) -> _Resolved:
    if not path:
        raise ValueError(f"${{{uri}}}: no file named")
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"${{{uri}}}: cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"${{{uri}}}: {path} is not UTF-8 text") from exc
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ValueError(f"${{{uri}}}: {path} is not valid YAML: {exc}") from exc
    # Inside text the file stands for its content; a file of one line does not bring its newline.
    text = value if isinstance(value, str) else raw.strip()
    return _Resolved(uri, value, text)


def load_yaml(path: str | Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Reads a YAML config file and expands its `${...}` values; the top level must be a mapping."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config file: {exc.strerror}", str(path)) from exc
    try:
        # Expand inside values only, after parsing, so an environment variable cannot inject YAML structure.
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError("", f"invalid YAML: {exc}", str(path)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("", "the top level must be a mapping of sections", str(path))
    try:
        return _expand_tree(data, environ, "", depth=0, budget=[MAX_CONFIG_VALUES])
    except ConfigError as exc:
        raise exc.in_file(str(path)) from None
    except RecursionError:
        raise ConfigError("", "the config nests too deeply to read: is a YAML alias (*name) inside the section it "
                              "names?", str(path)) from None


def _expand_tree(node: Any, environ: Mapping[str, str] | None, where: str, depth: int, budget: list[int]) -> Any:
    """The tree with its `${...}` values expanded; `budget` holds how many more values it may have."""
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(where, f"the config expands to more than {MAX_CONFIG_VALUES:,} values: are YAML "
                                 "aliases (*name) repeating a large section?")
    if isinstance(node, str):
        if "$" not in node:
            return node
        try:
            value = expand(node, environ)
        except ValueError as exc:
            raise ConfigError(where, str(exc)) from None
        if isinstance(value, dict | list):  # a whole section from ${file:...}: its own values expand too
            if depth >= _MAX_NESTING:
                raise ConfigError(where, f"files included more than {_MAX_NESTING} levels deep")
            return _expand_tree(value, environ, where, depth + 1, budget)
        return value
    if isinstance(node, dict):
        return {key: _expand_tree(value, environ, _join(where, str(key)), depth, budget)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_expand_tree(item, environ, f"{where}[{index}]", depth, budget) for index, item in enumerate(node)]
    return node


def decode(cls: type[T], data: Any, where: str = "", *, source: str = "") -> T:
    """Builds dataclass `cls` from `data` at key path `where` (of file `source`), strictly, and validates it."""
    try:
        return _decode(cls, data, where)
    except ConfigError as exc:
        raise exc.in_file(source) from None


def check(config: object, where: str = "") -> None:
    """Validates a config built in code as `decode` validates one read from a file: sections first."""
    for name, section in _sections(config):
        check(section, _join(where, name))
    _validate(config, where)


def _decode(cls: type[T], data: Any, where: str) -> T:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(where, f"expected a mapping, got {_type_name(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(_join(where, str(key)), _unknown_key_message(str(key), fields))
        kwargs[key] = _convert(hints[key], value, _join(where, key))
    for name, field in fields.items():
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if required and name not in kwargs:
            raise ConfigError(_join(where, name), "required setting is missing")
    instance = cls(**kwargs)
    _validate(instance, where)
    return instance


def _validate(config: object, where: str) -> None:
    validate = getattr(config, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError as exc:
            raise exc.within(where) from None


def _sections(config: object) -> Iterator[tuple[str, object]]:
    """The nested config dataclasses of `config`, with their relative key paths."""
    for field in dataclasses.fields(config):  # type: ignore[arg-type]
        value = getattr(config, field.name)
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else None
        if items is None:
            if dataclasses.is_dataclass(value):
                yield field.name, value
            continue
        for key, item in items:
            if dataclasses.is_dataclass(item):
                yield (f"{field.name}.{key}" if isinstance(value, dict) else f"{field.name}[{key}]"), item


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Raw:
        return value
    if hint is Any:
        return _typed(value)
    if isinstance(value, YamlScalar) and hint is not str and origin not in (typing.Union, types.UnionType):
        value = value.typed()
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, YamlScalar) and value.typed() is None)):
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own error names the exact key
            if dataclasses.is_dataclass(options[0]):
                value = _optional_section(options[0], value, where)
                if value is None:
                    return None
            return _convert(options[0], value, where)
        for option in options:
            try:
                return _convert(option, value, where)
            except ConfigError:
                continue
        raise ConfigError(where, f"expected {_hint_name(hint)}, got {_type_name(value)}")
    if hint is Duration:
        try:
            return Duration(value)
        except ValueError as exc:
            raise ConfigError(where, str(exc)) from None
    if dataclasses.is_dataclass(hint):
        return _decode(hint, value, where)  # type: ignore[arg-type]
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(where, f"expected a list, got {_type_name(value)}")
        item = args[0] if args else Any
        items = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or hint is tuple) else items
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(where, f"expected a mapping, got {_type_name(value)}")
        key_type, value_type = args if args else (Any, Any)
        return {
            _convert(key_type, k, where): _convert(value_type, v, _join(where, str(k))) for k, v in value.items()
        }
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is str:
        if isinstance(value, str):
            return str(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    elif isinstance(hint, type) and isinstance(value, hint):
        return value
    raise ConfigError(where, f"expected {_hint_name(hint)}, got {_type_name(value)} {value!r}")


def _optional_section(cls: type, value: Any, where: str) -> Any:
    """An optional section written with `enabled: false` is absent (None), as in the Collector
    (configoptional); with `enabled: true` the rest is the section. Sections with their own `enabled`
    setting keep it."""
    own_switch = "enabled" in {f.name for f in dataclasses.fields(cls)}
    if not isinstance(value, Mapping) or "enabled" not in value or own_switch:
        return value
    enabled = _convert(bool, value["enabled"], _join(where, "enabled"))
    return {key: item for key, item in value.items() if key != "enabled"} if enabled else None


def _typed(value: Any) -> Any:
    """Raw YAML for a setting of any type: every `YamlScalar` read as YAML."""
    if isinstance(value, YamlScalar):
        return value.typed()
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return value


def _unknown_key_message(key: str, fields: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(fields), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    known = ", ".join(sorted(fields)) or "none"
    return f"unknown setting '{key}'{hint} (known settings: {known})"


def _join(where: str, key: str) -> str:
    if not key:
        return where
    return f"{where}.{key}" if where else key


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


def _hint_name(hint: Any) -> str:
    if hint in (int, float, str, bool):
        return {int: "an integer", float: "a number", str: "text", bool: "a boolean (true/false)"}[hint]
    return str(hint).replace("typing.", "")
