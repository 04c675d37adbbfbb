"""Sending the agent's encoded requests to an OTLP endpoint, over gRPC or HTTP.

The records are already protobuf bytes (`otlp.py`), so sending is one call of the public APIs: a gRPC
unary call of `LogsService/Export` with the bytes as the request, or an HTTP POST of them to
`/v1/logs`. TLS (CA, client certificate), headers (the bearer token), gzip and the timeout are the
config's. Each export is one attempt: a failure raises ExportError, and the caller
(`emitter.SpoolingBatchProcessor`) keeps the records in its disk spool and tries again every
`spool.retry_interval`, which is the retry policy.
"""

from __future__ import annotations

import gzip
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import grpc

from core import __version__, httpclient
from otel_agent.config import ExporterConfig, TLSConfig
from otel_agent.otlp import RequestEncoder

EXPORT_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
USER_AGENT = f"procsight-agent/{__version__}"


class ExportError(Exception):
    """The endpoint did not take the records (unreachable, refused, an error status); the message says why."""


class RecordExporter(Protocol):
    def export(self, records: Sequence[bytes]) -> None:
        """Sends encoded LogRecords as one request; raises ExportError unless the endpoint accepted them."""
        ...

    def shutdown(self) -> None: ...


class GrpcExporter:
    def __init__(self, config: ExporterConfig, encoder: RequestEncoder, headers: dict[str, str]) -> None:
        self._encoder = encoder
        self._timeout = config.timeout
        self._metadata = tuple((name.lower(), value) for name, value in headers.items())  # gRPC wants lowercase
        target = config.grpc_target()
        options = [("grpc.primary_user_agent", USER_AGENT)]
        compression = grpc.Compression.Gzip if config.compression == "gzip" else grpc.Compression.NoCompression
        if config.tls.insecure:
            self._channel = grpc.insecure_channel(target, options=options, compression=compression)
        else:
            credentials = grpc.ssl_channel_credentials(*(_read(path) for path in (
                config.tls.ca_file, config.tls.key_file, config.tls.cert_file)))
            self._channel = grpc.secure_channel(target, credentials, options=options, compression=compression)
        self._export = self._channel.unary_unary(EXPORT_METHOD, request_serializer=None, response_deserializer=None)

    def export(self, records: Sequence[bytes]) -> None:
        try:
            self._export(self._encoder.encode(records), metadata=self._metadata, timeout=self._timeout)
        except grpc.RpcError as error:
            raise ExportError(f"{error.code().name}: {error.details()}") from None

    def shutdown(self) -> None:
        self._channel.close()


class HttpExporter:
    def __init__(self, config: ExporterConfig, encoder: RequestEncoder, headers: dict[str, str]) -> None:
        self._encoder = encoder
        self._timeout = config.timeout
        self._gzip = config.compression == "gzip"
        self.url = config.logs_url()
        self._headers = {"Content-Type": "application/x-protobuf", "User-Agent": USER_AGENT, **headers}
        if self._gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._opener = httpclient.opener(context=_ssl_context(config.tls) if self.url.startswith("https://") else None)

    def export(self, records: Sequence[bytes]) -> None:
        body = self._encoder.encode(records)
        request = urllib.request.Request(self.url, data=gzip.compress(body, 5) if self._gzip else body,
                                         headers=self._headers, method="POST")
        try:
            with self._opener.open(request, timeout=self._timeout) as answer:
                answer.read()
        except urllib.error.HTTPError as error:
            raise ExportError(f"HTTP {error.code} from {self.url}{httpclient.redirect_hint(error)}") from None
        except (urllib.error.URLError, OSError) as error:
            raise ExportError(f"{self.url} is unreachable: {error}") from None

    def shutdown(self) -> None:
        pass  # a connection per request: nothing held open


def build_exporter(config: ExporterConfig, encoder: RequestEncoder) -> RecordExporter:
    """The exporter for the configured protocol, with the bearer token (config, else $PROCSIGHT_TOKEN)."""
    headers = dict(config.headers)
    token = config.token or os.environ.get("PROCSIGHT_TOKEN", "")
    if token:
        headers["authorization"] = f"Bearer {token}"
    if config.protocol == "grpc":
        return GrpcExporter(config, encoder, headers)
    return HttpExporter(config, encoder, headers)


def _ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=tls.ca_file or None)
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


def _read(path: str) -> bytes | None:
    return Path(path).read_bytes() if path else None
