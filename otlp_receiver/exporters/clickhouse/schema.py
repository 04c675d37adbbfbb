"""The logs table: the upstream Collector exporter's current schema plus procsight's columns, and the checks
that an existing table can take procsight's inserts.

One DDL and one check for every transport. The upstream part follows the contrib exporter's logs template
(v0.151 and later): no `TimestampTime`, the `__otel_materialized_*` resource columns, ORDER BY five-minute
buckets, text indexes on servers from 26.2 and bloom filters before. Grafana's ClickHouse plugin reads a
table without `TimestampTime` as the current OTel schema (1.30.0). docs/records.md lists every column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from otlp_receiver.exporters.clickhouse.config import TableEngine

# Inserts carrying the same insert_deduplication_token within this many recent blocks are ignored, so a
# batch replayed after a crash lands once. Generous: the spool can hold many batches before a replay.
DEDUPLICATION_WINDOW = 10_000
FULL_TEXT_SEARCH_VERSION = (26, 2)  # upstream's switch from bloom filters to text indexes
MIN_SERVER_VERSION = (22, 8)  # Map columns, insert_deduplication_token, async insert deduplication


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str
    codec: str = "ZSTD(1)"
    family: str = "string"  # what an existing table's column must be to take the insert (see type_family)

    def ddl(self) -> str:
        codec = f" CODEC({self.codec})" if self.codec else ""
        comment = self.comment.replace("\\", "\\\\").replace("'", "\\'")
        return f"`{self.name}` {self.type} COMMENT '{comment}'{codec}"


_MAP = "Map(LowCardinality(String), String)"
# The upstream exporter's inserted columns, in its order; all but EventName exist in every generation of its table.
UPSTREAM_COLUMNS = (
    Column("Timestamp", "DateTime64(9)", "Event timestamp with nanosecond precision", "Delta(8), ZSTD(1)",
           "datetime64"),
    Column("TraceId", "String", "W3C trace identifier"),
    Column("SpanId", "String", "W3C span identifier"),
    Column("TraceFlags", "UInt8", "W3C trace flags", "", "integer"),
    Column("SeverityText", "LowCardinality(String)", "Log severity as text"),
    Column("SeverityNumber", "UInt8", "Log severity as number (1-24)", "", "integer"),
    Column("ServiceName", "LowCardinality(String)", "Service that emitted the log"),
    Column("Body", "String", "Log message body"),
    Column("ResourceSchemaUrl", "LowCardinality(String)", "Schema URL for the resource"),
    Column("ResourceAttributes", _MAP, "Resource attributes as key-value pairs", family="map"),
    Column("ScopeSchemaUrl", "LowCardinality(String)", "Schema URL for the instrumentation scope"),
    Column("ScopeName", "String", "Instrumentation scope name"),
    Column("ScopeVersion", "LowCardinality(String)", "Instrumentation scope version"),
    Column("ScopeAttributes", _MAP, "Instrumentation scope attributes", family="map"),
    Column("LogAttributes", _MAP, "Log record attributes", family="map"),
    Column("EventName", "String", "Event name for log records representing events"),
)
# procsight's verdict and keys: filled from the anomaly processor's attributes (core/semconv.py).
PROCSIGHT_COLUMNS = (
    Column("AnomalyScore", "Float32", "anomaly_score: 0 (usual) to 1 (never seen, with evidence)", family="float"),
    Column("AnomalySeverity", "LowCardinality(String)", "anomaly_severity: none, warn or alert"),
    Column("Workload", "LowCardinality(String)", "anomaly_workload: the baseline the record was scored against"),
    Column("TenantId", "LowCardinality(String)", "Tenant of the sender (bearer token), default without auth"),
    Column("RecordId", "String", "procsight.record_id: {batch id}:{ordinal}, the exactly-once key"),
    Column("Embedding", "Array(Float32)", "Feature vector of scored records, for similarity search",
           family="array"),
    Column("AnomalyIncident", "String", "anomaly_incident: the chain of processes the record belongs to"),
    Column("AnomalyIncidentScore", "Float32", "anomaly_incident_score: the chain's score", family="float"),
    Column("AnomalyTechniques", "Array(LowCardinality(String))", "anomaly_techniques: ATT&CK technique ids",
           family="array"),
)
ALL_COLUMNS = UPSTREAM_COLUMNS + PROCSIGHT_COLUMNS
INSERT_COLUMNS = tuple(column.name for column in ALL_COLUMNS)
REQUIRED_COLUMNS = frozenset(column.name for column in UPSTREAM_COLUMNS[:15])  # every upstream table has these
# Resource attributes upstream materializes into columns, for fast filters in Grafana.
MATERIALIZED_ATTRIBUTES = ("k8s.cluster.name", "k8s.container.name", "k8s.deployment.name", "k8s.namespace.name",
                           "k8s.node.name", "k8s.pod.name", "k8s.pod.uid", "deployment.environment.name")

_BLOOM_INDEXES = (
    "INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1",
    "INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
    "INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
    "INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
    "INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
    "INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
    "INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
    "INDEX idx_lower_body lower(Body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8",
)
_TEXT_INDEXES = (
    "INDEX idx_trace_id TraceId TYPE text(tokenizer = 'array')",
    "INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE text(tokenizer = 'array')",
    "INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE text(tokenizer = 'array')",
    "INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE text(tokenizer = 'array')",
    "INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE text(tokenizer = 'array')",
    "INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE text(tokenizer = 'array')",
    "INDEX idx_log_attr_value mapValues(LogAttributes) TYPE text(tokenizer = 'array')",
    "INDEX idx_lower_body lower(Body) TYPE text(tokenizer = 'splitByNonAlpha')",
)
# procsight's skip indexes, by the column they serve: triage filters on scores, incidents and techniques.
PROCSIGHT_INDEXES = {
    "AnomalyScore": "INDEX idx_anomaly_score AnomalyScore TYPE minmax GRANULARITY 1",
    "AnomalyIncident": "INDEX idx_anomaly_incident AnomalyIncident TYPE bloom_filter(0.01) GRANULARITY 1",
    "AnomalyIncidentScore": "INDEX idx_anomaly_incident_score AnomalyIncidentScore TYPE minmax GRANULARITY 1",
    "AnomalyTechniques": "INDEX idx_anomaly_techniques AnomalyTechniques TYPE bloom_filter(0.01) GRANULARITY 1",
}


def _qualified(database: str, table: str) -> str:
    """`database` and `table` are validated identifiers (Config.validate); backticks guard them anyway."""
    return f"`{database}`.`{table}`"


def _on_cluster(cluster: str) -> str:
    return f" ON CLUSTER {cluster}" if cluster else ""


def ttl_clause(seconds: float) -> str:
    """Upstream's TTL: whole days when it can, else hours, minutes, seconds; nothing for 0."""
    whole = int(seconds)
    if whole <= 0:
        return ""
    for unit, size in (("Day", 86400), ("Hour", 3600), ("Minute", 60)):
        if whole % size == 0:
            return f"TTL toDateTime(Timestamp) + toInterval{unit}({whole // size})"
    return f"TTL toDateTime(Timestamp) + toIntervalSecond({whole})"


