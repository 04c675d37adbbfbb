"""From capture events to OTLP: the one mapping function, the SDK pipeline, and a processor that never drops.

The OpenTelemetry SDK's `BatchLogRecordProcessor` drops records when its queue is full ("Queue full,
dropping"): measured here, a burst of 20,000 records lost more than half with the default 2,048. An exec
storm is exactly when an attacker is busy, so the agent uses `SpoolingLogRecordProcessor` instead: a
memory queue that spills to a bounded disk spool when full or when the endpoint is down, and replays
the spool when the endpoint is back. Only the spool's own bound drops anything, oldest first, counted.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_agent.config import AgentConfig, BatchConfig, ExporterConfig
from otel_agent.counters import Counters
from otel_agent.spool import DiskSpool
from procsight import __version__
from procsight.confmap import parse_duration
from scoring.event import ProcessEvent

log = logging.getLogger(__name__)

SERVICE_NAME = "procsight-agent"
SCOPE_NAME = "procsight.otel_agent"


def host_id() -> str:
    try:
        return Path("/etc/machine-id").read_text().strip()
    except OSError:
        return ""


def build_resource(workload: str = "") -> Resource:
    attributes = {"service.name": SERVICE_NAME, "service.version": __version__, "host.name": socket.gethostname()}
    if machine := host_id():
        attributes["host.id"] = machine
    if workload:
        attributes["procsight.workload"] = workload
    return Resource.create(attributes)


def to_log_record(event: ProcessEvent) -> LogRecord:
    """The one mapping from a captured event to an OTLP log record (DESIGN section 1)."""
    attributes: dict[str, object] = {"event.name": event.event_name,
                                     "process.executable.name": event.executable_name,
                                     "process.command_line": event.command_line,
                                     "process.command_args": event.command_args}
    optional = (
        ("process.pid", event.pid),
        ("process.parent_pid", event.parent_pid),
        ("process.executable.path", event.executable_path),
        ("process.user.id", event.user_id),
        ("process.user.name", event.user_name),
        ("process.parent.executable.name", event.parent_name),
        ("process.working_directory", event.working_directory),
        ("container.id", event.container_id),
        ("process.cpu.utilization", event.cpu_percent),
        ("network.transport", event.transport),
        ("source.address", event.local_address),
        ("source.port", event.local_port),
        ("destination.address", event.remote_address),
        ("destination.port", event.remote_port),
    )
    attributes.update((key, value) for key, value in optional if value is not None and value != "")
    if event.command_args_truncated:
        attributes["process.command_args_truncated"] = True
    timestamp = int(event.timestamp * 1e9)
    return LogRecord(timestamp=timestamp, observed_timestamp=time.time_ns(), body=event.command_line,
                     attributes=attributes, event_name=event.event_name, severity_number=SeverityNumber.INFO,
                     severity_text="INFO")


def _encode(record: ReadableLogRecord | ReadWriteLogRecord) -> bytes:
    """A record as one spool line (the resource and scope are the agent's own, restored on replay)."""
    r = record.log_record
    return json.dumps({"t": r.timestamp, "o": r.observed_timestamp, "e": r.event_name, "b": r.body,
                       "a": dict(r.attributes or {})}, separators=(",", ":")).encode()


def _decode(line: bytes, resource: Resource, scope: InstrumentationScope) -> ReadableLogRecord:
    data = json.loads(line)
    attributes = {k: tuple(v) if isinstance(v, list) else v for k, v in data["a"].items()}
    record = LogRecord(timestamp=data["t"], observed_timestamp=data["o"], body=data["b"], attributes=attributes,
                       event_name=data["e"], severity_number=SeverityNumber.INFO, severity_text="INFO")
    return ReadableLogRecord(log_record=record, resource=resource, instrumentation_scope=scope)


class SpoolingLogRecordProcessor(LogRecordProcessor):
    """Batches records to an exporter; spills to a disk spool instead of dropping (see module docstring)."""

    def __init__(self, exporter: LogRecordExporter, spool: DiskSpool, batch: BatchConfig, retry_interval: float,
                 resource: Resource, counters: Counters) -> None:
        self._exporter = exporter
        self._spool = spool
        self._batch_size = batch.send_batch_size
        self._queue_size = batch.queue_size
        self._timeout = parse_duration(batch.timeout)
        self._retry_interval = retry_interval
        self._resource = resource
        self._scope = InstrumentationScope(SCOPE_NAME, __version__)
        self._counters = counters
        self._queue: collections.deque[ReadWriteLogRecord] = collections.deque()
        self._condition = threading.Condition()
        self._busy = False  # a batch is between the queue and the endpoint (or the spool)
        self._healthy = True
        self._retry_at = 0.0
        self._stopping = False
        self._worker = threading.Thread(target=self._run, name="procsight-export", daemon=True)
        self._worker.start()

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        with self._condition:
            if len(self._queue) < self._queue_size:
                self._queue.append(log_record)
                if len(self._queue) >= self._batch_size:
                    self._condition.notify()
                return
        self._spool.append([_encode(log_record)])  # memory full: to disk rather than block capture

    def _idle_wait(self) -> float:
        """How long the worker may wait for a full batch: not at all while a healthy endpoint has a backlog."""
        if not self._spool.pending:
            return self._timeout
        if self._healthy:
            return 0.0
        return max(0.0, min(self._timeout, self._retry_at - time.monotonic()))

    def _run(self) -> None:
        while True:
            with self._condition:
                if not self._stopping and len(self._queue) < self._batch_size:
                    self._condition.wait(self._idle_wait())
                if self._stopping:
                    return
                batch = self._take()
            self._send(batch)
            self._replay_one()
            with self._condition:
                self._busy = False
                self._condition.notify_all()

    def _take(self) -> list[ReadWriteLogRecord]:
        count = min(self._batch_size, len(self._queue))
        batch = [self._queue.popleft() for _ in range(count)]
        self._busy = True
        return batch

    def _export(self, batch: Sequence[ReadableLogRecord | ReadWriteLogRecord]) -> bool:
        try:
            result = self._exporter.export(batch)
        except Exception:  # an exporter bug must not stop the agent: treat as a failed export
            log.exception("exporter raised")
            result = LogRecordExportResult.FAILURE
        if result == LogRecordExportResult.SUCCESS:
            self._counters.add("exported", len(batch))
            if not self._healthy:
                log.info("endpoint is back; sending %d spooled records", self._spool.pending)
            self._healthy = True
            return True
        self._counters.add("export_failures")
        if self._healthy:
            log.warning("export failed; spooling to disk and retrying every %.0fs", self._retry_interval)
        self._healthy = False
        self._retry_at = time.monotonic() + self._retry_interval
        return False

    def _send(self, batch: list[ReadWriteLogRecord]) -> None:
        if not batch:
            return
        if (self._healthy or time.monotonic() >= self._retry_at) and self._export(batch):
            return
        self._spool.append([_encode(record) for record in batch])

    def _replay_one(self) -> None:
        """Sends the oldest spooled segment if the endpoint is up (or due for a retry)."""
        if not self._healthy and time.monotonic() < self._retry_at:
            return
        taken = self._spool.take_oldest()
        if taken is None:
            return
        number, lines = taken
        sent = 0
        try:
            while sent < len(lines):
                chunk = lines[sent:sent + self._batch_size]
                records = []
                for line in chunk:
                    try:
                        records.append(_decode(line, self._resource, self._scope))
                    except (ValueError, KeyError, TypeError):
                        log.error("unreadable spool record skipped: %.80r", line)
                if records and not self._export(records):
                    break
                sent += len(chunk)
        finally:
            self._spool.release(number, lines[sent:])

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Waits until the memory queue is empty and nothing is in flight (sent or spooled)."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._condition:
            self._condition.notify()
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.notify()
                self._condition.wait(min(remaining, 0.05))
        return True

    def shutdown(self) -> None:
        """Sends what is queued (spooling what cannot go), then stops; nothing queued is lost."""
        self.force_flush()
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._worker.join()
        with self._condition:
            leftover = list(self._queue)
            self._queue.clear()
        for start in range(0, len(leftover), self._batch_size):
            self._send(leftover[start:start + self._batch_size])
        self._exporter.shutdown()


def build_exporter(config: ExporterConfig) -> LogRecordExporter:
    """The official OTLP exporter for the configured protocol, with auth, TLS and compression."""
    headers = dict(config.headers)
    token = config.token or os.environ.get("PROCSIGHT_TOKEN", "")
    if token:
        headers["authorization"] = f"Bearer {token}"
    timeout = parse_duration(config.timeout)
    tls = config.tls
    if config.protocol == "grpc":
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcExporter

        credentials = None
        if not tls.insecure:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=Path(tls.ca_file).read_bytes() if tls.ca_file else None,
                private_key=Path(tls.key_file).read_bytes() if tls.key_file else None,
                certificate_chain=Path(tls.cert_file).read_bytes() if tls.cert_file else None)
        compression = grpc.Compression.Gzip if config.compression == "gzip" else grpc.Compression.NoCompression
        return GrpcExporter(endpoint=config.endpoint, insecure=tls.insecure, credentials=credentials,
                            headers=headers, timeout=timeout, compression=compression)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter

    url = config.endpoint
    if "://" not in url:
        url = f"{'http' if tls.insecure else 'https'}://{url}"
    if url.count("/") < 3:
        url += "/v1/logs"
    return HttpExporter(endpoint=url, certificate_file=tls.ca_file or None, client_key_file=tls.key_file or None,
                        client_certificate_file=tls.cert_file or None, headers=headers, timeout=timeout,
                        compression=Compression.Gzip if config.compression == "gzip" else Compression.NoCompression)


class Emitter:
    """The agent's OpenTelemetry logs pipeline: LoggerProvider -> SpoolingLogRecordProcessor -> OTLP exporter."""

    def __init__(self, config: AgentConfig, counters: Counters, exporter: LogRecordExporter | None = None) -> None:
        self.resource = build_resource(config.workload)
        self.spool = DiskSpool(config.spool.directory, int(config.spool.max_size_mib * 1024 * 1024), counters)
        self.processor = SpoolingLogRecordProcessor(
            exporter or build_exporter(config.exporter), self.spool, config.batch,
            parse_duration(config.spool.retry_interval), self.resource, counters)
        self.provider = LoggerProvider(resource=self.resource, shutdown_on_exit=False)
        self.provider.add_log_record_processor(self.processor)
        self._logger = self.provider.get_logger(SCOPE_NAME, __version__)

    def emit(self, event: ProcessEvent) -> None:
        self._logger.emit(to_log_record(event))

    def flush(self, timeout: float = 30.0) -> bool:
        return self.processor.force_flush(int(timeout * 1000))

    def shutdown(self) -> None:
        self.provider.shutdown()
