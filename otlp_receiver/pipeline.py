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
from otlp_receiver.spool import Spool, SpoolClosedError, SpoolEntry, SpoolFullError, SpoolWriteError
from otlp_receiver.telemetry import Telemetry

log = logging.getLogger(__name__)

# A processor on one batch for longer than this makes the pipeline unhealthy (the anomaly processor's own
# time bounds, isolation included, end well before it).
STUCK_AFTER = 300.0
_FAILURE_PAUSE = 1.0  # seconds the worker waits after failing on a group


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
        self._processing_since: float | None = None  # monotonic start of the processor running now
        self._processing = ""  # its name
        self._held: SpoolEntry | None = None  # read past the end of a recorded group: the next group's first
        self.stuck_after = STUCK_AFTER
        self._stage = telemetry.histogram("procsight_stage_latency_seconds",
                                          "Time spent per stage (spool wait, each processor, submit to exporters)")
        self._batches = telemetry.counter("procsight_pipeline_batches_total", "Batches formed, by pipeline")
        self._processor_errors = telemetry.counter("procsight_processor_errors_total",
                                                   "Batches a processor failed on (passed on unprocessed)")
        self._committed = telemetry.counter("procsight_pipeline_committed_log_records_total",
                                            "Log records every exporter of the pipeline reported")
        self._end_to_end = telemetry.histogram("procsight_end_to_end_latency_seconds",
                                               "From receipt to every exporter done, by pipeline")
        self._failures = telemetry.counter("procsight_pipeline_failures_total",
                                           "Times the pipeline worker failed on a group (it was left for replay)")

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
        except SpoolWriteError as exc:
            log.error("%s", exc)
            raise Backpressure(str(exc), retry_after=exc.retry_after, reason="spool_write_failed",
                               unavailable=True) from exc
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
            try:
                first, last, entries = self._collect()
                if not entries:
                    if self._stop.is_set():
                        break
                    continue
                self._handle(first, last, entries)
            except (ExporterStoppedError, SpoolClosedError):
                break  # shutting down: the group stays uncommitted and is replayed next start
            except Exception:
                # A bug must not kill or wedge the pipeline silently; the group stays uncommitted (replayed on
                # restart), the failure is counted, and the worker goes on after a pause (no busy loop).
                self._failures.inc(pipeline=self.name)
                log.exception("pipeline %s: failed on a group of spool entries; it is left for replay", self.name)
                self._stop.wait(_FAILURE_PAUSE)

    # -- health -----------------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """What keeps this pipeline from doing its work now, in words; empty when healthy."""
        problems = []
        if self._thread is None or not self._thread.is_alive():
            problems.append("the pipeline worker is not running")
        since = self._processing_since
        if since is not None and time.monotonic() - since > self.stuck_after:
            problems.append(f"processor {self._processing} has been on one batch for "
                            f"{time.monotonic() - since:.0f}s")
        if self.spool.is_full():
            problems.append("the spool is full: new records are refused")
        failures = self._failures.value(pipeline=self.name)
        if failures:
            problems.append(f"the worker failed on {failures:.0f} groups of records, which wait for a restart "
                            "(see the log)")
        return problems

    def processing_seconds(self) -> float:
        since = self._processing_since
        return 0.0 if since is None else time.monotonic() - since

    def _collect(self) -> tuple[int, int, list[SpoolEntry]]:
        """The next group: (first seq, last seq, its entries). A group recorded before a restart is formed
        again with the same range (so a replay gets the same batch id), even when corruption cost it some
        entries; otherwise the batcher gathers a new one."""
        first = self._held or self.spool.read(timeout=0.1)
        self._held = None
        if first is None:
            return 0, 0, []
        recorded = self.spool.recorded_group_of(first.seq)
        if recorded is None:
            entries = self.batcher.gather(first, self.spool.read)
            return entries[0].seq, entries[-1].seq, entries
        entries = [first]
        while entries[-1].seq < recorded[1]:
            entry = self.spool.read(timeout=1.0)
            if entry is None:
                break  # closed under us
            if entry.seq > recorded[1]:  # the group's last entries were lost: this one starts the next group
                self._held = entry
                break
            entries.append(entry)
        return recorded[0], recorded[1], entries

    def _handle(self, first: int, last: int, entries: list[SpoolEntry]) -> None:
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
            self._processing, self._processing_since = processor.name, started
            try:
                batch = processor.process(batch)
            except Exception:
                self._processor_errors.inc(processor=processor.name)
                log.exception("processor %s failed on batch %s; passing it on unprocessed", processor.name,
                              batch.batch_id)
            finally:
                self._processing_since = None
            self._stage.observe(time.monotonic() - started, stage=f"processor:{processor.name}", pipeline=self.name)
        return batch


def _batches_by_tenant(entries: list[SpoolEntry], group_id: str) -> list[LogBatch]:
    """One LogBatch per tenant and metadata partition, in order of first appearance; concatenated protobuf
    messages parse as one message whose repeated fields are joined, so a merged batch is its parts' bytes
    joined (parsed only if a component reads its records)."""
    payloads: dict[tuple[str, str], list[bytes]] = {}
    partitions: dict[tuple[str, str], ClientMetadata] = {}
    for entry in entries:
        key = (entry.tenant, json.dumps(entry.metadata, sort_keys=True))
        payloads.setdefault(key, []).append(entry.payload)
        partitions[key] = entry.metadata
    batches = []
    for index, (key, parts) in enumerate(payloads.items()):
        batch_id = group_id if len(payloads) == 1 else f"{group_id}.{index}"
        batches.append(LogBatch(wire=b"".join(parts), tenant=key[0], batch_id=batch_id, metadata=partitions[key]))
    return batches
