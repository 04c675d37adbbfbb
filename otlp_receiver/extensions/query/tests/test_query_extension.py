"""The query extension: its settings, what its routes decide before a query runs, the page's files, and
acknowledging an event into the baseline of a running receiver (the queries themselves:
otlp_receiver/query/tests; the page in a browser: tests/test_e2e_page.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.confmap import ConfigError
from otlp_receiver.config import ServiceSettings
from otlp_receiver.service import Service
from testing import wait_until
from testing.otlp_values import key_values

TESTDATA = Path(__file__).parent / "testdata"
AUTH = {"Authorization": "Bearer s3cret"}
AUTH_JSON = {**AUTH, "Content-Type": "application/json"}


def settings(query: dict[str, Any], exporter: str = "clickhouse") -> ServiceSettings:
    return ServiceSettings.from_mapping({
        "receivers": {"otlp": {"protocols": {"grpc": None}}},
        "exporters": {"clickhouse": {"endpoint": "chdb://./x"}, "debug": {}},
        "extensions": {"query": query},
        "service": {"extensions": ["query"], "pipelines": {"logs": {"receivers": ["otlp"], "exporters": [exporter]}}},
    }, "query.yaml")


def test_the_extension_resolves_its_exporters_table() -> None:
    config = settings({}).configs["extensions"]["query"]
    assert config.clickhouse is not None and config.clickhouse.endpoint == "chdb://./x"
    assert (config.neural, config.page) == ("", True)


@pytest.mark.parametrize(("query", "exporter", "key", "words"), [
    ({"neural": "bert"}, "clickhouse", "neural", "unknown sentence embedder 'bert'"),
    ({"exporter": "debug"}, "debug", "exporter", "not a clickhouse exporter"),
    ({"exporter": "clickhouse/missing"}, "clickhouse", "exporter", "(clickhouse exporters: clickhouse)"),
])
def test_a_query_that_could_not_work_fails_start_up(query: dict[str, Any], exporter: str, key: str,
                                                     words: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings(query, exporter=exporter)
    assert error.value.path == f"extensions.query.{key}" and error.value.source == "query.yaml"
    assert words in error.value.message


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(clickhouse_endpoint: str = "", config: str = "query.yaml") -> Service:
        service = Service.from_config_file(TESTDATA / config, {
            "DATA_DIR": str(tmp_path), "TOKEN": "s3cret",
            "CLICKHOUSE_ENDPOINT": clickhouse_endpoint or f"chdb://{tmp_path / 'clickhouse'}"})
        service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.shutdown(timeout=5)


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "not JSON"),
    (b'{"query": ""}', "non-empty"),
    (b'{"query": "x", "limit": 0}', "limit"),
    (b'{"query": "x", "limit": "5"}', "limit"),
    (b'{"query": "x", "workload": 5}', "workload"),
    (b'{"query": "x", "drop": "table"}', "unknown fields"),
    (b'{"query": ' * 100_000, "nested too deeply"),
    (b'{"query": "x", "limit": ' + b"9" * 5000 + b"}", "not JSON"),  # more digits than Python reads
])
def test_search_rejects_bad_requests_with_400(start_service, body: bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    service = start_service()
    url = f"http://{service.http_endpoint()}/telemetry/security/search"
    response = requests.post(url, data=body, headers=AUTH_JSON, timeout=10)
    assert response.status_code == 400 and message in response.json()["error"]


def test_a_lone_surrogate_in_a_request_is_searched_as_stored(start_service) -> None:  # type: ignore[no-untyped-def]
    """JSON may escape half of a surrogate pair (`"\\ud800"`); ClickHouse refused it as a query parameter, and the
    search answered 503, as if the database were down. The receiver stores such text mended (U+FFFD)."""
    service = start_service()
    url = f"http://{service.http_endpoint()}/telemetry/security/search"
    body = b'{"query": "ls \\udfff", "workload": "web\\ud800"}'
    response = requests.post(url, data=body, headers=AUTH_JSON, timeout=30)
    assert response.status_code == 200 and response.json()["results"] == [], response.text


def test_routes_reject_bad_parameters_and_answer_503_while_clickhouse_is_down(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("http://127.0.0.1:9/")  # nothing listens on the discard port
    base = f"http://{service.http_endpoint()}/api"
    for bad in ("anomalies?min_score=abc", "anomalies?since=yesterday-ish", "anomalies?limit=100000",
                "anomalies?severity=urgent", "anomalies?group=host", "volume?step=x", "volume?since=0&step=1",
                "event"):
        assert requests.get(f"{base}/{bad}", headers=AUTH, timeout=10).status_code == 400, bad
    for hostile in ("since=inf", "since=1e300", "since=nan", "limit=%C2%B2", "min_score=inf", "limit=" + "9" * 5000):
        assert requests.get(f"{base}/anomalies?{hostile}", headers=AUTH, timeout=10).status_code == 400, hostile
    for route in ("anomalies?since=24h&min_score=0.5", "volume?since=1h&step=60", "facets", "event?record_id=1:1"):
        response = requests.get(f"{base}/{route}", headers=AUTH, timeout=30)
        assert response.status_code == 503 and "query failed" in response.json()["error"], route
    assert requests.post(f"{base}/anomalies", headers=AUTH_JSON, timeout=10).status_code == 405


def test_routes_need_the_token_and_the_page_does_not(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service()
    base = f"http://{service.http_endpoint()}"
    for route in ("/api/anomalies", "/api/event?record_id=x", "/api/volume", "/api/facets", "/api/baselines"):
        assert requests.get(f"{base}{route}", timeout=10).status_code == 401, route
        assert requests.get(f"{base}{route}", headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    assert requests.post(f"{base}/telemetry/security/search", json={"query": "x"}, timeout=10).status_code == 401
    assert requests.post(f"{base}/api/acknowledge", json={"record_id": "x"}, timeout=10).status_code == 401
    page = requests.get(f"{base}/ui/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    # Answers that echo input are never sniffed as another type, and the page is never framed (clickjacking).
    assert page.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in page.headers[
        "Content-Security-Policy"]
    echoed = requests.get(f"{base}/api/event?record_id=<script>", timeout=10)
    assert echoed.headers["X-Content-Type-Options"] == "nosniff"
    assert "<title>procsight</title>" in page.text and "app.js" in page.text
    assert requests.get(f"{base}/ui/app.js", timeout=10).headers["Content-Type"].startswith("text/javascript")
    assert "url=/ui/" in requests.get(f"{base}/", timeout=10).text
    assert requests.get(f"{base}/ui/secret.txt", timeout=10).status_code == 404


def test_another_sites_page_cannot_read_or_acknowledge(start_service) -> None:  # type: ignore[no-untyped-def]
    """Without auth, a DNS-rebinding page (its own name resolved to 127.0.0.1) read the alerts and acknowledged
    them as text/plain, a POST a browser sends without asking first."""
    service = start_service(config="query_noauth.yaml")
    base = f"http://{service.http_endpoint()}/api"
    port = service.http_endpoint().rsplit(":", 1)[1]
    acknowledge = b'{"record_id": "1:0"}'
    rebound = {"Host": f"rebind.attacker.example:{port}", "Origin": f"http://rebind.attacker.example:{port}"}
    assert requests.get(f"{base}/anomalies", headers=rebound, timeout=10).status_code == 403
    assert requests.post(f"{base}/acknowledge", data=acknowledge, timeout=10,
                         headers={**rebound, "Content-Type": "application/json"}).status_code == 403
    for own in (f"127.0.0.1:{port}", f"localhost:{port}", "[::1]", socket.gethostname()):
        assert requests.get(f"{base}/anomalies", headers={"Host": own}, timeout=10).status_code == 200, own
    for content_type in ("text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        assert requests.post(f"{base}/acknowledge", data=acknowledge, headers=headers, timeout=10).status_code == 415
    answer = requests.post(f"{base}/acknowledge", data=acknowledge, headers={"Content-Type": "application/json"},
                           timeout=10)
    assert answer.status_code == 409  # reached the route: no anomaly processor here


def test_acknowledge_needs_an_anomaly_processor_and_a_known_record(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service()  # query.yaml: no anomaly processor feeds the table
    base = f"http://{service.http_endpoint()}/api"
    response = requests.post(f"{base}/acknowledge", json={"record_id": "1:0"}, headers=AUTH, timeout=10)
    assert response.status_code == 409 and "no anomaly processor" in response.json()["error"]
    assert requests.get(f"{base}/baselines", headers=AUTH, timeout=10).status_code == 409
    for body in (b"[]", b'{"record_id": 5}', b'{"record_id": "x", "more": 1}'):
        assert requests.post(f"{base}/acknowledge", data=body, headers=AUTH_JSON, timeout=10).status_code == 400


# -- acknowledging on a running receiver ---------------------------------------------------------------------

HOOK = "sh -c /opt/app/hooks/post-deploy.sh"  # a web app's deploy hook: a shell under the web server


def send(service: Service, pid: int, command: str, parent: str) -> None:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values({"host.name": "web-1", "procsight.workload": "web"}))
    record = resource_logs.scope_logs.add().log_records.add()
    record.time_unix_nano = time.time_ns()
    record.body.string_value = command
    record.attributes.extend(key_values({
        "process.pid": pid, "process.parent_pid": 10, "process.executable.name": command.split()[0],
        "process.executable.path": f"/usr/bin/{command.split()[0]}", "process.command_line": command,
        "process.command_args": command.split(), "process.user.id": 33, "process.parent.executable.name": parent}))
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=request.SerializeToString(),
                             headers={**AUTH, "Content-Type": "application/x-protobuf"}, timeout=10)
    assert response.status_code == 200


def runs_of(base: str, command: str, count: int) -> dict[str, Any]:
    """The list's line of `command` once it counts `count` scored runs (its lead is the highest-scored)."""
    def line() -> dict[str, Any] | None:
        rows = requests.get(f"{base}/api/anomalies?group=pattern&severity=none,warn,alert&limit=100", headers=AUTH,
                            timeout=10).json()["results"]
        return next((r for r in rows if r["command_line"] == command and r["events"] >= count), None)

    wait_until(lambda: line() is not None, timeout=60, what=f"{count} scored runs of {command!r}")
    found = line()
    assert found is not None
    return found


