"""The agent's YAML: defaults, env expansion, strict keys, validation, and the shipped config/agent.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.confmap import ConfigError, Duration, decode
from otel_agent.config import AgentConfig, load_config

TESTDATA = Path(__file__).parent / "testdata"
REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_usable():
    config = load_config(None)
    assert config.mode == "auto"
    assert config.exporter.protocol == "grpc"
    assert config.batch.timeout == Duration("1s")
    assert config.capture.argv.buffer_bytes == 4096


def test_testdata_file_decodes_with_env_expansion(monkeypatch):
    monkeypatch.setenv("AGENT_TEST_TOKEN", "abc")
    config = load_config(TESTDATA / "agent.yaml")
    assert config.mode == "netlink"
    assert config.workload == "prod-web"
    assert config.exporter.token == "abc"
    assert config.exporter.protocol == "http"
    assert config.capture.argv.max_args == 32
    assert config.capture.argv.buffer_bytes == 4096  # 3000 rounded up to a power of two for the verifier
    assert config.capture.proc_poll_interval == 0.25
    assert config.spool.max_size_mib == 16


def test_shipped_config_decodes_to_the_defaults(monkeypatch):
    for name in ("PROCSIGHT_WORKLOAD", "PROCSIGHT_ENDPOINT", "PROCSIGHT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert load_config(REPO / "config" / "agent.yaml") == load_config(None)


def test_misspelt_key_names_file_key_and_suggestion():
    with pytest.raises(ConfigError) as error:
        load_config(TESTDATA / "misspelt.yaml")
    message = str(error.value)
    assert "misspelt.yaml" in message and "exporter.endpont" in message and "did you mean 'endpoint'" in message


@pytest.mark.parametrize(("data", "fragment"), [
    ({"mode": "kprobe"}, "mode"),
    ({"exporter": {"protocol": "udp"}}, "exporter.protocol"),
    ({"exporter": {"timeout": "soon"}}, "duration"),
    ({"capture": {"argv": {"max_args": 0}}}, "argv.max_args"),
    ({"capture": {"ring_buffer_pages": 1000}}, "power of two"),
    ({"batch": {"queue_size": 10, "send_batch_size": 100}}, "queue_size"),
    ({"batch": {"queue_size": 10**6, "send_batch_size": 200_000}}, "a procsight receiver refuses larger requests"),
    ({"spool": {"max_size_mib": 0}}, "spool.max_size_mib"),
    ({"exporter": {"tls": {"cert_file": "/nonexistent.pem", "key_file": "/nonexistent.key"}}}, "no such file"),
    ({"capture": {"cpu_threshold_percent": "high"}}, "cpu_threshold_percent"),
    # A mistyped endpoint ran an agent whose every export failed, or raised in the exporter's thread.
    ({"exporter": {"endpoint": "127.0.0.1:99999"}}, "exporter.endpoint: port out of range"),
    ({"exporter": {"endpoint": "collector.example"}}, "exporter.endpoint: no port"),
    ({"exporter": {"endpoint": "ftp://collector.example:21", "protocol": "http"}}, "the scheme 'ftp'"),
    ({"exporter": {"endpoint": "http://[::1:4318", "protocol": "http"}}, "invalid ipv6 url"),
    ({"exporter": {"endpoint": "collector.example:4318/v1/logs\r\nX-Injected: 1", "protocol": "http"}},
     "a space or control character"),
    ({"exporter": {"endpoint": "http://collector.example:4317/v1/logs"}}, r"a path \(gRPC takes HOST:PORT\)"),
])
def test_invalid_settings_are_clear_errors(data, fragment):
    with pytest.raises(ConfigError, match=fragment):
        decode(AgentConfig, data, source="agent.yaml")


@pytest.mark.parametrize(("endpoint", "protocol", "url"), [
    ("collector.example:4317", "grpc", "collector.example:4317"),
    ("[::1]:4317", "grpc", "[::1]:4317"),
    ("http://collector.example:4317", "grpc", "collector.example:4317"),
    ("collector.example:4318", "http", "http://collector.example:4318/v1/logs"),
    ("https://collector.example/otlp/v1/logs", "http", "https://collector.example/otlp/v1/logs"),
])
def test_endpoints_as_users_write_them_are_taken(endpoint, protocol, url):
    exporter = decode(AgentConfig, {"exporter": {"endpoint": endpoint, "protocol": protocol}}).exporter
    assert (exporter.grpc_target() if protocol == "grpc" else exporter.logs_url()) == url
