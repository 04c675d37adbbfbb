"""Fuzz targets of the OTLP receiver's decoders: protobuf and JSON requests, HTTP body framing and
decompression. Rows of (name, hypothesis strategy, check), registered in `bench/fuzz.py`'s table,
which runs them long (`bench/fuzz.py --target ...`) and short in CI (tests/test_fuzz.py).

Each check feeds one input to the code and asserts what must hold whatever the input: the only
refusals are the documented ones (InvalidRequest: 400; BadBody: 400; BodyTooLarge: 413), an accepted
request's records survive the ClickHouse row building (where 2^64-1 timestamps once raised), and a
decoded body is never larger than the limit.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import zlib
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cramjam
import lz4.frame
from backports import zstd
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otlp_receiver.component import LogBatch
from otlp_receiver.exporters.clickhouse.columns import batch_to_arrow
from otlp_receiver.receivers.otlp.body import (
    SUPPORTED_ENCODINGS,
    BadBody,
    BodyTooLarge,
    decompress,
    read_body,
)
from otlp_receiver.receivers.otlp.decode import InvalidRequest, decode_json, decode_protobuf

LIMIT = 64 << 10  # small, so bombs and limits are reached by small inputs

U64 = st.one_of(st.sampled_from([0, 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1]),
                st.integers(min_value=0, max_value=2**64 - 1))
I64 = st.one_of(st.sampled_from([-(2**63), -1, 0, 2**63 - 1]), st.integers(min_value=-(2**63), max_value=2**63 - 1))
TEXT = st.text(max_size=30)


def _any_value(depth: int = 0) -> Any:
    scalars = st.one_of(st.builds(lambda t: {"stringValue": t}, TEXT), st.builds(lambda i: {"intValue": str(i)}, I64),
                        st.builds(lambda f: {"doubleValue": f}, st.floats(allow_nan=False, allow_infinity=False)),
                        st.builds(lambda b: {"boolValue": b}, st.booleans()),
                        st.builds(lambda b: {"bytesValue": b.hex()}, st.binary(max_size=8)))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.builds(lambda values: {"arrayValue": {"values": values}}, st.lists(inner, max_size=3)),
        st.builds(lambda kv: {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in kv.items()]}},
                  st.dictionaries(TEXT, inner, max_size=3))), max_leaves=8)


RECORD = st.fixed_dictionaries({}, optional={
    "timeUnixNano": U64.map(str), "observedTimeUnixNano": U64.map(str),
    "severityNumber": st.integers(min_value=-5, max_value=40), "severityText": TEXT,
    "body": _any_value(), "attributes": st.lists(st.builds(lambda k, v: {"key": k, "value": v}, TEXT, _any_value()),
                                                  max_size=4),
    "traceId": st.binary(max_size=17).map(bytes.hex), "spanId": st.binary(max_size=9).map(bytes.hex),
    "flags": st.integers(min_value=0, max_value=2**32 - 1), "eventName": TEXT,
    "droppedAttributesCount": st.integers(min_value=0, max_value=2**32 - 1),
})
OTLP_JSON = st.builds(lambda resources: {"resourceLogs": resources}, st.lists(st.fixed_dictionaries({
    "resource": st.fixed_dictionaries({"attributes": st.lists(st.builds(
        lambda k, v: {"key": k, "value": v}, st.sampled_from(["service.name", "host.name", "x"]), _any_value()),
        max_size=3)}),
    "scopeLogs": st.lists(st.fixed_dictionaries({"scope": st.fixed_dictionaries({"name": TEXT}),
                                                 "logRecords": st.lists(RECORD, max_size=4)}), max_size=2),
}), max_size=2))
JSON_NOISE = st.recursive(st.one_of(st.none(), st.booleans(), I64, st.floats(), TEXT),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                          max_leaves=10)


def _protobuf_of(document: dict[str, Any]) -> bytes | None:
    try:
        return decode_json(json.dumps(document).encode()).payload
    except InvalidRequest:
        return None


def _mutated(data: bytes, cuts: list[int], flips: list[int]) -> bytes:
    mutable = bytearray(data)
    for position in flips:
        if mutable:
            mutable[position % len(mutable)] ^= 1 << (position % 8)
    for cut in cuts:
        mutable = mutable[: cut % (len(mutable) + 1)]
    return bytes(mutable)


PROTOBUF = st.one_of(
    st.builds(lambda d, cuts, flips: _mutated(_protobuf_of(d) or b"", cuts, flips), OTLP_JSON,
              st.lists(st.integers(0, 10_000), max_size=1), st.lists(st.integers(0, 100_000), max_size=3)),
    st.binary(max_size=200),
)
JSON_BODIES = st.one_of(OTLP_JSON.map(lambda d: json.dumps(d).encode()),
                        JSON_NOISE.map(lambda d: json.dumps(d).encode()),
                        st.builds(lambda n: b'{"resourceLogs":' + b"[" * n, st.integers(0, 200_000)),
                        st.binary(max_size=100))

COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress, "x-gzip": gzip.compress, "zlib": zlib.compress, "deflate": zlib.compress,
    "zstd": zstd.compress, "lz4": lz4.frame.compress,
    "snappy": lambda data: bytes(cramjam.snappy.compress_raw(data)),
    "x-snappy-framed": lambda data: bytes(cramjam.snappy.compress(data)),
}
BODIES = st.builds(
    lambda encoding, plain, repeat, extra, cuts, flips: (encoding, _mutated(
        COMPRESS[encoding](plain * repeat) + extra, cuts, flips)),
    st.sampled_from(SUPPORTED_ENCODINGS), st.binary(max_size=64), st.sampled_from([1, 1, 10, 5000]),
    st.sampled_from([b"", b"", b"\x1f\x8b\x08", b"junk"]), st.lists(st.integers(0, 10_000), max_size=1),
    st.lists(st.integers(0, 100_000), max_size=2))
CHUNK_SIZES = st.one_of(st.integers(0, 2 * LIMIT).map(lambda n: f"{n:x}"),
                        st.sampled_from(["-1", "0x10", "1_0", " 5", "+5", "fffffffffffffffff", "", "zz", "²"]))
CHUNKED = st.builds(lambda sizes, data, tail: "".join(f"{size}\r\n{data[:64]}\r\n" for size in sizes).encode()
                    + tail, st.lists(CHUNK_SIZES, max_size=5), TEXT, st.sampled_from([b"0\r\n\r\n", b"", b"0\r\n"]))


def check_protobuf_request(body: bytes) -> None:
    _check_decoded(decode_protobuf, body)


def check_json_request(body: bytes) -> None:
    _check_decoded(decode_json, body)


def _check_decoded(decode: Callable[[bytes], Any], body: bytes) -> None:
    try:
        decoded = decode(body)
    except InvalidRequest:
        return
    records = sum(len(s.log_records) for r in decoded.request.resource_logs for s in r.scope_logs)
    assert decoded.accepted == records
    spooled = ExportLogsServiceRequest.FromString(decoded.payload)  # what the pipeline parses from the spool
    table = batch_to_arrow(LogBatch(logs=spooled, batch_id="fuzz"))  # what the ClickHouse exporter builds
    assert table.num_rows == records


def check_body(sample: tuple[str, bytes]) -> None:
    encoding, data = sample
    try:
        decoded = decompress(encoding, data, LIMIT)
    except (BadBody, BodyTooLarge):
        return
    assert len(decoded) <= LIMIT


def check_chunked(stream: bytes) -> None:
    headers = Message()
    headers["Transfer-Encoding"] = "chunked"
    try:
        body = read_body(io.BytesIO(stream), headers, LIMIT)
    except (BadBody, BodyTooLarge):
        return
    assert len(body) <= LIMIT


# (name, inputs, check): rows for bench/fuzz.py's TARGETS.
TARGETS: tuple[tuple[str, Any, Callable[[Any], None]], ...] = (
    ("otlp protobuf request", PROTOBUF, check_protobuf_request),
    ("otlp json request", JSON_BODIES, check_json_request),
    ("http body decompression", BODIES, check_body),
    ("http chunked framing", CHUNKED, check_chunked),
)
