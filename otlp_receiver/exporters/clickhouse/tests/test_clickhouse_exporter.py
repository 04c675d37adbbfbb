"""Inserts through the embedded engine and over HTTP: columns, exactly-once, existing tables, failures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from chdb_http_bridge import ChdbHttpBridge
from clickhouse_batches import HOSTILE, column_types, make_batch, make_exporter, rows, start_encoder
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from core.confmap import ConfigError, decode
from otlp_receiver.component import LogBatch, PermanentError, RetryableError
from otlp_receiver.exporterhelper import QueuedExporter
from otlp_receiver.exporters.clickhouse import exporter as exporter_module
from otlp_receiver.exporters.clickhouse.columns import encode_parts, value_to_text
from otlp_receiver.exporters.clickhouse.exporter import OFFLOAD_MIN_RECORDS
from otlp_receiver.exporters.clickhouse.schema import INSERT_COLUMNS, create_database_sql
from otlp_receiver.exporters.clickhouse.transport import ChdbTransport, classify
from otlp_receiver.telemetry import Telemetry
from testing import NoSmallFileSystem, free_port, self_signed_cert, small_file_system
from testing.otlp_values import any_value

# The upstream exporter's logs table as v0.150 and earlier created it (TimestampTime, no materialized columns),
# and as the current generation does without procsight's columns: tables users already have.
UPSTREAM_V0_150 = """CREATE TABLE {table} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)), TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    TraceId String CODEC(ZSTD(1)), SpanId String CODEC(ZSTD(1)), TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)), SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)), Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)), ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)), EventName String CODEC(ZSTD(1)),
    INDEX idx_body Body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = MergeTree PARTITION BY toDate(TimestampTime) PRIMARY KEY (ServiceName, TimestampTime)
ORDER BY (ServiceName, TimestampTime, Timestamp) SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""
# procsight's table before the incident columns (its DDL of the previous release, abridged to its columns).
PROCSIGHT_PREVIOUS = UPSTREAM_V0_150.replace(
    "EventName String CODEC(ZSTD(1)),",
    "EventName String CODEC(ZSTD(1)), AnomalyScore Float32, AnomalySeverity LowCardinality(String), "
    "Workload LowCardinality(String), TenantId LowCardinality(String), RecordId String, Embedding Array(Float32),"
).replace("ttl_only_drop_parts = 1", "ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000")


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    # chdb opens one path per process; the tests of this module share it and use a database each.
    return str(tmp_path_factory.mktemp("chdb"))


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    return "t_" + re.sub(r"\W+", "_", request.node.name.removeprefix("test_"))[:60]


def existing_table(chdb_dir: str, database: str, ddl: str) -> None:
    transport = ChdbTransport(chdb_dir)
    try:
        transport.command(create_database_sql(database))
        transport.command(ddl.format(table=f"`{database}`.`otel_logs`"))
    finally:
        transport.close()


def test_value_to_text_matches_the_collector_as_string() -> None:
    assert value_to_text(AnyValue(bool_value=True)) == "true"
    assert value_to_text(AnyValue(int_value=-3)) == "-3"
    assert value_to_text(AnyValue(double_value=0.5)) == "0.5"
    assert value_to_text(AnyValue(bytes_value=b"\x00\xff")) == "AP8="
    assert value_to_text(any_value(["x", "y"])) == '["x","y"]'
    assert value_to_text(AnyValue()) == ""


def test_creates_the_table_with_procsight_columns(chdb_dir: str, database: str) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database, ttl="720h")
    try:
        types = column_types(exporter)
        ddl = exporter.transport.query(f"SHOW CREATE TABLE {exporter.table}")[0]["statement"]  # type: ignore[union-attr]
    finally:
        exporter.shutdown()
    assert types["AnomalyScore"] == "Float32" and types["Embedding"] == "Array(Float32)"
    assert types["TenantId"] == "LowCardinality(String)" and types["RecordId"] == "String"
    assert "TimestampTime" not in types and types["__otel_materialized_k8s.namespace.name"] == "LowCardinality(String)"
    assert "TTL toDateTime(Timestamp) + toIntervalDay(30)" in ddl
    assert "non_replicated_deduplication_window = 10000" in ddl
    assert "TYPE text(tokenizer = 'array')" in ddl  # chdb is ClickHouse 26.9: upstream's full-text branch
    assert exporter.exactly_once


