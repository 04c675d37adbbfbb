"""From capture events to OTLP: the agent's resource, encoding each event once, batching that never drops.

The OpenTelemetry SDK's `BatchLogRecordProcessor` drops records when its queue is full ("Queue full,
dropping"): measured here, a burst of 20,000 records lost more than half with the default 2,048. An exec
storm is exactly when an attacker is busy, so the agent batches with `SpoolingBatchProcessor` instead: a
memory queue that spills to a bounded disk spool when full or when the endpoint is down, and replays
the spool when the endpoint is back. Only the spool's own bound drops anything, oldest first, counted.
Records are encoded once, at capture, by `otel_agent.otlp` (see there why not `Logger.emit`), with the
attributes of `core/semconv.py`; `otel_agent.exporters` sends them.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.sdk.resources import Resource

from core import __version__, semconv
from core.event import ProcessEvent
from otel_agent.config import AgentConfig, BatchConfig
from otel_agent.counters import Counters
from otel_agent.exporters import ExportError, RecordExporter, build_exporter
from otel_agent.otlp import RequestEncoder, encode_event
from otel_agent.spool import DiskSpool

log = logging.getLogger(__name__)

SCOPE_NAME = "procsight.otel_agent"
_OVERFLOW_CHUNK = 256


def host_id() -> str:
    try:
        return Path("/etc/machine-id").read_text().strip()
    except OSError:
        return ""


def build_resource(workload: str = "") -> Resource:
    """The agent's resource (docs/records.md), merged by the SDK with OTEL_RESOURCE_ATTRIBUTES and telemetry.sdk.*."""
    attributes = {semconv.SERVICE_NAME: semconv.AGENT_SERVICE_NAME, semconv.SERVICE_VERSION: __version__,
                  semconv.HOST_NAME: socket.gethostname()}
    if machine := host_id():
        attributes[semconv.HOST_ID] = machine
    if workload:
        attributes[semconv.WORKLOAD] = workload
    return Resource.create(attributes)


class SpoolingBatchProcessor:
    """Batches encoded records to an exporter; spills to a disk spool instead of dropping (see module docstring)."""

    def __init__(self, exporter: RecordExporter, spool: DiskSpool, batch: BatchConfig, retry_interval: float,
                 counters: Counters) -> None:
        self._exporter = exporter
        self._spool = spool
        self._batch_size = batch.send_batch_size
        self._queue_size = batch.queue_size
        self._timeout = batch.timeout
        self._retry_interval = retry_interval
        self._counters = counters
        self._queue: collections.deque[bytes] = collections.deque()
        self._overflow: list[bytes] = []  # past the memory bound, on the way to the spool in chunks
        self._condition = threading.Condition()
        self._busy = False  # a batch is between the queue and the endpoint (or the spool)
        self._healthy = True
        self._retry_at = 0.0
        self._stopping = False
        self._worker = threading.Thread(target=self._run, name="procsight-export", daemon=True)
        self._worker.start()

    def on_emit(self, records: Sequence[bytes]) -> None:
        with self._condition:
            room = max(0, self._queue_size - len(self._queue))
            self._queue.extend(records[:room])
            if len(self._queue) >= self._batch_size:
                self._condition.notify()
            if len(records) <= room:
                return
            # Memory full: to disk rather than block capture (a blocked capture loses events in the kernel).
            self._overflow.extend(records[room:])
            if len(self._overflow) < _OVERFLOW_CHUNK:
                return
            chunk, self._overflow = self._overflow, []
        self._spool.append(chunk)

    def _spill_overflow(self) -> None:
        with self._condition:
            chunk, self._overflow = self._overflow, []
        self._spool.append(chunk)

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
            self._spill_overflow()
            self._send(batch)
            self._replay_one()
            with self._condition:
                self._busy = False
                self._condition.notify_all()

    def _take(self) -> list[bytes]:
        count = min(self._batch_size, len(self._queue))
        batch = [self._queue.popleft() for _ in range(count)]
        self._busy = True
        return batch

    def _export(self, batch: Sequence[bytes]) -> bool:
        try:
            self._exporter.export(batch)
        except ExportError as exc:
            failure = str(exc)
        except Exception:  # an exporter bug must not stop the agent: treat as a failed export
            log.exception("exporter raised")
            failure = "exporter error"
        else:
            self._counters.add("exported", len(batch))
            if not self._healthy:
                log.info("endpoint is back; sending %d spooled records", self._spool.pending)
            self._healthy = True
            return True
        self._counters.add("export_failures")
        if self._healthy:
            log.warning("export failed (%s); spooling to disk and retrying every %.0fs", failure, self._retry_interval)
        else:
            log.debug("export failed again: %s", failure)
        self._healthy = False
        self._retry_at = time.monotonic() + self._retry_interval
        return False

    def _send(self, batch: list[bytes]) -> None:
        if not batch:
            return
        if (self._healthy or time.monotonic() >= self._retry_at) and self._export(batch):
            return
        self._spool.append(batch)

    def _replay_one(self) -> None:
        """Sends the oldest spooled segment if the endpoint is up (or due for a retry)."""
        if not self._healthy and time.monotonic() < self._retry_at:
            return
        taken = self._spool.take_oldest()
        if taken is None:
            return
        number, records = taken
        sent = 0
        try:
            while sent < len(records):
                chunk = records[sent:sent + self._batch_size]
                if not self._export(chunk):
                    break
                sent += len(chunk)
        finally:
            self._spool.release(number, records[sent:])

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Waits until the memory queue is empty and nothing is in flight (sent or spooled)."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._condition:
            self._condition.notify()
            while self._queue or self._overflow or self._busy:
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
        self._spill_overflow()
        with self._condition:
            leftover = list(self._queue)
            self._queue.clear()
        for start in range(0, len(leftover), self._batch_size):
            self._send(leftover[start:start + self._batch_size])
        self._exporter.shutdown()


class Emitter:
    """The agent's logs pipeline: encode each event once, batch (spilling to disk), export over OTLP."""

    def __init__(self, config: AgentConfig, counters: Counters) -> None:
        self._counters = counters
        self.resource = build_resource(config.workload)
        request_encoder = RequestEncoder(self.resource.attributes, SCOPE_NAME, __version__)
        self.spool = DiskSpool(config.spool.directory, int(config.spool.max_size_mib * 1024 * 1024), counters)
        self.processor = SpoolingBatchProcessor(
            build_exporter(config.exporter, request_encoder), self.spool, config.batch,
            config.spool.retry_interval, counters)

    def emit(self, events: Sequence[ProcessEvent]) -> None:
        """Encodes and queues `events`; one that cannot be encoded is counted and logged, the others go on."""
        observed = time.time_ns()  # when the agent saw them: the same for one drain of the capture
        records = []
        for event in events:
            try:
                records.append(encode_event(event, observed))
            except Exception:
                self._counters.add("errors")
                log.exception("could not encode a captured event (pid %s)", event.pid)
        self.processor.on_emit(records)

    def flush(self, timeout: float = 30.0) -> bool:
        return self.processor.force_flush(int(timeout * 1000))

    def shutdown(self) -> None:
        self.processor.shutdown()
