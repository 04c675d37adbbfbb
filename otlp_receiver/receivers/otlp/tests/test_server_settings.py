"""The receiver's configgrpc/confighttp settings on real servers on loopback: TLS (with a CA the test makes,
mutual TLS, plain text refused, certificates reloaded, TLS versions), bearer tokens over TLS, CORS, response
headers, URL paths, accepted encodings, timeouts, keep-alive, unix sockets, include_metadata with the batch
processor's metadata_keys, and every setting's errors."""

from __future__ import annotations

import gzip
import logging
import shutil
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
import yaml
from opentelemetry._logs import LogRecord as ApiLogRecord
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

import testing
from core.confmap import ConfigError, decode
from otlp_receiver.config import ServiceSettings
from otlp_receiver.receivers.otlp.config import Config
from otlp_receiver.receivers.otlp.grpc_server import server_options
from otlp_receiver.service import Service
from testing import TestPKI, wait_until

EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
TOKEN = "s3cret-token"


@pytest.fixture(autouse=True)
def sdk_trusts_its_certificate_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's HTTP exporter gives requests its certificate_file as session.verify, which requests lets
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override (set on some machines): without them the file counts."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return testing.certificate_authority(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Starts a receiver with the given `grpc`/`http` settings, a debug exporter and optionally bearer auth."""
    started: list[Service] = []

    def run(grpc: dict | None = None, http: dict | None = None, auth: bool = False,
            batch: dict | None = None) -> Service:
        protocols = {name: {"endpoint": "127.0.0.1:0", **settings} for name, settings in
                     (("grpc", grpc), ("http", http)) if settings is not None}
        config: dict[str, Any] = {
            "receivers": {"otlp": {"protocols": protocols}},
            "processors": {"batch": {"timeout": "50ms", "send_batch_size": 100, **(batch or {})}},
            "exporters": {"debug": {"verbosity": "basic"}},
            "service": {"data_dir": str(tmp_path / "data"),
                        "pipelines": {"logs": {"receivers": ["otlp"], "processors": ["batch"],
                                               "exporters": ["debug"]}}},
        }
        if auth:
            config["extensions"] = {"bearertokenauth": {"token": TOKEN}}
            config["service"]["extensions"] = ["bearertokenauth"]
            for settings in protocols.values():
                settings["auth"] = {"authenticator": "bearertokenauth"}
        path = tmp_path / "receiver.yaml"
        path.write_text(yaml.safe_dump(config))
        service = Service.from_config_file(path)
        service.start()
        started.append(service)
        return service

    yield run
    for service in started:
        service.shutdown(timeout=5)


def body(*texts: str) -> bytes:
    request = ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    for text in texts:
        scope.log_records.add().body.string_value = text
    return request.SerializeToString()


def records_in(lines: list[str]) -> int:
    """Records the debug exporter reported ("...: N log records" per batch)."""
    return sum(int(line.rsplit(": ", 1)[1].split()[0]) for line in lines if line.endswith(" log records"))


def server_tls(pki: TestPKI, **extra: Any) -> dict[str, Any]:
    return {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key), **extra}


