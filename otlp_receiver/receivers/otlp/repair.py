"""Mending a protobuf logs request whose only faults are in its values, so one bad record does not take the
others with it: invalid UTF-8 in a string field becomes U+FFFD, and an AnyValue nested deeper than
MAX_VALUE_DEPTH levels (the parser stops at 100 messages) becomes a string saying it was cut. The same walk
cuts a resource's, scope's or record's attributes past MAX_ATTRIBUTES, before the parser pays for each.

The OTLP specification lets a server refuse such a request whole, but a Collector in front passes invalid
UTF-8 through (open-telemetry/opentelemetry-collector#11449), and a refused request is lost to its sender:
opentelemetry-proto#845 recommends the replacement done here. Only a request that failed to parse is walked,
in C (`core/_otlpwire.c`'s `mend`: a million attributes and one bad byte cost 4 CPU-seconds walked in Python);
the walk knows which fields of the logs request are strings and which are messages, and copies every other
field as it came.
"""

from __future__ import annotations

from typing import NamedTuple

from core.otlpwire import field, mend_values, text

MAX_VALUE_DEPTH = 24  # AnyValue levels kept (a kvlist level is 3 messages; the parser allows 100)
CUT_TEXT = f"[value nested deeper than {MAX_VALUE_DEPTH} levels: cut by procsight]"
_CUT = field(1, text(CUT_TEXT))  # an AnyValue whose string_value is CUT_TEXT

# Attributes kept of one record, resource or scope (OpenTelemetry SDKs keep 128 by default). Past this, every
# stage after decoding pays per attribute: a 2 KB gzip request of a million empty attributes cost seconds of CPU
# and could stall the scoring process. The excess is cut, but for the attributes scoring and the triage read.
MAX_ATTRIBUTES = 1024
MAX_KEPT_PAST_CUT = 256
READ_PREFIXES = ("process.", "proc.", "host.", "container.", "user.", "source.", "destination.", "network.",
                 "event", "evt.", "k8s.", "service.", "procsight.", "anomaly_", "auditd.", "syscall")
_READ_PREFIX_BYTES = tuple(prefix.encode() for prefix in READ_PREFIXES)


class Mended(NamedTuple):
    body: bytes
    values: int  # values changed: invalid UTF-8 replaced, or nesting cut
    attributes_cut: int


def mend(body: bytes) -> Mended | None:
    """The request mended, and with attributes past MAX_ATTRIBUTES cut (keeping up to MAX_KEPT_PAST_CUT of those
    named by READ_PREFIXES); None when the bytes are not protobuf at all."""
    mended = mend_values(body, MAX_VALUE_DEPTH, _CUT, MAX_ATTRIBUTES, MAX_KEPT_PAST_CUT, _READ_PREFIX_BYTES)
    return None if mended is None else Mended(*mended)
