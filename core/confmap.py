"""The one configuration loader: Collector-style YAML into typed dataclasses.

`load_yaml(path)` reads a file and expands `${env:VAR}`, `${VAR}` and `${env:VAR:-default}` the way the
OpenTelemetry Collector's confmap does. `decode(ConfigClass, mapping, where)` turns a mapping into a
dataclass, strictly: an unknown key, a wrong type or a missing required value raises `ConfigError`
naming the file and the dotted path, with a suggestion for a misspelt key. Each component's config is
a dataclass with defaults and a `validate()` method, which `decode` calls.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

_ENV_PATTERN = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\$")


class ConfigError(ValueError):
    """A configuration problem, with where it is and what to do about it."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


def expand_env(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Expands `${env:VAR}`, `${VAR}` and `${env:VAR:-default}`; `$$` is a literal `$`."""
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        return default if default is not None else ""

    return _ENV_PATTERN.sub(replace, text)


def load_yaml(path: str | Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Reads a YAML config file with environment expansion; the top level must be a mapping."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read config file: {exc.strerror}") from exc
    try:
        # Expand inside scalar values only, after parsing, so a variable cannot inject YAML structure.
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"invalid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "the top level must be a mapping of sections")
    return _expand_tree(data, environ)


def _expand_tree(node: Any, environ: Mapping[str, str] | None) -> Any:
    if isinstance(node, str):
        expanded = expand_env(node, environ)
        # A value that was only a variable takes the type YAML would give it (ports, booleans).
        if expanded != node and _ENV_PATTERN.fullmatch(node.strip()):
            try:
                return yaml.safe_load(expanded) if expanded else expanded
            except yaml.YAMLError:
                return expanded
        return expanded
    if isinstance(node, dict):
        return {key: _expand_tree(value, environ) for key, value in node.items()}
    if isinstance(node, list):
        return [_expand_tree(item, environ) for item in node]
    return node


def decode(cls: type[T], data: Any, where: str = "") -> T:
    """Builds dataclass `cls` from `data`, strictly, then calls its `validate()` if it has one."""
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
    validate = getattr(instance, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError as exc:
            if not where or exc.where.startswith(where):
                raise
            # validate() names keys relative to its own dataclass: anchor them at `where`.
            message = str(exc)[len(exc.where) + 2:] if exc.where else str(exc)
            raise ConfigError(_join(where, exc.where) if exc.where else where, message) from exc
        except ValueError as exc:
            raise ConfigError(where, str(exc)) from exc
    return instance


def parse_duration(value: str | int | float, where: str = "") -> float:
    """Collector durations: `1s`, `500ms`, `5m`, `720h`, `1h30m`; a bare number is seconds."""
    if isinstance(value, bool):
        raise ConfigError(where, f"expected a duration like 5s, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)", value.strip())
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        raise ConfigError(where, f"expected a duration like 500ms, 5s, 10m or 720h, got {value!r}")
    return sum(float(number) * units[unit] for number, unit in parts)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own error names the exact key
            return _convert(options[0], value, where)
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(where, f"expected {_hint_name(hint)}, got {_type_name(value)}")
    if dataclasses.is_dataclass(hint):
        return decode(hint, value, where)  # type: ignore[arg-type]
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
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    elif isinstance(hint, type) and isinstance(value, hint):
        return value
    raise ConfigError(where, f"expected {_hint_name(hint)}, got {_type_name(value)} {value!r}")


def _unknown_key_message(key: str, fields: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(fields), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    known = ", ".join(sorted(fields)) or "none"
    return f"unknown setting '{key}'{hint} (known settings: {known})"


def _join(where: str, key: str) -> str:
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
