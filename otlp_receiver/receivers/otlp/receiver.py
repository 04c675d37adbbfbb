"""The `otlp` receiver: one gRPC server and one HTTP server in front of the pipeline's ingest.

Both protocols share `Ingest`: authenticate, decode and validate, hand the accepted records to the
host (which spools them durably or refuses with backpressure), then answer. The servers only
translate between their wire conventions and these outcomes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from otlp_receiver.component import Backpressure, CreateSettings, Unauthenticated
from otlp_receiver.receivers.otlp.config import AuthConfig, Config
from otlp_receiver.receivers.otlp.decode import Decoded, InvalidRequest

log = logging.getLogger(__name__)


class Authenticator(Protocol):
    def authenticate(self, authorization: str | None) -> str:
        """The tenant of a request from its Authorization header; raises Unauthenticated."""
        ...


@dataclass
class HttpRoute:
    """An extra route on the HTTP server (metrics, health, queries).

    `handler(tenant, query_params, body)` returns (status, content type, body); `tenant` is None when
    the route is not authenticated."""

    handler: Callable[[str | None, dict[str, list[str]], bytes], tuple[int, str, bytes]]
    authenticated: bool = True


class Host(Protocol):
    """What the receiver needs from the service around it."""

    def consume(self, decoded: Decoded, tenant: str) -> None:
        """Durably accepts the records (returns) or refuses them (raises Backpressure)."""
        ...

    def authenticator(self, extension_id: str) -> Authenticator: ...

    def http_routes(self) -> dict[tuple[str, str], HttpRoute]: ...


class Ingest:
    """Authentication, decoding, validation and hand-off: the part both protocols share."""

    def __init__(self, host: Host, auth: AuthConfig | None, transport: str, telemetry) -> None:  # type: ignore[no-untyped-def]
        self.host = host
        self.transport = transport
        self._authenticator = host.authenticator(auth.authenticator) if auth else None
        self._accepted = telemetry.counter("procsight_receiver_accepted_log_records_total",
                                           "Log records accepted and spooled, by transport")
        self._rejected_records = telemetry.counter(
            "procsight_receiver_rejected_log_records_total",
            "Log records refused (partial_success or a refused request), by transport and reason")
        self._rejected_requests = telemetry.counter("procsight_receiver_rejected_requests_total",
                                                    "Requests refused, by transport and reason")
        self._duration = telemetry.histogram("procsight_receiver_request_duration_seconds",
                                             "Time to decode, spool and answer a request, by transport")

    def tenant(self, authorization: str | None) -> str:
        if self._authenticator is None:
            from otlp_receiver.component import DEFAULT_TENANT

            return DEFAULT_TENANT
        try:
            return self._authenticator.authenticate(authorization)
        except Unauthenticated:
            self.refused("unauthenticated")
            raise

    def export(self, decode: Callable[[bytes], Decoded], body: bytes, tenant: str) -> ExportLogsServiceResponse:
        """Raises InvalidRequest or Backpressure; returns the response with any partial_success."""
        started = time.perf_counter()
        try:
            decoded = decode(body)
        except InvalidRequest as exc:
            self.refused(exc.reason)
            raise
        if decoded.accepted:
            try:
                self.host.consume(decoded, tenant)
            except Backpressure as exc:
                self.refused(exc.reason, decoded.accepted + decoded.rejected)
                raise
        response = ExportLogsServiceResponse()
        if decoded.rejected:
            self._rejected_records.inc(decoded.rejected, transport=self.transport, reason="invalid_record")
            response.partial_success.rejected_log_records = decoded.rejected
            response.partial_success.error_message = decoded.message
        self._accepted.inc(decoded.accepted, transport=self.transport)
        self._duration.observe(time.perf_counter() - started, transport=self.transport)
        return response

    def refused(self, reason: str, records: int = 0) -> None:
        self._rejected_requests.inc(transport=self.transport, reason=reason)
        if records:
            self._rejected_records.inc(records, transport=self.transport, reason=reason)


class OtlpReceiver:
    def __init__(self, config: Config, settings: CreateSettings) -> None:
        self.config = config
        self.name = settings.component_id
        self.telemetry = settings.telemetry
        self._grpc = None
        self._http = None

    def start(self, host: Host) -> None:
        from otlp_receiver.receivers.otlp.grpc_server import GrpcServer
        from otlp_receiver.receivers.otlp.http_server import HttpServer

        protocols = self.config.protocols
        if protocols.grpc is not None:
            ingest = Ingest(host, protocols.grpc.auth, "grpc", self.telemetry)
            self._grpc = GrpcServer(protocols.grpc, ingest)
            self._grpc.start()
        if protocols.http is not None:
            ingest = Ingest(host, protocols.http.auth, "http", self.telemetry)
            self._http = HttpServer(protocols.http, ingest, host.http_routes())
            self._http.start()
        log.info("receiver %s listening: grpc %s, http %s", self.name, self.grpc_endpoint, self.http_endpoint)

    @property
    def grpc_endpoint(self) -> str | None:
        """host:port actually bound (so port 0 in the config can be read back)."""
        return self._grpc.endpoint if self._grpc else None

    @property
    def http_endpoint(self) -> str | None:
        return self._http.endpoint if self._http else None

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stops accepting and waits up to `timeout` for requests in flight to be answered."""
        if self._grpc:
            self._grpc.shutdown(timeout)
        if self._http:
            self._http.shutdown(timeout)
