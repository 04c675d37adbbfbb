"""Unscored is never the failure mode: when scoring a batch fails (or, in the child process, runs past
its time bound), the batch is scored again record by record, so one hostile record cannot hide the
others; a record that cannot be scored alone gets a verdict that says so (`mark_unscored`) and is
counted, instead of passing with no verdict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from otlp_receiver.processors.anomaly.enrich import mark_unscored
from otlp_receiver.processors.anomaly.scorer import Outcome

# One record's result when isolating: its scored single-record request and outcome, or why it was not scored.
Result = tuple[ExportLogsServiceRequest, Outcome] | str


def single_records(logs: ExportLogsServiceRequest) -> Iterator[ExportLogsServiceRequest]:
    """Each record alone in a request with its resource and scope, in record order."""
    for resource_logs in logs.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                single = ExportLogsServiceRequest()
                resource_part = single.resource_logs.add(resource=resource_logs.resource,
                                                         schema_url=resource_logs.schema_url)
                resource_part.scope_logs.add(scope=scope_logs.scope, schema_url=scope_logs.schema_url,
                                             log_records=[record])
                yield single


def merge(logs: ExportLogsServiceRequest, results: list[Result]) -> Outcome:
    """Writes each record's result into `logs` (in place) and sums the outcomes; records without a
    result are marked unscored with the reason given."""
    kinds: Counter[str] = Counter()
    severities: Counter[str] = Counter()
    unscored: Counter[str] = Counter()
    rows: list[np.ndarray | None] = []
    overflow = forged = 0
    for record, result in zip(_records(logs), results, strict=True):
        if isinstance(result, str):
            mark_unscored(record, result)
            unscored[result] += 1
            rows.append(None)
            continue
        scored, outcome = result
        record.CopyFrom(scored.resource_logs[0].scope_logs[0].log_records[0])
        kinds.update(outcome.kinds)
        severities.update(outcome.severities)
        overflow += outcome.overflow_events
        forged += outcome.forged
        rows.append(None if outcome.embeddings is None else outcome.embeddings[0])
    width = next((row.shape[0] for row in rows if row is not None), 0)
    embeddings = None
    if width:
        embeddings = np.zeros((len(rows), width), dtype=np.float32)
        for index, row in enumerate(rows):
            if row is not None:
                embeddings[index] = row
    return Outcome(embeddings, dict(kinds), dict(severities), forged=forged, unscored=dict(unscored),
                   overflow_events=overflow)


def unscored_outcome(logs: ExportLogsServiceRequest, why: str) -> Outcome:
    """Every record of the batch marked unscored (scoring is unavailable)."""
    return merge(logs, [why] * sum(1 for _ in _records(logs)))


def _records(logs: ExportLogsServiceRequest) -> Iterator[LogRecord]:
    for resource_logs in logs.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            yield from scope_logs.log_records
