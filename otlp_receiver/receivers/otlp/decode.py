"""Turning request bytes into a validated `ExportLogsServiceRequest`, shared by gRPC and HTTP.

Validation is what the OTLP specification asks of a server: a message that does not parse is
refused whole (INVALID_ARGUMENT / 400), unless its only faults are in values (`repair.py` mends those,
JSON's deep values are cut here alike, and the response says so in `partial_success`); individual records
that are unusable (a trace id that is not 16 bytes, a span id that is not 8, a severity number outside the
enum) are dropped from the request and reported in `partial_success`, while the rest is accepted.

A request of more than MAX_RECORDS_PER_REQUEST records is refused whole too, counted before it is parsed:
a body of empty records (2 bytes each, and gzip makes 20 MiB of them 20 KiB) would otherwise cost 1.4 GB and
seconds to parse and minutes in the pipeline. Real senders send far fewer per request (the SDKs 512, the
Collector's batch processor 8,192 by default); records of a few hundred bytes reach the body limit first.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core.otlpwire import MAX_MESSAGES_PER_REQUEST, MAX_RECORDS_PER_REQUEST, count_parts, mend_lone_surrogates
from otlp_receiver.component import Decoded
from otlp_receiver.normalize.eventtime import FUTURE_SLACK_NANO
from otlp_receiver.receivers.otlp.repair import (
    CUT_TEXT,
    MAX_ATTRIBUTES,
    MAX_KEPT_PAST_CUT,
    MAX_VALUE_DEPTH,
    READ_PREFIXES,
    mend,
)

_MAX_SEVERITY = 24


class InvalidRequest(ValueError):
    """The whole request is unusable (INVALID_ARGUMENT / 400); `reason` labels the metric."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode_protobuf(body: bytes) -> Decoded:
    parts = count_parts(body)
    if parts is None:
        # A group (no OTLP message has one) or a field past its end, anywhere down to the values: uncountable,
        # and past the parser (which skips unknown groups) the ClickHouse exporter's reader would drop the record.
        raise InvalidRequest("malformed protobuf ExportLogsServiceRequest: a group field, or a field that runs past "
                             "the end of its message", "malformed_protobuf")
    records, messages, widest = parts
    _check_count(records)
    _check_size(messages, "messages")
    values = attributes_cut = 0
    if widest > MAX_ATTRIBUTES:  # cut before parsing: the parser's cost is per attribute
        body, values, attributes_cut = mend(body) or (body, 0, 0)  # count_parts read it: never None
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        mended = mend(body)  # invalid UTF-8 or a value nested too deep: mended, not the whole request refused
        if mended is None or not mended.values:
            raise InvalidRequest(f"malformed protobuf ExportLogsServiceRequest: {exc}", "malformed_protobuf") from exc
        body, values = mended.body, values + mended.values
        try:
            request.ParseFromString(body)
        except DecodeError as again:
            raise InvalidRequest(f"malformed protobuf ExportLogsServiceRequest: {again}",
                                 "malformed_protobuf") from again
    return _validated(request, body, values, attributes_cut=attributes_cut)


# What json_format raises for a value its field cannot hold: a double of 4,000 digits overflows a float.
_PARSE_ERRORS = (json_format.ParseError, ValueError, TypeError, AttributeError, OverflowError)


def decode_json(body: bytes) -> Decoded:
    """OTLP/JSON: camelCase (snake_case accepted), int64 as strings or numbers, hex trace/span ids,
    unknown fields ignored, as the specification requires."""
    # Before json.loads builds them: each message is an object, and arrays hold them (7 million empty ones cost
    # 2 CPU-s and 540 MiB to parse, from 20 KB of gzip).
    _check_size(body.count(b"{") + body.count(b"["), "JSON objects and arrays")
    document, mended = _json_document(body)
    holders = _json_holders(document)
    attributes_cut = sum(_cut_json_attributes(holder) for holder in holders)  # first: what follows is per attribute
    mended += _cut_deep_values(holders)
    _check_count(sum(len(_list(scope_logs, "logRecords", "log_records"))
                     for resource_logs in _list(document, "resourceLogs", "resource_logs")
                     for scope_logs in _list(resource_logs, "scopeLogs", "scope_logs")))
    request = ExportLogsServiceRequest()
    try:
        _hex_ids_to_base64(document)
        try:
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
        except _PARSE_ERRORS:
            # One record's bad field (`"flags": -1`) must not take the others with it: those that do not
            # parse alone are left out and reported, the rest parsed again.
            dropped = _drop_unparsable_records(document)
            if not dropped:
                raise
            request.Clear()
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
            return _validated(request, None, mended, dropped, attributes_cut)
    except RecursionError as exc:  # an AnyValue nested deeper than Python's stack
        raise InvalidRequest("OTLP/JSON value nested too deeply", "malformed_json") from exc
    except _PARSE_ERRORS as exc:
        raise InvalidRequest(f"not an OTLP/JSON ExportLogsServiceRequest: {_short(exc)}", "malformed_json") from exc
    return _validated(request, None, mended, attributes_cut=attributes_cut)


