"""Collector-YAML configuration: strict errors that name the file, the path and the key; several
pipelines; ${env:VAR}; type/name ids and exporter aliases."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.confmap import ConfigError
from otlp_receiver import registry
from otlp_receiver.config import ServiceSettings
from otlp_receiver.service import Service

TESTDATA = Path(__file__).parent / "testdata"


@pytest.mark.parametrize(("name", "where", "words"), [
    ("misspelt_key.yaml", "receivers.otlp.protocols.grpc.endpiont", ["unknown setting", "did you mean 'endpoint'"]),
    ("wrong_type.yaml", "processors.batch.send_batch_size", ["expected an integer", "lots"]),
    ("unknown_component.yaml", "exporters.kafka", ["unknown exporter type 'kafka'", "clickhouse"]),
    ("unconfigured_reference.yaml", "service.pipelines.logs.processors[0]", ["'batch' is not configured"]),
    ("bad_value.yaml", "receivers.otlp.protocols.grpc.endpoint", ["expected host:port"]),
    ("auth_not_enabled.yaml", "receivers.otlp.protocols.http.auth.authenticator", ["service.extensions"]),
    ("traces_pipeline.yaml", "service.pipelines.traces", ["logs pipelines only"]),
])
def test_config_errors_name_file_path_and_key(name: str, where: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as error:
        ServiceSettings.load(TESTDATA / name)
    message = str(error.value)
    assert message.startswith(str(TESTDATA / name) + ": "), message
    assert where in message, message
    for word in words:
        assert word in message, message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        ServiceSettings.load(tmp_path / "absent.yaml")


def test_exporter_aliases_resolve_to_the_new_names() -> None:
    assert registry.factory("exporters", "debug/x").TYPE == "debug"
    assert registry.ALIASES["exporters"] == {"otlp": "otlp_grpc", "otlphttp": "otlp_http"}
    assert registry.FACTORIES["exporters"]["otlp_http"] == "otlp_receiver.exporters.otlphttp.factory"


@pytest.mark.parametrize("shipped", ["config/receiver.yaml", "docker/receiver.yaml"])
def test_the_shipped_config_files_are_valid_and_serve_queries(shipped: str) -> None:
    settings = ServiceSettings.load(Path(__file__).parents[2] / shipped)
    pipeline = settings.service.pipelines["logs"]
    assert pipeline.processors == ["memory_limiter", "batch", "anomaly"]
    assert "clickhouse" in pipeline.exporters
    assert settings.service.extensions == ["query"]
    query = settings.configs["extensions"]["query"]
    assert query.clickhouse is settings.configs["exporters"]["clickhouse"] and query.page


def test_a_pipeline_gets_its_batcher_and_admission_by_capability(tmp_path: Path) -> None:
    settings = ServiceSettings.from_mapping({
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "processors": {"memory_limiter/a": {"limit_percentage": 100}, "batch/b": {"timeout": "10ms"}},
        "exporters": {"debug": {}},
        "service": {"data_dir": str(tmp_path), "pipelines": {"logs": {
            "receivers": ["otlp"], "processors": ["memory_limiter/a", "batch/b"], "exporters": ["debug"]}}},
    })
    service = Service(settings)
    service.start()
    try:
        pipeline = service.pipelines["logs"]
        assert pipeline.batcher is service.processors[("logs", "batch/b")]
        assert pipeline.admission == [service.processors[("logs", "memory_limiter/a")]]
    finally:
        service.shutdown(timeout=5)


def test_two_batchers_in_one_pipeline_fail_start(tmp_path: Path) -> None:
    settings = ServiceSettings.from_mapping({
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "processors": {"batch": {}, "batch/again": {}},
        "exporters": {"debug": {}},
        "service": {"data_dir": str(tmp_path), "pipelines": {"logs": {
            "receivers": ["otlp"], "processors": ["batch", "batch/again"], "exporters": ["debug"]}}},
    }, "two.yaml")
    with pytest.raises(ConfigError, match=r"two\.yaml: service\.pipelines\.logs\.processors: at most one processor"):
        Service(settings).start()


def test_two_pipelines_share_a_receiver_and_env_expansion(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="procsight.debug")
    service = Service.from_config_file(TESTDATA / "two_pipelines.yaml",
                                       {"DATA_DIR": str(tmp_path), "HTTP_ENDPOINT": "127.0.0.1:0"})
    service.start()
    try:
        request = ExportLogsServiceRequest()
        record = request.resource_logs.add().scope_logs.add().log_records.add()
        record.body.string_value = "to both pipelines"
        response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=request.SerializeToString(),
                                 headers={"Content-Type": "application/x-protobuf"}, timeout=10)
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            names = {r.getMessage().split(":")[0] for r in caplog.records if "to both pipelines" in r.getMessage()}
            if names == {"debug", "debug/detailed"}:
                break
            time.sleep(0.05)
        assert names == {"debug", "debug/detailed"}
        assert (tmp_path / "spool" / "logs").is_dir() and (tmp_path / "spool" / "logs_archive").is_dir()
    finally:
        service.shutdown(timeout=5)


def test_a_port_in_use_fails_start_cleanly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for protocol in ("grpc", "http"):
            settings = ServiceSettings.from_mapping({
                "receivers": {"otlp": {"protocols": {protocol: {"endpoint": f"127.0.0.1:{port}"}}}},
                "exporters": {"debug": {}},
                "service": {"data_dir": str(tmp_path / protocol),
                            "pipelines": {"logs": {"receivers": ["otlp"], "exporters": ["debug"]}}},
            })
            service = Service(settings)
            with pytest.raises(OSError):
                service.start()
            assert service.state == "stopped"
    assert threading.active_count() < 20  # nothing left running from the failed starts
