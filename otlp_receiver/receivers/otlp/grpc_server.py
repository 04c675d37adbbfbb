"""OTLP/gRPC: `opentelemetry.proto.collector.logs.v1.LogsService/Export`.

The request is taken as raw bytes (no generated servicer), so the bytes that were validated are the
bytes spooled, parsed once with the upb protobuf runtime.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from otlp_receiver.component import Backpressure, Unauthenticated
from otlp_receiver.receivers.otlp.config import MIB, GrpcConfig, split_endpoint
from otlp_receiver.receivers.otlp.decode import InvalidRequest, decode_protobuf
from otlp_receiver.receivers.otlp.ingest import Ingest

log = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
_WORKERS = 16


class GrpcServer:
    def __init__(self, config: GrpcConfig, ingest: Ingest) -> None:
        self.config = config
        self.ingest = ingest
        self.endpoint = ""
        options = [
            ("grpc.max_receive_message_length", config.max_recv_msg_size_mib * MIB),
            ("grpc.so_reuseport", 0),
        ]
        if config.max_concurrent_streams:
            options.append(("grpc.max_concurrent_streams", config.max_concurrent_streams))
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="otlp-grpc"),
                                   options=options)
        handler = grpc.unary_unary_rpc_method_handler(
            self._export, request_deserializer=None, response_serializer=lambda m: m.SerializeToString())
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))

    def start(self) -> None:
        host, port = split_endpoint(self.config.endpoint)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = self._server.add_insecure_port(address)
        except RuntimeError as exc:  # grpc reports a port in use this way
            raise OSError(f"cannot listen for OTLP/gRPC on {self.config.endpoint}: {exc}") from exc
        if not bound:
            raise OSError(f"cannot listen for OTLP/gRPC on {self.config.endpoint}")
        self.endpoint = f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"
        self._server.start()

    def shutdown(self, timeout: float) -> None:
        # New RPCs are refused at once; those in flight get `timeout` seconds to finish.
        self._server.stop(grace=timeout).wait(timeout + 1.0)

    def _export(self, body: bytes, context: grpc.ServicerContext) -> ExportLogsServiceResponse:
        try:
            tenant = self.ingest.tenant(_authorization(context))
            return self.ingest.export(decode_protobuf, body, tenant)
        except Unauthenticated as exc:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        except InvalidRequest as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Backpressure as exc:
            code = grpc.StatusCode.UNAVAILABLE if exc.unavailable else grpc.StatusCode.RESOURCE_EXHAUSTED
            _abort_with_retry_info(context, code, str(exc), exc.retry_after)


def _authorization(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata():
        if key == "authorization":
            return value
    return None


def _abort_with_retry_info(context: grpc.ServicerContext, code: grpc.StatusCode, message: str,
                           retry_after: float) -> None:
    """RESOURCE_EXHAUSTED is retryable in OTLP only with RetryInfo, sent as google.rpc.Status details."""
    seconds = int(retry_after)
    retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=seconds,
                                                             nanos=int((retry_after - seconds) * 1e9)))
    detail = AnyMessage()
    detail.Pack(retry)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    context.abort(code, message)