def _json_document(body: bytes) -> tuple[dict[str, Any], int]:
    """The JSON object, and 1 when invalid UTF-8 in it had to be replaced with U+FFFD to read it."""
    mended = 0
    try:
        try:
            document = json.loads(body)
        except UnicodeDecodeError:
            document, mended = json.loads(body.decode("utf-8", errors="replace")), 1
    except ValueError as exc:  # not JSON, or an integer longer than Python converts (4,300 digits)
        raise InvalidRequest(f"malformed JSON: {_short(exc)}", "malformed_json") from exc
    except RecursionError as exc:
        raise InvalidRequest("JSON nested too deeply", "malformed_json") from exc
    if not isinstance(document, dict):
        raise InvalidRequest("an OTLP/JSON request is a JSON object", "malformed_json")
    if _SURROGATE_ESCAPE.search(body):
        mended += _mend_lone_surrogates(document)
    return document, mended


# `\ud800` written in a JSON string: valid JSON, but alone (not half of a pair) no UTF-8 text, so protobuf
# refused the whole request where the same fault in bytes (invalid UTF-8) is mended.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _field_names(descriptor: Any, found: set[str]) -> set[str]:
    """The JSON names (camelCase and snake_case) of every field the request's messages have, nested ones too."""
    for one in descriptor.fields:
        if one.name not in found or one.json_name not in found:
            found |= {one.name, one.json_name}
            if one.message_type is not None:
                _field_names(one.message_type, found)
    return found


# What the parser reads of a document: fields it does not know it skips, so their values need no mending (a
# million empty lists in one cost seconds walked in Python).
_FIELD_NAMES = frozenset(_field_names(ExportLogsServiceRequest.DESCRIPTOR, set()))


def _mend_lone_surrogates(document: dict[str, Any]) -> int:
    """Replaces lone surrogates in the strings the parser reads with U+FFFD; how many strings changed."""
    mended = 0
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        items = [(k, v) for k, v in node.items() if k in _FIELD_NAMES] if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, str) and (text := mend_lone_surrogates(value)) != value:
                node[key] = text
                mended += 1
            elif isinstance(value, dict | list):
                stack.append(value)
    return mended


def _cut_deep_values(holders: list[dict[str, Any]]) -> int:
    """Cuts every AnyValue of the holders (`_json_holders`) nested deeper than MAX_VALUE_DEPTH levels, as repair.py
    does to protobuf (the JSON parser would refuse the record): its record is accepted, scored and stored, the
    value replaced by CUT_TEXT. How many values were cut."""
    cut = 0
    for holder in holders:
        for pair in holder.get("attributes") or ():
            if isinstance(pair, dict):
                cut += _cut_value(pair, "value", 1)
        cut += _cut_value(holder, "body", 1)
    return cut


