"""`otlp_grpc`: forwards enriched batches to any OTLP/gRPC endpoint, classifying failures as the spec says.

OTLP specification, "Failures": UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE and
DATA_LOSS are retryable; RESOURCE_EXHAUSTED only when the server sent RetryInfo (it is throttling,
not refusing); everything else is permanent. A partial success is not retried: the server kept what
it could and told us why it rejected the rest.
"""

from __future__ import annotations

import logging

import grpc
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub

from otlp_receiver.component import LogBatch, PermanentError, RetryableError
from otlp_receiver.exporters.otlpgrpc.config import Config
from otlp_receiver.telemetry import Telemetry

log = logging.getLogger(__name__)

_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED,
              grpc.StatusCode.ABORTED, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.DATA_LOSS}
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


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
    def __init__(self, config: Config, name: str = "otlp_grpc", telemetry: Telemetry | None = None) -> None:
        telemetry = telemetry or Telemetry()
        self.config = config
        self.name = name
        self._channel: grpc.Channel | None = None
        self._stub: LogsServiceStub | None = None
        self._metadata = tuple((key.lower(), value) for key, value in config.headers.items())  # gRPC wants lowercase
        self._rejected = telemetry.counter(
            "procsight_exporter_rejected_log_records_total",
            "Log records a destination rejected in a partial success")

    def start(self) -> None:
        options = [("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES)]
        compression = grpc.Compression.Gzip if self.config.compression == "gzip" else grpc.Compression.NoCompression
        if self.config.plaintext:
            self._channel = grpc.insecure_channel(self.config.target, options=options, compression=compression)
        else:
            tls = self.config.tls
            credentials = grpc.ssl_channel_credentials(tls.read("ca_file"), tls.read("key_file"), tls.read("cert_file"))
            self._channel = grpc.secure_channel(self.config.target, credentials, options=options,
                                                compression=compression)
        self._stub = LogsServiceStub(self._channel)

    def shutdown(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = self._stub = None

    def export(self, batch: LogBatch) -> None:
        if self._stub is None:
            raise RetryableError(f"{self.name} is not started")
        try:
            response = self._stub.Export(batch.logs, timeout=self.config.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise classify(error, self.config.endpoint) from None
        rejected = response.partial_success.rejected_log_records
        if rejected or response.partial_success.error_message:
            log.warning("%s: %s accepted batch %s partially: %d records rejected: %s", self.name,
                        self.config.endpoint, batch.batch_id, rejected, response.partial_success.error_message)
            self._rejected.inc(rejected, exporter=self.name)
