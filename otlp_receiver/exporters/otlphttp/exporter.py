"""`otlp_http`: forwards enriched batches to any OTLP/HTTP endpoint, classifying failures as the spec says.

OTLP specification, "Failures (HTTP)": 429, 502, 503 and 504 are retryable, honouring Retry-After
(seconds or an HTTP date); any other non-2xx is permanent. A 200 with a partial success is not retried.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import functools
import http.client
import http.cookiejar
import json
import logging
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse

from core import httpclient
from otlp_receiver import configcompression
from otlp_receiver.component import ClientAuthenticator, LogBatch, PermanentError, RetryableError
from otlp_receiver.confighelpers import USER_AGENT
from otlp_receiver.exporters.otlphttp.config import Config
from otlp_receiver.telemetry import Telemetry

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = {429, 502, 503, 504}


def retry_after_seconds(header: str | None, now: float | None = None) -> float | None:
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def to_otlp_json(request: ExportLogsServiceRequest) -> bytes:
    """OTLP/JSON: protobuf JSON mapping with enums as integers and trace/span ids as hex, not base64."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_logs in document.get("resourceLogs", ()):
        for scope_logs in resource_logs.get("scopeLogs", ()):
            for record in scope_logs.get("logRecords", ()):
                for key in ("traceId", "spanId"):
                    if key in record:
                        record[key] = base64.b64decode(record[key]).hex()
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _status_message(body: bytes, content_type: str) -> str:
    """The server's google.rpc.Status message if it sent one, else the body's start."""
    try:
        if "json" in content_type:
            return str(json.loads(body).get("message", ""))[:500]
        if "protobuf" in content_type:
            return status_pb2.Status.FromString(body).message[:500]
    except (ValueError, AttributeError):
        pass
    return body[:200].decode("utf-8", "replace")


class OtlpHttpExporter:
    def __init__(self, config: Config, name: str = "otlp_http", telemetry: Telemetry | None = None,
                 authenticator: ClientAuthenticator | None = None) -> None:
        telemetry = telemetry or Telemetry()
        self.config = config
        self.name = name
        self._authenticator = authenticator
        self._content_type = "application/json" if config.encoding == "json" else "application/x-protobuf"
        self._compressed = config.compression not in ("", "none")
        self._opener = build_opener(config)
        self._slots = threading.BoundedSemaphore(config.max_conns_per_host) if config.max_conns_per_host else None
        self._rejected = telemetry.counter(
            "procsight_exporter_rejected_log_records_total",
            "Log records a destination rejected in a partial success")

    def start(self) -> None:
        pass  # connections are made per request; nothing to open

    def shutdown(self) -> None:
        pass

    def export(self, batch: LogBatch) -> None:
        config = self.config
        body = to_otlp_json(batch.logs) if config.encoding == "json" else batch.serialized()
        headers = {"Content-Type": self._content_type, "User-Agent": USER_AGENT, **config.headers}
        if self._compressed:
            body = configcompression.compress(config.compression, body, config.compression_params.level)
            headers["Content-Encoding"] = config.compression
        if self._authenticator is not None:
            headers.update(self._authenticator.client_headers())
        request = urllib.request.Request(config.url, data=body, headers=headers, method="POST")
        with self._slots or contextlib.nullcontext():
            try:
                with self._opener.open(request, timeout=config.timeout or None) as answer:
                    self._check_partial_success(batch, answer.read(), answer.headers.get("Content-Type", ""))
            except urllib.error.HTTPError as error:
                raise self._classify(error) from None
            except (urllib.error.URLError, OSError) as error:
                raise RetryableError(f"{config.url} is unreachable: {error}") from None

    def _classify(self, error: urllib.error.HTTPError) -> Exception:
        detail = _status_message(error.read(), error.headers.get("Content-Type", ""))
        message = f"{self.config.url} answered HTTP {error.code}{httpclient.redirect_hint(error)}: {detail}"
        if 300 <= error.code < 400:  # the endpoint is misconfigured: the records wait in the spool until it is fixed
            return RetryableError(message)
        if error.code in _RETRYABLE_STATUS:
            return RetryableError(message, retry_after=retry_after_seconds(error.headers.get("Retry-After")))
        return PermanentError(message)

    def _check_partial_success(self, batch: LogBatch, body: bytes, content_type: str) -> None:
        if not body:
            return
        response = ExportLogsServiceResponse()
        try:
            if "json" in content_type:
                json_format.Parse(body, response, ignore_unknown_fields=True)
            else:
                response.ParseFromString(body)
        except Exception:  # the data was accepted; an unreadable answer only costs the partial-success detail
            log.debug("%s: unreadable response body from %s", self.name, self.config.url)
            return
        partial: Any = response.partial_success
        if partial.rejected_log_records or partial.error_message:
            log.warning("%s: %s accepted batch %s partially: %d records rejected: %s", self.name, self.config.url,
                        batch.batch_id, partial.rejected_log_records, partial.error_message)
            self._rejected.inc(partial.rejected_log_records, exporter=self.name)


def build_opener(config: Config) -> urllib.request.OpenerDirector:
    """urllib with the confighttp client settings: TLS, proxy, cookies, buffer sizes, the TLS server name."""
    context = config.tls.ssl_context() if config.url.startswith("https://") else None
    handlers: list[urllib.request.BaseHandler] = [_Connections(config, context)]
    if config.proxy_url:
        handlers.append(urllib.request.ProxyHandler({"http": config.proxy_url, "https": config.proxy_url}))
    if config.cookies is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    return httpclient.opener(*handlers)


class _Connections(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    """Opens each request's connection with `write_buffer_size` (http.client's blocksize), `read_buffer_size`
    and, over TLS, `tls.server_name_override` as the name the certificate must carry."""

    def __init__(self, config: Config, context: ssl.SSLContext | None) -> None:
        urllib.request.HTTPHandler.__init__(self)
        urllib.request.HTTPSHandler.__init__(self, context=context)
        self._config = config
        self._context = context

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPConnection, read_buffer=self._config.read_buffer_size,
                                              blocksize=self._config.write_buffer_size or 8192), req)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPSConnection, read_buffer=self._config.read_buffer_size,
                                              server_name=self._config.tls.server_name_override,
                                              blocksize=self._config.write_buffer_size or 8192),
                            req, context=self._context)


class _BufferedResponse(http.client.HTTPResponse):
    read_buffer = 0

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        if self.read_buffer:
            self.fp = sock.makefile("rb", buffering=self.read_buffer)


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, read_buffer: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.response_class = type("Response", (_BufferedResponse,), {"read_buffer": read_buffer})


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, read_buffer: int = 0, server_name: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.response_class = type("Response", (_BufferedResponse,), {"read_buffer": read_buffer})
        self._server_name = server_name

    def connect(self) -> None:
        if not self._server_name:
            super().connect()
            return
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)  # type: ignore[attr-defined]