def create_database_sql(database: str, cluster: str = "") -> str:
    return f"CREATE DATABASE IF NOT EXISTS `{database}`{_on_cluster(cluster)}"


def create_table_sql(database: str, table: str, ttl_seconds: float = 0, engine: TableEngine | None = None,
                     cluster: str = "", full_text_search: bool = False) -> str:
    engine = engine or TableEngine()
    materialized = [f"`__otel_materialized_{name}` LowCardinality(String) MATERIALIZED ResourceAttributes['{name}'] "
                    "CODEC(ZSTD(1))" for name in MATERIALIZED_ATTRIBUTES]
    indexes = (_TEXT_INDEXES if full_text_search else _BLOOM_INDEXES) + tuple(PROCSIGHT_INDEXES.values())
    body = ",\n    ".join([column.ddl() for column in UPSTREAM_COLUMNS] + materialized
                          + [column.ddl() for column in PROCSIGHT_COLUMNS] + list(indexes))
    window = "replicated_deduplication_window" if engine.replicated else "non_replicated_deduplication_window"
    return (
        f"CREATE TABLE IF NOT EXISTS {_qualified(database, table)}{_on_cluster(cluster)} (\n    {body}\n)\n"
        f"ENGINE = {engine.render()}\n"
        "PARTITION BY toDate(Timestamp)\n"
        "ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)\n"
        f"{ttl_clause(ttl_seconds)}\n"
        f"SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, {window} = {DEDUPLICATION_WINDOW}"
    )


def add_columns_sql(database: str, table: str, names: list[str], cluster: str = "") -> str:
    """Adds procsight columns (and their indexes) a table made by an older procsight lacks. Cheap: ClickHouse
    changes only metadata; existing rows read the defaults ('' and 0)."""
    columns = [column for column in PROCSIGHT_COLUMNS if column.name in names]
    actions = [f"ADD COLUMN IF NOT EXISTS {column.ddl()}" for column in columns]
    actions += [f"ADD {PROCSIGHT_INDEXES[column.name].replace('INDEX', 'INDEX IF NOT EXISTS', 1)}"
                for column in columns if column.name in PROCSIGHT_INDEXES]
    return f"ALTER TABLE {_qualified(database, table)}{_on_cluster(cluster)} " + ", ".join(actions)


def type_family(clickhouse_type: str) -> str:
    """The kind of value a column holds, ignoring LowCardinality / Nullable and sizes: 'string', 'integer',
    'float', 'datetime64', 'map', 'array', or the type's own name for anything else (JSON, ...)."""
    text = clickhouse_type.strip()
    while text.startswith(("LowCardinality(", "Nullable(")):
        text = text[text.index("(") + 1:-1]
    base = text.split("(", 1)[0]
    if base in ("String", "FixedString"):
        return "string"
    if re.fullmatch(r"U?Int\d+", base):
        return "integer"
    if base in ("Float32", "Float64"):
        return "float"
    return {"DateTime64": "datetime64", "Map": "map", "Array": "array"}.get(base, base)


@dataclass(frozen=True)
class TableCheck:
    """What an existing table can take: the insert columns it has, and what it lacks or gets wrong."""

    insert_columns: tuple[str, ...]
    missing_required: tuple[str, ...]
    wrong_types: tuple[str, ...]  # "Column: expected X, found Y"
    missing_procsight: tuple[str, ...]
    made_by_procsight: bool

    @property
    def usable(self) -> bool:
        return not self.missing_required and not self.wrong_types


def check_table(described: dict[str, str]) -> TableCheck:
    """`described` maps column names to types (DESCRIBE TABLE)."""
    wrong = tuple(f"{column.name}: expected {column.type}, found {described[column.name]}"
                  for column in ALL_COLUMNS
                  if column.name in described and type_family(described[column.name]) != column.family)
    return TableCheck(
        insert_columns=tuple(name for name in INSERT_COLUMNS if name in described),
        missing_required=tuple(sorted(REQUIRED_COLUMNS - described.keys())),
        wrong_types=wrong,
        missing_procsight=tuple(column.name for column in PROCSIGHT_COLUMNS if column.name not in described),
        made_by_procsight="RecordId" in described,
    )


def parse_version(text: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", text.strip())
    if not match:
        raise ValueError(f"not a ClickHouse version: {text!r}")
    return int(match.group(1)), int(match.group(2))
