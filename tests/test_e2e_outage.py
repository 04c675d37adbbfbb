"""A ClickHouse outage fills the ingest spool, a full spool answers with backpressure (never drops) and
/healthz says so, and when ClickHouse is back the spool drains: every acknowledged record lands exactly
once, and health is ok again.

ClickHouse here is reached over HTTP; no server can be installed, so the endpoint is the test bridge
that answers clickhouse-connect's requests with the embedded engine (hence `fake_server` in the name).
Before the bridge starts, nothing listens on its port: connections are refused, as with a server down.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
from conftest import receiver_config, wait_for_rows, write_config
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from otlp_receiver.exporters.clickhouse.tests.chdb_http_bridge import ChdbHttpBridge
from otlp_receiver.exporters.clickhouse.transport import ChdbTransport
from otlp_receiver.service import Service
from testing import free_port, wait_until

EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
RECORDS_PER_REQUEST = 50


def request_bytes(index: int) -> bytes:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.append(KeyValue(key="procsight.workload", value=AnyValue(string_value="web")))
    records = resource_logs.scope_logs.add().log_records
    for i in range(RECORDS_PER_REQUEST):
        record = records.add()
        record.time_unix_nano = time.time_ns()
        command = f"/opt/app/bin/worker --request={index} --item={i} " + "x" * 1000
        record.body.string_value = command
        for key, value in (("process.executable.name", "worker"), ("process.command_line", command)):
            record.attributes.append(KeyValue(key=key, value=AnyValue(string_value=value)))
    return request.SerializeToString()


def test_outage_fills_spool_backpressure_then_drains_exactly_once_fake_server(tmp_path: Path) -> None:
    port = free_port()
    config = receiver_config(tmp_path, {})
    config["exporters"]["clickhouse"].update(endpoint=f"http://127.0.0.1:{port}", compress="none", timeout="1s",
                                             sending_queue={"num_consumers": 1, "queue_size": 2})
    config["service"]["spool"] = {"max_size_mib": 2, "segment_size_mib": 1}
    service = Service.from_config_file(write_config(tmp_path / "receiver.yaml", config))
    service.start()
    channel = grpc.insecure_channel(service.grpc_endpoint())
    export = channel.unary_unary(EXPORT)
    acknowledged = 0
    try:
        refused = None
        for index in range(200):  # 200 x ~52 KB is far past the 2 MiB spool
            try:
                export(request_bytes(index), timeout=10)
                acknowledged += RECORDS_PER_REQUEST
            except grpc.RpcError as error:
                refused = error
                break
        assert refused is not None and refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert any(key == "grpc-status-details-bin" for key, _ in refused.trailing_metadata())  # RetryInfo
        assert 0 < acknowledged < 200 * RECORDS_PER_REQUEST

        http_request = urllib.request.Request(f"http://{service.http_endpoint()}/v1/logs", data=request_bytes(999),
                                              headers={"Content-Type": "application/x-protobuf"}, method="POST")
        try:
            urllib.request.urlopen(http_request, timeout=10)
            raise AssertionError("a full spool must not accept more")
        except urllib.error.HTTPError as error:
            assert error.code == 429 and error.headers["Retry-After"]

        health = service.health()  # the truth: full, and why
        assert health["status"] == "unhealthy"
        assert "pipeline logs: the spool is full: new records are refused" in health["problems"]
        wait_until(lambda: any(p.startswith("exporter clickhouse: failing for") for p in service.health()["problems"]),
                   30, "health to name the failing exporter")

        with ChdbHttpBridge(str(tmp_path / "clickhouse"), port=port):  # ClickHouse is back
            clickhouse = ChdbTransport(str(tmp_path / "clickhouse"))
            try:
                rows = wait_for_rows(clickhouse, acknowledged, timeout=120)
                assert len({row["RecordId"] for row in rows}) == acknowledged
                deadline = time.monotonic() + 60  # the drained spool takes requests again
                while True:
                    try:
                        export(request_bytes(1000), timeout=10)
                        break
                    except grpc.RpcError as error:
                        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
                        time.sleep(0.2)
                wait_for_rows(clickhouse, acknowledged + RECORDS_PER_REQUEST, timeout=60)
                wait_until(lambda: service.health()["status"] == "ok", 30, "health to be ok again")
                assert service.health()["problems"] == []
            finally:
                clickhouse.close()
    finally:
        channel.close()
        service.shutdown(timeout=10)
