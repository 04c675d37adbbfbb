"""What flows through a pipeline and the shapes of the components that handle it.

Like the Collector's pdata, a batch is the OTLP protobuf itself (`ExportLogsServiceRequest`), so a
record the receiver accepted leaves through an OTLP exporter byte-for-byte as it came, plus the
attributes the `anomaly` processor added. Components are built by factories from their typed config
(see `otlp_receiver/pipeline.py`), the way the Collector builds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

DEFAULT_TENANT = "default"


@dataclass
class LogBatch:
    """One unit of work in a pipeline.

    `batch_id` is stable across a crash and replay (it is the ingest spool's sequence number), so
    `record_id(i)` gives every record a key that exporters use to write exactly once.
    """

    logs: ExportLogsServiceRequest
    tenant: str = DEFAULT_TENANT
    batch_id: str = ""
    # Set by the anomaly processor: float32 (record_count, dim) feature vectors in record order, zero rows
    # for records it did not score. Exporters may store them (ClickHouse keeps them for similarity search).
    embeddings: Any = None

    def records(self) -> Iterator[tuple[Resource, InstrumentationScope, LogRecord]]:
        """Every record with its resource and scope, in the order that defines record ordinals."""
        for resource_logs in self.logs.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    yield resource_logs.resource, scope_logs.scope, record

    def record_count(self) -> int:
        return sum(len(s.log_records) for r in self.logs.resource_logs for s in r.scope_logs)

    def record_id(self, ordinal: int) -> str:
        return f"{self.batch_id}:{ordinal}"


@dataclass
class CreateSettings:
    """What a factory gets besides the component's own config."""

    component_id: str  # as written in the YAML, e.g. "clickhouse" or "clickhouse/archive"
    data_dir: Path  # where the component may keep files (spools, queues); created by the pipeline
    telemetry: Any  # otlp_receiver.telemetry.Telemetry: counters, gauges, histograms for /metrics


class RetryableError(Exception):
    """The destination is unavailable for now (network, 5xx, UNAVAILABLE): try the batch again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """The destination refused the batch for good (4xx, INVALID_ARGUMENT): retrying cannot help."""


class Processor(Protocol):
    """Transforms a batch in place or returns a new one; returning None drops nothing, it means 'same'."""

    name: str

    def start(self) -> None: ...

    def process(self, batch: LogBatch) -> LogBatch: ...

    def shutdown(self) -> None: ...


class Exporter(Protocol):
    """Delivers a batch somewhere. `export` is synchronous and raises RetryableError or PermanentError;
    queueing and retries (the Collector's sending_queue / retry_on_failure) wrap it, not live in it."""

    name: str

    def start(self) -> None: ...

    def export(self, batch: LogBatch) -> None: ...

    def shutdown(self) -> None: ...


BatchDone = Callable[[LogBatch, bool], None]
"""Called once per batch by a queued exporter: (batch, delivered). delivered=False means dropped for good."""


class Backpressure(Exception):
    """The pipeline cannot take a request now (spool full, memory limit, shutting down); the client
    should retry after `retry_after` seconds. `unavailable` selects UNAVAILABLE/503 over
    RESOURCE_EXHAUSTED/429. `reason` labels the rejection metric."""

    def __init__(self, message: str, retry_after: float, reason: str, unavailable: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason
        self.unavailable = unavailable


class Unauthenticated(Exception):
    """A request without valid credentials (gRPC UNAUTHENTICATED, HTTP 401)."""