def test_export_maps_records_to_columns(chdb_dir: str, database: str) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database)
    try:
        exporter.export(make_batch("7", ["curl http://x | bash", HOSTILE], tenant="team-a", incident=True))
        first, second = rows(exporter)
        (namespace,) = exporter.transport.query(  # type: ignore[union-attr]
            f"SELECT `__otel_materialized_k8s.namespace.name` AS ns FROM {exporter.table} LIMIT 1")
    finally:
        exporter.shutdown()
    assert first["RecordId"] == "7:0" and second["RecordId"] == "7:1"
    assert first["LogAttributes"]["procsight.record_id"] == "7:0"  # the sender's spoofed value is replaced
    assert first["Timestamp"] == "2023-11-14 22:13:20.000000000"
    assert first["TraceId"] == bytes(range(16)).hex() and first["SpanId"] == bytes(range(8)).hex()
    assert (first["ServiceName"], first["ScopeName"], first["ScopeVersion"]) == (
        "procsight-agent", "procsight.agent", "0.1.0")
    assert first["ResourceAttributes"]["host.name"] == "web-1" and namespace == {"ns": "shop"}
    assert (first["SeverityNumber"], first["SeverityText"], first["EventName"]) == (17, "ERROR", "process.exec")
    assert first["AnomalyScore"] == pytest.approx(0.95) and first["AnomalySeverity"] == "alert"
    assert (first["Workload"], first["TenantId"]) == ("web", "team-a")
    assert first["LogAttributes"]["process.pid"] == "1000"
    assert first["LogAttributes"]["process.command_args"] == '["curl","http://x","|","bash"]'
    assert first["Embedding"] == [1.0, 0.0, 0.0, 0.0]
    assert (first["AnomalyIncident"], first["AnomalyTechniques"]) == ("inc-7", ["T1059.004", "T1105"])
    assert first["AnomalyIncidentScore"] == pytest.approx(0.97)
    assert first["LogAttributes"]["anomaly_techniques"] == '["T1059.004","T1105"]'  # the attribute stays too
    assert (second["AnomalyIncident"], second["AnomalyIncidentScore"], second["AnomalyTechniques"]) == ("", 0, [])
    assert second["Body"] == HOSTILE and second["LogAttributes"]["process.command_line"] == HOSTILE


def test_out_of_range_times_insert_next_to_good_ones(chdb_dir: str, database: str) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database)
    batch = make_batch("1", ["good", "far future", "no time", "nothing valid"], scored=False)
    records = batch.logs.resource_logs[0].scope_logs[0].log_records
    records[1].time_unix_nano = 2**64 - 1  # the largest OTLP time: beyond DateTime64(9)
    records[2].time_unix_nano = 0
    records[3].time_unix_nano = records[3].observed_time_unix_nano = 2**64 - 1
    try:
        exporter.export(batch)
        times = {row["Body"]: row["Timestamp"] for row in rows(exporter)}
    finally:
        exporter.shutdown()
    assert times["good"] == "2023-11-14 22:13:20.000000000"
    assert times["far future"] == times["no time"] == "2023-11-14 22:13:21.000000000"  # the observed time
    assert times["nothing valid"] == "1970-01-01 00:00:00.000000000"


def test_unscored_records_have_no_embedding(chdb_dir: str, database: str) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database)
    try:
        exporter.export(make_batch("1", ["ls"], scored=False))
        (row,) = rows(exporter)
    finally:
        exporter.shutdown()
    assert row["Embedding"] == [] and row["AnomalyScore"] == 0 and row["AnomalySeverity"] == ""


