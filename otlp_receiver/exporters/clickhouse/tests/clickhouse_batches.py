"""Batches, exporters and row reads shared by the clickhouse exporter's tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core import semconv
from core.confmap import decode
from otlp_receiver.component import CreateSettings, LogBatch
from otlp_receiver.exporters.clickhouse import factory
from otlp_receiver.exporters.clickhouse.config import Config
from otlp_receiver.exporters.clickhouse.exporter import ClickHouseExporter
from otlp_receiver.telemetry import Telemetry
from testing.otlp_values import key_values

HOSTILE = "x'); DROP TABLE procsight.security_events; --\x00\x1b[31m\\../../etc/passwd\n\t\u202e"
BASE_TIME_NS = 1_700_000_000_000_000_000


def make_batch(batch_id: str, commands: list[str], tenant: str = "default", scored: bool = True,
               host: str = "web-1", incident: bool = False) -> LogBatch:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values({"service.name": "procsight-agent", "host.name": host,
                                                         "k8s.namespace.name": "shop"}))
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "procsight.agent"
    scope_logs.scope.version = "0.1.0"
    for i, command in enumerate(commands):
        record = scope_logs.log_records.add()
        record.time_unix_nano = BASE_TIME_NS + i
        record.observed_time_unix_nano = BASE_TIME_NS + 10**9
        record.severity_number = 17 if scored and i == 0 else 9
        record.severity_text = "ERROR" if scored and i == 0 else "INFO"
        record.trace_id = bytes(range(16))
        record.span_id = bytes(range(8))
        record.event_name = "process.exec"
        record.body.string_value = command
        record.attributes.extend(key_values({
            "process.command_line": command, "process.pid": 1000 + i, "process.command_args": command.split(),
            semconv.RECORD_ID: "spoofed",
        }))
        if scored:
            record.attributes.extend(key_values({
                semconv.ANOMALY_SCORE: 0.95 if i == 0 else 0.1, semconv.ANOMALY_WORKLOAD: "web",
                semconv.ANOMALY_SEVERITY: "alert" if i == 0 else "none"}))
        if incident and i == 0:
            record.attributes.extend(key_values({
                semconv.ANOMALY_INCIDENT: "inc-7", semconv.ANOMALY_INCIDENT_SCORE: 0.97,
                semconv.ANOMALY_TECHNIQUES: ["T1059.004", "T1105"]}))
    embeddings = None
    if scored:
        embeddings = np.zeros((len(commands), 4), np.float32)
        embeddings[:, 0] = 1.0
    return LogBatch(logs=request, tenant=tenant, batch_id=batch_id, embeddings=embeddings)


def make_exporter(endpoint: str, database: str, start: bool = True, **overrides: Any) -> ClickHouseExporter:
    config = decode(Config, {"endpoint": endpoint, "database": database, "compress": "none", **overrides})
    exporter = factory.create(config, CreateSettings("clickhouse", Path("."), Telemetry()))
    if start:
        exporter.start()
    return exporter


def rows(exporter: ClickHouseExporter, where: str = "1", order: str = "RecordId") -> list[dict[str, Any]]:
    assert exporter.transport is not None
    return exporter.transport.query(f"SELECT * FROM {exporter.table} WHERE {where} ORDER BY {order}")


def column_types(exporter: ClickHouseExporter) -> dict[str, str]:
    assert exporter.transport is not None
    return {row["name"]: row["type"] for row in exporter.transport.query(f"DESCRIBE TABLE {exporter.table}")}


def start_encoder(exporter: ClickHouseExporter) -> None:
    """Starts the exporter's helper process as its first large batch does, and waits until it runs, so
    that the next large batch is encoded there."""
    assert exporter._running_encoder() is None  # started just now, not up yet
    assert exporter._encoder_up is not None
    exporter._encoder_up.result(timeout=120)
    assert exporter._running_encoder() is not None
