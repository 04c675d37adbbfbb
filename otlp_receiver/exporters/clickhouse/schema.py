"""The `security_events` table: the upstream Collector exporter's logs schema plus procsight's columns.

One DDL for both transports. The columns up to EventName are the long-standing ones of the OpenTelemetry
Collector ClickHouse exporter's logs table, so Grafana's ClickHouse log views read the table as is;
docs/records.md lists every column.
"""

from __future__ import annotations

# Inserts carrying the same insert_deduplication_token within this many recent blocks are ignored, so a
# batch replayed after a crash lands once. Generous: the spool can hold many batches before a replay.
DEDUPLICATION_WINDOW = 10_000

# Columns the exporter writes, in insert order (TimestampTime is derived by the table).
INSERT_COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "TraceFlags", "SeverityText", "SeverityNumber", "ServiceName", "Body",
    "ResourceSchemaUrl", "ResourceAttributes", "ScopeSchemaUrl", "ScopeName", "ScopeVersion", "ScopeAttributes",
    "LogAttributes", "EventName", "AnomalyScore", "AnomalySeverity", "Workload", "TenantId", "RecordId", "Embedding",
)

_COLUMNS = """
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    EventName String CODEC(ZSTD(1)),
    AnomalyScore Float32 CODEC(ZSTD(1)),
    AnomalySeverity LowCardinality(String) CODEC(ZSTD(1)),
    Workload LowCardinality(String) CODEC(ZSTD(1)),
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    RecordId String CODEC(ZSTD(1)),
    Embedding Array(Float32) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_body Body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8,
    INDEX idx_anomaly_score AnomalyScore TYPE minmax GRANULARITY 1"""


def ttl_clause(seconds: float) -> str:
    """Upstream's TTL: whole days when it can, else hours, minutes, seconds; nothing for 0."""
    whole = int(seconds)
    if whole <= 0:
        return ""
    for unit, size in (("Day", 86400), ("Hour", 3600), ("Minute", 60)):
        if whole % size == 0:
            return f"TTL TimestampTime + toInterval{unit}({whole // size})"
    return f"TTL TimestampTime + toIntervalSecond({whole})"


def create_database_sql(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS `{database}`"


def create_table_sql(database: str, table: str, ttl_seconds: float) -> str:
    """`database` and `table` are validated identifiers (Config.validate); backticks guard them anyway."""
    return (
        f"CREATE TABLE IF NOT EXISTS `{database}`.`{table}` ({_COLUMNS}\n)\n"
        "ENGINE = MergeTree\n"
        "PARTITION BY toDate(TimestampTime)\n"
        "PRIMARY KEY (ServiceName, TimestampTime)\n"
        "ORDER BY (ServiceName, TimestampTime, Timestamp)\n"
        f"{ttl_clause(ttl_seconds)}\n"
        "SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, "
        f"non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}"
    )
