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
from enum import Enum

from otlp_receiver.component import BatchDone, Exporter, LogBatch, PermanentError, RetryableError
from otlp_receiver.exporterhelper.config import QueueConfig, RetryConfig
from otlp_receiver.telemetry import Telemetry

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.1  # how often a blocked submit or an idle consumer looks at the stop flag
# The longest wait a server's Retry-After / RetryInfo gets when `max_elapsed_time` is 0 (no limit); otherwise that
# is the longest. A server, or a proxy before it, asking for days stalled delivery, and the spool behind it, as long.
MAX_SERVER_DELAY = 3600.0


class _Attempt(Enum):
    """How exporting one batch (with its retries) ended."""

    DELIVERED = "delivered"
    DROPPED = "dropped"  # retries disabled: given up, counted
    REFUSED = "refused"  # refused for good: the records are isolated (`_export_isolating`)
    INTERRUPTED = "interrupted"  # shutdown while the destination was down: left for replay


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
        floor = min(retry_after or 0.0, self.config.max_elapsed_time or MAX_SERVER_DELAY)
        return max(delay, floor)


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
        self._failing_since: float | None = None
        self._consumers: list[threading.Thread] = []
        self._sent = telemetry.counter("procsight_exporter_sent_log_records_total",
                                       "Log records an exporter delivered")
        self._failed = telemetry.counter("procsight_exporter_send_failed_log_records_total",
                                         "Log records an exporter gave up on, by reason")
        self._errors = telemetry.counter("procsight_exporter_errors_total",
                                         "Failed export attempts, by kind (retryable, permanent)")
        self._isolated = telemetry.counter("procsight_exporter_isolated_log_records_total",
                                           "Log records dropped alone after their batch was refused and split "
                                           "(the rest of the batch was delivered)")
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
        return 1 if sizer == "requests" else batch.record_count() if sizer == "items" else batch.byte_size()

    def queue_depth(self) -> int:
        return self._queue.qsize()

    def failing_seconds(self) -> float:
        """How long the destination has been failing with retryable errors (0 once a batch got through)."""
        since = self._failing_since
        return 0.0 if since is None else time.monotonic() - since

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
        delivered = self._export_isolating(item.batch)
        if delivered is None:
            return  # stopped while the destination was down: left for replay
        if delivered:
            self._latency.observe(time.monotonic() - item.enqueued, exporter=self.name)
        try:
            item.done(item.batch, delivered)
        except Exception:
            log.exception("exporter %s: completion callback failed for batch %s", self.name, item.batch.batch_id)

    def _export_isolating(self, batch: LogBatch) -> bool | None:
        """Exports the batch; when the exporter refuses it for good, one bad record must not take the
        others with it: the batch is halved and each half exported (recursively), so only the records
        that fail alone are dropped, and counted. Costs about 2·log2(n) attempts per bad record; the
        halves are cut at the same places on a replay, so their ids (dedup tokens) are stable.

        True all delivered, False some records dropped, None interrupted by shutdown (left for replay)."""
        attempt = self._export_with_retry(batch)
        if attempt is not _Attempt.REFUSED:
            return None if attempt is _Attempt.INTERRUPTED else attempt is _Attempt.DELIVERED
        count = batch.record_count()
        if count <= 1:
            log.error("exporter %s: record %s refused for good; dropped alone", self.name, batch.record_id(0))
            self._failed.inc(count, exporter=self.name, reason="permanent")
            self._isolated.inc(count, exporter=self.name)
            return False
        middle = count // 2
        first = self._export_isolating(batch.part(0, middle))
        if first is None:
            return None
        second = self._export_isolating(batch.part(middle, count))
        if second is None:
            return None
        return first and second

    def _export_with_retry(self, batch: LogBatch) -> _Attempt:
        records = batch.record_count()
        backoff = Backoff(self.retry_config)
        started = time.monotonic()
        overdue_reported = False
        while True:
            try:
                self.exporter.export(batch)
            except RetryableError as exc:
                self._errors.inc(exporter=self.name, kind="retryable")
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                if not self.retry_config.enabled:
                    log.error("exporter %s: dropping batch %s (%d records), retry_on_failure disabled: %s",
                              self.name, batch.batch_id, records, exc)
                    self._failed.inc(records, exporter=self.name, reason="retry_disabled")
                    return _Attempt.DROPPED
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
                    return _Attempt.INTERRUPTED
            except PermanentError as exc:
                self._errors.inc(exporter=self.name, kind="permanent")
                self._refused(batch, f"refused for good: {exc}", traceback=False)
                return _Attempt.REFUSED
            except Exception as exc:
                # An exporter that raises something unclassified has a bug, most likely on one record's
                # values (an overflow, say); retrying it forever would wedge the pipeline, so it counts as
                # a refusal, loudly, and the records are isolated like those of a permanent error.
                self._errors.inc(exporter=self.name, kind="unexpected")
                self._refused(batch, f"unexpected error: {exc!r}", traceback=True)
                return _Attempt.REFUSED
            else:
                self._sent.inc(records, exporter=self.name)
                self._failing_since = None
                return _Attempt.DELIVERED

    def _refused(self, batch: LogBatch, why: str, traceback: bool) -> None:
        """Logs a refusal: in full for a batch as the pipeline formed it, a line for each part split off it."""
        records = batch.record_count()
        if batch.record_id_prefix:
            log.debug("exporter %s: part %s (%d records) %s", self.name, batch.batch_id, records, why)
            return
        log.error("exporter %s: batch %s (%d records) %s; isolating the records it fails on", self.name,
                  batch.batch_id, records, why, exc_info=traceback)
