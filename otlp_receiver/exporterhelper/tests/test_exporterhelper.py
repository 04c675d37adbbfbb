from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.confmap import ConfigError, Duration, decode, load_yaml
from otlp_receiver.component import LogBatch, PermanentError, RetryableError
from otlp_receiver.exporterhelper import Backoff, ExporterStoppedError, QueueConfig, QueuedExporter, RetryConfig
from otlp_receiver.exporterhelper.queued import MAX_SERVER_DELAY
from otlp_receiver.telemetry import Telemetry

TESTDATA = Path(__file__).parent / "testdata"
FAST_RETRY = RetryConfig(initial_interval=Duration("5ms"), max_interval=Duration("20ms"),
                         max_elapsed_time=Duration("50ms"))


@dataclass
class HelperSettings:
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)


def make_batch(batch_id: str, records: int = 2) -> LogBatch:
    request = ExportLogsServiceRequest()
    scope_logs = request.resource_logs.add().scope_logs.add()
    for i in range(records):
        scope_logs.log_records.add().body.string_value = f"{batch_id}-{i}"
    return LogBatch(logs=request, batch_id=batch_id)


class ScriptedExporter:
    """An exporter whose destination fails according to a script, recording what it delivered."""

    name = "scripted"

    def __init__(self, failures: list[Exception] | None = None, gate: threading.Event | None = None) -> None:
        self.failures = list(failures or [])
        self.gate = gate
        self.delivered: list[str] = []
        self.attempts = 0
        self.lock = threading.Lock()
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def shutdown(self) -> None:
        self.stopped = True

    def export(self, batch: LogBatch) -> None:
        if self.gate is not None:
            self.gate.wait()
        with self.lock:
            self.attempts += 1
            if self.failures:
                raise self.failures.pop(0)
            self.delivered.append(batch.batch_id)


class Completions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.event = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, batch: LogBatch, delivered: bool) -> None:
        with self.lock:
            self.calls.append((batch.batch_id, delivered))
        self.event.set()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[str, bool]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.calls) >= count:
                    return list(self.calls)
            time.sleep(0.005)
        raise AssertionError(f"expected {count} completions, got {self.calls}")


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


def test_defaults_match_the_collector() -> None:
    settings = decode(HelperSettings, {})
    assert settings.sending_queue == QueueConfig(enabled=True, num_consumers=2, queue_size=1000)
    retry = settings.retry_on_failure
    assert (retry.initial_interval, retry.max_interval, retry.max_elapsed_time, retry.multiplier) == (5, 30, 300, 1.5)


def test_yaml_testdata_decodes() -> None:
    settings = decode(HelperSettings, load_yaml(TESTDATA / "helper.yaml"), source="helper.yaml")
    assert settings.sending_queue.num_consumers == 3
    assert settings.retry_on_failure.initial_interval == pytest.approx(0.01)
    assert settings.retry_on_failure.multiplier == 2.0


@pytest.mark.parametrize(("data", "message"), [
    ({"sending_queue": {"queue_sise": 3}}, "did you mean 'queue_size'"),
    ({"sending_queue": {"num_consumers": 0}}, "num_consumers"),
    ({"retry_on_failure": {"initial_interval": "soon"}}, "duration"),
    ({"retry_on_failure": {"max_interval": "10m", "max_elapsed_time": "5m"}}, "not be less than max_interval"),
    ({"retry_on_failure": {"randomization_factor": 1.5}}, r"within \[0, 1\]"),
    ({"retry_on_failure": {"multiplier": "x"}}, "expected a number"),
    ({"sending_queue": {"sizer": "records"}}, "expected one of requests, items, bytes"),
    ({"sending_queue": {"storage": "file_storage"}}, "write-ahead spool already"),
    ({"sending_queue": {"wait_for_result": True}}, "before any exporter runs"),
    ({"sending_queue": {"batch": {}}}, "batch with the batch processor"),
])
def test_invalid_settings_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        decode(HelperSettings, data, "exporters.clickhouse")


