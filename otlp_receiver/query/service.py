"""QueryService: similarity search and ranked recent anomalies over the `security_events` table.

The same SQL runs on both ClickHouse transports; every user value (query vector, tenant, workload,
limits) is a bound `{name:Type}` parameter. Results are confined to the caller's tenant.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from otlp_receiver.exporters.clickhouse.config import Config as ClickHouseConfig
from otlp_receiver.exporters.clickhouse.transport import Transport, open_transport
from scoring.featurizer import get_embedder

MAX_LIMIT = 1000
MAX_QUERY_CHARS = 4096

# One row per distinct (workload, host, command line): a triage list repeating one command a thousand
# times hides everything else. The best-ranked occurrence is kept.
_FIELDS = """
    toUnixTimestamp64Nano(Timestamp) AS time_ns, RecordId AS record_id, AnomalyScore AS score,
    AnomalySeverity AS severity, Workload AS workload, ServiceName AS service,
    ResourceAttributes['host.name'] AS host, EventName AS event_name,
    if(LogAttributes['process.command_line'] != '', LogAttributes['process.command_line'], Body) AS command_line,
    LogAttributes['process.executable.name'] AS executable, LogAttributes['process.user.name'] AS user,
    LogAttributes['anomaly_reasons'] AS reasons, LogAttributes['process.ancestors'] AS ancestors,
    LogAttributes['anomaly_nearest'] AS nearest, LogAttributes['anomaly_model'] AS model"""

_SEARCH = """SELECT {fields}, cosineDistance(Embedding, {{vector:Array(Float32)}}) AS distance
FROM {table}
WHERE TenantId = {{tenant:String}} AND length(Embedding) = {{dim:UInt32}}
  AND LogAttributes['anomaly_model'] = {{embedding_model:String}}
  AND ({{workload:String}} = '' OR Workload = {{workload:String}})
ORDER BY distance ASC, score DESC
LIMIT 1 BY workload, host, command_line
LIMIT {{limit:UInt32}}"""

_ANOMALIES = """SELECT {fields}
FROM {table}
WHERE TenantId = {{tenant:String}} AND Timestamp >= fromUnixTimestamp64Nano({{since_ns:Int64}})
  AND AnomalyScore >= {{min_score:Float32}}
  AND ({{workload:String}} = '' OR Workload = {{workload:String}})
ORDER BY score DESC, time_ns DESC
LIMIT 1 BY workload, host, command_line
LIMIT {{limit:UInt32}}"""


class QueryService:
    def __init__(self, transport: Transport, database: str, table: str, model: str) -> None:
        self.transport = transport
        self.table = f"`{database}`.`{table}`"
        self.embedder = get_embedder(model)
        self._embed_lock = threading.Lock()

    @classmethod
    def from_exporter_config(cls, config: ClickHouseConfig, model: str) -> QueryService:
        """Reads the table the `clickhouse` exporter of a running pipeline writes (same transport kind,
        sharing the embedded engine when it is chdb). `model` must be the anomaly processor's: search
        compares the query's vector with the stored ones."""
        return cls(open_transport(config), config.connection().database, config.logs_table_name, model)

    def close(self) -> None:
        self.transport.close()

    def search(self, tenant: str, query: str, limit: int = 20, workload: str | None = None) -> list[dict[str, Any]]:
        """The events nearest to free text (`curl piped to bash`), closest first."""
        text = query.strip()
        if not text:
            raise ValueError("query: give some words to search for")
        if len(text) > MAX_QUERY_CHARS:
            raise ValueError(f"query: at most {MAX_QUERY_CHARS} characters")
        with self._embed_lock:
            vector = self.embedder.embed_text(text)
        sql = _SEARCH.format(fields=_FIELDS, table=self.table)
        rows = self.transport.query(sql, {
            "vector": [float(x) for x in vector], "dim": len(vector), "embedding_model": self.embedder.name,
            "tenant": tenant, "workload": workload or "", "limit": _check_limit(limit),
        })
        return [_result(row) for row in rows]

    def anomalies(self, tenant: str, since: float | None = None, min_score: float = 0.0, workload: str | None = None,
                  limit: int = 50) -> list[dict[str, Any]]:
        """Recent events at or above `min_score`, highest first; `since` is epoch seconds (default: a day ago)."""
        if not 0.0 <= min_score <= 1.0:
            raise ValueError("min_score: must be between 0 and 1")
        if since is None:
            since = datetime.now(UTC).timestamp() - 86400
        sql = _ANOMALIES.format(fields=_FIELDS, table=self.table)
        rows = self.transport.query(sql, {
            "tenant": tenant, "since_ns": int(max(since, 0.0) * 1e9), "min_score": min_score,
            "workload": workload or "", "limit": _check_limit(limit),
        })
        return [_result(row) for row in rows]


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: must be between 1 and {MAX_LIMIT}")
    return limit


def _result(row: dict[str, Any]) -> dict[str, Any]:
    time_ns = int(row.pop("time_ns"))
    row["time"] = datetime.fromtimestamp(time_ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    row["score"] = round(float(row["score"]), 4)
    if "distance" in row:
        distance = row["distance"]
        row["distance"] = None if distance is None else round(float(distance), 4)
    row["reasons"] = _string_list(row["reasons"])
    row["ancestors"] = _string_list(row["ancestors"])
    return row


def _string_list(text: str) -> list[str]:
    """Array attributes are stored as JSON arrays (the Collector's AsString); anything else is one item."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return [text]
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]
