"""service.telemetry: the Collector's keys for the receiver's own logs and metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from core.confmap import ConfigError, decode
from otlp_receiver.config import ServiceSettings
from otlp_receiver.service import Service
from otlp_receiver.servicetelemetry import LogsConfig, TelemetryConfig
from otlp_receiver.telemetry import Telemetry


def settings(tmp_path: Path, telemetry: dict[str, Any], auth: bool = False) -> ServiceSettings:
    http: dict[str, Any] = {"endpoint": "127.0.0.1:0"}
    config: dict[str, Any] = {
        "receivers": {"otlp": {"protocols": {"http": http}}},
        "exporters": {"debug": {}},
        "service": {"data_dir": str(tmp_path), "telemetry": telemetry,
                    "pipelines": {"logs": {"receivers": ["otlp"], "exporters": ["debug"]}}},
    }
    if auth:
        config["extensions"] = {"bearertokenauth": {"token": "t0ken"}}
        config["service"]["extensions"] = ["bearertokenauth"]
        http["auth"] = {"authenticator": "bearertokenauth"}
    return ServiceSettings.from_mapping(config)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[list[Service]]:
    services: list[Service] = []
    yield services
    for service in services:
        service.shutdown(timeout=5)


def test_a_pull_reader_serves_metrics_on_its_own_port(tmp_path: Path, running: list[Service]) -> None:
    service = Service(settings(tmp_path, {
        "metrics": {"level": "detailed", "readers": [{"pull": {"exporter": {"prometheus": {"host": "127.0.0.1",
                                                                                           "port": 0}}}}]},
        "resource": {"service.name": "procsight-receiver", "deployment.environment.name": "test"}}, auth=True))
    service.start()
    running.append(service)
    (server,) = service.metrics_servers
    text = requests.get(f"http://{server.endpoint}/metrics", timeout=5).text
    assert "procsight_spool_bytes" in text
    assert 'target_info{deployment_environment_name="test",service_name="procsight-receiver"} 1' in text
    # the OTLP/HTTP port keeps /metrics, behind the receiver's auth
    base = f"http://{service.http_endpoint()}"
    assert requests.get(f"{base}/metrics", timeout=5).status_code == 401
    assert requests.get(f"{base}/metrics", headers={"Authorization": "Bearer t0ken"}, timeout=5).status_code == 200
    service.shutdown(timeout=5)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{server.endpoint}/metrics", timeout=2)


def test_level_none_turns_metrics_off(tmp_path: Path, running: list[Service]) -> None:
    service = Service(settings(tmp_path, {"metrics": {"level": "none", "readers": [
        {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": 0}}}}]}}))
    service.start()
    running.append(service)
    assert service.metrics_servers == []
    assert requests.get(f"http://{service.http_endpoint()}/metrics", timeout=5).status_code == 404


@pytest.mark.parametrize(("telemetry", "key", "fragment"), [
    ({"metrics": {"address": "0.0.0.0:8888"}}, "service.telemetry.metrics.address",
     "readers: [{pull: {exporter: {prometheus: {host: '0.0.0.0', port: 8888}}}}]"),
    ({"metrics": {"readers": [{"periodic": {"exporter": {"otlp": {}}}}]}},
     "service.telemetry.metrics.readers[0].periodic", "does not push its own metrics"),
    ({"metrics": {"level": "detailed", "views": [{"selector": {}}]}}, "service.telemetry.metrics.views", "views"),
    ({"metrics": {"level": "verbose"}}, "service.telemetry.metrics.level", "expected one of"),
    ({"metrics": {"readers": [{"pull": {"exporter": {"prometheus": {"without_units": False}}}}]}},
     "service.telemetry.metrics.readers[0].pull.exporter.prometheus.without_units", "fixed Prometheus names"),
    ({"logs": {"level": "trace"}}, "service.telemetry.logs.level", "expected one of"),
    ({"logs": {"encoding": "logfmt"}}, "service.telemetry.logs.encoding", "console or json"),
    ({"logs": {"processors": [{"batch": {}}]}}, "service.telemetry.logs.processors", "does not send its own logs"),
    ({"traces": {"processors": [{"batch": {}}]}}, "service.telemetry.traces.processors", "no traces"),
])
def test_what_procsight_cannot_do_fails_naming_the_key(tmp_path: Path, telemetry: dict, key: str,
                                                       fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings(tmp_path, telemetry)
    assert info.value.path == key and fragment in info.value.message


def test_upstream_shapes_load(tmp_path: Path) -> None:
    loaded = settings(tmp_path, {
        "logs": {"level": "warn", "development": False, "encoding": "json", "disable_caller": True,
                 "disable_stacktrace": True, "sampling": {"enabled": True, "tick": "10s", "initial": 10,
                                                          "thereafter": 100},
                 "output_paths": ["stderr"], "error_output_paths": ["stderr"], "initial_fields": {"service": "x"}},
        "metrics": {"level": "basic", "readers": [{"pull": {"exporter": {"prometheus": {
            "host": "0.0.0.0", "port": 8888, "without_scope_info": True, "without_units": True,
            "without_type_suffix": True}}}}]},
        "traces": {"level": "none"}}).service.telemetry
    assert loaded.logs.level == "warn" and loaded.metrics.prometheus[0].port == 8888


def test_logs_settings_configure_the_process_log(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    output = tmp_path / "receiver.log"
    try:
        decode(LogsConfig, {"level": "warn", "encoding": "json", "output_paths": [str(output)],
                            "initial_fields": {"service": "procsight"},
                            "sampling": {"tick": "1m", "initial": 2, "thereafter": 3}}).apply()
        log = logging.getLogger("procsight.test")
        log.info("not at warn")
        for index in range(8):
            log.warning("repeated %d", index)  # one message template: sampled
        log.error("broken")
        for handler in root.handlers:
            handler.flush()
        entries = [json.loads(line) for line in output.read_text().splitlines()]
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(saved[0])
        for handler in saved[1]:
            root.addHandler(handler)
    messages = [entry["msg"] for entry in entries]
    assert messages == ["repeated 0", "repeated 1", "repeated 4", "repeated 7", "broken"]  # 2 first, then 1 in 3
    assert all(entry["service"] == "procsight" and "test_service_telemetry.py:" in entry["caller"] for entry in entries)
    assert entries[0]["level"] == "warn" and "stacktrace" not in entries[0]
    assert "test_logs_settings_configure_the_process_log" in entries[-1]["stacktrace"]  # errors carry their stack


def test_defaults_start_no_port() -> None:
    assert TelemetryConfig().metrics.prometheus == []


def test_counters_past_a_million_render_every_digit() -> None:
    """`:g` rendered 1,100,045 as 1.10004e+06, so rate() lost the small steps of a busy receiver."""
    telemetry = Telemetry()
    counter = telemetry.counter("procsight_test_records_total", "records")
    counter.inc(1_100_045, kind="a")
    counter.inc(0.25, kind="b")
    histogram = telemetry.histogram("procsight_test_seconds", "seconds")
    histogram.observe(1_234_567.5)
    telemetry.gauge("procsight_test_workloads", "workloads").set(7)
    text = telemetry.render()
    assert 'procsight_test_records_total{kind="a"} 1100045' in text
    assert 'procsight_test_records_total{kind="b"} 0.25' in text
    assert "procsight_test_seconds_sum 1234567.5" in text and "procsight_test_workloads 7" in text