def _json_holders(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of an OTLP/JSON request that hold attributes: resources, scopes and log records."""
    holders = []
    for resource_logs in _list(document, "resourceLogs", "resource_logs"):
        if isinstance(resource_logs, dict):  # null, 1: the parser's to refuse
            holders.append(resource_logs.get("resource"))
        for scope_logs in _list(resource_logs, "scopeLogs", "scope_logs"):
            if isinstance(scope_logs, dict):
                holders.append(scope_logs.get("scope"))
            holders.extend(_list(scope_logs, "logRecords", "log_records"))
    return [holder for holder in holders if isinstance(holder, dict)]


def _cut_value(holder: dict[str, Any] | list[Any], key: str | int, depth: int) -> int:
    """Cuts holder[key], an AnyValue at `depth` (the attribute's own value is 1), and what it nests, past
    MAX_VALUE_DEPTH; how many values were cut."""
    value = holder[key] if isinstance(holder, list) else holder.get(key)
    if not isinstance(value, dict):
        return 0
    if depth > MAX_VALUE_DEPTH:
        holder[key] = {"stringValue": CUT_TEXT}
        return 1
    cut = 0
    kvlist = value.get("kvlistValue", value.get("kvlist_value"))
    if isinstance(kvlist, dict) and isinstance(kvlist.get("values"), list):
        cut += sum(_cut_value(pair, "value", depth + 1) for pair in kvlist["values"] if isinstance(pair, dict))
    array = value.get("arrayValue", value.get("array_value"))
    if isinstance(array, dict) and isinstance(array.get("values"), list):
        cut += sum(_cut_value(array["values"], index, depth + 1) for index in range(len(array["values"])))
    return cut


def _drop_unparsable_records(document: dict[str, Any]) -> int:
    """Removes the log records that do not parse on their own; how many."""
    dropped = 0
    for resource_logs in _list(document, "resourceLogs", "resource_logs"):
        for scope_logs in _list(resource_logs, "scopeLogs", "scope_logs"):
            records = _list(scope_logs, "logRecords", "log_records")
            kept = [record for record in records if _parses_alone(record)]
            dropped += len(records) - len(kept)
            records[:] = kept
    return dropped


def _parses_alone(record: Any) -> bool:
    try:
        json_format.ParseDict(record, LogRecord(), ignore_unknown_fields=True)
    except (*_PARSE_ERRORS, RecursionError):
        return False
    return True


def _check_count(records: int) -> None:
    if records > MAX_RECORDS_PER_REQUEST:
        raise InvalidRequest(f"{records:,} log records in one request, more than the {MAX_RECORDS_PER_REQUEST:,} "
                             "procsight takes: send smaller batches (the batch processor's send_batch_max_size)",
                             "too_many_records")


def _check_size(messages: int, what: str) -> None:
    if messages > MAX_MESSAGES_PER_REQUEST:
        raise InvalidRequest(f"{messages:,} {what} in one request, more than the {MAX_MESSAGES_PER_REQUEST:,} "
                             "procsight parses (40 per record it takes): send fewer attributes or values per "
                             "request", "too_many_records")


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping expects base64 for bytes."""
    for resource_logs in _list(document, "resourceLogs", "resource_logs"):
        for scope_logs in _list(resource_logs, "scopeLogs", "scope_logs"):
            for record in _list(scope_logs, "logRecords", "log_records"):
                if not isinstance(record, dict):
                    continue
                for key in ("traceId", "trace_id", "spanId", "span_id"):
                    value = record.get(key)
                    if isinstance(value, str) and value:
                        with contextlib.suppress(ValueError):  # not hex: the record alone fails to parse
                            record[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _list(node: Any, camel: str, snake: str) -> list[Any]:
    if not isinstance(node, dict):
        return []
    if camel in node and snake in node:  # the parser reads both; counted as one, the record cap would not hold
        raise InvalidRequest(f"both {camel} and {snake} in one object: send one", "malformed_json")
    value = node.get(camel, node.get(snake))
    return value if isinstance(value, list) else []


def _validated(request: ExportLogsServiceRequest, body: bytes | None, mended: int = 0, unparsable: int = 0,
               attributes_cut: int = 0) -> Decoded:
    accepted, rejected = 0, unparsable
    problems: set[str] = {"log records that are not OTLP/JSON (a field of the wrong type)"} if unparsable else set()
    now = time.time_ns()
    stamped = False
    future, cut = 0, attributes_cut
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            bad = []
            for index, record in enumerate(scope_logs.log_records):
                if _problem(record, problems):
                    bad.append(index)
                else:
                    if not record.observed_time_unix_nano:
                        # OTLP's ObservedTimestamp is when the collection system saw the record: now.
                        record.observed_time_unix_nano = now
                        stamped = True
                    if record.time_unix_nano > now + FUTURE_SLACK_NANO:
                        record.time_unix_nano = now  # the triage views select by it: never out of their reach
                        future += 1
            for index in reversed(bad):
                del scope_logs.log_records[index]
            rejected += len(bad)
            accepted += len(scope_logs.log_records)
    if rejected or stamped or future or body is None:
        body = request.SerializeToString()
    if cut:
        problems.add(f"attributes past {MAX_ATTRIBUTES} in a record, resource or scope: {cut} cut (those named "
                     "process.*, host.*, container.* and the like kept)")
    if mended:
        problems.add(f"values mended: {mended} (invalid UTF-8 replaced with U+FFFD, or nesting deeper than "
                     f"{MAX_VALUE_DEPTH} levels cut); their records were accepted")
    if future:
        problems.add(f"event times more than {FUTURE_SLACK_NANO // 60 // 10**9} minutes ahead of the receiver's "
                     f"clock: {future}, set to the time of arrival")
    mended += future + bool(cut)
    message = "; ".join(sorted(problems)) if rejected or mended else ""
    return Decoded(request, body, accepted, rejected, message, mended)


def _cut_json_attributes(holder: dict[str, Any]) -> int:
    """repair.py's cut of attributes for OTLP/JSON, before parsing (the parser's cost is per attribute); how many were
    cut."""
    attributes = holder.get("attributes")
    if not isinstance(attributes, list) or len(attributes) <= MAX_ATTRIBUTES:
        return 0
    kept = [pair for pair in attributes[MAX_ATTRIBUTES:] if isinstance(pair, dict)
            and isinstance(pair.get("key"), str) and pair["key"].startswith(READ_PREFIXES)][:MAX_KEPT_PAST_CUT]
    holder["attributes"] = attributes[:MAX_ATTRIBUTES - len(kept)] + kept
    return len(attributes) - len(holder["attributes"])


def _problem(record: LogRecord, problems: set[str]) -> bool:
    if len(record.trace_id) not in (0, 16):
        problems.add("trace_id must be 16 bytes")
        return True
    if len(record.span_id) not in (0, 8):
        problems.add("span_id must be 8 bytes")
        return True
    if not 0 <= record.severity_number <= _MAX_SEVERITY:
        problems.add("severity_number outside 0..24")
        return True
    return False


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "..."
