"""OTLP/gRPC: `opentelemetry.proto.collector.logs.v1.LogsService/Export`, with the Collector's configgrpc
server settings mapped onto grpcio's channel arguments (`server_options`) and TLS credentials that are
re-read when their files change.

The request is taken as raw bytes (no generated servicer), so the bytes that were validated are the
bytes spooled, parsed once with the upb protobuf runtime.

The server is grpc's asyncio one, on a loop thread of its own: a call holds a worker thread only once its
message has arrived. grpcio's threaded server gave each call a worker as its headers came, so 16 streams
that never sent their message starved every other client. A call is authenticated by its metadata before
its message is read, so grpc buffers nothing for a client without a token.

Export is served as a client-streaming method that takes exactly one message: grpc's asyncio server drops a
unary call whose stream ended inside its message (a length prefix promising more than was sent) without an
answer, and the client waits for its deadline. Read as a stream, such a call ends with no message, and is
answered INVALID_ARGUMENT and counted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Coroutine
from concurrent import futures
from typing import Any, TypeVar

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from otlp_receiver.component import Backpressure, ClientMetadata, TooManyPartitions, Unauthenticated
from otlp_receiver.configtls import TLSServerConfig, reloading
from otlp_receiver.receivers.otlp.config import GrpcConfig, split_endpoint
from otlp_receiver.receivers.otlp.decode import InvalidRequest, decode_protobuf
from otlp_receiver.receivers.otlp.ingest import MAX_TENANT_ARRIVING_BYTES, Ingest

log = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
_WORKERS = 16  # threads that decode, validate and spool arrived messages
ROOM_WAIT = 10.0  # seconds a call waits for room among its tenant's arriving messages, then RESOURCE_EXHAUSTED
MESSAGE_DEADLINE = 120.0  # seconds a message has to arrive once read (4 MiB at 35 KB/s), as HTTP's body deadline
_T = TypeVar("_T")


# HTTP/2 rapid reset: a client opening and resetting calls as fast as it can write them (110,000 in 4 s on one
# connection) had each started in Python, and legitimate calls starved. A PING answering every reset (OTLP
# clients seldom reset) makes such a client pay a round trip: grpc stops reading a connection whose answers
# pile up unread, and the attack's rate fell to a third with legitimate calls served.
_PING_ON_RESET_PERCENT = 100
# grpc's bandwidth-delay probe widened every call's flow-control window until whole messages were taken in before
# anything read them: 100 calls of one tenant, 64 of them reading, kept 390 MB. Without it a call's window opens
# to its message only once the message is read (`_arrived`): 250 MB, the 64 read.
_BDP_PROBE = 0


def server_options(config: GrpcConfig) -> list[tuple[str, int]]:
    """grpcio channel arguments for the configgrpc keys (a 0 keeps grpc's default, as in the Collector)."""
    options = [("grpc.max_receive_message_length", config.max_message_bytes), ("grpc.so_reuseport", 0),
               ("grpc.http2.ping_on_rst_stream_percent", _PING_ON_RESET_PERCENT), ("grpc.http2.bdp_probe", _BDP_PROBE)]
    settings: list[tuple[str, float]] = [
        ("grpc.max_concurrent_streams", config.max_concurrent_streams),
        ("grpc.experimental.tcp_read_chunk_size", config.read_buffer_size),
        ("grpc.http2.write_buffer_size", config.write_buffer_size),
    ]
    keepalive = config.keepalive
    if keepalive is not None and keepalive.server_parameters is not None:
        parameters = keepalive.server_parameters
        settings += [("grpc.max_connection_idle_ms", parameters.max_connection_idle * 1000),
                     ("grpc.max_connection_age_ms", parameters.max_connection_age * 1000),
                     ("grpc.max_connection_age_grace_ms", parameters.max_connection_age_grace * 1000),
                     ("grpc.keepalive_time_ms", parameters.time * 1000),
                     ("grpc.keepalive_timeout_ms", parameters.timeout * 1000)]
    if keepalive is not None and keepalive.enforcement_policy is not None:
        policy = keepalive.enforcement_policy
        settings.append(("grpc.http2.min_recv_ping_interval_without_data_ms", policy.min_time * 1000))
        options.append(("grpc.keepalive_permit_without_calls", int(policy.permit_without_stream)))
    options += [(name, int(value)) for name, value in settings if value]
    return options


def server_credentials(tls: TLSServerConfig) -> grpc.ServerCredentials:
    """TLS credentials; grpc asks for them at each new connection, and gets new ones once the files changed."""

    def build() -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(tls.read("key"), tls.read("cert"))],
                                                         root_certificates=tls.client_ca())

    material = reloading(tls, build)
    served = [material.version]

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        configuration = material.current()
        if material.version == served[0]:
            return None  # unchanged
        served[0] = material.version
        return configuration

    return grpc.dynamic_ssl_server_credentials(material.current(), fetch,
                                               require_client_authentication=bool(tls.client_ca_file))


