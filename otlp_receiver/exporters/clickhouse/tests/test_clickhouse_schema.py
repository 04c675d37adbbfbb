"""The table: upstream's current logs DDL plus procsight's columns, its variants, and the checks of existing tables."""

from __future__ import annotations

import pytest

from otlp_receiver.exporters.clickhouse.config import TableEngine
from otlp_receiver.exporters.clickhouse.schema import (
    INSERT_COLUMNS,
    add_columns_sql,
    check_table,
    create_database_sql,
    create_table_sql,
    parse_version,
    ttl_clause,
    type_family,
)
from otlp_receiver.exporters.clickhouse.transport import ChdbTransport


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> ChdbTransport:
    transport = ChdbTransport(str(tmp_path_factory.mktemp("chdb")))
    yield transport
    transport.close()


@pytest.mark.parametrize(("seconds", "clause"), [
    (0, ""), (720 * 3600, "TTL toDateTime(Timestamp) + toIntervalDay(30)"),
    (36 * 3600, "TTL toDateTime(Timestamp) + toIntervalHour(36)"),
    (90 * 60, "TTL toDateTime(Timestamp) + toIntervalMinute(90)"),
    (45, "TTL toDateTime(Timestamp) + toIntervalSecond(45)"),
])
def test_ttl_clause_follows_upstream(seconds: int, clause: str) -> None:
    assert ttl_clause(seconds) == clause


def test_ddl_is_upstreams_current_generation() -> None:
    # the assertions of upstream's own TestRenderCreateLogsTableSQL, and its index branches
    ddl = create_table_sql("test_db", "otel_logs")
    assert "`test_db`.`otel_logs`" in ddl and "toStartOfFiveMinutes(Timestamp)" in ddl
    assert "`EventName` String" in ddl and "`__otel_materialized_k8s.namespace.name`" in ddl
    assert "TimestampTime" not in ddl and "PARTITION BY toDate(Timestamp)" in ddl
    assert "idx_lower_body lower(Body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8" in ddl
    assert "TYPE text(tokenizer = 'array')" in create_table_sql("d", "t", full_text_search=True)
    assert "ENGINE = MergeTree()" in ddl and "non_replicated_deduplication_window = 10000" in ddl


def test_cluster_and_replicated_ddl_parse_on_real_clickhouse(engine: ChdbTransport) -> None:
    # No Keeper or cluster runs here, so the statements are parsed, not run, by ClickHouse's own parser.
    replicated = TableEngine("ReplicatedMergeTree", "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'")
    statements = [
        create_database_sql("otel", "my_cluster"),
        create_table_sql("otel", "otel_logs", 72 * 3600, replicated, "my_cluster"),
        add_columns_sql("otel", "otel_logs", ["AnomalyIncident", "AnomalyTechniques"], "my_cluster"),
    ]
    for statement in statements:
        (row,) = engine.query("SELECT formatQuery({sql:String}) AS formatted", {"sql": statement})
        formatted = row["formatted"]
        assert "ON CLUSTER my_cluster" in formatted
    table = engine.query("SELECT formatQuery({sql:String}) AS f", {"sql": statements[1]})[0]["f"]
    assert "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in table
    assert "replicated_deduplication_window = 10000" in table
    assert "TTL toDateTime(Timestamp) + toIntervalDay(3)" in table


@pytest.mark.parametrize("full_text_search", [False, True])
def test_ddl_runs_and_grafana_otel_mode_reads_the_table(engine: ChdbTransport, full_text_search: bool) -> None:
    engine.command(create_database_sql("grafana"))
    engine.command(create_table_sql("grafana", f"logs_{int(full_text_search)}", 3600,
                                    full_text_search=full_text_search))
    types = {row["name"]: row["type"] for row in engine.query(f"DESCRIBE TABLE grafana.logs_{int(full_text_search)}")}
    # The plugin's OTel mode: no TimestampTime means schema 1.30.0, whose columns it selects by name.
    assert "TimestampTime" not in types
    assert types["Timestamp"] == "DateTime64(9)" and types["Body"] == "String"
    assert types["SeverityText"] == "LowCardinality(String)" and types["TraceId"] == "String"
    for name in ("ResourceAttributes", "ScopeAttributes", "LogAttributes"):
        assert types[name] == "Map(LowCardinality(String), String)"
    assert types["AnomalyTechniques"] == "Array(LowCardinality(String))"
    assert types["AnomalyIncident"] == "String" and types["AnomalyIncidentScore"] == "Float32"
    assert check_table(types).insert_columns == INSERT_COLUMNS


@pytest.mark.parametrize(("clickhouse_type", "family"), [
    ("LowCardinality(String)", "string"), ("Nullable(String)", "string"), ("FixedString(16)", "string"),
    ("UInt8", "integer"), ("Int32", "integer"), ("Float32", "float"), ("DateTime64(9, 'UTC')", "datetime64"),
    ("Map(LowCardinality(String), String)", "map"), ("Array(LowCardinality(String))", "array"), ("JSON", "JSON"),
])
def test_type_family(clickhouse_type: str, family: str) -> None:
    assert type_family(clickhouse_type) == family


def test_check_table_says_what_is_missing_or_wrong() -> None:
    upstream_v0_150 = {name: "String" for name in INSERT_COLUMNS[:16]} | {
        "Timestamp": "DateTime64(9)", "TimestampTime": "DateTime", "TraceFlags": "UInt32", "SeverityNumber": "Int32",
        "ResourceAttributes": "Map(LowCardinality(String), String)", "ScopeAttributes": "Map(String, String)",
        "LogAttributes": "Map(LowCardinality(String), String)"}
    check = check_table(upstream_v0_150)
    assert check.usable and not check.made_by_procsight
    assert check.insert_columns == INSERT_COLUMNS[:16]
    assert check.missing_procsight[:2] == ("AnomalyScore", "AnomalySeverity")
    broken = dict(upstream_v0_150, LogAttributes="JSON")
    del broken["Body"]
    check = check_table(broken)
    assert not check.usable and check.missing_required == ("Body",)
    assert check.wrong_types == ("LogAttributes: expected Map(LowCardinality(String), String), found JSON",)


def test_parse_version() -> None:
    assert parse_version("26.9.2.1") == (26, 9) and parse_version("18.16.1") == (18, 16)
    with pytest.raises(ValueError, match="not a ClickHouse version"):
        parse_version("dev")
