"""`otlp_grpc`: forwards enriched batches to any OTLP/gRPC endpoint, classifying failures as the spec says.

OTLP specification, "Failures": UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE and
DATA_LOSS are retryable; RESOURCE_EXHAUSTED only when the server sent RetryInfo (it is throttling,
not refusing); everything else is permanent. A partial success is not retried: the server kept what
it could and told us why it rejected the rest.
"""

from __future__ import annotations

import logging
import threading

import grpc
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from otlp_receiver.component import ClientAuthenticator, LogBatch, PermanentError, RetryableError
from otlp_receiver.confighelpers import USER_AGENT
from otlp_receiver.configtls import reloading
from otlp_receiver.exporters.otlpgrpc.config import Config
from otlp_receiver.reloading import Reloading
from otlp_receiver.telemetry import Telemetry

log = logging.getLogger(__name__)

_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED,
              grpc.StatusCode.ABORTED, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.DATA_LOSS}
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
EXPORT_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def retry_info_delay(error: grpc.RpcError) -> float | None:
    """Seconds from the google.rpc.RetryInfo in the trailing `grpc-status-details-bin`, if any."""
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


def classify(error: grpc.RpcError, endpoint: str) -> Exception:
    code, details = error.code(), error.details()
    message = f"{endpoint} answered {code.name}: {details}"
    delay = retry_info_delay(error)
    if code in _RETRYABLE or (code == grpc.StatusCode.RESOURCE_EXHAUSTED and delay is not None):
        return RetryableError(message, retry_after=delay)
    return PermanentError(message)


class OtlpGrpcExporter:
    def __init__(self, config: Config, name: str = "otlp_grpc", telemetry: Telemetry | None = None,
                 authenticator: ClientAuthenticator | None = None) -> None:
        telemetry = telemetry or Telemetry()
        self.config = config
        self.name = name
        self._authenticator = authenticator
        self._channel: grpc.Channel | None = None
        self._export: grpc.UnaryUnaryMultiCallable | None = None
        self._credentials: Reloading[grpc.ChannelCredentials] | None = None
        self._credentials_version = 0
        self._lock = threading.Lock()
        self._metadata = tuple((key.lower(), value) for key, value in config.headers.items())  # gRPC wants lowercase
        self._rejected = telemetry.counter(
            "procsight_exporter_rejected_log_records_total",
            "Log records a destination rejected in a partial success")

    def start(self) -> None:
        if not self.config.plaintext:
            tls = self.config.tls
            self._credentials = reloading(tls, lambda: grpc.ssl_channel_credentials(
                tls.ca_bundle(), tls.read("key"), tls.read("cert")))
        self._connect()

    def _connect(self) -> None:
        """A channel with the current credentials (again after the TLS files changed: tls.reload_interval)."""
        config = self.config
        compression = grpc.Compression.Gzip if config.compression == "gzip" else grpc.Compression.NoCompression
        options = channel_options(config)
        if self._credentials is None:
            channel = grpc.insecure_channel(config.target, options=options, compression=compression)
        else:
            self._credentials_version = self._credentials.version
            channel = grpc.secure_channel(config.target, self._credentials.current(), options=options,
                                          compression=compression)
        previous, self._channel = self._channel, channel
        # The request goes as the batch's serialized bytes (LogBatch.serialized): no serializer.
        self._export = channel.unary_unary(EXPORT_METHOD, response_deserializer=ExportLogsServiceResponse.FromString)
        if previous is not None:
            previous.close()

    def shutdown(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = self._export = None

    def export(self, batch: LogBatch) -> None:
        if self._export is None:
            raise RetryableError(f"{self.name} is not started")
        if self._credentials is not None:
            with self._lock:
                self._credentials.current()
                if self._credentials.version != self._credentials_version:
                    self._connect()
        metadata = self._metadata
        if self._authenticator is not None:
            metadata += tuple((key.lower(), value) for key, value in self._authenticator.client_headers().items())
        try:
            response = self._export(batch.serialized(), timeout=self.config.timeout or None, metadata=metadata,
                                    wait_for_ready=self.config.wait_for_ready)
        except grpc.RpcError as error:
            raise classify(error, self.config.endpoint) from None
        rejected = response.partial_success.rejected_log_records
        if rejected or response.partial_success.error_message:
            log.warning("%s: %s accepted batch %s partially: %d records rejected: %s", self.name,
                        self.config.endpoint, batch.batch_id, rejected, response.partial_success.error_message)
            self._rejected.inc(rejected, exporter=self.name)


def channel_options(config: Config) -> list[tuple[str, int | str]]:
    """grpcio channel arguments for the configgrpc client keys."""
    options: list[tuple[str, int | str]] = [
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES), ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.primary_user_agent", config.user_agent or USER_AGENT), ("grpc.lb_policy_name", config.balancer_name)]
    if config.read_buffer_size:
        options.append(("grpc.experimental.tcp_read_chunk_size", config.read_buffer_size))
    if config.write_buffer_size:
        options.append(("grpc.http2.write_buffer_size", config.write_buffer_size))
    if config.keepalive is not None:
        options += [("grpc.keepalive_time_ms", int(config.keepalive.time * 1000)),
                    ("grpc.keepalive_timeout_ms", int(config.keepalive.timeout * 1000)),
                    ("grpc.keepalive_permit_without_calls", int(config.keepalive.permit_without_stream))]
    if config.authority:
        options.append(("grpc.default_authority", config.authority))
    if config.tls.server_name_override:
        options.append(("grpc.ssl_target_name_override", config.tls.server_name_override))
    return options
