"""What flows through a pipeline, the shapes of the components that handle it, and the capabilities the
service discovers in them.

Like the Collector's pdata, a batch is the OTLP protobuf itself (`ExportLogsServiceRequest`, or its wire
bytes until a component reads it), so a record the receiver accepted leaves through an OTLP exporter
byte-for-byte as it came, plus the attributes the `anomaly` processor added. Components are built by
factories from their typed config (`otlp_receiver/registry.py` names the factories,
`otlp_receiver/service.py` builds and wires them), the way the Collector builds them. The service never
asks for a component by type name: it asks whether a component has a capability (`Batcher`,
`AdmissionController`, `RouteProvider`, `Authenticator`, `BaselineKeeper`, `BaselineClient`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from core.confmap import ConfigError
from core.otlpwire import count_log_records
from otlp_receiver.spool import SpoolEntry
from otlp_receiver.telemetry import Telemetry

DEFAULT_TENANT = "default"

ClientMetadata = dict[str, list[str]]
"""A request's headers (HTTP) or metadata (gRPC), names in lower case: what `include_metadata` carries
into the pipeline, as the Collector's client.Info.Metadata."""


# -- data ----------------------------------------------------------------------------------------------


class LogBatch:
    """One unit of work in a pipeline.

    `batch_id` is stable across a crash and replay (it is the ingest spool's sequence number), so
    `record_id(i)` gives every record a key that exporters use to write exactly once.

    A batch holds its records as a parsed `ExportLogsServiceRequest` (`logs`) or as its wire bytes (`wire=`:
    the spooled requests, the scoring process's reply), parsed the first time a component reads `logs`.
    Components that only pass records on (to the scoring process, to the ClickHouse encoder, to an OTLP
    exporter) read `serialized()` and `record_count()`, so on that path no record becomes a Python object
    in this process. Once `logs` is read it is the batch's records, changes included.
    """

    __slots__ = ("_logs", "_wire", "batch_id", "embeddings", "first_ordinal", "metadata", "record_id_prefix", "tenant")

    def __init__(self, logs: ExportLogsServiceRequest | None = None, tenant: str = DEFAULT_TENANT,
                 batch_id: str = "", metadata: ClientMetadata | None = None, embeddings: np.ndarray | None = None,
                 record_id_prefix: str = "", first_ordinal: int = 0, *, wire: bytes | None = None) -> None:
        if (logs is None) == (wire is None):
            raise TypeError("a LogBatch holds either `logs` or its `wire` bytes")
        self._logs = logs
        self._wire = wire
        self.tenant = tenant
        self.batch_id = batch_id
        # The client metadata the batch was formed by (the batch processor's metadata_keys), name -> values.
        self.metadata: ClientMetadata = {} if metadata is None else metadata
        # Set by the anomaly processor: float32 (record_count, dim) feature vectors in record order, zero rows
        # for records it did not score. Exporters may store them (ClickHouse keeps them for similarity search).
        self.embeddings = embeddings
        # A part split off a batch (`part`) keeps its records' ids: they count from `first_ordinal` under the
        # id of the batch it came from.
        self.record_id_prefix = record_id_prefix
        self.first_ordinal = first_ordinal

    def __repr__(self) -> str:
        return f"LogBatch(batch_id={self.batch_id!r}, tenant={self.tenant!r}, records={self.record_count()})"

    # Exactly one of `_logs` and `_wire` is set: the bytes until `logs` is read, the parsed request after.
    @property
    def logs(self) -> ExportLogsServiceRequest:
        if self._wire is not None:
            self._logs = ExportLogsServiceRequest.FromString(self._wire)
            self._wire = None  # the parsed request is the batch now: a component may change it
        assert self._logs is not None
        return self._logs

    @logs.setter
    def logs(self, logs: ExportLogsServiceRequest) -> None:
        self._logs, self._wire = logs, None

    def set_wire(self, wire: bytes) -> None:
        """Replaces the batch's records by these serialized ones (parsed if `logs` is read)."""
        self._logs, self._wire = None, wire

    def serialized(self) -> bytes:
        """The records as protobuf bytes: the wire bytes the batch came as, unless `logs` was read."""
        return self._wire if self._wire is not None else self.logs.SerializeToString()

    def byte_size(self) -> int:
        return len(self._wire) if self._wire is not None else self.logs.ByteSize()

    def records(self) -> Iterator[tuple[Resource, InstrumentationScope, LogRecord]]:
        """Every record with its resource and scope, in the order that defines record ordinals."""
        for resource_logs in self.logs.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    yield resource_logs.resource, scope_logs.scope, record

    def record_count(self) -> int:
        if self._wire is not None:
            counted = count_log_records(self._wire)  # counted in C, without parsing
            if counted is not None:
                return counted
        return sum(len(s.log_records) for r in self.logs.resource_logs for s in r.scope_logs)

    def record_id(self, ordinal: int) -> str:
        return f"{self.record_id_prefix or self.batch_id}:{self.first_ordinal + ordinal}"

    def part(self, start: int, end: int) -> LogBatch:
        """Records start..end-1 as a batch of their own, with their resources, scopes, embeddings and
        record ids; its `batch_id` names the range, so a replay that splits the same way gets the same ids."""
        logs = ExportLogsServiceRequest()
        ordinal = 0
        for resource_logs in self.logs.resource_logs:
            resource_part = None
            for scope_logs in resource_logs.scope_logs:
                count = len(scope_logs.log_records)
                low, high = max(start - ordinal, 0), min(end - ordinal, count)
                ordinal += count
                if low >= high:
                    continue
                if resource_part is None:
                    resource_part = logs.resource_logs.add(resource=resource_logs.resource,
                                                           schema_url=resource_logs.schema_url)
                scope_part = resource_part.scope_logs.add(scope=scope_logs.scope, schema_url=scope_logs.schema_url)
                scope_part.log_records.extend(scope_logs.log_records[low:high])
        embeddings = None if self.embeddings is None else self.embeddings[start:end]
        return LogBatch(logs=logs, tenant=self.tenant, batch_id=f"{self.batch_id}~{start}-{end}",
                        embeddings=embeddings, record_id_prefix=self.record_id_prefix or self.batch_id,
                        first_ordinal=self.first_ordinal + start)


