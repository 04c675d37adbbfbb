"""QueuedExporter: the Collector's sending_queue + retry_on_failure wrapped around an `Exporter`.

The pipeline hands a batch over with `submit(batch, done)`; `done(batch, delivered)` is called exactly
once per batch when the exporter delivered it (True) or refused it for good (False). `submit` blocks
while the queue is full, so a slow destination slows the pipeline, which fills the ingest spool, which
answers clients with backpressure: nothing is dropped on the way.

On shutdown the queue is drained within a deadline; a batch still waiting for a destination that
is down gets no `done` call, so its spool entry stays uncommitted and is replayed on the next start.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass

from otlp_receiver.component import BatchDone, Exporter, LogBatch, PermanentError, RetryableError
from otlp_receiver.exporterhelper.config import QueueConfig, RetryConfig
from otlp_receiver.telemetry import Telemetry

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.1  # how often a blocked submit or an idle consumer looks at the stop flag


class ExporterStoppedError(RuntimeError):
    """submit() after shutdown began: the batch was not taken (its spool entry stays uncommitted)."""


@dataclass
class _Item:
    batch: LogBatch
    done: BatchDone
    enqueued: float
    size: int = 1  # in the queue's sizer: 1 request, its log records, or its bytes


class Backoff:
    """Exponential backoff with jitter, as the Collector's (cenkalti/backoff) does it."""

    def __init__(self, config: RetryConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self._rng = rng or random.Random()
        self._current: float = config.initial_interval

    def next_delay(self, retry_after: float | None = None) -> float:
        spread = self.config.randomization_factor * self._current
        delay = self._current + self._rng.uniform(-spread, spread)
        self._current = min(self._current * self.config.multiplier, self.config.max_interval)
        # A server's Retry-After / RetryInfo is a floor: retrying sooner would only be throttled again.
        return max(delay, retry_after or 0.0)


class QueuedExporter:
    """Thread-safe; one per exporter in a pipeline."""

    def __init__(self, exporter: Exporter, queue_config: QueueConfig, retry_config: RetryConfig,
                 telemetry: Telemetry, name: str | None = None) -> None:
        self.exporter = exporter
        self.name = name or exporter.name
        self.queue_config = queue_config
        self.retry_config = retry_config
        self._queue: queue.Queue[_Item] = queue.Queue()  # bounded by _used against queue_size, in the sizer's unit
        self._used = 0
        self._space = threading.Condition()
        self._stopping = threading.Event()
        self._consumers: list[threading.Thread] = []
        self._sent = telemetry.counter("procsight_exporter_sent_log_records_total",
                                       "Log records an exporter delivered")
        self._failed = telemetry.counter("procsight_exporter_send_failed_log_records_total",
                                         "Log records an exporter gave up on, by reason")
        self._errors = telemetry.counter("procsight_exporter_errors_total",
                                         "Failed export attempts, by kind (retryable, permanent)")
        self._overdue = telemetry.counter("procsight_exporter_retry_overdue_batches_total",
                                          "Batches still retried after retry_on_failure.max_elapsed_time")
        self._queue_size = telemetry.gauge("procsight_exporter_queue_size", "Batches waiting in a sending queue")
        self._queue_capacity = telemetry.gauge("procsight_exporter_queue_capacity", "sending_queue.queue_size")
        self._latency = telemetry.histogram("procsight_exporter_latency_seconds",
                                            "From submit to delivered, per exporter")
        self._queue_capacity.set(queue_config.queue_size, exporter=self.name)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self.exporter.start()
        if not self.queue_config.enabled:
            return
        for index in range(self.queue_config.num_consumers):
            thread = threading.Thread(target=self._consume, name=f"export-{self.name}-{index}", daemon=True)
            thread.start()
            self._consumers.append(thread)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stops taking batches, drains the queue within `timeout` seconds, then stops the exporter."""
        deadline = time.monotonic() + timeout
        while self.queue_config.enabled and not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stopping.set()
        for thread in self._consumers:
            thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
        left = self._queue.qsize()
        if left:
            log.warning("exporter %s: %d batches not delivered at shutdown; they will be replayed", self.name, left)
        self.exporter.shutdown()

    # -- the pipeline side ------------------------------------------------------------------------

    def submit(self, batch: LogBatch, done: BatchDone) -> None:
        """Queues the batch, blocking while the queue is full; without a queue, exports right here."""
        item = _Item(batch, done, time.monotonic(), self._size(batch))
        if not self.queue_config.enabled:
            self._deliver(item)
            return
        with self._space:
            # A batch bigger than the whole queue still goes, alone, rather than never.
            while self._used and self._used + item.size > self.queue_config.queue_size:
                if self._stopping.is_set():
                    break
                self._space.wait(_POLL_SECONDS)
            if self._stopping.is_set():
                raise ExporterStoppedError(f"exporter {self.name} is shutting down")
            self._used += item.size
        self._queue.put(item)
        self._queue_size.set(self._queue.qsize(), exporter=self.name)

    def _size(self, batch: LogBatch) -> int:
        sizer = self.queue_config.sizer
        return 1 if sizer == "requests" else batch.record_count() if sizer == "items" else batch.logs.ByteSize()

    def queue_depth(self) -> int:
        return self._queue.qsize()

    # -- consumers --------------------------------------------------------------------------------

    def _consume(self) -> None:
        while not self._stopping.is_set():
            try:
                item = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            with self._space:
                self._used -= item.size
                self._space.notify_all()
            self._queue_size.set(self._queue.qsize(), exporter=self.name)
            self._deliver(item)

    def _deliver(self, item: _Item) -> None:
        delivered = self._export_with_retry(item.batch)
        if delivered is None:
            return  # stopped while the destination was down: left for replay
        if delivered:
            self._latency.observe(time.monotonic() - item.enqueued, exporter=self.name)
        try:
            item.done(item.batch, delivered)
        except Exception:
            log.exception("exporter %s: completion callback failed for batch %s", self.name, item.batch.batch_id)

    def _export_with_retry(self, batch: LogBatch) -> bool | None:
        """True delivered, False refused for good, None interrupted by shutdown."""
        records = batch.record_count()
        backoff = Backoff(self.retry_config)
        started = time.monotonic()
        overdue_reported = False
        while True:
            try:
                self.exporter.export(batch)
            except RetryableError as exc:
                self._errors.inc(exporter=self.name, kind="retryable")
                if not self.retry_config.enabled:
                    log.error("exporter %s: dropping batch %s (%d records), retry_on_failure disabled: %s",
                              self.name, batch.batch_id, records, exc)
                    self._failed.inc(records, exporter=self.name, reason="retry_disabled")
                    return False
                delay = backoff.next_delay(exc.retry_after)
                elapsed = time.monotonic() - started
                limit = self.retry_config.max_elapsed_time
                if limit and elapsed + delay > limit and not overdue_reported:
                    overdue_reported = True
                    self._overdue.inc(exporter=self.name)
                    log.error("exporter %s: batch %s undelivered for %.0fs (max_elapsed_time); still retrying "
                              "because it was acknowledged: %s", self.name, batch.batch_id, elapsed, exc)
                else:
                    log.warning("exporter %s: batch %s failed (%s); retrying in %.2fs",
                                self.name, batch.batch_id, exc, delay)
                if self._stopping.wait(delay):
                    return None
            except PermanentError as exc:
                self._errors.inc(exporter=self.name, kind="permanent")
                self._failed.inc(records, exporter=self.name, reason="permanent")
                log.error("exporter %s: batch %s (%d records) refused for good: %s",
                          self.name, batch.batch_id, records, exc)
                return False
            except Exception:
                # An exporter that raises something unclassified has a bug; retrying a bug forever would
                # wedge the pipeline, so it counts as permanent, loudly.
                self._errors.inc(exporter=self.name, kind="unexpected")
                self._failed.inc(records, exporter=self.name, reason="unexpected")
                log.exception("exporter %s: unexpected error exporting batch %s", self.name, batch.batch_id)
                return False
            else:
                self._sent.inc(records, exporter=self.name)
                return True
