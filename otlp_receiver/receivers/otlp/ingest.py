"""What both protocols of the `otlp` receiver share: authenticate, decode and validate, hand the accepted
records to the host (which spools them durably or refuses with backpressure), count, answer.

The servers (`grpc_server.py`, `http_server.py`) only translate between their wire conventions and
these outcomes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from otlp_receiver.component import (
    DEFAULT_TENANT,
    Backpressure,
    ClientMetadata,
    Decoded,
    Host,
    TooManyPartitions,
    Unauthenticated,
)
from otlp_receiver.confighelpers import AuthConfig
from otlp_receiver.receivers.otlp.decode import InvalidRequest
from otlp_receiver.telemetry import Telemetry

# Request bodies (HTTP) or messages (gRPC, each counted as the largest it may be) one tenant may have on their way
# in at once: one tenant holding 110 HTTP bodies of 20 MB a byte short, or 600 gRPC messages of 4 MB, put the
# receiver over the memory limiter's soft limit, and every tenant was refused while they were held.
MAX_TENANT_ARRIVING_BYTES = 256 << 20

class Ingest:
    def __init__(self, host: Host, auth: AuthConfig | None, transport: str, telemetry: Telemetry) -> None:
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
        self._mended = telemetry.counter("procsight_receiver_mended_values_total",
                                         "Values mended so their records could be accepted (invalid UTF-8, "
                                         "nesting cut, an event time far ahead of the clock), by transport")
        self._duration = telemetry.histogram("procsight_receiver_request_duration_seconds",
                                             "Time to decode, spool and answer a request, by transport")

    @property
    def authenticates(self) -> bool:
        return self._authenticator is not None

    def tenant(self, headers: ClientMetadata) -> str:
        """The request's tenant from its headers or gRPC metadata (names in lower case, every value);
        raises Unauthenticated. A header sent twice is one list of values (RFC 9110 section 5.3), as a proxy
        in front reads it: `Bearer good, Bearer wrong` is no token, where the first alone would let in what
        the proxy judged by the second."""
        if self._authenticator is None:
            return DEFAULT_TENANT
        try:
            return self._authenticator.authenticate({name: ", ".join(values) for name, values in headers.items()})
        except Unauthenticated:
            self.refused("unauthenticated")
            raise

    def export(self, decode: Callable[[bytes], Decoded], body: bytes, tenant: str,
               metadata: ClientMetadata | None = None) -> ExportLogsServiceResponse:
        """Raises InvalidRequest, Backpressure or TooManyPartitions; returns the response with any
        partial_success. `metadata` is given with `include_metadata` only."""
        started = time.perf_counter()
        try:
            decoded = decode(body)
        except InvalidRequest as exc:
            self.refused(exc.reason)
            raise
        if decoded.accepted:
            try:
                self.host.consume(decoded, tenant, metadata)
            except Backpressure as exc:
                self.refused(exc.reason, decoded.accepted + decoded.rejected)
                raise
            except TooManyPartitions:
                self.refused("metadata_cardinality", decoded.accepted + decoded.rejected)
                raise
        response = ExportLogsServiceResponse()
        if decoded.rejected:
            self._rejected_records.inc(decoded.rejected, transport=self.transport, reason="invalid_record")
            response.partial_success.rejected_log_records = decoded.rejected
        if decoded.mended:
            self._mended.inc(decoded.mended, transport=self.transport)
        if decoded.rejected or decoded.mended:  # with nothing rejected, the message is a warning (OTLP)
            response.partial_success.error_message = decoded.message
        self._accepted.inc(decoded.accepted, transport=self.transport)
        self._duration.observe(time.perf_counter() - started, transport=self.transport)
        return response

    def refused(self, reason: str, records: int = 0) -> None:
        self._rejected_requests.inc(transport=self.transport, reason=reason)
        if records:
            self._rejected_records.inc(records, transport=self.transport, reason=reason)