@pytest.mark.slow
def test_acknowledged_event_stops_alerting_on_the_running_receiver(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service(config="query_scoring.yaml")
    base = f"http://{service.http_endpoint()}"
    send(service, 1, "nginx -g daemon off;", "systemd")
    send(service, 2, HOOK, "nginx")
    first = runs_of(base, HOOK, 1)
    assert first["severity"] == "alert", first
    [web] = requests.get(f"{base}/api/baselines", headers=AUTH, timeout=10).json()["baselines"]
    assert web["workload"] == "web" and web["state"] == "detecting"
    assert HOOK in [pattern["command_line"] for pattern in web["held_back"]]

    answer = requests.post(f"{base}/api/acknowledge", json={"record_id": first["record_id"]}, headers=AUTH, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"acknowledged": first["record_id"], "workload": "web", "command_line": HOOK}
    [web] = requests.get(f"{base}/api/baselines", headers=AUTH, timeout=10).json()["baselines"]
    assert HOOK not in [pattern["command_line"] for pattern in web["held_back"]]

    acknowledged = time.time()
    send(service, 3, HOOK, "nginx")
    runs_of(base, HOOK, 2)
    since = f"since={acknowledged:.6f}&group=pattern&severity=none,warn,alert"
    [second] = [r for r in requests.get(f"{base}/api/anomalies?{since}", headers=AUTH, timeout=10).json()["results"]
                if r["command_line"] == HOOK]
    assert second["severity"] == "none" and second["score"] < 0.5, second
    assert "seen 1 times on this workload" in second["reasons"]
    for record_id in ("nope:1", "nope:\ud800"):
        unknown = requests.post(f"{base}/api/acknowledge", json={"record_id": record_id}, headers=AUTH, timeout=10)
        assert unknown.status_code == 404, unknown.text
