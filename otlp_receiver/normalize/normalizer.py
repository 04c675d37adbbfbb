"""One OTLP log record (+ its resource) -> a `ProcessEvent`, whatever agent produced it.

Order of recognition: process attributes on the record (our agent, semantic conventions, ECS), then a
JSON object (Falco, Tetragon, nested ECS) as map attributes (the Collector's `json_parser`) or as the
body (a string or a structured kvlist), then auditd lines in a string body. What a source recognises
but is not an event to score (a process end, an alert, a Kubernetes audit rule, an audit login) passes
through as `<source>_other`; everything else as `unrecognised`; both unscored and counted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core import semconv
from core.event import CPU_SAMPLE, EXEC, SCORED_EVENT_NAMES, InvalidEvent, ProcessEvent
from otlp_receiver.normalize import attributes, eventtime, falco, tetragon
from otlp_receiver.normalize.auditd import AuditAssembler
from otlp_receiver.normalize.fields import Found, identifier
from otlp_receiver.normalize.repeats import record_key
from otlp_receiver.normalize.values import attributes_dict, flatten, to_python

log = logging.getLogger(__name__)

MAX_JSON_BODY = 1 << 20
KINDS = ("agent", "semconv", "ecs", "falco", "tetragon", "auditd", "ecs_other", "falco_other", "tetragon_other",
         "auditd_partial", "auditd_other", "auditd_evicted", "unrecognised", "invalid", "not_scored")
# Numbers of the event that are ids or ports: anything else (a float, 2^70, "12abc") is dropped, so
# what is written back into records always fits OTLP's int64.
_NUMERIC = (semconv.PROCESS_PID, semconv.PROCESS_PARENT_PID, semconv.PROCESS_USER_ID, semconv.PROCESS_REAL_USER_ID,
            semconv.SOURCE_PORT, semconv.DESTINATION_PORT)
# Distinct records whose normalisation is kept for their repeats (repeats.py); past it the cache starts
# again. About 2 KB each: a key, an event's fields and the attributes.
MAX_REPEATS = 8192
MAX_REPEAT_BYTES = 16384  # a record this large is normalised in full each time (agents' records are a few hundred)
_EVENT_FIELDS = tuple(item.name for item in dataclasses.fields(ProcessEvent))


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
        self._repeats: dict[Any, _Repeat] = {}  # record key (repeats.py) -> what the record normalised to
        self.repeats = 0  # records normalised from the cache of repeats

    def normalize(self, tenant: str, resource: dict[str, Any], record: LogRecord) -> Normalized:
        """Never raises: a record that would is `invalid` (and a bug, logged the first time per type)."""
        key = self._key(resource, record)
        if key is not None:
            repeat = self._repeats.get(key[0])
            if repeat is not None:
                self.repeats += 1
                return repeat.again(record, key[1], key[2])
        attrs = attributes_dict(record.attributes)
        try:
            normalized, repeatable = self._normalize(tenant, resource, record, attrs)
        except Exception as error:  # one bad record must never take its batch with it
            name = type(error).__name__
            if not self.failures[name]:
                log.exception("normalising a record raised %s; counted as invalid", name)
            self.failures[name] += 1
            return Normalized(None, "invalid", attrs)
        if repeatable and key is not None:
            if len(self._repeats) >= MAX_REPEATS:
                self._repeats.clear()
            self._repeats[key[0]] = _Repeat(normalized)
        return normalized

    @staticmethod
    def _key(resource: dict[str, Any], record: LogRecord) -> tuple[Any, int | None, int | None] | None:
        """The record's key for the cache of repeats, with what of its resource the normalisation reads. A large
        record has none: its key is its bytes, and 8,192 keys of 15 MB values held gigabytes."""
        data = record.SerializeToString()
        if len(data) > MAX_REPEAT_BYTES:
            return None
        keyed = record_key(data)
        if keyed is None:
            return None
        seen_from = (resource.get(semconv.HOST_NAME), resource.get(semconv.CONTAINER_ID),
                     resource.get(semconv.SERVICE_NAME) == semconv.AGENT_SERVICE_NAME)
        try:
            hash(seen_from)
        except TypeError:  # a list or a map as the host name: normalised in full every time
            return None
        return (keyed[0], seen_from), keyed[1], keyed[2]

    def take_counts(self) -> dict[str, int]:
        """Counts that belong to no one record (audit events evicted while waiting), since the last call."""
        evicted = self.assembler.take_evicted()
        return {"auditd_evicted": evicted} if evicted else {}

    def _normalize(self, tenant: str, resource: dict[str, Any], record: LogRecord,
                   attrs: dict[str, Any]) -> tuple[Normalized, bool]:
        """The record normalised, and whether every repeat of it normalises the same: true for the semantic
        conventions' shape, read from the attributes, the event name and the resource only (a repeat's times
        and ids are put in by `_Repeat.again`)."""
        found = attributes.recognise(attrs)
        repeatable = found is not None and found.kind == "semconv"
        if found is None:
            found = self._recognise(tenant, resource, attrs, record)
        if found is None:
            return Normalized(None, "unrecognised", attrs), False
        if found.time is not None:
            eventtime.stamp(record, found.time)
            repeatable = False
        if found.attributes is None:
            return Normalized(None, found.kind, attrs), repeatable
        flat = self._flat(resource, found, attrs, record)
        try:
            event = semconv.event_from_attributes(flat)
        except InvalidEvent:
            return Normalized(None, "invalid", attrs), repeatable
        kind = found.kind
        if kind == "semconv" and resource.get(semconv.SERVICE_NAME) == semconv.AGENT_SERVICE_NAME:
            kind = "agent"
        if event.event_name not in SCORED_EVENT_NAMES:
            # The agent's CPU samples follow an exec already scored; any other process record under an event
            # procsight does not score says so (`EXIT` on a reverse shell must not pass as nothing at all).
            routine = kind == "agent" and event.event_name == CPU_SAMPLE
            return Normalized(None, "unrecognised" if routine else "not_scored", attrs), repeatable
        return Normalized(event, kind, attrs), repeatable

    def _recognise(self, tenant: str, resource: dict[str, Any], attrs: dict[str, Any],
                   record: LogRecord) -> Found | None:
        """What the record holds when its attributes are not process attributes themselves."""
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
        _drop_bad_ids(flat)
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


def _drop_bad_ids(flat: dict[str, Any]) -> None:
    """An id that is no id is dropped. (Hostile sizes of a command line or argv are cut and flagged where
    every event is read from attributes, core/semconv.py.)"""
    for key in _NUMERIC:
        if key in flat:
            flat[key] = identifier(flat[key])


class _Repeat:
    """What a record normalised to, made again for a repeat of it: a new event (the engine fills in its
    ancestry) with the repeat's ids and time, and the repeat's own attributes."""

    __slots__ = ("attributes", "fields", "kind")

    def __init__(self, normalized: Normalized) -> None:
        self.kind = normalized.kind
        self.attributes = normalized.attributes or {}
        event = normalized.event
        self.fields = None if event is None else tuple(getattr(event, name) for name in _EVENT_FIELDS)

    def again(self, record: LogRecord, pid: int | None, parent_pid: int | None) -> Normalized:
        attrs = dict(self.attributes)
        if pid is not None:
            attrs[semconv.PROCESS_PID] = pid
        if parent_pid is not None:
            attrs[semconv.PROCESS_PARENT_PID] = parent_pid
        if self.fields is None:
            return Normalized(None, self.kind, attrs)
        event = ProcessEvent(*self.fields)
        # As _flat and _drop_bad_ids made them: the record's time, ids that are ids.
        event.timestamp = (record.time_unix_nano or record.observed_time_unix_nano) / 1e9
        event.pid = None if pid is None else identifier(pid)
        event.parent_pid = None if parent_pid is None else identifier(parent_pid)
        return Normalized(event, self.kind, attrs)
