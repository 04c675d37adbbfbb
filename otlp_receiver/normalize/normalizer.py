"""One OTLP log record (+ its resource) -> a `ProcessEvent`, whatever agent produced it.

Order of recognition: process attributes on the record (our agent, semantic conventions, ECS), then
the body: a JSON object (Falco, Tetragon, nested ECS; as a string or as a structured kvlist body),
then auditd lines. Everything else is `unrecognised`: passed through unscored and counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core import semconv
from core.event import EXEC, SCORED_EVENT_NAMES, InvalidEvent, ProcessEvent
from otlp_receiver.normalize import shapes
from otlp_receiver.normalize.auditd import AuditAssembler
from otlp_receiver.normalize.values import MAX_ARGS, MAX_COMMAND_LINE, attributes_dict, flatten, to_python

MAX_JSON_BODY = 1 << 20
KINDS = ("agent", "semconv", "ecs", "falco", "tetragon", "auditd", "auditd_partial", "unrecognised", "invalid")


@dataclass(slots=True)
class Normalized:
    event: ProcessEvent | None
    kind: str  # one of KINDS
    attributes: dict[str, Any] | None = None  # the record's own attributes, as plain values


class Normalizer:
    """Thread-safe (the audit assembler locks); one per pipeline, so half-assembled audit events span
    batches. Ancestry is the scoring engine's: it keeps the process tree (scoring/chains.py)."""

    def __init__(self, assembler: AuditAssembler | None = None) -> None:
        self.assembler = assembler or AuditAssembler()

    def normalize(self, tenant: str, resource: dict[str, Any], record: LogRecord) -> Normalized:
        attrs = attributes_dict(record.attributes)
        found = self._recognise(tenant, resource, attrs, record)
        if found is None:
            return Normalized(None, "unrecognised", attrs)
        fields, kind = found
        if fields is None:
            return Normalized(None, kind, attrs)
        flat = self._flat(resource, fields, attrs, record)
        try:
            event = semconv.event_from_attributes(flat)
        except InvalidEvent:
            return Normalized(None, "invalid", attrs)
        if event.event_name not in SCORED_EVENT_NAMES:
            return Normalized(None, "unrecognised", attrs)
        if kind == "semconv" and resource.get(semconv.SERVICE_NAME) == semconv.AGENT_SERVICE_NAME:
            kind = "agent"
        return Normalized(event, kind, attrs)

    def _recognise(self, tenant: str, resource: dict[str, Any], attrs: dict[str, Any],
                   record: LogRecord) -> tuple[dict[str, Any] | None, str] | None:
        found = shapes.process_attributes(attrs)
        if found is not None:
            return found
        if any(isinstance(value, dict) for value in attrs.values()):
            # The Collector's json_parser operator puts a parsed JSON line into attributes as maps.
            found = _from_document(attrs)
            if found is not None:
                return found
        body = _body(record)
        if isinstance(body, dict):
            return _from_document(body)
        if isinstance(body, str):
            host = str(resource.get(semconv.HOST_NAME) or "")
            completed, was_audit = self.assembler.add(tenant, host, body) if "msg=audit(" in body else (None, False)
            if was_audit:
                return (completed, "auditd") if completed else (None, "auditd_partial")
        return None

    @staticmethod
    def _flat(resource: dict[str, Any], fields: dict[str, Any], attrs: dict[str, Any],
              record: LogRecord) -> dict[str, Any]:
        # A copy of the record's own attributes, so Normalized.attributes stays as the record has them.
        flat = dict(attrs) if fields is attrs else {k: v for k, v in fields.items() if v is not None}
        for key in (semconv.HOST_NAME, semconv.CONTAINER_ID):
            if key in resource and key not in flat:
                flat[key] = resource[key]
        flat.setdefault(semconv.EVENT_NAME, record.event_name or attrs.get(semconv.EVENT_NAME) or EXEC)
        if "ts" not in flat:
            flat["ts"] = (record.time_unix_nano or record.observed_time_unix_nano) / 1e9
        _bound(flat)
        return flat


def _body(record: LogRecord) -> Any:
    kind = record.body.WhichOneof("value")
    if kind == "string_value":
        text = record.body.string_value
        if text.startswith("{") and len(text) <= MAX_JSON_BODY:
            try:
                document = json.loads(text)
            except ValueError:
                return text
            return document if isinstance(document, dict) else text
        return text
    if kind == "kvlist_value":
        return to_python(record.body)
    return None


def _from_document(document: dict[str, Any]) -> tuple[dict[str, Any] | None, str] | None:
    fields = shapes.falco(document)
    if fields is not None:
        return fields, "falco"
    fields = shapes.tetragon(document)
    if fields is not None:
        return fields, "tetragon"
    found = shapes.process_attributes(flatten(document))
    if found is not None:
        return found
    return None


def _bound(flat: dict[str, Any]) -> None:
    """Hostile sizes stop here: a command line or argv beyond the bounds is cut and flagged."""
    line = flat.get(semconv.PROCESS_COMMAND_LINE)
    args = flat.get(semconv.PROCESS_COMMAND_ARGS)
    truncated = False
    if isinstance(line, str) and len(line) > MAX_COMMAND_LINE:
        flat[semconv.PROCESS_COMMAND_LINE] = line[:MAX_COMMAND_LINE]
        truncated = True
    if isinstance(args, list) and (len(args) > MAX_ARGS or sum(len(str(a)) for a in args) > MAX_COMMAND_LINE):
        kept, total = [], 0
        for arg in args[:MAX_ARGS]:
            arg = str(arg)[: MAX_COMMAND_LINE - total]
            kept.append(arg)
            total += len(arg)
            if total >= MAX_COMMAND_LINE:
                break
        flat[semconv.PROCESS_COMMAND_ARGS] = kept
        truncated = True
    if truncated:
        flat[semconv.PROCESS_COMMAND_ARGS_TRUNCATED] = True
