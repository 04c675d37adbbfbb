"""An OTLP logs endpoint run by tests and benchmarks: gRPC and HTTP on 127.0.0.1, recording what arrives.

It stands for "whatever OTLP backend procsight sends to": the agent's exporters and the receiver's
`otlp_grpc` / `otlp_http` exporters are tested against it over real sockets with the real protobuf and
gRPC stacks. It can serve TLS, listen on a chosen gRPC port (to come back after an outage), and be
scripted to fail the way real servers do (gRPC status with RetryInfo, HTTP 429/503 with Retry-After).

Requests are kept as they came (`received`, `records()`), and as flat records with plain attribute
values (`flat()`, `wait_for(predicate)`) for tests that look for one event.
"""

from __future__ import annotations

import base64
import gzip
import json
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2, json_format
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from testing.otlp_values import attributes_of, plain

_MAX_MESSAGE_BYTES = 64 << 20  # bursts of agent batches


@dataclass
class Failure:
    """One scripted failure: gRPC `grpc_code` (with RetryInfo when `retry_after`), or HTTP `http_status`."""

    grpc_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    http_status: int = 503
    retry_after: float | None = None
    message: str = "scripted failure"


@dataclass
class Received:
    """One request as it arrived."""

    protocol: str  # grpc | http
    request: ExportLogsServiceRequest
    headers: dict[str, str] = field(default_factory=dict)
    at: float = 0.0  # wall clock seconds


@dataclass
class FlatRecord:
    """One record with its resource, attributes and body as plain Python values."""

    resource: dict[str, Any]
    attributes: dict[str, Any]
    body: Any
    event_name: str
    time_unix_nano: int
    observed_time_unix_nano: int
    received_at: float  # wall clock seconds when its request arrived


