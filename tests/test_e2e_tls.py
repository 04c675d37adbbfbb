"""TLS and bearer tokens end to end: the receiver serves OTLP/gRPC and OTLP/HTTP over TLS with a certificate
from a CA the test makes, and wants a bearer token; the official OpenTelemetry SDKs (Python, JS) and
procsight's own agent send to it, and every record arrives at the OTLP endpoint the receiver forwards to.
Plain text and missing tokens are refused. The README's `procsight agent --endpoint https://...:4318
--protocol http` with PROCSIGHT_TOKEN runs as written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from conftest import write_config
from opentelemetry._logs import LogRecord as ApiLogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

import testing
from otel_agent.config import ExporterConfig, TLSConfig
from otel_agent.exporters import ExportError, build_exporter
from otel_agent.otlp import RequestEncoder, encode_log_record
from otlp_receiver.service import Service
from testing.otlp_sink import OtlpSink

TOKEN = "e2e-tls-token"
JS_DIR = Path(__file__).parent / "js"
JS_MISSING = shutil.which("node") is None or not (JS_DIR / "node_modules").is_dir()


class Stack:
    """A receiver with TLS and bearer tokens on both protocols, forwarding to a plain test endpoint."""

    def __init__(self, service: Service, sink: OtlpSink, pki: testing.TestPKI) -> None:
        self.service, self.sink, self.pki = service, sink, pki

    def port(self, protocol: str) -> str:
        return (self.service.grpc_endpoint() if protocol == "grpc" else self.service.http_endpoint()).rsplit(":", 1)[1]

    def arrived(self, workload: str, count: int) -> list[Any]:
        return self.sink.wait_for_records(count, workload=workload)


@pytest.fixture(autouse=True)
def sdk_trusts_its_certificate_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets REQUESTS_CA_BUNDLE override the SDK HTTP exporter's certificate_file (set on some machines)."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp_path = tmp_path_factory.mktemp("tls-stack")
    pki = testing.certificate_authority(tmp_path)
    tls = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    auth = {"authenticator": "bearertokenauth"}
    with OtlpSink() as sink:
        config = {
            "extensions": {"bearertokenauth": {"token": TOKEN}},
            "receivers": {"otlp": {"protocols": {
                "grpc": {"endpoint": "127.0.0.1:0", "tls": tls, "auth": auth},
                "http": {"endpoint": "127.0.0.1:0", "tls": tls, "auth": auth}}}},
            "processors": {"batch": {"timeout": "50ms"}},
            "exporters": {"otlp_grpc/forward": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}},
            "service": {"data_dir": str(tmp_path / "data"), "extensions": ["bearertokenauth"],
                        "pipelines": {"logs": {"receivers": ["otlp"], "processors": ["batch"],
                                               "exporters": ["otlp_grpc/forward"]}}},
        }
        service = Service.from_config_file(write_config(tmp_path / "receiver.yaml", config))
        service.start()
        try:
            yield Stack(service, sink, pki)
        finally:
            service.shutdown(timeout=10)


def python_sdk_send(exporter: Any, workload: str, bodies: list[str]) -> list[LogRecordExportResult]:
    results: list[LogRecordExportResult] = []
    original = exporter.export
    exporter.export = lambda batch: results.append(original(batch)) or results[-1]
    provider = LoggerProvider(resource=Resource.create({"procsight.workload": workload}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("procsight.e2e.tls")
    for body in bodies:
        logger.emit(ApiLogRecord(body=body))
    provider.shutdown()
    return results


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_python_sdk_over_tls_with_a_bearer_token(stack: Stack, protocol: str) -> None:
    workload = f"python-{protocol}"
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        def exporter(token: str) -> Any:
            return OTLPLogExporter(endpoint=f"localhost:{stack.port('grpc')}", headers={"authorization": token},
                                   credentials=grpc.ssl_channel_credentials(stack.pki.ca.read_bytes()))
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        def exporter(token: str) -> Any:
            return OTLPLogExporter(endpoint=f"https://localhost:{stack.port('http')}/v1/logs",
                                   certificate_file=str(stack.pki.ca), headers={"Authorization": token})

    assert python_sdk_send(exporter(f"Bearer {TOKEN}"), workload, ["a", "b"]) == [LogRecordExportResult.SUCCESS] * 2
    assert python_sdk_send(exporter("Bearer wrong"), workload, ["refused"]) == [LogRecordExportResult.FAILURE]
    assert sorted(r.body.string_value for r in stack.arrived(workload, 2)) == ["a", "b"]


@pytest.mark.skipif(JS_MISSING, reason="needs node and `npm install` in tests/js (scripts/setup.sh does both)")
@pytest.mark.parametrize("protocol", ["grpc", "http", "proto"])
def test_js_sdk_over_tls_with_a_bearer_token(stack: Stack, protocol: str) -> None:
    workload = f"js-{protocol}"
    port = stack.port("grpc" if protocol == "grpc" else "http")
    url = f"https://localhost:{port}" + ("" if protocol == "grpc" else "/v1/logs")
    events = {"resource": {"procsight.workload": workload},
              "records": [{"body": f"js {protocol} {i}", "eventName": "process.exec", "attributes": {}}
                          for i in range(3)]}

    def send(token: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["node", str(JS_DIR / "send_logs.js"), protocol, url, token, str(stack.pki.ca)],
                              input=json.dumps(events), capture_output=True, text=True, timeout=120)

    sent = send(TOKEN)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert json.loads(sent.stdout.strip().splitlines()[-1]) == {"exported": 3, "failures": []}
    assert sorted(r.body.string_value for r in stack.arrived(workload, 3)) == [f"js {protocol} {i}" for i in range(3)]
    assert send("wrong").returncode != 0  # refused: the SDK reports the failure


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_the_agent_exporters_over_tls(stack: Stack, protocol: str) -> None:
    workload = f"agent-{protocol}"
    endpoint = f"localhost:{stack.port(protocol)}" if protocol == "grpc" else f"https://localhost:{stack.port(protocol)}"
    encoder = RequestEncoder({"procsight.workload": workload}, "procsight-agent", "test")
    record = encode_log_record(time.time_ns(), time.time_ns(), "process.exec", "agent over tls", {})

    def exporter(**tls: Any) -> Any:
        return build_exporter(ExporterConfig(endpoint=endpoint, protocol=protocol, token=TOKEN,
                                             tls=TLSConfig(**tls)), encoder)

    sender = exporter(insecure=False, ca_file=str(stack.pki.ca))
    try:
        sender.export([record])
    finally:
        sender.shutdown()
    assert [r.body.string_value for r in stack.arrived(workload, 1)] == ["agent over tls"]
    plain = exporter(insecure=True)  # plain text to the TLS port is refused
    try:
        with pytest.raises(ExportError):
            plain.export([record])
    finally:
        plain.shutdown()


def test_readme_agent_over_https_with_procsight_token(stack: Stack, tmp_path: Path) -> None:
    """`PROCSIGHT_TOKEN=... procsight agent --endpoint https://receiver:4318 --protocol http`, the receiver's
    certificate trusted as a system CA would be (SSL_CERT_FILE), /proc capture (no root needed)."""
    config = tmp_path / "agent.yaml"
    config.write_text("batch: {timeout: 100ms}\ncapture: {proc_poll_interval: 100ms}\n")
    environment = {**os.environ, "PROCSIGHT_TOKEN": TOKEN, "SSL_CERT_FILE": str(stack.pki.ca)}
    agent = subprocess.Popen(
        [sys.executable, "-m", "procsight", "agent", "--endpoint", f"https://localhost:{stack.port('http')}",
         "--protocol", "http", "--mode", "proc", "--config", str(config), "--spool", str(tmp_path / "spool")],
        env=environment, stderr=subprocess.PIPE, text=True)
    marker = f"tls-{uuid.uuid4().hex[:10]}"
    try:
        found: list[Any] = []
        deadline = time.monotonic() + 60
        while not found and time.monotonic() < deadline:
            subprocess.run(["/bin/sh", "-c", "sleep 0.5", marker], check=False)  # lives long enough for /proc polling
            found = stack.sink.wait_for(lambda r: marker in str(r.attributes.get("process.command_line", "")),
                                        timeout=1)
        assert found, "no exec arrived from the agent over https"
    finally:
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=30)
    assert agent.returncode == 0, stderr