@dataclass(slots=True)
class Decoded:
    """A request a receiver decoded and validated, ready for the pipelines' spools."""

    request: ExportLogsServiceRequest
    payload: bytes  # protobuf bytes of the accepted records, what goes into the spool
    accepted: int
    rejected: int
    message: str  # why records were rejected or values mended, for partial_success
    mended: int = 0  # values mended so their records could be accepted (invalid UTF-8, nesting cut, future times)


RouteHandler = Callable[[str | None, dict[str, list[str]], bytes], tuple[int, str, bytes]]


@dataclass
class HttpRoute:
    """An extra route on a receiver's HTTP server (metrics, health, queries).

    `handler(tenant, query_params, body)` returns (status, content type, body); `tenant` is None when
    the route is not authenticated."""

    handler: RouteHandler
    authenticated: bool = True
    # Holds data a browser page reads: without `auth`, served only to requests addressed to this machine, as
    # a DNS-rebinding page's are not (receivers/otlp/http_server.py, `_cross_site_refusal`).
    data: bool = False


Routes = dict[tuple[str, str], HttpRoute]  # (method, path) -> route


@dataclass
class CreateSettings:
    """What a factory gets besides the component's own config."""

    component_id: str  # as written in the YAML, e.g. "clickhouse" or "clickhouse/archive"
    data_dir: Path  # where the component may keep files (spools, queues); created by the pipeline
    telemetry: Telemetry  # counters, gauges, histograms for /metrics
    extensions: Mapping[str, object] = field(default_factory=dict)  # the running extensions, by id

    def client_authenticator(self, extension_id: str) -> ClientAuthenticator:
        """The extension an exporter's `auth.authenticator` names, as a client authenticator."""
        extension = self.extensions.get(extension_id)
        if not isinstance(extension, ClientAuthenticator):
            problem = "is not enabled in service.extensions" if extension is None else "cannot authenticate a client"
            raise ConfigError(f"exporters.{self.component_id}.auth.authenticator", f"'{extension_id}' {problem}")
        return extension


# -- errors --------------------------------------------------------------------------------------------


class RetryableError(Exception):
    """The destination is unavailable for now (network, 5xx, UNAVAILABLE): try the batch again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """The destination refused the batch for good (4xx, INVALID_ARGUMENT): retrying cannot help."""


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


class TooManyPartitions(Exception):
    """A request with a new combination of metadata values past the batch processor's
    `metadata_cardinality_limit`: refused for good (gRPC INTERNAL, HTTP 500, as the Collector answers)."""


# -- the shapes of components ----------------------------------------------------------------------------


@runtime_checkable
class Authenticator(Protocol):
    """An extension that checks a request's credentials and names its tenant (`bearertokenauth`)."""

    def authenticate(self, headers: Mapping[str, str]) -> str:
        """The tenant of a request from its headers (gRPC metadata), names in lower case; raises
        Unauthenticated."""
        ...


