"""OTLP/HTTP: `POST /v1/logs` (and the alias `/otlp/v1/events`), protobuf or JSON, bodies compressed
as the Collector accepts them (`body.py`), with the status codes the OTLP specification gives each
failure. The same server carries the service's extra routes (`/metrics`, `/healthz`, the query API).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from google.protobuf import json_format
from google.rpc import status_pb2

from otlp_receiver.component import Backpressure, HttpRoute, Routes, Unauthenticated
from otlp_receiver.receivers.otlp.body import BadBody, BodyTooLarge, check_encoding, decompress, has_body, read_body
from otlp_receiver.receivers.otlp.config import HttpConfig, split_endpoint
from otlp_receiver.receivers.otlp.decode import InvalidRequest, decode_json, decode_protobuf
from otlp_receiver.receivers.otlp.ingest import Ingest

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
EVENTS_ALIAS = "/otlp/v1/events"  # the path some existing process-event agents post to
_DECODERS = {PROTOBUF: decode_protobuf, JSON: decode_json}
_IDLE_SECONDS = 30.0


class HttpServer:
    def __init__(self, config: HttpConfig, ingest: Ingest, routes: Routes) -> None:
        self.config = config
        self.ingest = ingest
        self.routes = routes
        self.logs_paths = {config.logs_url_path, EVENTS_ALIAS}
        self.endpoint = ""
        self._connections: set[socket.socket] = set()
        self._in_flight = 0
        self._idle = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        host, port = split_endpoint(self.config.endpoint)
        server_class = _V6Server if ":" in host else ThreadingHTTPServer
        handler = type("Handler", (_Handler,), {"owner": self})
        self._server = server_class((host, port), handler)
        self._server.daemon_threads = True
        bound = self._server.server_address[1]
        self.endpoint = f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="otlp-http", daemon=True)
        self._thread.start()

    def shutdown(self, timeout: float) -> None:
        """Stops accepting, lets requests in flight finish (up to `timeout`), closes idle connections."""
        if self._server is None:
            return
        self._server.shutdown()
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout)
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout)
        self._server = None

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._idle:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def busy(self, delta: int) -> None:
        with self._idle:
            self._in_flight += delta
            self._idle.notify_all()


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    owner: HttpServer
    protocol_version = "HTTP/1.1"
    server_version = "procsight"
    timeout = _IDLE_SECONDS
    _body_unread = False

    def setup(self) -> None:
        super().setup()
        self.owner.track(self.connection, True)

    def finish(self) -> None:
        self.owner.track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # -- routing ----------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        self.owner.busy(1)
        self._body_unread = has_body(self.headers)
        try:
            url = urlsplit(self.path)
            if url.path in self.owner.logs_paths:
                if method == "POST":
                    self._export()
                else:
                    self._reply(405, "text/plain", b"use POST\n", {"Allow": "POST"})
                return
            route = self.owner.routes.get((method, url.path))
            if route is None:
                allowed = sorted(m for m, p in self.owner.routes if p == url.path)
                if allowed:
                    self._reply(405, "text/plain", b"method not allowed\n", {"Allow": ", ".join(allowed)})
                else:
                    self._reply(404, "text/plain", b"not found\n")
                return
            self._route(route, parse_qs(url.query))
        except Exception:
            log.exception("HTTP %s %s failed", method, self.path)
            self._reply(500, "text/plain", b"internal error\n")
        finally:
            self.owner.busy(-1)

    def _route(self, route: HttpRoute, query: dict[str, list[str]]) -> None:
        tenant = None
        if route.authenticated:
            try:
                tenant = self.owner.ingest.tenant(self.headers.get("Authorization"))
            except Unauthenticated as exc:
                self._reply(401, JSON, _json({"error": str(exc)}), {"WWW-Authenticate": "Bearer"})
                return
        try:
            # Open routes (health, metrics) take no body: an unauthenticated client must not make the
            # server read or buffer anything. An unread body closes the connection after the reply.
            body = self._body(limit=1 << 20) if route.authenticated else b""
        except BodyTooLarge:
            self._reply(413, JSON, _json({"error": "request body too large"}))
            return
        except BadBody as exc:
            self._reply(400, JSON, _json({"error": str(exc)}))
            return
        status, content_type, payload = route.handler(tenant, query, body)
        self._reply(status, content_type, payload)

    # -- OTLP export ------------------------------------------------------------------------------

    def _export(self) -> None:
        ingest = self.owner.ingest
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        decode = _DECODERS.get(content_type)
        if decode is None:
            ingest.refused("unsupported_media_type")
            self._reply(415, JSON, _json({"code": 3, "message": f"unsupported Content-Type {content_type!r}; "
                                          f"use {PROTOBUF} or {JSON}"}), {"Accept-Post": f"{PROTOBUF}, {JSON}"})
            return
        try:
            tenant = ingest.tenant(self.headers.get("Authorization"))
            body = self._body(limit=self.owner.config.max_request_body_size)
            response = ingest.export(decode, body, tenant)
        except Unauthenticated as exc:
            self._status(401, content_type, 16, str(exc), {"WWW-Authenticate": "Bearer"})
        except BodyTooLarge:
            ingest.refused("too_large")
            self._status(413, content_type, 8, "request body larger than max_request_body_size "
                                               f"({self.owner.config.max_request_body_size} bytes)")
        except BadBody as exc:
            ingest.refused("bad_body")
            self._status(400, content_type, 3, str(exc))
        except InvalidRequest as exc:
            self._status(400, content_type, 3, str(exc))
        except Backpressure as exc:
            status = 503 if exc.unavailable else 429
            self._status(status, content_type, 14 if exc.unavailable else 8, str(exc),
                         {"Retry-After": str(max(1, math.ceil(exc.retry_after)))})
        else:
            if content_type == JSON:
                payload = _json(json_format.MessageToDict(response))
            else:
                payload = response.SerializeToString()
            self._reply(200, content_type, payload)

    def _status(self, http_status: int, content_type: str, code: int, message: str,
                headers: dict[str, str] | None = None) -> None:
        """Errors carry a google.rpc.Status in the request's encoding, as OTLP/HTTP specifies."""
        status = status_pb2.Status(code=code, message=message)
        payload = _json(json_format.MessageToDict(status)) if content_type == JSON else status.SerializeToString()
        self._reply(http_status, content_type, payload, headers)

    # -- bodies (framing and decompression live in body.py) ---------------------------------------

    def _body(self, limit: int) -> bytes:
        """The request body, decompressed, never more than `limit` bytes. A body refused unread or cut
        short leaves the connection unusable, so it is closed after the reply."""
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        try:
            check_encoding(encoding)
            raw = read_body(self.rfile, self.headers, limit)
        except (BodyTooLarge, BadBody):
            self.close_connection = True
            raise
        self._body_unread = False
        return decompress(encoding, raw, limit)

    def _reply(self, status: int, content_type: str, payload: bytes, headers: dict[str, str] | None = None) -> None:
        if self._body_unread:  # what is left of it would be read as the next request
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")
