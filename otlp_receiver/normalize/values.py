"""OTLP `AnyValue` -> plain Python, and the bounds every normalised string is held to."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

MAX_DEPTH = 8  # nesting of kvlist/array values converted


def to_python(value: AnyValue, depth: int = 0) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return value.double_value
    if depth >= MAX_DEPTH:
        return None
    if kind == "array_value":
        return _array(value.array_value.values, depth + 1)
    if kind == "kvlist_value":
        return {kv.key: to_python(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return None


def _array(values: Any, depth: int = 1) -> list[Any]:
    # Attribute arrays are homogeneous (OpenTelemetry spec), so the first element tells the type.
    if values and values[0].WhichOneof("value") == "string_value":
        return [v.string_value for v in values]
    return [to_python(v, depth) for v in values]


def attributes_dict(attributes: Any) -> dict[str, Any]:
    """Attributes by key; a key sent twice keeps its first value, as ClickHouse's map lookup and the Collector's
    `pcommon.Map.Get` read it (scoring the second would judge a command the table does not show)."""
    # The hot path of every record: strings and ints, the common cases, without the generic call.
    result = {}
    for kv in attributes:
        if kv.key in result:
            continue
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            result[kv.key] = value.string_value
        elif kind == "int_value":
            result[kv.key] = value.int_value
        elif kind == "array_value":
            result[kv.key] = _array(value.array_value.values)
        else:
            result[kv.key] = to_python(value)
    return result


def flatten(document: dict[str, Any], prefix: str = "", out: dict[str, Any] | None = None,
            depth: int = 0) -> dict[str, Any]:
    """{"process": {"parent": {"name": "x"}}} -> {"process.parent.name": "x"} (ECS nesting); dotted
    keys that are already flat stay as they are."""
    out = {} if out is None else out
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < MAX_DEPTH:
            flatten(value, name + ".", out, depth + 1)
        else:
            out[name] = value
    return out