@runtime_checkable
class ClientAuthenticator(Protocol):
    """An extension that gives an exporter the credentials to send (the client side of `bearertokenauth`)."""

    def client_headers(self) -> dict[str, str]:
        """Headers (gRPC metadata) for the next request, as they are now (a token file may have changed)."""
        ...


class Host(Protocol):
    """What a receiver needs from the service around it."""

    def consume(self, decoded: Decoded, tenant: str, metadata: ClientMetadata | None = None) -> None:
        """Durably accepts the records (returns) or refuses them (raises Backpressure, or
        PartitionLimitError); `metadata` only with the receiver's `include_metadata`."""
        ...

    def authenticator(self, extension_id: str) -> Authenticator: ...

    def http_routes(self) -> Routes: ...


@runtime_checkable
class Receiver(Protocol):
    """Takes requests from clients and hands them to the host; says where it listens once started."""

    @property
    def grpc_endpoint(self) -> str | None: ...

    @property
    def http_endpoint(self) -> str | None: ...

    def start(self, host: Host) -> None: ...

    def shutdown(self, timeout: float) -> None:
        """Stops accepting and waits up to `timeout` seconds for requests in flight."""
        ...


@runtime_checkable
class Processor(Protocol):
    """Runs on every batch of a pipeline, in config order; returns the batch (changed in place or new)."""

    name: str

    def start(self) -> None: ...

    def process(self, batch: LogBatch) -> LogBatch: ...

    def shutdown(self) -> None: ...


@runtime_checkable
class Exporter(Protocol):
    """Delivers a batch somewhere. `export` is synchronous and raises RetryableError or PermanentError;
    queueing and retries (the Collector's sending_queue / retry_on_failure) wrap it, not live in it."""

    name: str

    def start(self) -> None: ...

    def export(self, batch: LogBatch) -> None: ...

    def shutdown(self) -> None: ...


@runtime_checkable
class Extension(Protocol):
    """Runs beside the pipelines; what it offers is a capability (`Authenticator`, `RouteProvider`)."""

    def start(self) -> None: ...

    def shutdown(self) -> None: ...


BatchDone = Callable[[LogBatch, bool], None]
"""Called once per batch by a queued exporter: (batch, delivered). delivered=False means dropped for good."""


# -- capabilities the service hands to a pipeline or a receiver ---------------------------------------


ReadEntry = Callable[[float], SpoolEntry | None]
"""Reads the next spooled request, waiting up to the given seconds; None when none came."""


@runtime_checkable
class Batcher(Protocol):
    """A processor that decides which spooled requests form one batch (the `batch` processor)."""

    def gather(self, first: SpoolEntry, read: ReadEntry) -> list[SpoolEntry]:
        """`first` and the requests after it that belong in its batch, read with `read`."""
        ...

    def partition(self, metadata: ClientMetadata) -> ClientMetadata:
        """The part of a request's client metadata its batches are keyed by (kept in the spool with the
        request: nothing else of the headers is written to disk); raises TooManyPartitions."""
        ...

    def split(self, batch: LogBatch) -> list[LogBatch]:
        """The batch in the parts that go through the processors and exporters (deterministic, so a replay
        gives the same parts with the same ids)."""
        ...


@runtime_checkable
class AdmissionController(Protocol):
    """A processor that may refuse new requests before they are spooled (the `memory_limiter`)."""

    def admit(self) -> None:
        """Returns to accept a request; raises Backpressure to refuse it."""
        ...


@runtime_checkable
class RouteProvider(Protocol):
    """An extension that serves HTTP routes on the receivers' HTTP port (the `query` extension)."""

    def http_routes(self) -> Routes: ...


@runtime_checkable
class BaselineKeeper(Protocol):
    """A processor that keeps learned baselines (the `anomaly` processor), reachable while it runs."""

    def baselines(self, tenant: str) -> list[dict[str, Any]]:
        """What each of the tenant's baselines holds: size, age, warm-up, thresholds, held-back patterns."""
        ...

    def acknowledge(self, tenant: str, workload: str, attributes: dict[str, Any]) -> None:
        """A person says the event with these record attributes is normal on `workload`: learn it now."""
        ...


BaselineKeepers = Callable[[str], list[BaselineKeeper]]
"""The baseline keepers of the pipelines that export to the exporter of the given id."""


@runtime_checkable
class BaselineClient(Protocol):
    """An extension that shows or teaches baselines (the `query` extension's page and acknowledge route);
    the service hands it `BaselineKeepers` once every pipeline is built."""

    def bind_baselines(self, keepers: BaselineKeepers) -> None: ...