def test_a_time_past_2262_is_stored_with_the_receipt_time(chdb_dir: str, database: str) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database)
    batch = make_batch("9", [f"cmd {i}" for i in range(201)])
    hostile = batch.logs.resource_logs[0].scope_logs[0].log_records[100]
    hostile.time_unix_nano = (1 << 64) - 1  # the attack: every other record of the batch went with it
    hostile.observed_time_unix_nano = 1_700_000_000_000_000_000
    try:
        exporter.export(batch)
        stored = rows(exporter)
    finally:
        exporter.shutdown()
    assert len(stored) == 201
    assert stored[[r["RecordId"] for r in stored].index("9:100")]["Timestamp"] == "2023-11-14 22:13:20.000000000"


def test_a_part_split_off_a_batch_keeps_its_record_ids_in_the_helper_process(chdb_dir: str, database: str) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database)
    batch = make_batch("s", [f"cmd {i}" for i in range(2 * OFFLOAD_MIN_RECORDS)])
    try:
        start_encoder(exporter)
        exporter.export(batch.part(OFFLOAD_MIN_RECORDS - 10, 2 * OFFLOAD_MIN_RECORDS))
        ids = {r["RecordId"] for r in rows(exporter)}
    finally:
        exporter.shutdown()
    assert ids == {f"s:{i}" for i in range(OFFLOAD_MIN_RECORDS - 10, 2 * OFFLOAD_MIN_RECORDS)}


@pytest.mark.parametrize("async_insert", [False, True])
def test_replayed_batch_lands_exactly_once(chdb_dir: str, database: str, async_insert: bool) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database, async_insert=async_insert)
    try:
        batch = make_batch("42", [f"cmd {i}" for i in range(100)])
        for _ in range(3):  # the original and two replays after crashes
            exporter.export(batch)
        exporter.export(make_batch("43", ["other"]))
        stats = exporter.transport.query(  # type: ignore[union-attr]
            f"SELECT count() AS n, uniqExact(RecordId) AS ids FROM {exporter.table}")
    finally:
        exporter.shutdown()
    assert stats == [{"n": 101, "ids": 101}]


@pytest.mark.parametrize(("message", "retryable"), [
    ("Code: 243. DB::Exception: Cannot reserve 2.88 MiB, not enough space. (NOT_ENOUGH_SPACE)", True),
    ("Code: 75. DB::Exception: Cannot write to file /var/lib/clickhouse/x: (CANNOT_WRITE_TO_FILE_DESCRIPTOR)", True),
    ("Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)", True),
    ("Code: 62. DB::Exception: Syntax error: failed at position 1. (SYNTAX_ERROR)", False),
])
def test_a_server_out_of_disk_is_retried_and_a_wrong_statement_is_not(message: str, retryable: bool) -> None:
    """A server's full disk was a permanent failure: its batches were refused for good, and lost."""
    assert isinstance(classify(RuntimeError(message)), RetryableError) is retryable


# In a process of its own: chdb opens one path per process, and this one is on a small file system.
FULL_DISK_EXPORT = """
import os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from clickhouse_batches import make_batch, make_exporter
from otlp_receiver.component import RetryableError
from testing import fill
disk = Path(sys.argv[1])
exporter = make_exporter(f"chdb://{disk / 'clickhouse'}", "full")
filler = fill(disk, leave=256 * 1024)
batch = make_batch("full-1", [os.urandom(500).hex() for _ in range(3000)])  # about 1.5 MB once compressed
try:
    exporter.export(batch)
    print("exported while full")
except RetryableError as error:
    print("retryable:", error)
filler.unlink()
exporter.export(batch)  # the retry, once there is room
(stored,) = exporter.transport.query(f"SELECT count() AS n, uniqExact(RecordId) AS ids FROM {exporter.table}")
print("stored", stored["n"], stored["ids"])
exporter.shutdown()
"""


