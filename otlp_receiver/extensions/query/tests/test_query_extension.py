"""The query extension: which table and model it resolves to, and what its routes decide before a query
runs (the queries themselves: otlp_receiver/query/tests and tests/test_e2e_query.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from core.confmap import ConfigError
from otlp_receiver.config import ServiceSettings
from otlp_receiver.extensions.query.config import Config
from otlp_receiver.extensions.query.extension import QueryExtension
from otlp_receiver.service import Service

TESTDATA = Path(__file__).parent / "testdata"
AUTH = {"Authorization": "Bearer s3cret"}


def settings(query: dict[str, Any], *models: str, exporter: str = "clickhouse") -> ServiceSettings:
    """A document where one pipeline per model scores into `exporter`."""
    processors = {f"anomaly/{i}": {"model": model} for i, model in enumerate(models)}
    pipelines = {f"logs/{i}": {"receivers": ["otlp"], "processors": [name], "exporters": [exporter]}
                 for i, name in enumerate(processors)} or {"logs": {"receivers": ["otlp"], "exporters": [exporter]}}
    return ServiceSettings.from_mapping({
        "receivers": {"otlp": {"protocols": {"grpc": None}}},
        "processors": processors,
        "exporters": {"clickhouse": {"endpoint": "chdb://./x"}, "debug": {}},
        "extensions": {"query": query},
        "service": {"extensions": ["query"], "pipelines": pipelines},
    }, "query.yaml")


def query_config(document: ServiceSettings) -> Config:
    return document.configs["extensions"]["query"]


def test_search_embeds_with_the_model_of_the_anomaly_processor_writing_the_table() -> None:
    resolved = query_config(settings({}, "hash128-v1"))
    assert resolved.model == "hash128-v1"  # not the engine's default: the table holds v1 vectors
    assert resolved.clickhouse is not None and resolved.clickhouse.endpoint == "chdb://./x"
    assert query_config(settings({"model": "hash128-v1"}, "hash128-v1")).model == "hash128-v1"
    assert query_config(settings({})).model == "hash128-v2"  # nothing scores into it: the engine's default


@pytest.mark.parametrize(("query", "models", "exporter", "key", "words"), [
    ({"model": "hash128-v2"}, ["hash128-v1"], "clickhouse", "model", "not the model the anomaly processor"),
    ({}, ["hash128-v1", "hash128-v2"], "clickhouse", "model", "several models"),
    ({"model": "bert"}, ["hash128-v2"], "clickhouse", "model", "unknown model 'bert'"),
    ({"exporter": "debug"}, [], "debug", "exporter", "not a clickhouse exporter"),
    ({"exporter": "clickhouse/missing"}, [], "clickhouse", "exporter", "(clickhouse exporters: clickhouse)"),
])
def test_a_query_that_could_not_work_fails_start_up(query: dict[str, Any], models: list[str], exporter: str,
                                                     key: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings(query, *models, exporter=exporter)
    assert error.value.path == f"extensions.query.{key}" and error.value.source == "query.yaml"
    assert words in error.value.message


def test_the_query_service_uses_the_resolved_model(tmp_path: Path) -> None:
    config = query_config(settings({}, "hash128-v1"))
    assert config.clickhouse is not None
    config.clickhouse.endpoint = f"chdb://{tmp_path}"
    extension = QueryExtension(config)
    try:
        assert extension.query_service().embedder.name == "hash128-v1"
    finally:
        extension.shutdown()


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(clickhouse_endpoint: str) -> Service:
        service = Service.from_config_file(TESTDATA / "query.yaml", {
            "DATA_DIR": str(tmp_path), "TOKEN": "s3cret", "CLICKHOUSE_ENDPOINT": clickhouse_endpoint})
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
])
def test_search_rejects_bad_requests_with_400(start_service, tmp_path: Path, body: bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    service = start_service(f"chdb://{tmp_path / 'clickhouse'}")
    response = requests.post(f"http://{service.http_endpoint()}/telemetry/security/search", data=body, headers=AUTH,
                             timeout=10)
    assert response.status_code == 400 and message in response.json()["error"]


def test_anomalies_rejects_bad_parameters_and_answers_503_while_clickhouse_is_down(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("http://127.0.0.1:9/")  # nothing listens on the discard port
    base = f"http://{service.http_endpoint()}/api/anomalies"
    assert requests.get(f"{base}?min_score=abc", headers=AUTH, timeout=10).status_code == 400
    assert requests.get(f"{base}?since=yesterday-ish", headers=AUTH, timeout=10).status_code == 400
    assert requests.get(f"{base}?limit=100000", headers=AUTH, timeout=10).status_code == 400
    for hostile in ("since=inf", "since=1e300", "since=nan", "limit=%C2%B2", "min_score=inf"):
        response = requests.get(f"{base}?{hostile}", headers=AUTH, timeout=10)
        assert response.status_code == 400, hostile
    response = requests.get(f"{base}?since=24h&min_score=0.5", headers=AUTH, timeout=30)
    assert response.status_code == 503 and "query failed" in response.json()["error"]
    assert requests.post(base, headers=AUTH, timeout=10).status_code == 405


def test_query_routes_need_the_token_when_auth_is_on(start_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    service = start_service(f"chdb://{tmp_path / 'clickhouse'}")
    base = f"http://{service.http_endpoint()}"
    assert requests.get(f"{base}/api/anomalies", timeout=10).status_code == 401
    assert requests.post(f"{base}/telemetry/security/search", json={"query": "x"}, timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert requests.get(f"{base}/api/anomalies", headers=wrong, timeout=10).status_code == 401
