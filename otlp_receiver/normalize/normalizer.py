"""One OTLP log record (+ its resource) -> a `ProcessEvent`, whatever agent produced it.

Order of recognition: process attributes on the record (our agent, semantic conventions, ECS), then a
JSON object (Falco, Tetragon, nested ECS) as map attributes (the Collector's `json_parser`) or as the
body (a string or a structured kvlist), then auditd lines in a string body. What a source recognises
but is not an event to score (a process end, an alert, a Kubernetes audit rule, an audit login) passes
through as `<source>_other`; everything else as `unrecognised`; both unscored and counted.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core import semconv
from core.event import EXEC, SCORED_EVENT_NAMES, InvalidEvent, ProcessEvent
from otlp_receiver.normalize import attributes, eventtime, falco, tetragon
from otlp_receiver.normalize.auditd import AuditAssembler
from otlp_receiver.normalize.fields import Found, identifier
from otlp_receiver.normalize.values import MAX_ARGS, MAX_COMMAND_LINE, attributes_dict, flatten, to_python

log = logging.getLogger(__name__)

MAX_JSON_BODY = 1 << 20
KINDS = ("agent", "semconv", "ecs", "falco", "tetragon", "auditd", "ecs_other", "falco_other", "tetragon_other",
         "auditd_partial", "auditd_other", "auditd_evicted", "unrecognised", "invalid")
# Numbers of the event that are ids or ports: anything else (a float, 2^70, "12abc") is dropped, so
# what is written back into records always fits OTLP's int64.
_NUMERIC = (semconv.PROCESS_PID, semconv.PROCESS_PARENT_PID, semconv.PROCESS_USER_ID, semconv.PROCESS_REAL_USER_ID,
            semconv.SOURCE_PORT, semconv.DESTINATION_PORT)


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
        self.failures: Counter[str] = Counter()  # records that raised, by exception type: bugs, counted invalid

    def normalize(self, tenant: str, resource: dict[str, Any], record: LogRecord) -> Normalized:
        """Never raises: a record that would is `invalid` (and a bug, logged the first time per type)."""
        attrs = attributes_dict(record.attributes)
        try:
            return self._normalize(tenant, resource, record, attrs)
        except Exception as error:  # one bad record must never take its batch with it
            name = type(error).__name__
            if not self.failures[name]:
                log.exception("normalising a record raised %s; counted as invalid", name)
            self.failures[name] += 1
            return Normalized(None, "invalid", attrs)

    def take_counts(self) -> dict[str, int]:
        """Counts that belong to no one record (audit events evicted while waiting), since the last call."""
        evicted = self.assembler.take_evicted()
        return {"auditd_evicted": evicted} if evicted else {}

    def _normalize(self, tenant: str, resource: dict[str, Any], record: LogRecord,
                   attrs: dict[str, Any]) -> Normalized:
        found = self._recognise(tenant, resource, attrs, record)
        if found is None:
            return Normalized(None, "unrecognised", attrs)
        if found.time is not None:
            eventtime.stamp(record, found.time)
        if found.attributes is None:
            return Normalized(None, found.kind, attrs)
        flat = self._flat(resource, found, attrs, record)
        try:
            event = semconv.event_from_attributes(flat)
        except InvalidEvent:
            return Normalized(None, "invalid", attrs)
        if event.event_name not in SCORED_EVENT_NAMES:
            return Normalized(None, "unrecognised", attrs)
        kind = found.kind
        if kind == "semconv" and resource.get(semconv.SERVICE_NAME) == semconv.AGENT_SERVICE_NAME:
            kind = "agent"
        return Normalized(event, kind, attrs)

    def _recognise(self, tenant: str, resource: dict[str, Any], attrs: dict[str, Any],
                   record: LogRecord) -> Found | None:
        found = attributes.recognise(attrs)
        if found is not None:
            return found
        if any(isinstance(value, dict) for value in attrs.values()):
            # The Collector's json_parser operator puts a parsed JSON line into attributes as maps.
            found = _from_document(attrs)
            if found is not None:
                return found
        kind = record.body.WhichOneof("value")
        if kind == "kvlist_value":
            body = to_python(record.body)
            return _from_document(body) if isinstance(body, dict) else None
        if kind != "string_value":
            return None
        text = record.body.string_value
        if text[:16].lstrip().startswith("{"):
            return _from_json(text)
        if "msg=audit(" in text[:2048]:
            return self.assembler.add(tenant, str(resource.get(semconv.HOST_NAME) or ""), text)
        return None

    @staticmethod
    def _flat(resource: dict[str, Any], found: Found, attrs: dict[str, Any], record: LogRecord) -> dict[str, Any]:
        # A copy of the record's own attributes, so Normalized.attributes stays as the record has them.
        fields = found.attributes or {}
        flat = dict(attrs) if fields is attrs else {k: v for k, v in fields.items() if v is not None}
        for key in (semconv.HOST_NAME, semconv.CONTAINER_ID):
            if key in resource and key not in flat:
                flat[key] = resource[key]
        flat.setdefault(semconv.EVENT_NAME, record.event_name or attrs.get(semconv.EVENT_NAME) or EXEC)
        if found.time is not None:
            flat["ts"] = found.time.seconds
        else:
            flat["ts"] = (record.time_unix_nano or record.observed_time_unix_nano) / 1e9
        _bound(flat)
        return flat


def _from_json(text: str) -> Found | None:
    """A JSON object body: a source's document, or None. Deeper than Python's recursion limit (a body
    nested thousands of levels to make parsing raise) is `invalid`."""
    if len(text) > MAX_JSON_BODY:
        return None
    try:
        document = json.loads(text)
    except RecursionError:
        return Found("invalid")
    except ValueError:
        return None
    return _from_document(document) if isinstance(document, dict) else None


def _from_document(document: dict[str, Any]) -> Found | None:
    return falco.recognise(document) or tetragon.recognise(document) or attributes.recognise(flatten(document))


def _bound(flat: dict[str, Any]) -> None:
    """Hostile sizes stop here: a command line or argv beyond the bounds is cut and flagged; an id that
    is no id is dropped."""
    for key in _NUMERIC:
        if key in flat:
            flat[key] = identifier(flat[key])
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
