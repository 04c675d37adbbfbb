"""The `otlp` receiver: one gRPC server and one HTTP server in front of the service's pipelines."""

from __future__ import annotations

import logging

from otlp_receiver.component import CreateSettings, Host
from otlp_receiver.receivers.otlp.config import Config
from otlp_receiver.receivers.otlp.grpc_server import GrpcServer
from otlp_receiver.receivers.otlp.http_server import HttpServer
from otlp_receiver.receivers.otlp.ingest import Ingest

log = logging.getLogger(__name__)


class OtlpReceiver:
    def __init__(self, config: Config, settings: CreateSettings) -> None:
        self.config = config
        self.name = settings.component_id
        self.telemetry = settings.telemetry
        self._grpc: GrpcServer | None = None
        self._http: HttpServer | None = None

    def start(self, host: Host) -> None:
        protocols = self.config.protocols
        if protocols.grpc is not None:
            self._grpc = GrpcServer(protocols.grpc, Ingest(host, protocols.grpc.auth, "grpc", self.telemetry))
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