class OtlpSink:
    def __init__(self, tls: tuple[Path, Path] | None = None, grpc_port: int = 0) -> None:
        """`tls`: (certificate, key) PEM files to serve both protocols over TLS; `grpc_port` 0 picks one."""
        self.received: list[Received] = []
        self.failures: list[Failure] = []
        self.partial_rejections = 0  # answer the next successful request with this many rejected records
        self._flat: list[FlatRecord] = []
        self._lock = threading.Lock()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                 options=[("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES)])
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_GrpcService(self), self._grpc)
        if tls is None:
            self.grpc_port = self._grpc.add_insecure_port(f"127.0.0.1:{grpc_port}")
        else:
            credentials = grpc.ssl_server_credentials([(tls[1].read_bytes(), tls[0].read_bytes())])
            self.grpc_port = self._grpc.add_secure_port(f"127.0.0.1:{grpc_port}", credentials)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(self))
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._http.socket = context.wrap_socket(self._http.socket, server_side=True)
        self.scheme = "http" if tls is None else "https"
        self.http_port = self._http.server_address[1]
        self._http_thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.http_port}"

    @property
    def logs_url(self) -> str:
        return f"{self.http_url}/v1/logs"

    def __enter__(self) -> OtlpSink:
        self._grpc.start()
        self._http_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._grpc.stop(grace=None).wait()
        self._http.shutdown()
        self._http.server_close()
        self._http_thread.join()

    def records(self, workload: str | None = None) -> list[LogRecord]:
        """Everything received, or only records whose resource has procsight.workload = `workload`."""
        with self._lock:
            return [record for item in self.received for resource_logs in item.request.resource_logs
                    if workload is None or _resource_value(resource_logs, "procsight.workload") == workload
                    for scope_logs in resource_logs.scope_logs for record in scope_logs.log_records]

    def wait_for_records(self, count: int, timeout: float = 30.0, workload: str | None = None) -> list[LogRecord]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records = self.records(workload)
            if len(records) >= count:
                return records
            time.sleep(0.05)
        raise AssertionError(f"expected {count} records at the OTLP sink, got {len(self.records(workload))}")

    def flat(self) -> list[FlatRecord]:
        """Every record received, flattened, in arrival order."""
        with self._lock:
            return list(self._flat)

    def wait_for(self, predicate: Callable[[FlatRecord], bool], timeout: float = 10.0) -> list[FlatRecord]:
        """Records matching `predicate`, waiting until at least one arrives; [] when none did in `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.flat() if predicate(r)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def _take(self, protocol: str, request: ExportLogsServiceRequest, headers: dict[str, str]) -> Failure | None:
        with self._lock:
            if self.failures:
                return self.failures.pop(0)
            item = Received(protocol, request, headers, time.time())
            self.received.append(item)
            self._flat.extend(_flatten(item))  # once, on arrival: tests poll flat() while thousands arrive
            return None

    def _response(self) -> ExportLogsServiceResponse:
        response = ExportLogsServiceResponse()
        with self._lock:
            if self.partial_rejections:
                response.partial_success.rejected_log_records = self.partial_rejections
                response.partial_success.error_message = "scripted partial rejection"
                self.partial_rejections = 0
        return response


class _GrpcService(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, sink: OtlpSink) -> None:
        self.sink = sink

    def Export(self, request: ExportLogsServiceRequest, context: grpc.ServicerContext) -> ExportLogsServiceResponse:
        headers = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
        failure = self.sink._take("grpc", request, headers)
        if failure is not None:
            if failure.retry_after is not None:
                delay = duration_pb2.Duration()
                delay.FromNanoseconds(int(failure.retry_after * 1e9))
                detail = any_pb2.Any()
                detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
                status = status_pb2.Status(code=failure.grpc_code.value[0], message=failure.message, details=[detail])
                context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
            context.abort(failure.grpc_code, failure.message)
        return self.sink._response()


def _http_handler(sink: OtlpSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = _decompress(self.headers.get("Content-Encoding", ""), self._read_body())
            request = ExportLogsServiceRequest()
            is_json = "json" in (self.headers.get("Content-Type") or "")
            if is_json:
                json_format.Parse(_hex_ids_to_base64(body), request)
            else:
                request.ParseFromString(body)
            headers = {key.lower(): value for key, value in self.headers.items()}
            failure = sink._take("http", request, headers)
            if failure is not None:
                payload = status_pb2.Status(code=14, message=failure.message).SerializeToString()
                self.send_response(failure.http_status)
                if failure.retry_after is not None:
                    self.send_header("Retry-After", str(int(failure.retry_after)))
                self._send(payload, "application/x-protobuf")
                return
            response = sink._response()
            self.send_response(200)
            if is_json:
                self._send(json_format.MessageToJson(response).encode(), "application/json")
            else:
                self._send(response.SerializeToString(), "application/x-protobuf")

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)

        def _send(self, payload: bytes, content_type: str) -> None:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def _decompress(encoding: str, body: bytes) -> bytes:
    """A request body in any Content-Encoding procsight's exporters send (the Collector's list)."""
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding in ("zlib", "deflate"):
        return zlib.decompress(body)
    if encoding == "zstd":
        from backports import zstd

        return zstd.decompress(body)
    if encoding == "lz4":
        import lz4.frame

        return lz4.frame.decompress(body)
    import cramjam

    if encoding == "x-snappy-framed":
        return bytes(cramjam.snappy.decompress(body))
    if encoding == "snappy":
        return bytes(cramjam.snappy.decompress_raw(body))
    raise ValueError(f"the test endpoint cannot decode Content-Encoding {encoding!r}")


def _flatten(item: Received) -> list[FlatRecord]:
    return [FlatRecord(resource=attributes_of(resource_logs.resource.attributes),
                       attributes=attributes_of(record.attributes), body=plain(record.body),
                       event_name=record.event_name, time_unix_nano=record.time_unix_nano,
                       observed_time_unix_nano=record.observed_time_unix_nano, received_at=item.at)
            for resource_logs in item.request.resource_logs for scope_logs in resource_logs.scope_logs
            for record in scope_logs.log_records]


def _resource_value(resource_logs: object, key: str) -> str | None:
    for attribute in resource_logs.resource.attributes:  # type: ignore[attr-defined]
        if attribute.key == key:
            return attribute.value.string_value
    return None


def _hex_ids_to_base64(body: bytes) -> bytes:
    """OTLP/JSON carries trace and span ids as hex; the protobuf JSON parser expects base64."""
    document = json.loads(body)
    for resource_logs in document.get("resourceLogs", ()):
        for scope_logs in resource_logs.get("scopeLogs", ()):
            for record in scope_logs.get("logRecords", ()):
                for key in ("traceId", "spanId"):
                    if record.get(key):
                        record[key] = base64.b64encode(bytes.fromhex(record[key])).decode()
    return json.dumps(document).encode()
