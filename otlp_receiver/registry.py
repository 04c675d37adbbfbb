"""Which factory builds which component type, as the Collector's component registry does.

Factories are imported when a config names their type, so an exporter whose dependency is missing
costs nothing unless it is used. Every factory module has `TYPE`, `Config` (a dataclass with defaults
and `validate()`) and `create(config, settings)`, and may have `prepare(raw)` to adjust the raw YAML
before it is decoded (the `otlp` receiver's empty `grpc:` means "defaults").
"""

from __future__ import annotations

import importlib
from types import ModuleType

from core.confmap import ConfigError

FACTORIES: dict[str, dict[str, str]] = {
    "receivers": {"otlp": "otlp_receiver.receivers.otlp.factory"},
    "processors": {
        "batch": "otlp_receiver.processors.batch.factory",
        "memory_limiter": "otlp_receiver.processors.memory_limiter.factory",
        "anomaly": "otlp_receiver.processors.anomaly.factory",
    },
    "exporters": {
        "clickhouse": "otlp_receiver.exporters.clickhouse.factory",
        "otlp_grpc": "otlp_receiver.exporters.otlpgrpc.factory",
        "otlp_http": "otlp_receiver.exporters.otlphttp.factory",
        "debug": "otlp_receiver.exporters.debug.factory",
    },
    "extensions": {
        "bearertokenauth": "otlp_receiver.extensions.bearertokenauth.factory",
        "query": "otlp_receiver.extensions.query.factory",
    },
}

# The Collector renamed `otlp` to `otlp_grpc` and `otlphttp` to `otlp_http` and kept the old names.
ALIASES: dict[str, dict[str, str]] = {"exporters": {"otlp": "otlp_grpc", "otlphttp": "otlp_http"}}


def component_type(component_id: str) -> str:
    """`type/name` -> `type`."""
    return component_id.split("/", 1)[0]


def factory(kind: str, component_id: str) -> ModuleType:
    """The factory module for a component id of `kind` (receivers, processors, exporters, extensions).

    Raises ConfigError about the component's own section (an empty path): the caller anchors it."""
    type_name = component_type(component_id)
    type_name = ALIASES.get(kind, {}).get(type_name, type_name)
    module_name = FACTORIES[kind].get(type_name)
    if module_name is None:
        known = sorted(FACTORIES[kind]) + sorted(ALIASES.get(kind, {}))
        raise ConfigError("", f"unknown {kind[:-1]} type '{type_name}' (known: {', '.join(known)})")
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError("", f"{kind[:-1]} '{type_name}' is unavailable: {exc}") from exc