def test_a_full_disk_is_a_retryable_failure_not_a_lost_batch(tmp_path: Path) -> None:
    """chdb's streaming insert reported the rows of a part it could not write (NOT_ENOUGH_SPACE) as written: the batch
    was committed and lost. The retry after the disk has room again stores it once."""
    try:
        with small_file_system(tmp_path / "disk", size="32m") as disk:
            ran = subprocess.run([sys.executable, "-c", FULL_DISK_EXPORT, str(disk), str(Path(__file__).parent)],
                                 capture_output=True, text=True, timeout=120, check=False)
    except NoSmallFileSystem as exc:
        pytest.skip(f"NOT CHECKED: {exc}")
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "retryable: the embedded ClickHouse did not keep the 3000 rows it took: is its disk full?" in ran.stdout
    assert "stored 3000 3000" in ran.stdout


def test_large_batches_are_encoded_in_the_helper_process(chdb_dir: str, database: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database)
    commands = [f"worker --item={i} {HOSTILE}" for i in range(OFFLOAD_MIN_RECORDS + 500)]
    try:
        start_encoder(exporter)
        monkeypatch.setattr(exporter_module, "encode_parts", refuse_to_encode_here)
        batch = make_batch("big", commands)
        exporter.export(batch)
        exporter.export(batch)  # a replay through the helper process is deduplicated too
        stats = exporter.transport.query(  # type: ignore[union-attr]
            "SELECT count() AS n, uniqExact(RecordId) AS ids, countIf(Body = {last:String}) AS last, "
            f"sum(length(Embedding) = 4) AS embedded FROM {exporter.table}", {"last": commands[-1]})
    finally:
        exporter.shutdown()
    assert stats == [{"n": len(commands), "ids": len(commands), "last": 1, "embedded": len(commands)}]
    assert exporter._encoder is None


def refuse_to_encode_here(*_args: object) -> list[bytes]:
    raise AssertionError("encoded in the receiver's process")


def fail_to_start(_parent: int) -> None:
    raise OSError("no process for you")


