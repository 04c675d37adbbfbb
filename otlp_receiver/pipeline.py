"""A pipeline: the worker between one ingest spool and the pipeline's exporters.

Data flow (one mechanism for durability):
  receiver --decode/validate/auth--> every pipeline's spool (fsynced) --> acknowledge the client
  pipeline worker: spool entries --group (the batcher; the group is recorded in the spool)--> LogBatch
      per tenant and metadata partition --> processors in order --> QueuedExporter.submit for each exporter
  each exporter reports done(batch) --> when all reported, the group is committed in the spool.
A full spool or an admission controller refuses requests with backpressure; nothing acknowledged is dropped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otlp_receiver.component import (
    AdmissionController,
    Backpressure,
    Batcher,
    ClientMetadata,
    Decoded,
    LogBatch,
    Processor,
    ReadEntry,
)
from otlp_receiver.exporterhelper import ExporterStoppedError, QueuedExporter
from otlp_receiver.spool import Spool, SpoolClosedError, SpoolEntry, SpoolFullError
from otlp_receiver.telemetry import Telemetry

log = logging.getLogger(__name__)


class _Group:
    """Spool entries first..last in flight: committed when every (batch, exporter) reported."""

    def __init__(self, first: int, last: int, pending: int) -> None:
        self.first, self.last, self.pending = first, last, pending
        self.lock = threading.Lock()


class OneRequestPerBatch:
    """The grouping of a pipeline without a `batch` processor: every spooled request is its own batch."""

    def gather(self, first: SpoolEntry, read: ReadEntry) -> list[SpoolEntry]:
        return [first]

    def partition(self, metadata: ClientMetadata) -> ClientMetadata:
        return {}

    def split(self, batch: LogBatch) -> list[LogBatch]:
        return [batch]


class Pipeline:
    """One pipeline's worker: spool -> batches -> processors -> exporters, and admission into the spool.

    The service hands it its capabilities: the `batcher` that groups spooled requests (the `batch`
    processor, or one request per batch) and the `admission` controllers asked before a request is
    spooled (the `memory_limiter`)."""

    def __init__(self, name: str, spool: Spool, processors: list[Processor], exporters: list[QueuedExporter],
                 telemetry: Telemetry, batcher: Batcher | None = None,
                 admission: Sequence[AdmissionController] = ()) -> None:
        self.name = name
        self.spool = spool
        self.processors = processors
        self.exporters = exporters
        self.batcher = batcher or OneRequestPerBatch()
        self.admission = list(admission)
        self._stop = threading.Event()
        self._drain_deadline = float("inf")
        self._thread: threading.Thread | None = None
        self._stage = telemetry.histogram("procsight_stage_latency_seconds",
                                          "Time spent per stage (spool wait, each processor, submit to exporters)")
        self._batches = telemetry.counter("procsight_pipeline_batches_total", "Batches formed, by pipeline")
        self._processor_errors = telemetry.counter("procsight_processor_errors_total",
                                                   "Batches a processor failed on (passed on unprocessed)")
        self._committed = telemetry.counter("procsight_pipeline_committed_log_records_total",
                                            "Log records every exporter of the pipeline reported")
        self._end_to_end = telemetry.histogram("procsight_end_to_end_latency_seconds",
                                               "From receipt to every exporter done, by pipeline")

    def admit(self, metadata: ClientMetadata | None = None) -> ClientMetadata:
        """Raises Backpressure while an admission controller refuses new requests, TooManyPartitions when
        the batcher refuses the request's metadata; returns the metadata its batches are keyed by."""
        for controller in self.admission:
            controller.admit()
        return self.batcher.partition(metadata or {})

    def append(self, decoded: Decoded, tenant: str, partition: ClientMetadata | None = None) -> None:
        """Spools an accepted request durably, or raises Backpressure (spool full, shutting down)."""
        try:
            self.spool.append(decoded.payload, tenant, decoded.accepted, metadata=partition)
        except SpoolFullError as exc:
            raise Backpressure(str(exc), retry_after=exc.retry_after, reason="spool_full") from exc
        except SpoolClosedError as exc:
            raise Backpressure("the receiver is shutting down", retry_after=5.0, reason="shutting_down",
                               unavailable=True) from exc

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"pipeline-{self.name}", daemon=True)
        self._thread.start()

    def drain(self, timeout: float) -> None:
        """Processes what is in the spool (up to `timeout`), then stops the worker."""
        self._drain_deadline = time.monotonic() + timeout
        self._stop.set()
        if self._thread:
            self._thread.join(timeout + 1.0)

    def _run(self) -> None:
        while True:
            if self._stop.is_set() and time.monotonic() > self._drain_deadline:
                break
            entries = self._collect()
            if not entries:
                if self._stop.is_set():
                    break
                continue
            try:
                self._handle(entries)
            except (ExporterStoppedError, SpoolClosedError):
                break  # shutting down: the group stays uncommitted and is replayed next start
            except Exception:
                # A bug must not wedge the pipeline silently; the group stays uncommitted (replayed on restart).
                log.exception("pipeline %s: failed on spool entries %d..%d", self.name, entries[0].seq,
                              entries[-1].seq)

    def _collect(self) -> list[SpoolEntry]:
        """The next group of spool entries: a group recorded before a restart (so a replay forms the
        same batch with the same id), or a new one as the batcher gathers it."""
        first = self.spool.read(timeout=0.1)
        if first is None:
            return []
        recorded = self.spool.recorded_group(first.seq)
        if recorded is None:
            return self.batcher.gather(first, self.spool.read)
        entries = [first]
        while entries[-1].seq < recorded:
            entry = self.spool.read(timeout=1.0)
            if entry is None:
                break  # closed under us
            entries.append(entry)
        return entries

    def _handle(self, entries: list[SpoolEntry]) -> None:
        first, last = entries[0].seq, entries[-1].seq
        group_id = self.spool.form_group(first, last)
        started = time.monotonic()
        self._stage.observe(max(0.0, time.time() - entries[0].received_ns / 1e9), stage="spool_wait",
                            pipeline=self.name)
        batches = [part for batch in _batches_by_tenant(entries, group_id) for part in self.batcher.split(batch)]
        group = _Group(first, last, len(batches) * len(self.exporters))
        received = entries[0].received_ns / 1e9
        records = sum(e.records for e in entries)
        self._batches.inc(len(batches), pipeline=self.name)

        def done(batch: LogBatch, delivered: bool) -> None:
            with group.lock:
                group.pending -= 1
                finished = group.pending == 0
            if finished:
                self.spool.commit(group.first, group.last)
                self._committed.inc(records, pipeline=self.name)
                self._end_to_end.observe(time.time() - received, pipeline=self.name)

        for batch in batches:
            batch = self._process(batch)
            submit_started = time.monotonic()
            for exporter in self.exporters:
                exporter.submit(batch, done)
            self._stage.observe(time.monotonic() - submit_started, stage="submit", pipeline=self.name)
        self._stage.observe(time.monotonic() - started, stage="pipeline", pipeline=self.name)

    def _process(self, batch: LogBatch) -> LogBatch:
        for processor in self.processors:
            started = time.monotonic()
            try:
                batch = processor.process(batch)
            except Exception:
                self._processor_errors.inc(processor=processor.name)
                log.exception("processor %s failed on batch %s; passing it on unprocessed", processor.name,
                              batch.batch_id)
            self._stage.observe(time.monotonic() - started, stage=f"processor:{processor.name}", pipeline=self.name)
        return batch


def _batches_by_tenant(entries: list[SpoolEntry], group_id: str) -> list[LogBatch]:
    """One LogBatch per tenant and metadata partition, in order of first appearance; concatenated protobuf
    messages parse as one message whose repeated fields are joined, so merging costs one parse."""
    payloads: dict[tuple[str, str], list[bytes]] = {}
    partitions: dict[tuple[str, str], ClientMetadata] = {}
    for entry in entries:
        key = (entry.tenant, json.dumps(entry.metadata, sort_keys=True))
        payloads.setdefault(key, []).append(entry.payload)
        partitions[key] = entry.metadata
    batches = []
    for index, (key, parts) in enumerate(payloads.items()):
        request = ExportLogsServiceRequest()
        request.ParseFromString(b"".join(parts))
        batch_id = group_id if len(payloads) == 1 else f"{group_id}.{index}"
        batches.append(LogBatch(logs=request, tenant=key[0], batch_id=batch_id, metadata=partitions[key]))
    return batches