def test_backoff_grows_to_the_cap_and_honours_retry_after() -> None:
    backoff = Backoff(RetryConfig(initial_interval=Duration("1s"), max_interval=Duration("4s"),
                                  randomization_factor=0.0, multiplier=2),
                      random.Random(1))
    assert [backoff.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.next_delay(retry_after=9.0) == 9.0


@pytest.mark.parametrize(("max_elapsed_time", "longest"), [("300s", 300.0), ("0s", MAX_SERVER_DELAY)])
def test_a_server_asking_to_wait_for_days_is_retried_within_max_elapsed_time(max_elapsed_time: str,
                                                                             longest: float) -> None:
    """Retry-After: 99999999 (a misconfigured proxy) held the batch, and the spool behind it, for three years."""
    backoff = Backoff(RetryConfig(max_elapsed_time=Duration(max_elapsed_time), randomization_factor=0.0))
    assert backoff.next_delay(retry_after=99_999_999.0) == longest
    assert backoff.next_delay(retry_after=60.0) == 60.0  # a sane request is honoured


def test_backoff_jitter_stays_within_the_randomization_factor() -> None:
    retry = RetryConfig(initial_interval=Duration("1s"), max_interval=Duration("1s"), randomization_factor=0.5)
    backoff = Backoff(retry, random.Random(7))
    delays = [backoff.next_delay() for _ in range(200)]
    assert min(delays) >= 0.5 and max(delays) <= 1.5 and len(set(delays)) > 100


def test_delivers_every_batch_once_and_counts_records(telemetry: Telemetry) -> None:
    exporter = ScriptedExporter()
    queued = QueuedExporter(exporter, QueueConfig(num_consumers=3), FAST_RETRY, telemetry)
    done = Completions()
    queued.start()
    for i in range(50):
        queued.submit(make_batch(str(i), records=3), done)
    calls = done.wait_for(50)
    queued.shutdown()
    assert sorted(calls) == sorted((str(i), True) for i in range(50))
    assert sorted(exporter.delivered, key=int) == [str(i) for i in range(50)]
    assert telemetry.counter("procsight_exporter_sent_log_records_total", "").value(exporter="scripted") == 150
    assert exporter.started and exporter.stopped


def test_retryable_errors_are_retried_until_delivered(telemetry: Telemetry) -> None:
    exporter = ScriptedExporter([RetryableError("down"), RetryableError("still down", retry_after=0.02)])
    queued = QueuedExporter(exporter, QueueConfig(num_consumers=1), FAST_RETRY, telemetry)
    done = Completions()
    queued.start()
    queued.submit(make_batch("a"), done)
    assert done.wait_for(1) == [("a", True)]
    queued.shutdown()
    assert exporter.attempts == 3
    errors = telemetry.counter("procsight_exporter_errors_total", "")
    assert errors.value(exporter="scripted", kind="retryable") == 2


def test_retries_continue_past_max_elapsed_time_and_report_it(telemetry: Telemetry) -> None:
    # 50ms max_elapsed_time with 5-20ms backoff: about ten failures take it past the limit.
    exporter = ScriptedExporter([RetryableError("down")] * 12)
    queued = QueuedExporter(exporter, QueueConfig(num_consumers=1), FAST_RETRY, telemetry)
    done = Completions()
    queued.start()
    queued.submit(make_batch("late"), done)
    assert done.wait_for(1) == [("late", True)]
    queued.shutdown()
    assert telemetry.counter("procsight_exporter_retry_overdue_batches_total", "").value(exporter="scripted") == 1


class PoisonedExporter(ScriptedExporter):
    """Refuses every batch holding a record whose body starts with "poison" (as a destination refuses
    one bad value), raising `error`; records what it delivered, record by record."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.records: list[tuple[str, str]] = []  # (record id, body)

    def export(self, batch: LogBatch) -> None:
        with self.lock:
            self.attempts += 1
            bodies = [record.body.string_value for _, _, record in batch.records()]
            if any(body.startswith("poison") for body in bodies):
                raise self.error
            self.records += [(batch.record_id(i), body) for i, body in enumerate(bodies)]


@pytest.mark.parametrize("error", [PermanentError("bad data"), OverflowError("int too big to convert")])
def test_one_refused_record_never_takes_its_batch_with_it(telemetry: Telemetry, error: Exception) -> None:
    exporter = PoisonedExporter(error)
    queued = QueuedExporter(exporter, QueueConfig(num_consumers=1), FAST_RETRY, telemetry)
    done = Completions()
    queued.start()
    batch = make_batch("p", records=201)
    batch.logs.resource_logs[0].scope_logs[0].log_records[77].body.string_value = "poison"
    queued.submit(batch, done)
    queued.submit(make_batch("q"), done)
    assert done.wait_for(2) == [("p", False), ("q", True)]
    queued.shutdown()
    stored = dict(exporter.records)
    assert len(stored) == 200 + 2 and "poison" not in stored.values()
    # Every delivered record keeps the id it had in the whole batch (the ClickHouse exactly-once key).
    assert all(stored[f"p:{i}"] == f"p-{i}" for i in range(201) if i != 77)
    failed = telemetry.counter("procsight_exporter_send_failed_log_records_total", "")
    assert failed.value(exporter="scripted", reason="permanent") == 1
    assert telemetry.counter("procsight_exporter_isolated_log_records_total", "").value(exporter="scripted") == 1
    assert exporter.attempts <= 2 + 2 * 8  # about 2·log2(201) attempts to find one record


def test_a_batch_refused_record_by_record_drops_each_and_counts_them(telemetry: Telemetry) -> None:
    exporter = PoisonedExporter(PermanentError("schema mismatch"))
    queued = QueuedExporter(exporter, QueueConfig(enabled=False), FAST_RETRY, telemetry)
    done = Completions()
    queued.start()
    batch = make_batch("k", records=5)
    for record in batch.logs.resource_logs[0].scope_logs[0].log_records:
        record.body.string_value = "poison " + record.body.string_value
    queued.submit(batch, done)
    assert done.calls == [("k", False)] and exporter.records == []
    queued.shutdown()
    failed = telemetry.counter("procsight_exporter_send_failed_log_records_total", "")
    assert failed.value(exporter="scripted", reason="permanent") == 5


def test_retry_disabled_drops_like_the_collector(telemetry: Telemetry) -> None:
    exporter = ScriptedExporter([RetryableError("down")])
    queued = QueuedExporter(exporter, QueueConfig(enabled=False), RetryConfig(enabled=False), telemetry)
    done = Completions()
    queued.start()
    queued.submit(make_batch("d"), done)
    queued.shutdown()
    assert done.calls == [("d", False)]
    assert exporter.attempts == 1


def test_submit_blocks_while_the_queue_is_full(telemetry: Telemetry) -> None:
    gate = threading.Event()
    exporter = ScriptedExporter(gate=gate)
    queued = QueuedExporter(exporter, QueueConfig(num_consumers=1, queue_size=2), FAST_RETRY, telemetry)
    done = Completions()
    queued.start()
    # One batch is held by the consumer, two fill the queue; the fourth submit must wait.
    for i in range(3):
        queued.submit(make_batch(str(i)), done)
    time.sleep(0.05)
    fourth_returned = threading.Event()

    def submit_fourth() -> None:
        queued.submit(make_batch("3"), done)
        fourth_returned.set()

    thread = threading.Thread(target=submit_fourth)
    thread.start()
    assert not fourth_returned.wait(0.3)
    assert queued.queue_depth() == 2
    gate.set()
    assert fourth_returned.wait(5)
    thread.join()
    assert len(done.wait_for(4)) == 4
    queued.shutdown()


def test_the_items_sizer_counts_log_records(telemetry: Telemetry) -> None:
    gate = threading.Event()
    exporter = ScriptedExporter(gate=gate)
    queued = QueuedExporter(exporter, QueueConfig(num_consumers=1, queue_size=5, sizer="items"), FAST_RETRY, telemetry)
    done = Completions()
    queued.start()
    queued.submit(make_batch("held", records=1), done)  # taken by the consumer, which waits at the gate
    time.sleep(0.05)
    queued.submit(make_batch("a", records=3), done)
    queued.submit(make_batch("b", records=2), done)  # 5 records queued: full
    blocked = threading.Thread(target=queued.submit, args=(make_batch("c", records=1), done))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive() and queued.queue_depth() == 2
    gate.set()
    blocked.join(5)
    assert sorted(batch for batch, _ in done.wait_for(4)) == ["a", "b", "c", "held"]
    # a batch bigger than the whole queue still goes, alone
    queued.submit(make_batch("big", records=50), done)
    assert ("big", True) in done.wait_for(5)
    queued.shutdown()


def test_shutdown_leaves_undeliverable_batches_for_replay(telemetry: Telemetry) -> None:
    exporter = ScriptedExporter([RetryableError("down")] * 1000)
    queued = QueuedExporter(exporter, QueueConfig(num_consumers=1), FAST_RETRY, telemetry)
    done = Completions()
    queued.start()
    queued.submit(make_batch("x"), done)
    queued.submit(make_batch("y"), done)
    queued.shutdown(timeout=0.2)
    # Neither batch is reported: the pipeline keeps their spool entries and replays them on restart.
    assert done.calls == []
    assert exporter.delivered == []
    with pytest.raises(ExporterStoppedError):
        queued.submit(make_batch("z"), done)