def test_an_encoder_process_that_cannot_start_costs_no_record(chdb_dir: str, database: str,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(exporter_module, "exit_with_parent", fail_to_start)  # the helper's initializer
    exporter = make_exporter(f"chdb://{chdb_dir}", database)
    try:
        for index in range(2):
            exporter.export(make_batch(str(index), [f"cmd {index} {i}" for i in range(OFFLOAD_MIN_RECORDS)]))
            assert exporter._encoder_up is not None
            with pytest.raises(BrokenProcessPool):
                exporter._encoder_up.result(timeout=120)
        exporter.export(make_batch("2", [f"last {i}" for i in range(OFFLOAD_MIN_RECORDS)]))
        (count,) = exporter.transport.query(f"SELECT count() AS n FROM {exporter.table}")  # type: ignore[union-attr]
    finally:
        exporter.shutdown()
    assert count == {"n": 3 * OFFLOAD_MIN_RECORDS}  # all encoded in place
    assert caplog.text.count("the encoder process did not start") == 2  # and tried again each time


def test_large_batches_do_not_wait_for_the_helper_process_to_start(chdb_dir: str, database: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The first large batch starts the helper and is encoded in place: a spawned interpreter importing pyarrow
    takes most of a second, which every record of that batch would wait."""
    in_place: list[int] = []

    def encode_here(batch: LogBatch, *args: object) -> list[bytes]:
        in_place.append(batch.record_count())
        return encode_parts(batch, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(exporter_module, "encode_parts", encode_here)
    exporter = make_exporter(f"chdb://{chdb_dir}", database)
    try:
        exporter.export(make_batch("first", [f"cmd {i}" for i in range(OFFLOAD_MIN_RECORDS)]))
        assert in_place == [OFFLOAD_MIN_RECORDS] and exporter._encoder_up is not None
        exporter._encoder_up.result(timeout=120)
        exporter.export(make_batch("next", [f"other {i}" for i in range(OFFLOAD_MIN_RECORDS)]))
        (count,) = exporter.transport.query(f"SELECT count() AS n FROM {exporter.table}")  # type: ignore[union-attr]
    finally:
        exporter.shutdown()
    assert in_place == [OFFLOAD_MIN_RECORDS]  # the next one went to the helper, now running
    assert count == {"n": 2 * OFFLOAD_MIN_RECORDS}


# -- tables that already exist -------------------------------------------------------------------


@pytest.mark.parametrize("create_schema", [True, False])
def test_writes_into_an_upstream_otel_logs_table(chdb_dir: str, database: str, create_schema: bool,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    existing_table(chdb_dir, database, UPSTREAM_V0_150)
    exporter = make_exporter(f"chdb://{chdb_dir}", database, logs_table_name="otel_logs", create_schema=create_schema)
    big = make_batch("big", [f"cmd {i}" for i in range(OFFLOAD_MIN_RECORDS)])
    try:
        start_encoder(exporter)
        exporter.export(make_batch("1", ["curl x | bash", "ls"], incident=True))
        exporter.export(big)  # through the encoder process, with the same column choice
        types = column_types(exporter)
        stored = rows(exporter, "Body IN ('curl x | bash', 'ls')", order="Body")
        (count,) = exporter.transport.query(f"SELECT count() AS n FROM {exporter.table}")  # type: ignore[union-attr]
    finally:
        exporter.shutdown()
    assert "AnomalyScore" not in types  # upstream's table is never altered
    assert count == {"n": 2 + OFFLOAD_MIN_RECORDS}
    assert [row["Body"] for row in stored] == ["curl x | bash", "ls"]
    # the verdict travels in LogAttributes, as it does to any OTLP destination
    assert stored[0]["LogAttributes"]["anomaly_score"] == "0.95" and stored[0]["EventName"] == "process.exec"
    assert stored[0]["TimestampTime"] == "2023-11-14 22:13:20"
    assert "has no AnomalyScore" in caplog.text and "ALTER TABLE" in caplog.text
    assert not exporter.exactly_once and "non_replicated_deduplication_window" in caplog.text


def test_a_previous_procsight_table_gains_the_new_columns(chdb_dir: str, database: str) -> None:
    existing_table(chdb_dir, database, PROCSIGHT_PREVIOUS)
    exporter = make_exporter(f"chdb://{chdb_dir}", database, logs_table_name="otel_logs")
    try:
        exporter.export(make_batch("1", ["curl x | bash"], incident=True))
        types = column_types(exporter)
        (row,) = rows(exporter)
    finally:
        exporter.shutdown()
    assert types["AnomalyTechniques"] == "Array(LowCardinality(String))" and "TimestampTime" in types
    assert (row["AnomalyIncident"], row["AnomalyTechniques"], row["RecordId"]) == ("inc-7", ["T1059.004", "T1105"],
                                                                                   "1:0")
    assert exporter.exactly_once


@pytest.mark.parametrize(("ddl", "message"), [
    ("CREATE TABLE {table} (Timestamp DateTime64(9), Body String) ENGINE = MergeTree ORDER BY Timestamp",
     "missing LogAttributes, ResourceAttributes"),
    (UPSTREAM_V0_150.replace("LogAttributes Map(LowCardinality(String), String)", "LogAttributes JSON"),
     "LogAttributes: expected Map(LowCardinality(String), String), found JSON"),
], ids=["missing", "json"])
def test_an_unusable_table_fails_start_up(chdb_dir: str, database: str, ddl: str, message: str) -> None:
    existing_table(chdb_dir, database, ddl)
    exporter = make_exporter(f"chdb://{chdb_dir}", database, start=False, logs_table_name="otel_logs")
    try:
        with pytest.raises(ConfigError, match=re.escape(message)) as caught:
            exporter.start()
    finally:
        exporter.shutdown()
    assert caught.value.path == "exporters.clickhouse" and "point logs_table_name at a new table" in str(caught.value)


def test_a_missing_table_without_create_schema_fails_start_up(chdb_dir: str, database: str) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database, start=False, create_schema=False)
    try:
        with pytest.raises(ConfigError, match=r"does not exist .*create it or set create_schema: true"):
            exporter.start()
    finally:
        exporter.shutdown()


def test_a_table_changed_under_the_exporter_keeps_the_records(chdb_dir: str, database: str,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database)
    transport = exporter.transport
    assert transport is not None
    try:
        transport.command(f"ALTER TABLE {exporter.table} DROP COLUMN ScopeVersion")
        with pytest.raises(RetryableError, match="missing or changed"):
            exporter.export(make_batch("1", ["a"]))
        with pytest.raises(RetryableError, match=r"missing ScopeVersion.*records wait"):
            exporter.export(make_batch("1", ["a"]))
        assert "missing ScopeVersion" in caplog.text
        transport.command(f"ALTER TABLE {exporter.table} ADD COLUMN ScopeVersion String")
        exporter.export(make_batch("1", ["a"]))
        assert [row["Body"] for row in rows(exporter)] == ["a"]
        transport.command(f"ALTER TABLE {exporter.table} DROP INDEX idx_anomaly_incident, DROP COLUMN AnomalyIncident")
        with pytest.raises(RetryableError, match="missing or changed"):
            exporter.export(make_batch("2", ["b"]))
        exporter.export(make_batch("2", ["b"]))  # procsight's own table: the column is added back
        assert [row["Body"] for row in rows(exporter)] == ["a", "b"]
    finally:
        exporter.shutdown()


def test_a_dropped_table_is_recreated_on_retry(chdb_dir: str, database: str) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database)
    try:
        exporter.transport.command(f"DROP TABLE {exporter.table}")  # type: ignore[union-attr]
        with pytest.raises(RetryableError, match="missing"):
            exporter.export(make_batch("1", ["a"]))
        exporter.export(make_batch("1", ["a"]))
        assert len(rows(exporter)) == 1
    finally:
        exporter.shutdown()


# -- the embedded engine ---------------------------------------------------------------------------


def test_bad_sql_is_permanent(chdb_dir: str) -> None:
    transport = ChdbTransport(chdb_dir)
    try:
        with pytest.raises(PermanentError, match="Syntax error"):
            transport.query("SELEC 1")
    finally:
        transport.close()


def test_one_embedded_path_per_process(chdb_dir: str, tmp_path: Path) -> None:
    first, second = ChdbTransport(chdb_dir), ChdbTransport(chdb_dir)  # the exporter and the query service
    try:
        with pytest.raises(PermanentError, match="one path per process"):
            ChdbTransport(str(tmp_path / "elsewhere"))
        assert first.query("SELECT 1 AS one") == second.query("SELECT 1 AS one") == [{"one": 1}]
    finally:
        first.close()
        second.close()
    other = ChdbTransport(str(tmp_path / "elsewhere"))  # free again once every user closed it
    other.close()


def test_parameters_are_bound_not_spliced(chdb_dir: str) -> None:
    transport = ChdbTransport(chdb_dir)
    try:
        assert transport.query("SELECT {s:String} AS s, {v:Array(Float32)} AS v", {"s": HOSTILE, "v": [0.5]}) == [
            {"s": HOSTILE, "v": [0.5]}]
    finally:
        transport.close()


# -- a server over HTTP ----------------------------------------------------------------------------


def test_http_transport_same_rows_and_dedup_chdb_bridge_fake_server(chdb_dir: str, database: str) -> None:
    with ChdbHttpBridge(chdb_dir) as bridge:
        exporter = make_exporter(bridge.url, database)
        try:
            batch = make_batch("9", ["nginx -g daemon off;", HOSTILE], incident=True)
            exporter.export(batch)
            exporter.export(batch)
            received = rows(exporter)
        finally:
            exporter.shutdown()
        inserts = [sql for sql in bridge.requests if sql.startswith("INSERT")]
    assert [r["RecordId"] for r in received] == ["9:0", "9:1"]
    assert received[1]["Body"] == HOSTILE and received[0]["AnomalyScore"] == pytest.approx(0.95)
    assert received[0]["AnomalyTechniques"] == ["T1059.004", "T1105"]
    assert len(inserts) == 2 and all("FORMAT ArrowStream" in sql for sql in inserts)


def test_http_url_credentials_database_and_parameters_chdb_bridge_fake_server(chdb_dir: str, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    with ChdbHttpBridge(chdb_dir, tls=(cert, key)) as bridge:
        endpoint = f"https://alice:s%3Acret@127.0.0.1:{bridge.port}/from_url?max_execution_time=30"
        exporter = make_exporter(endpoint, "", tls={"ca_file": str(cert)}, connection_params={"max_threads": "2"})
        try:
            exporter.export(make_batch("1", ["ls"]))
            (row,) = rows(exporter)
        finally:
            exporter.shutdown()
    assert exporter.table == "`from_url`.`security_events`" and row["Body"] == "ls"
    assert bridge.users == {"alice"}
    ours = [params for sql, params in zip(bridge.requests, bridge.params, strict=True)
            if sql.startswith(("CREATE", "INSERT"))]  # not the driver's own start-up probes
    assert len(ours) == 3 and all(params["max_execution_time"] == "30" and params["max_threads"] == "2"
                                  for params in ours)


def test_unknown_settings_fail_start_up_chdb_bridge_fake_server(chdb_dir: str, database: str) -> None:
    with ChdbHttpBridge(chdb_dir) as bridge:
        exporter = make_exporter(bridge.url + "?max_execution_timeout=30", database, start=False)
        try:
            with pytest.raises(ConfigError, match="max_execution_timeout in the endpoint or connection_params"):
                exporter.start()
        finally:
            exporter.shutdown()


def test_clickhouse_outage_retries_then_drains_chdb_bridge_fake_server(chdb_dir: str, database: str) -> None:
    port = free_port()  # nothing listens yet: connections are refused, as with ClickHouse down
    exporter = make_exporter(f"http://127.0.0.1:{port}", database, timeout="1s")
    with pytest.raises(RetryableError, match="unreachable"):
        exporter.export(make_batch("0", ["a"]))
    telemetry = Telemetry()
    queued = QueuedExporter(exporter, exporter.config.sending_queue,
                            decode(type(exporter.config.retry_on_failure),
                                   {"initial_interval": "20ms", "max_interval": "100ms"}), telemetry)
    delivered: list[tuple[str, bool]] = []
    all_done = threading.Event()

    def done(batch: LogBatch, ok: bool) -> None:
        delivered.append((batch.batch_id, ok))
        if len(delivered) == 5:
            all_done.set()

    queued.start()
    for i in range(5):
        queued.submit(make_batch(str(i), [f"cmd {i}", "ls"]), done)
    time.sleep(0.3)
    assert delivered == []
    assert telemetry.counter("procsight_exporter_errors_total", "").value(exporter="clickhouse", kind="retryable") > 0
    with ChdbHttpBridge(chdb_dir, port=port):  # ClickHouse is back
        assert all_done.wait(20)
        queued.shutdown()
        transport = ChdbTransport(chdb_dir)
        try:
            stats = transport.query(f"SELECT count() AS n, uniqExact(RecordId) AS ids FROM {exporter.table}")
        finally:
            transport.close()
    assert sorted(delivered) == [(str(i), True) for i in range(5)]
    assert stats == [{"n": 10, "ids": 10}]


@pytest.mark.skipif(not os.environ.get("CLICKHOUSE_URL"),
                    reason="set CLICKHOUSE_URL=http://user:password@host:8123 or tcp://user:password@host:9000 to "
                           "test against a real ClickHouse server")
def test_real_clickhouse_server(database: str) -> None:
    exporter = make_exporter(os.environ["CLICKHOUSE_URL"], database, compress="lz4")
    try:
        batch = make_batch("1", ["curl x | bash", HOSTILE], incident=True)
        exporter.export(batch)
        exporter.export(batch)
        received = rows(exporter)
        assert [r["RecordId"] for r in received] == ["1:0", "1:1"] and received[1]["Body"] == HOSTILE
        assert received[0]["AnomalyTechniques"] == ["T1059.004", "T1105"]
        assert exporter.ensure_schema() == INSERT_COLUMNS
    finally:
        exporter.transport.command(f"DROP DATABASE IF EXISTS `{database}`")  # type: ignore[union-attr]
        exporter.shutdown()


