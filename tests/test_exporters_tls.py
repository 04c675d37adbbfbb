"""The otlp_grpc and otlp_http exporters over TLS: against the test OTLP endpoint serving a self-signed
certificate (trusted through `tls.ca_file`, refused without it, accepted with `insecure_skip_verify`), and into
a procsight receiver that wants mutual TLS and a bearer token (the exporters' `auth` with bearertokenauth's
client side, a client certificate, `server_name_override`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_config
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

import testing
from core.confmap import ConfigError, decode
from otlp_receiver.component import CreateSettings, LogBatch, PermanentError, RetryableError
from otlp_receiver.exporters.otlpgrpc import factory as grpc_factory
from otlp_receiver.exporters.otlphttp import factory as http_factory
from otlp_receiver.extensions.bearertokenauth.authenticator import BearerTokenAuth
from otlp_receiver.extensions.bearertokenauth.config import Config as BearerConfig
from otlp_receiver.service import Service
from otlp_receiver.telemetry import Telemetry
from testing.otlp_sink import OtlpSink


def batch() -> LogBatch:
    request = ExportLogsServiceRequest()
    request.resource_logs.add().scope_logs.add().log_records.add().body.string_value = "over tls"
    return LogBatch(logs=request, batch_id="1")


def export_with(factory, settings: dict) -> None:  # type: ignore[no-untyped-def]
    exporter = factory.create(decode(factory.Config, settings), CreateSettings(factory.TYPE, Path("."), Telemetry()))
    exporter.start()
    try:
        exporter.export(batch())
    finally:
        exporter.shutdown()


@pytest.fixture
def tls_sink(self_signed_cert: tuple[Path, Path]):
    with OtlpSink(tls=self_signed_cert) as sink:
        yield sink


def test_grpc_trusts_the_configured_ca(tls_sink: OtlpSink, self_signed_cert: tuple[Path, Path]) -> None:
    export_with(grpc_factory, {"endpoint": f"localhost:{tls_sink.grpc_port}",
                               "tls": {"ca_file": str(self_signed_cert[0])}})
    assert [r.body.string_value for r in tls_sink.records()] == ["over tls"]


def test_grpc_refuses_an_unknown_certificate(tls_sink: OtlpSink) -> None:
    with pytest.raises(RetryableError, match="UNAVAILABLE"):
        export_with(grpc_factory, {"endpoint": f"localhost:{tls_sink.grpc_port}", "timeout": "2s"})
    assert tls_sink.records() == []


def test_http_trusts_the_configured_ca(tls_sink: OtlpSink, self_signed_cert: tuple[Path, Path]) -> None:
    export_with(http_factory, {"endpoint": tls_sink.http_url, "tls": {"ca_file": str(self_signed_cert[0])}})
    assert [r.body.string_value for r in tls_sink.records()] == ["over tls"]


def test_http_refuses_an_unknown_certificate_unless_told_to_skip(tls_sink: OtlpSink) -> None:
    with pytest.raises(RetryableError, match="CERTIFICATE_VERIFY_FAILED"):
        export_with(http_factory, {"endpoint": tls_sink.http_url, "timeout": "2s"})
    assert tls_sink.records() == []
    export_with(http_factory, {"endpoint": tls_sink.http_url, "tls": {"insecure_skip_verify": True}})
    assert len(tls_sink.records()) == 1


# -- procsight's exporters into a procsight receiver over TLS, with bearertokenauth on both sides -------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> testing.TestPKI:
    return testing.certificate_authority(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def secured_receiver(tmp_path: Path, pki: testing.TestPKI):
    tls = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key), "client_ca_file": str(pki.ca)}
    auth = {"authenticator": "bearertokenauth"}
    config = {
        "extensions": {"bearertokenauth": {"token": "forward-token"}},
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0", "tls": tls, "auth": auth},
                                             "http": {"endpoint": "127.0.0.1:0", "tls": tls, "auth": auth}}}},
        "exporters": {"debug": {"verbosity": "basic"}},
        "service": {"data_dir": str(tmp_path / "data"), "extensions": ["bearertokenauth"],
                    "pipelines": {"logs": {"receivers": ["otlp"], "exporters": ["debug"]}}},
    }
    service = Service.from_config_file(write_config(tmp_path / "receiver.yaml", config))
    service.start()
    yield service
    service.shutdown(timeout=5)


def client_auth(token: str) -> BearerTokenAuth:
    auth = BearerTokenAuth(decode(BearerConfig, {"token": token}))
    auth.start()
    return auth


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_exporter_auth_and_mutual_tls_into_a_procsight_receiver(secured_receiver: Service, pki: testing.TestPKI,
                                                                protocol: str) -> None:
    factory = grpc_factory if protocol == "grpc" else http_factory
    port = (secured_receiver.grpc_endpoint() if protocol == "grpc" else secured_receiver.http_endpoint()).rsplit(":")[1]
    endpoint = f"127.0.0.1:{port}" if protocol == "grpc" else f"https://127.0.0.1:{port}"
    tls = {"ca_file": str(pki.ca), "cert_file": str(pki.client_cert), "key_file": str(pki.client_key),
           "server_name_override": "localhost"}
    settings = {"endpoint": endpoint, "tls": tls, "auth": {"authenticator": "bearertokenauth"}, "timeout": "5s"}
    accepted = telemetry_value(secured_receiver, protocol)

    def export(token: str, **changes: object) -> None:
        extensions = {"bearertokenauth": client_auth(token)}
        exporter = factory.create(decode(factory.Config, {**settings, **changes}),
                                  CreateSettings(factory.TYPE, Path("."), Telemetry(), extensions))
        exporter.start()
        try:
            exporter.export(batch())
        finally:
            exporter.shutdown()

    export("forward-token")
    assert telemetry_value(secured_receiver, protocol) == accepted + 1
    with pytest.raises(PermanentError, match=r"UNAUTHENTICATED|401"):
        export("wrong-token")
    with pytest.raises(RetryableError):  # no client certificate: the handshake fails
        export("forward-token", tls={k: v for k, v in tls.items() if k not in ("cert_file", "key_file")})
    assert telemetry_value(secured_receiver, protocol) == accepted + 1


def telemetry_value(service: Service, protocol: str) -> float:
    return service.telemetry.counter("procsight_receiver_accepted_log_records_total", "").value(transport=protocol)


def test_an_exporter_naming_an_authenticator_that_is_not_running_fails_at_start() -> None:
    config = decode(http_factory.Config, {"endpoint": "https://c:4318", "auth": {"authenticator": "bearertokenauth"}})
    with pytest.raises(ConfigError, match=r"'bearertokenauth' is not enabled in service\.extensions"):
        http_factory.create(config, CreateSettings("otlp_http", Path("."), Telemetry()))