def export_ok(exporter: Any) -> bool:
    """One record sent through an official SDK exporter, and whether the export succeeded."""
    results: list[LogRecordExportResult] = []
    original = exporter.export
    exporter.export = lambda batch: results.append(original(batch)) or results[-1]
    provider = LoggerProvider(resource=Resource.create({"host.name": "web-1"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    provider.get_logger("procsight.tests").emit(ApiLogRecord(body="over tls"))
    provider.shutdown()
    return results == [LogRecordExportResult.SUCCESS]


def grpc_export(endpoint: str, credentials: grpc.ChannelCredentials | None, metadata: tuple = (),
                options: tuple = ()) -> grpc.RpcError | None:
    channel = (grpc.secure_channel(endpoint, credentials, options=list(options)) if credentials
               else grpc.insecure_channel(endpoint))
    with channel:
        try:
            channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)(
                body("x"), metadata=metadata, timeout=5)
            return None
        except grpc.RpcError as error:
            return error


# -- TLS ------------------------------------------------------------------------------------------


def test_tls_on_both_protocols_with_the_sdk_exporters_and_plain_text_refused(start, pki: TestPKI, exported) -> None:  # type: ignore[no-untyped-def]
    service = start(grpc={"tls": server_tls(pki)}, http={"tls": server_tls(pki)})
    grpc_exporter = GrpcLogExporter(endpoint=f"localhost:{service.grpc_endpoint().rsplit(':', 1)[1]}",
                                    credentials=grpc.ssl_channel_credentials(pki.ca.read_bytes()))
    assert export_ok(grpc_exporter)
    http_exporter = HttpLogExporter(endpoint=f"https://{service.http_endpoint()}/v1/logs", certificate_file=str(pki.ca))
    assert export_ok(http_exporter)
    wait_until(lambda: records_in(exported()) == 2, what="both records exported")

    # plain text to a TLS port: the HTTP answer says so, gRPC cannot connect
    plain = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=body("x"), headers=PROTOBUF, timeout=5)
    assert plain.status_code == 400 and "HTTP request to an HTTPS server" in plain.text
    error = grpc_export(service.grpc_endpoint(), None)
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
    # an unknown CA is refused
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(f"https://{service.http_endpoint()}/v1/logs", data=body("x"), headers=PROTOBUF, timeout=5)


def test_mutual_tls_needs_a_client_certificate(start, pki: TestPKI) -> None:  # type: ignore[no-untyped-def]
    tls = server_tls(pki, client_ca_file=str(pki.ca))
    service = start(grpc={"tls": tls}, http={"tls": tls})
    url = f"https://{service.http_endpoint()}/v1/logs"
    with pytest.raises(requests.exceptions.RequestException):
        requests.post(url, data=body("x"), headers=PROTOBUF, verify=str(pki.ca), timeout=5)
    answer = requests.post(url, data=body("x"), headers=PROTOBUF, verify=str(pki.ca),
                           cert=(str(pki.client_cert), str(pki.client_key)), timeout=5)
    assert answer.status_code == 200
    target = service.grpc_endpoint()
    override = (("grpc.ssl_target_name_override", "localhost"),)
    assert grpc_export(target, grpc.ssl_channel_credentials(pki.ca.read_bytes()), options=override) is not None
    mutual = grpc.ssl_channel_credentials(pki.ca.read_bytes(), pki.client_key.read_bytes(),
                                          pki.client_cert.read_bytes())
    assert grpc_export(target, mutual, options=override) is None


def test_bearer_tokens_over_tls_on_both_transports(start, pki: TestPKI) -> None:  # type: ignore[no-untyped-def]
    service = start(grpc={"tls": server_tls(pki)}, http={"tls": server_tls(pki)}, auth=True)
    url = f"https://{service.http_endpoint()}/v1/logs"
    assert requests.post(url, data=body("x"), headers=PROTOBUF, verify=str(pki.ca), timeout=5).status_code == 401
    good = {**PROTOBUF, "Authorization": f"Bearer {TOKEN}"}
    assert requests.post(url, data=body("x"), headers=good, verify=str(pki.ca), timeout=5).status_code == 200
    credentials = grpc.ssl_channel_credentials(pki.ca.read_bytes())
    override = (("grpc.ssl_target_name_override", "localhost"),)
    error = grpc_export(service.grpc_endpoint(), credentials, options=override)
    assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert grpc_export(service.grpc_endpoint(), credentials, (("authorization", f"Bearer {TOKEN}"),), override) is None
    # the SDK exporters with their headers option
    port = service.grpc_endpoint().rsplit(":", 1)[1]
    assert export_ok(GrpcLogExporter(endpoint=f"localhost:{port}", credentials=credentials,
                                     headers={"authorization": f"Bearer {TOKEN}"}))
    assert export_ok(HttpLogExporter(endpoint=url, certificate_file=str(pki.ca),
                                     headers={"Authorization": f"Bearer {TOKEN}"}))


def test_certificates_are_reloaded_when_their_files_change(start, pki: TestPKI, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    tls = {"cert_file": str(cert), "key_file": str(key), "reload_interval": "100ms"}
    service = start(grpc={"tls": tls}, http={"tls": tls})
    (tmp_path / "other").mkdir()
    other = testing.certificate_authority(tmp_path / "other")
    url = f"https://{service.http_endpoint()}/v1/logs"
    assert requests.post(url, data=body("x"), headers=PROTOBUF, verify=str(pki.ca), timeout=5).status_code == 200
    shutil.copy(other.server_cert, cert)
    shutil.copy(other.server_key, key)
    time.sleep(0.3)

    def served_by(ca: Path) -> bool:
        try:
            return requests.post(url, data=body("x"), headers=PROTOBUF, verify=str(ca), timeout=5).ok
        except requests.exceptions.SSLError:
            return False

    wait_until(lambda: served_by(other.ca), timeout=5, what="the HTTP server to serve the new certificate")
    assert not served_by(pki.ca)
    override = (("grpc.ssl_target_name_override", "localhost"),)
    wait_until(lambda: grpc_export(service.grpc_endpoint(), grpc.ssl_channel_credentials(other.ca.read_bytes()),
                                   options=override) is None, timeout=5, what="gRPC to serve the new certificate")


def test_min_version_is_honoured_over_http(start, pki: TestPKI) -> None:  # type: ignore[no-untyped-def]
    service = start(http={"tls": server_tls(pki, min_version="1.3")})
    host, port = service.http_endpoint().rsplit(":", 1)
    old_client = ssl.create_default_context(cafile=str(pki.ca))
    old_client.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((host, int(port)), timeout=5) as raw, pytest.raises(ssl.SSLError):
        old_client.wrap_socket(raw, server_hostname="localhost")
    new_client = ssl.create_default_context(cafile=str(pki.ca))
    with socket.create_connection((host, int(port)), timeout=5) as raw, \
            new_client.wrap_socket(raw, server_hostname="localhost") as secure:
        assert secure.version() == "TLSv1.3"


def test_grpc_serves_tls_1_2_and_1_3_as_its_settings_say(start, pki: TestPKI) -> None:  # type: ignore[no-untyped-def]
    """grpcio cannot be told TLS versions; what it does (1.2 and 1.3, never older) is what min_version 1.2 means."""
    service = start(grpc={"tls": server_tls(pki)})
    host, port = service.grpc_endpoint().rsplit(":", 1)
    for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        client = ssl.create_default_context(cafile=str(pki.ca))
        client.minimum_version = client.maximum_version = version
        client.set_alpn_protocols(["h2"])
        with socket.create_connection((host, int(port)), timeout=5) as raw, \
                client.wrap_socket(raw, server_hostname="localhost") as secure:
            assert secure.version() == name


# -- HTTP server settings -------------------------------------------------------------------------


def test_cors_preflight_and_actual_requests(start) -> None:  # type: ignore[no-untyped-def]
    service = start(http={"cors": {"allowed_origins": ["https://*.test.com", "https://test.com"], "max_age": 7200,
                                   "exposed_headers": ["X-Trace"]}}, auth=True)
    url = f"http://{service.http_endpoint()}/v1/logs"
    preflight = requests.options(url, timeout=5, headers={
        "Origin": "https://app.test.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 204  # answered before auth: a browser sends no token on a preflight
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.test.com"
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
    assert preflight.headers["Access-Control-Allow-Headers"] == "content-type"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert preflight.headers["Access-Control-Max-Age"] == "7200"
    refused = requests.options(url, timeout=5, headers={"Origin": "https://evil.example",
                                                         "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 204 and "Access-Control-Allow-Origin" not in refused.headers
    actual = requests.post(url, data=body("x"), timeout=5, headers={
        **PROTOBUF, "Origin": "https://test.com", "Authorization": f"Bearer {TOKEN}"})
    assert actual.status_code == 200
    assert actual.headers["Access-Control-Allow-Origin"] == "https://test.com"
    assert actual.headers["Access-Control-Expose-Headers"] == "X-Trace"


def test_paths_response_headers_and_encodings(start) -> None:  # type: ignore[no-untyped-def]
    service = start(http={"logs_url_path": "log/ingest", "response_headers": [{"name": "X-Served-By",
                                                                                 "value": "procsight"}],
                          "compression_algorithms": ["", "zstd"]})
    base = f"http://{service.http_endpoint()}"
    answer = requests.post(f"{base}/log/ingest", data=body("x"), headers=PROTOBUF, timeout=5)
    assert answer.status_code == 200 and answer.headers["X-Served-By"] == "procsight"
    assert requests.post(f"{base}/v1/logs", data=body("x"), headers=PROTOBUF, timeout=5).status_code == 404
    assert requests.post(f"{base}/v1/traces", data=body("x"), headers=PROTOBUF, timeout=5).status_code == 404
    gzipped = requests.post(f"{base}/log/ingest", data=gzip.compress(body("x")), timeout=5,
                            headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert gzipped.status_code == 400 and "unsupported Content-Encoding" in gzipped.text
    assert requests.get(f"{base}/nothing", timeout=5).headers["X-Served-By"] == "procsight"


def test_request_params_carry_the_token(start) -> None:  # type: ignore[no-untyped-def]
    service = start(http={}, auth=True)
    service.settings.configs["receivers"]["otlp"].protocols.http.auth.request_params = ["authorization"]
    url = f"http://{service.http_endpoint()}/v1/logs"
    answer = requests.post(url, params={"authorization": f"Bearer {TOKEN}"}, data=body("x"), headers=PROTOBUF,
                           timeout=5)
    assert answer.status_code == 200


def test_header_and_idle_timeouts_close_slow_connections(start) -> None:  # type: ignore[no-untyped-def]
    service = start(http={"read_header_timeout": "300ms", "idle_timeout": "300ms"})
    host, port = service.http_endpoint().rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as slow:
        started = time.monotonic()
        slow.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        while slow.recv(4096):
            pass
        assert 0.25 < time.monotonic() - started < 3  # closed by the deadline, not by a per-read timeout
    with socket.create_connection((host, int(port)), timeout=5) as idle:
        payload = body("x")
        idle.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        while idle.recv(4096):
            pass
        assert time.monotonic() - started < 3


def test_clients_that_stall_or_leave_cost_no_traceback(start, capfd, caplog) -> None:  # type: ignore[no-untyped-def]
    """A client that never finishes its headers, or leaves before its answer, is routine on a network: each
    printed a traceback (to stderr and the log), which any client could repeat to flood them."""
    service = start(http={"read_header_timeout": "300ms"})
    host, port = service.http_endpoint().rsplit(":", 1)
    for request in (b"GET /nothing HTTP/1.1\r\nHost: x\r\n", b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n" * 50):
        with socket.create_connection((host, int(port)), timeout=5) as client:
            client.sendall(request)
            if request.endswith(b"\r\n\r\n"):
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, unread
            else:
                while client.recv(4096):  # the server closes it at the header deadline
                    pass
    time.sleep(0.5)
    assert requests.get(f"http://{service.http_endpoint()}/nothing", timeout=5).status_code == 404  # still serving
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_keep_alives_can_be_switched_off(start) -> None:  # type: ignore[no-untyped-def]
    service = start(http={"keep_alives_enabled": False})
    answer = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=body("x"), headers=PROTOBUF, timeout=5)
    assert answer.status_code == 200 and answer.headers["Connection"] == "close"


def test_unix_sockets(start, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    grpc_path, http_path = tmp_path / "grpc.sock", tmp_path / "http.sock"
    start(grpc={"transport": "unix", "endpoint": str(grpc_path)},
          http={"transport": "unix", "endpoint": str(http_path)})
    assert grpc_export(f"unix:{grpc_path}", None) is None
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(http_path))
        payload = body("x")
        connection.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                           b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
        assert connection.recv(4096).startswith(b"HTTP/1.1 200")


# -- include_metadata and the batch processor's metadata_keys ---------------------------------------------


def test_batches_are_split_by_client_metadata(start, exported) -> None:  # type: ignore[no-untyped-def]
    service = start(grpc={"include_metadata": True}, http={"include_metadata": True},
                    batch={"timeout": "300ms", "metadata_keys": ["X-Tenant"], "metadata_cardinality_limit": 2})
    url = f"http://{service.http_endpoint()}/v1/logs"
    for tenant in ("acme", "globex", "acme"):
        answer = requests.post(url, data=body(tenant), headers={**PROTOBUF, "X-Tenant": tenant}, timeout=5)
        assert answer.status_code == 200
    assert grpc_export(service.grpc_endpoint(), None, metadata=(("x-tenant", "globex"),)) is None
    wait_until(lambda: sum(" log records" in line for line in exported()) >= 2, what="two batches")
    lines = [line for line in exported() if " log records" in line]
    assert sorted(line.split(" metadata ")[1] for line in lines) == [
        "{'x-tenant': ['acme']}: 2 log records", "{'x-tenant': ['globex']}: 2 log records"]
    # a third combination is past metadata_cardinality_limit: refused for good, as the Collector does
    refused = requests.post(url, data=body("x"), headers={**PROTOBUF, "X-Tenant": "initech"}, timeout=5)
    assert refused.status_code == 500 and "too many batcher metadata-value combinations" in refused.text
    error = grpc_export(service.grpc_endpoint(), None, metadata=(("x-tenant", "initech"),))
    assert error is not None and error.code() == grpc.StatusCode.INTERNAL


def test_without_include_metadata_nothing_is_carried(start, exported) -> None:  # type: ignore[no-untyped-def]
    service = start(http={}, batch={"metadata_keys": ["x-tenant"]})
    answer = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=body("x"),
                           headers={**PROTOBUF, "X-Tenant": "acme"}, timeout=5)
    assert answer.status_code == 200
    wait_until(lambda: any(" log records" in line for line in exported()))
    assert "{'x-tenant': []}" in next(line for line in exported() if " log records" in line)


# -- settings ---------------------------------------------------------------------------------------


def test_grpc_settings_become_grpc_channel_arguments() -> None:
    config = decode(Config, {"protocols": {"grpc": {
        "max_recv_msg_size_mib": 32, "max_concurrent_streams": 16, "read_buffer_size": 1024, "write_buffer_size": 2048,
        "keepalive": {"server_parameters": {"max_connection_idle": "11s", "max_connection_age": "12s",
                                            "max_connection_age_grace": "13s", "time": "30s", "timeout": "5s"},
                      "enforcement_policy": {"min_time": "10s", "permit_without_stream": True}}}}})
    options = dict(server_options(config.protocols.grpc))
    assert options == {
        "grpc.max_receive_message_length": 32 << 20, "grpc.so_reuseport": 0, "grpc.max_concurrent_streams": 16,
        "grpc.http2.ping_on_rst_stream_percent": 100, "grpc.http2.bdp_probe": 0,
        "grpc.experimental.tcp_read_chunk_size": 1024, "grpc.http2.write_buffer_size": 2048,
        "grpc.max_connection_idle_ms": 11000, "grpc.max_connection_age_ms": 12000,
        "grpc.max_connection_age_grace_ms": 13000, "grpc.keepalive_time_ms": 30000, "grpc.keepalive_timeout_ms": 5000,
        "grpc.http2.min_recv_ping_interval_without_data_ms": 10000, "grpc.keepalive_permit_without_calls": 1}
    defaults = dict(server_options(decode(Config, {"protocols": {"grpc": None}} | {"protocols": {"grpc": {}}})
                                   .protocols.grpc))
    assert defaults["grpc.max_receive_message_length"] == 4 << 20  # 0 means grpc's 4 MiB
    assert defaults["grpc.experimental.tcp_read_chunk_size"] == 512 * 1024  # the otlp receiver's default


def test_max_connection_age_closes_grpc_connections(start) -> None:  # type: ignore[no-untyped-def]
    service = start(grpc={"keepalive": {"server_parameters": {"max_connection_age": "200ms",
                                                              "max_connection_age_grace": "100ms"}}})
    with grpc.insecure_channel(service.grpc_endpoint()) as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        export(body("x"), timeout=5)
        states: list[grpc.ChannelConnectivity] = []
        channel.subscribe(states.append)
        wait_until(lambda: grpc.ChannelConnectivity.IDLE in states, timeout=5,
                   what="the server to end the connection at max_connection_age")
        export(body("y"), timeout=5)  # a new connection serves the next call


@pytest.mark.parametrize(("settings", "key", "fragment"), [
    ({"grpc": {"tls": {}}}, "protocols.grpc.tls", "needs its certificate and key"),
    ({"grpc": {"tls": {"cert_file": "/nonexistent", "key_file": "/nonexistent"}}}, "protocols.grpc.tls.cert_file",
     "no such file"),
    ({"grpc": {"tls": {"cert_pem": "x", "cert_file": "y", "key_pem": "k"}}}, "protocols.grpc.tls.cert_pem",
     "not both"),
    ({"grpc": {"tls": {"cert_pem": "c", "key_pem": "k", "min_version": "1.3"}}}, "protocols.grpc.tls.min_version",
     "grpcio always offers TLS 1.2 and 1.3"),
    ({"grpc": {"tls": {"cert_pem": "c", "key_pem": "k", "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]}}},
     "protocols.grpc.tls.cipher_suites", "grpcio chooses its own"),
    ({"http": {"tls": {"cert_pem": "c", "key_pem": "k", "min_version": "1.4"}}}, "protocols.http.tls.min_version",
     "expected one of"),
    ({"http": {"tls": {"cert_pem": "c", "key_pem": "k", "cipher_suites": ["TLS_RSA_WITH_RC4_128_SHA"]}}},
     "protocols.http.tls.cipher_suites", "insecure"),
    ({"http": {"tls": {"cert_pem": "c", "key_pem": "k", "curve_preferences": ["P256"]}}},
     "protocols.http.tls.curve_preferences", "cannot order"),
    ({"http": {"tls": {"cert_pem": "c", "key_pem": "k", "tpm": {"enabled": True}}}}, "protocols.http.tls.tpm.enabled",
     "TPM"),
    ({"http": {"logs_url_path": "/v1/%zz"}}, "protocols.http.logs_url_path", "not a valid URL path"),
    ({"http": {"compression_algorithms": ["br"]}}, "protocols.http.compression_algorithms[0]", "unsupported"),
    ({"http": {"response_headers": {"Bad Name": "x"}}}, "protocols.http.response_headers", "not a valid header"),
    ({"http": {"middlewares": [{"id": "x"}]}}, "protocols.http.middlewares", "no middleware"),
    ({"http": {"transport": "udp"}}, "protocols.http.transport", "expected one of"),
    ({"grpc": {"max_recv_msg_size_mib": -1}}, "protocols.grpc.max_recv_msg_size_mib", "0 (grpc's 4 MiB)"),
    ({"http": {"cors": {"max_age": -1}}}, "protocols.http.cors.max_age", "0 or more"),
    ({}, "protocols", "at least one protocol"),
])
def test_setting_errors_name_the_key(settings: dict, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        decode(Config, {"protocols": settings}, "receivers.otlp")
    assert info.value.path == f"receivers.otlp.{key}" and fragment in info.value.message


def test_optional_sections_switch_off_and_paths_are_normalised() -> None:
    http = {"tls": {"enabled": False}, "traces_url_path": "traces", "logs_url_path": "http://x/y"}
    config = decode(Config, {"protocols": {"grpc": {"keepalive": {"enabled": False}}, "http": http}})
    assert config.protocols.grpc.keepalive is None and config.protocols.http.tls is None
    assert config.protocols.http.traces_url_path == "/traces"
    assert config.protocols.http.logs_url_path == "/y"  # the path of a URL, as Go's url.Parse reads it


def test_an_authenticator_must_be_an_enabled_extension(tmp_path: Path) -> None:
    config = {"extensions": {"bearertokenauth": {"token": "x"}},
              "receivers": {"otlp": {"protocols": {"http": {"auth": {"authenticator": "bearertokenauth"}}}}},
              "exporters": {"debug": {}},
              "service": {"pipelines": {"logs": {"receivers": ["otlp"], "exporters": ["debug"]}}}}
    with pytest.raises(ConfigError, match=r"not an extension enabled in service\.extensions"):
        ServiceSettings.from_mapping(config)