class GrpcServer:
    def __init__(self, config: GrpcConfig, ingest: Ingest) -> None:
        self.config = config
        self.ingest = ingest
        self.endpoint = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="otlp-grpc-loop", daemon=True)
        self._workers = futures.ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="otlp-grpc")
        self._server: grpc.aio.Server | None = None
        self._room: dict[str, asyncio.Semaphore] = {}  # per tenant: messages that may be arriving at once

    def start(self) -> None:
        self._thread.start()
        try:
            self._on_loop(self._start())
        except BaseException:
            self._stop_loop()
            raise

    async def _start(self) -> None:
        self._server = grpc.aio.server(options=server_options(self.config))
        handler = grpc.stream_unary_rpc_method_handler(
            self._export, request_deserializer=None, response_serializer=lambda m: m.SerializeToString())
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
        if self.config.transport == "unix":
            address = f"unix:{self.config.endpoint}"
        else:
            host, port = split_endpoint(self.config.endpoint)
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            if self.config.tls is None:
                bound = self._server.add_insecure_port(address)
            else:
                bound = self._server.add_secure_port(address, server_credentials(self.config.tls))
        except RuntimeError as exc:  # grpc reports a port in use this way
            raise OSError(f"cannot listen for OTLP/gRPC on {self.config.endpoint}: {exc}") from exc
        if not bound:
            raise OSError(f"cannot listen for OTLP/gRPC on {self.config.endpoint}")
        unix = self.config.transport == "unix"
        self.endpoint = self.config.endpoint if unix else address.rsplit(":", 1)[0] + f":{bound}"
        await self._server.start()

    def shutdown(self, timeout: float) -> None:
        # New RPCs are refused at once; those in flight get `timeout` seconds to finish.
        if self._server is not None and self._thread.is_alive():
            self._on_loop(self._server.stop(grace=timeout), timeout + 5.0)
        self._stop_loop()

    def _on_loop(self, work: Coroutine[Any, Any, _T], timeout: float | None = 30.0) -> _T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)

    def _stop_loop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5.0)
        self._workers.shutdown(wait=False)

    async def _export(self, messages: AsyncIterator[bytes],
                      context: grpc.aio.ServicerContext) -> ExportLogsServiceResponse:
        metadata = _metadata(context)
        try:  # before the message is read: grpc buffers no unauthenticated client's bytes
            tenant = await self._loop.run_in_executor(self._workers, self.ingest.tenant, metadata)
        except Unauthenticated as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        body = await self._arrived(tenant, messages, context)
        try:
            return await self._loop.run_in_executor(self._workers, self._ingest, body, tenant, metadata)
        except InvalidRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except TooManyPartitions as exc:
            await context.abort(grpc.StatusCode.INTERNAL, str(exc))
        except Backpressure as exc:
            code = grpc.StatusCode.UNAVAILABLE if exc.unavailable else grpc.StatusCode.RESOURCE_EXHAUSTED
            await _abort_with_retry_info(context, code, str(exc), exc.retry_after)

    async def _arrived(self, tenant: str, messages: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
        """The call's message, read once the tenant has room for it among its messages arriving, each counted
        as max_message_bytes (MAX_TENANT_ARRIVING_BYTES); grpc reads no more than a flow-control window of a
        call before. A call waits ROOM_WAIT for room, then is answered RESOURCE_EXHAUSTED (retry in a second);
        its message must then arrive within MESSAGE_DEADLINE."""
        room = self._room.get(tenant)
        if room is None:
            room = self._room[tenant] = asyncio.Semaphore(
                max(1, MAX_TENANT_ARRIVING_BYTES // self.config.max_message_bytes))
        try:
            await asyncio.wait_for(room.acquire(), ROOM_WAIT)
        except TimeoutError:
            self.ingest.refused("tenant_bodies_arriving")
            await _abort_with_retry_info(context, grpc.StatusCode.RESOURCE_EXHAUSTED, "this tenant already has "
                                         "as many request messages arriving as it may; retry later", 1.0)
        try:
            return await asyncio.wait_for(self._one_message(messages, context), MESSAGE_DEADLINE)
        except TimeoutError:
            self.ingest.refused("message_timeout")
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                f"the request message did not arrive within {MESSAGE_DEADLINE:.0f} s")
        finally:
            room.release()

    async def _one_message(self, messages: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
        """The call's single request message; a call with none (its stream ended inside it) or more is refused."""
        first = await anext(messages, None)
        if first is not None and await anext(messages, None) is None:
            return first
        reason, problem = (("incomplete_message", "the call ended before its request message arrived whole")
                           if first is None else ("several_messages", "an Export call takes one request message"))
        self.ingest.refused(reason)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)  # raises

    def _ingest(self, body: bytes, tenant: str, metadata: ClientMetadata) -> ExportLogsServiceResponse:
        """On a worker thread: decode, validate and spool."""
        return self.ingest.export(decode_protobuf, body, tenant, metadata if self.config.include_metadata else None)


def _metadata(context: grpc.aio.ServicerContext) -> ClientMetadata:
    """The request's metadata, text values only (binary `-bin` values are not headers anyone keys on)."""
    metadata: ClientMetadata = {}
    for key, value in context.invocation_metadata():
        if isinstance(value, str):
            metadata.setdefault(key.lower(), []).append(value)
    return metadata


async def _abort_with_retry_info(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str,
                                 retry_after: float) -> None:
    """RESOURCE_EXHAUSTED is retryable in OTLP only with RetryInfo, sent as google.rpc.Status details."""
    seconds = int(retry_after)
    retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=seconds,
                                                             nanos=int((retry_after - seconds) * 1e9)))
    detail = AnyMessage()
    detail.Pack(retry)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    await context.abort(code, message)
