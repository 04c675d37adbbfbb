"""The verdict written into a record: `anomaly_*` attributes (with the chain's incident and the ATT&CK
techniques), `process.ancestors`, procsight's process attributes for records of another shape, and a
severity raised for warn and alert (never lowered).

docs/records.md lists what is added; the keys are `core/semconv.py`'s.
"""

from __future__ import annotations

import functools
import struct
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core import semconv
from core.event import ProcessEvent
from core.otlpwire import (
    TAG_ARRAY,
    TAG_ATTRIBUTE,
    TAG_STRING,
    TAG_VALUE,
    array_item,
    field,
    length_delimited,
    log_attribute,
    text,
    varint,
)
from scoring.engine import Verdict

# severity_number / severity_text a verdict raises a record to (never lowers it).
RAISED_SEVERITY = {"warn": (13, "WARN"), "alert": (17, "ERROR")}


def enrich(record: LogRecord, event: ProcessEvent, verdict: Verdict, present: dict[str, Any]) -> None:
    """Appends the verdict as serialized LogRecord fields merged in one C call: building KeyValue
    messages attribute by attribute from Python costs several times more per record."""
    strip_verdict(record, present)
    parts = [
        _SCORE_PREFIX + _DOUBLE.pack(round(float(verdict.score), 6)),
        _static_attribute(semconv.ANOMALY_SEVERITY, verdict.severity),
        _reasons_attribute(verdict.reasons),
        _static_attribute(semconv.ANOMALY_WORKLOAD, verdict.workload),
        _static_attribute(semconv.ANOMALY_NEAREST, verdict.nearest),
        _static_attribute(semconv.ANOMALY_MODEL, verdict.model),
        _techniques_attribute(verdict.techniques),
    ]
    if verdict.incident:
        parts.append(_static_attribute(semconv.ANOMALY_INCIDENT, verdict.incident))
        parts.append(_INCIDENT_SCORE_PREFIX + _DOUBLE.pack(round(float(verdict.incident_score), 6)))
    if event.ancestors and semconv.PROCESS_ANCESTORS not in present:
        parts.append(_ancestors_attribute(event.ancestors))
    if semconv.PROCESS_EXECUTABLE_NAME not in present:  # another shape than ours (ECS has process.command_line)
        parts.append(_normalised_attributes(event, present))
    raised = RAISED_SEVERITY.get(verdict.severity)
    if raised and record.severity_number < raised[0]:
        parts.append(_SEVERITY_FIELDS[verdict.severity])
    record.MergeFromString(b"".join(parts))


def strip_verdict(record: LogRecord, present: dict[str, Any]) -> bool:
    """Removes verdict attributes a record arrived with (a replay of our own, or a sender forging one:
    only procsight writes them). True when there were any."""
    if semconv.VERDICT_KEYS.isdisjoint(present):
        return False
    _drop_verdict(record)
    return True


UNSCORED = "unscored"  # the anomaly_severity of a record that could not be scored


def mark_unscored(record: LogRecord, why: str) -> None:
    """The verdict of a record that could not be scored (it failed or ran out of time alone): severity
    `unscored` and the reason, never a silent score of 0. Any verdict the record carried is dropped."""
    _drop_verdict(record)
    record.MergeFromString(_static_attribute(semconv.ANOMALY_SEVERITY, UNSCORED)
                           + log_attribute(semconv.ANOMALY_REASONS, (f"not scored: {why}",)))


def strip_verdict_from(attributes: Any) -> bool:
    """Removes verdict keys from a resource's or scope's attributes (a verdict is a record's, and procsight's
    to write: a resource claiming `anomaly_severity: alert` would show in the stored ResourceAttributes).
    True when there were any."""
    if not any(kv.key in semconv.VERDICT_KEYS for kv in attributes):
        return False
    keep = [kv for kv in attributes if kv.key not in semconv.VERDICT_KEYS]
    del attributes[:]
    attributes.extend(keep)
    return True


def _drop_verdict(record: LogRecord) -> None:
    strip_verdict_from(record.attributes)


def _normalised_attributes(event: ProcessEvent, present: dict[str, Any]) -> bytes:
    """procsight's attributes (core/semconv.py) for a record of another shape (Falco, Tetragon, auditd,
    ECS), so every backend and query sees one vocabulary; the record's own attributes stay as they came."""
    attributes = semconv.event_to_attributes(event)
    return b"".join(log_attribute(key, value) for key, value in attributes.items() if key not in present)


@functools.lru_cache(maxsize=16384)  # severities, workloads, models and known-normal command lines repeat
def _static_attribute(key: str, value: str) -> bytes:
    return log_attribute(key, value)


def _reasons_attribute(reasons: list[str]) -> bytes:
    """As log_attribute(ANOMALY_REASONS, reasons), from the encoding of each reason: a reason repeats with its
    pattern, yet the list rarely does (reasons carry counts, "seen 5 times")."""
    array = length_delimited(TAG_ARRAY, b"".join(map(_reason_item, reasons)))
    return length_delimited(TAG_ATTRIBUTE, _REASONS_KEY + length_delimited(TAG_VALUE, array))


_reason_item = functools.lru_cache(maxsize=16384)(array_item)


@functools.lru_cache(maxsize=4096)
def _techniques_attribute(techniques: tuple[str, ...]) -> bytes:
    return log_attribute(semconv.ANOMALY_TECHNIQUES, techniques)


@functools.lru_cache(maxsize=4096)
def _ancestors_attribute(ancestors: tuple[str, ...]) -> bytes:
    return log_attribute(semconv.PROCESS_ANCESTORS, ancestors)


# The score attributes have a fixed length: their encoding up to the 8 bytes of the double.
_DOUBLE = struct.Struct("<d")
_SCORE_PREFIX = log_attribute(semconv.ANOMALY_SCORE, 0.0)[:-8]
_INCIDENT_SCORE_PREFIX = log_attribute(semconv.ANOMALY_INCIDENT_SCORE, 0.0)[:-8]
_REASONS_KEY = length_delimited(TAG_STRING, text(semconv.ANOMALY_REASONS))

# severity_number (field 2, varint) and severity_text (field 3) raised for warn and alert
_SEVERITY_FIELDS = {severity: varint(2 << 3) + varint(number) + field(3, name.encode("ascii"))
                    for severity, (number, name) in RAISED_SEVERITY.items()}
