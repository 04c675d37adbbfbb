"""Real OTLP logs endpoints for the agent's tests and benchmark: gRPC (grpcio) and HTTP, on 127.0.0.1.

Both decode what they receive into flat records (attributes as Python values) and keep them, with the
time each arrived, so tests can wait for and inspect what the agent sent.
"""

from __future__ import annotations

import gzip
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


@dataclass
class Received:
    resource: dict[str, Any]
    attributes: dict[str, Any]
    body: Any
    event_name: str
    time_unix_nano: int
    observed_time_unix_nano: int
    received_at: float  # wall clock seconds when the request arrived


@dataclass
class Collected:
    records: list[Received] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: logs_service_pb2.ExportLogsServiceRequest, headers: dict[str, str]) -> None:
        now = time.time()
        batch = []
        for resource_logs in request.resource_logs:
            resource = {kv.key: _value(kv.value) for kv in resource_logs.resource.attributes}
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    batch.append(Received(
                        resource=resource,
                        attributes={kv.key: _value(kv.value) for kv in record.attributes},
                        body=_value(record.body), event_name=record.event_name,
                        time_unix_nano=record.time_unix_nano,
                        observed_time_unix_nano=record.observed_time_unix_nano, received_at=now))
        with self.lock:
            self.records.extend(batch)
            self.headers.append(headers)

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.records)

    def wait_for(self, predicate, timeout: float = 10.0) -> list[Received]:
        """Records matching `predicate`, waiting until at least one arrives or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.snapshot() if predicate(r)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


class _Servicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, collected: Collected) -> None:
        self.collected = collected

    def Export(self, request, context):
        self.collected.add(request, dict(context.invocation_metadata()))
        return logs_service_pb2.ExportLogsServiceResponse()


class GrpcEndpoint:
    """An OTLP/gRPC logs server on 127.0.0.1 (an ephemeral port unless `port` is given); TLS with `key_and_cert`."""

    def __init__(self, port: int = 0, key_and_cert: tuple[bytes, bytes] | None = None) -> None:
        self.collected = Collected()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                   options=[("grpc.max_receive_message_length", 64 << 20)])
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Servicer(self.collected), self._server)
        address = f"127.0.0.1:{port}"
        if key_and_cert is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, grpc.ssl_server_credentials([key_and_cert]))
        self.endpoint = f"127.0.0.1:{self.port}"

    def __enter__(self) -> GrpcEndpoint:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None).wait()


class HttpEndpoint:
    """An OTLP/HTTP logs server (protobuf, gzip) on 127.0.0.1 at /v1/logs."""

    def __init__(self) -> None:
        self.collected = collected = Collected()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/logs":
                    self.send_error(404)
                    return
                request = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
                collected.add(request, {k.lower(): v for k, v in self.headers.items()})
                payload = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/v1/logs"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HttpEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
