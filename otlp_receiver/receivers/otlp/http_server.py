"""OTLP/HTTP: `POST /v1/logs` (the `logs_url_path`, and the alias `/otlp/v1/events`), protobuf or JSON, with
the status codes the OTLP specification gives each failure, and the Collector's confighttp server settings:
TLS (`tls`), `cors`, `auth` (with `request_params`), `include_metadata`, `response_headers`,
`compression_algorithms` (bodies framed and decompressed by `body.py`), the timeouts and
`keep_alives_enabled`. The same server carries the service's
extra routes (`/metrics`, `/healthz`, the query API and pages): behind the same `auth` when they are
authenticated routes; a route that is not (`/healthz`) never reads a request body.

Connections: one thread each. With TLS the handshake runs in that thread (a slow client never holds up
`accept`), and a client speaking plain HTTP gets `400 Client sent an HTTP request to an HTTPS server`,
as from the Collector. The timeouts are deadlines for a whole phase (request line and headers, body,
response, idle wait between requests), as Go's http.Server keeps them, not per socket read.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import ipaddress
import json
import logging
import math
import re
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from google.protobuf import json_format
from google.rpc import status_pb2

from otlp_receiver.component import Backpressure, ClientMetadata, HttpRoute, Routes, TooManyPartitions, Unauthenticated
from otlp_receiver.configtls import reloading
from otlp_receiver.receivers.otlp.body import (
    BadBody,
    BodyTooLarge,
    UnsupportedTransfer,
    check_framing,
    content_length,
    decompress,
    has_body,
    read_body,
)
from otlp_receiver.receivers.otlp.config import HttpConfig, split_endpoint
from otlp_receiver.receivers.otlp.cors import Cors
from otlp_receiver.receivers.otlp.decode import InvalidRequest, decode_json, decode_protobuf
from otlp_receiver.receivers.otlp.ingest import MAX_TENANT_ARRIVING_BYTES, Ingest

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
EVENTS_ALIAS = "/otlp/v1/events"  # the path some existing process-event agents post to
_DECODERS = {PROTOBUF: decode_protobuf, JSON: decode_json}
_TLS_HANDSHAKE_RECORD = b"\x16"
_HTTP_VERSION = re.compile(r"HTTP/[0-9]\.[0-9]")  # RFC 9112 section 2.3
_PLAINTEXT_TO_TLS = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
_ROUTE_BODY_LIMIT = 1 << 20
_DRAIN_LIMIT = 256 * 1024  # an unread body up to this is read and dropped to keep the connection, as Go does
# A body's deadline while read_timeout is 0 (confighttp's "none"): a connection holds a thread here, so a body
# trickled a byte at a time must end some time (20 MiB in it is 175 KB/s).
UNSET_BODY_DEADLINE = 120.0
MAX_HEADER_BYTES = 1 << 20  # request line and headers together, as Go's http.Server's default MaxHeaderBytes
# Connections served at once, each by a thread of its own. Six thousand idle connections, which cost Go nothing,
# cost threads here, and the next request waited 16 s. Past this, a new connection takes the place of one
# waiting for a request (the peer with the most waiting first, the longest waiting of those): one client kept
# all 2,048 by a GET /healthz on each every 20 s, and no one else got in. With none waiting, the new one is
# closed at once (and counted).
MAX_OPEN_CONNECTIONS = 2048
_OWN_NAMES = frozenset({socket.gethostname().lower(), socket.gethostname().lower().split(".")[0]})
# Why the HTTP layer itself refused a request (BaseHTTPRequestHandler.send_error), as the rejection counter says it.
_PROTOCOL_ERRORS = {400: "bad_request", 414: "uri_too_long", 431: "headers_too_large", 501: "not_implemented",
                    505: "http_version"}


class HttpServer:
    def __init__(self, config: HttpConfig, ingest: Ingest, routes: Routes) -> None:
        self.config = config
        self.ingest = ingest
        self.routes = routes
        self.logs_paths = {config.logs_url_path, EVENTS_ALIAS}
        self.cors = Cors(config.cors)
        self.endpoint = ""
        self._tls = reloading(config.tls, config.tls.ssl_context) if config.tls else None
        self._connections: set[socket.socket] = set()
        self._in_flight = 0
        self._serving = 0  # connections admitted and not yet closed (admit)
        self._waiting: dict[socket.socket, tuple[str, float]] = {}  # waiting for a request line: peer, since
        self._arriving: Counter[str] = Counter()  # per tenant: bytes of bodies being read (arriving)
        self._idle = threading.Condition()
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"owner": self})
        if self.config.transport == "unix":
            self._server = _UnixServer(self.config.endpoint, handler, self)
            self.endpoint = self.config.endpoint
        else:
            host, port = split_endpoint(self.config.endpoint)
            server_class = _V6Server if ":" in host else _Server
            self._server = server_class((host, port), handler, self)
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

    def open_connection(self, connection: socket.socket) -> socket.socket | None:
        """The connection to serve: with TLS, after the handshake; None when it is not to be served (plain
        HTTP sent to the TLS port, which is answered 400, or a failed handshake)."""
        if self._tls is None:
            return connection
        try:
            connection.settimeout(self.config.read_header_timeout or None)
            first = connection.recv(1, socket.MSG_PEEK)
            if first != _TLS_HANDSHAKE_RECORD:
                if first:
                    connection.sendall(_PLAINTEXT_TO_TLS)
                return None
            secure = self._tls.current().wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
            secure.do_handshake()
            return secure
        except (OSError, ssl.SSLError) as exc:  # a client that gave up, a certificate it refused, no client cert
            log.debug("TLS handshake with %s failed: %s", _peer(connection), exc)
            return None

    def admit(self) -> bool:
        """Whether a new connection may be served (MAX_OPEN_CONNECTIONS), closing a waiting one to make room
        when needed; counts it in when it may."""
        with self._idle:
            victim = self._longest_waiting() if self._serving >= MAX_OPEN_CONNECTIONS else None
            if self._serving >= MAX_OPEN_CONNECTIONS and victim is None:
                return False
            self._serving += 1
            if victim is not None:
                peer, _ = self._waiting.pop(victim)
        if victim is not None:  # its thread sees the end of the stream and closes it
            log.debug("HTTP: at %d connections, closing one from %s waiting for a request",
                      MAX_OPEN_CONNECTIONS, peer)
            with contextlib.suppress(OSError):
                victim.shutdown(socket.SHUT_RDWR)
        return True

    def _longest_waiting(self) -> socket.socket | None:
        """Of the connections waiting for a request, the longest waiting of the peer with the most waiting."""
        if not self._waiting:
            return None
        per_peer = Counter(peer for peer, _ in self._waiting.values())
        return min(self._waiting, key=lambda c: (-per_peer[self._waiting[c][0]], self._waiting[c][1]))

    def waiting(self, connection: socket.socket, peer: str | None) -> None:
        """Notes a connection of `peer` waiting for its next request line (it may be closed to make room), or with
        None, no longer waiting."""
        with self._idle:
            if peer is not None:
                self._waiting[connection] = (peer, time.monotonic())
            else:
                self._waiting.pop(connection, None)

    def admitted(self, delta: int) -> None:
        with self._idle:
            self._serving += delta

    @contextlib.contextmanager
    def arriving(self, tenant: str, size: int) -> Iterator[None]:
        """Counts a body of `size` bytes (by its declared length; a chunked one as max_request_body_size) on its
        way in for `tenant` while it is read; raises Backpressure (429, and counts the refusal) when the tenant's
        bodies would pass MAX_TENANT_ARRIVING_BYTES (a tenant with none in flight always gets one in)."""
        with self._idle:
            held = self._arriving[tenant]
            if held and held + size > MAX_TENANT_ARRIVING_BYTES:
                self.ingest.refused("tenant_bodies_arriving")
                raise Backpressure(f"this tenant already has {held} bytes of request bodies arriving; retry later",
                                   retry_after=1.0, reason="tenant_bodies_arriving")
            self._arriving[tenant] += size
        try:
            yield
        finally:
            with self._idle:
                self._arriving[tenant] -= size
                if not self._arriving[tenant]:
                    del self._arriving[tenant]

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._idle:
            (self._connections.add if open_ else self._connections.discard)(connection)
            if not open_:
                self._waiting.pop(connection, None)

    def busy(self, delta: int) -> None:
        with self._idle:
            self._in_flight += delta
            self._idle.notify_all()


class _ClientGone(Exception):
    """The client closed or reset its connection before its answer was written."""


class _Serving:
    """What the server classes share: the connection is opened (TLS) in its own thread."""

    owner: HttpServer
    daemon_threads = True
    request_queue_size = socket.SOMAXCONN  # socketserver's 5 made bursts of connects wait for SYN retries

    def handle_error(self, request: object, client_address: object) -> None:
        """A client too slow for a deadline, or gone while its request was read, is routine: a line at debug
        level. Anything else is logged with its traceback (socketserver would print it to stderr)."""
        error = sys.exc_info()[1]
        if isinstance(error, TimeoutError | ConnectionError | _ClientGone):
            log.debug("HTTP connection from %s closed: %r", client_address, error)
        else:
            log.exception("HTTP connection from %s failed", client_address)

    def process_request(self, request: socket.socket, client_address: object) -> None:
        if not self.owner.admit():
            self.owner.ingest.refused("too_many_connections")
            self.shutdown_request(request)  # type: ignore[attr-defined]
            return
        try:
            super().process_request(request, client_address)  # type: ignore[misc]
        except BaseException:
            self.owner.admitted(-1)
            raise

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[misc]
        finally:
            self.owner.admitted(-1)

    def finish_request(self, request: socket.socket, client_address: object) -> None:
        connection = self.owner.open_connection(request)
        if connection is None:
            return
        try:
            self.RequestHandlerClass(connection, client_address, self)  # type: ignore[attr-defined]
        finally:
            if connection is not request:
                connection.close()


class _Server(_Serving, ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], handler: type, owner: HttpServer) -> None:
        self.owner = owner
        super().__init__(address, handler)


class _V6Server(_Server):
    address_family = socket.AF_INET6


class _UnixServer(_Serving, socketserver.ThreadingUnixStreamServer):
    def __init__(self, path: str, handler: type, owner: HttpServer) -> None:
        self.owner = owner
        super().__init__(path, handler)


class _DeadlineReader(io.RawIOBase):
    """Socket reads that fail with TimeoutError once `deadline` (a monotonic time, None for none) passed."""

    def __init__(self, connection: socket.socket) -> None:
        super().__init__()
        self.connection = connection
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self.connection.settimeout(_left(self.deadline))
        return self.connection.recv_into(buffer)


class _LineReader(io.BufferedReader):
    """The connection's buffered reader, noting a bare CR (one not ending its line) in the lines read while
    `watching`: the stdlib's header parser takes it for a line break, a proxy in front may not, so
    `X-A: a<CR>Transfer-Encoding: chunked` would frame the body differently for the two (RFC 9112 section 2.2).
    It also counts the bytes of the request line and headers against `budget` (None: no bound, the body's phase),
    line by line: counted at the socket, the first buffered read (64 KiB) went uncounted."""

    watching = False
    bare_cr = False
    budget: int | None = None

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(-1 if size is None else size)
        if self.watching and has_bare_cr(line):
            self.bare_cr = True
        if self.budget is not None:
            self.budget -= len(line)
            if self.budget < 0:  # answered 431 by BaseHTTPRequestHandler.parse_request
                raise http.client.LineTooLong(f"request headers over {MAX_HEADER_BYTES} bytes")
        return line


def has_bare_cr(line: bytes) -> bool:
    """A CR in the line other than the one of its CRLF ending."""
    return b"\r" in line[:-2 if line.endswith(b"\r\n") else -1 if line.endswith(b"\n") else None]


class _Handler(BaseHTTPRequestHandler):
    owner: HttpServer
    protocol_version = "HTTP/1.1"
    server_version = "procsight"
    # Errors found before the request line's version is read are still answered with a status line; the
    # default, HTTP/0.9, answers them with a bare HTML body a client cannot read as a refusal.
    default_request_version = "HTTP/1.0"
    _continue_owed = False  # the client sent `Expect: 100-continue` and waits for it before its body

    def handle_expect_100(self) -> bool:
        """The stdlib answers 100 Continue as soon as the headers are read; it is owed only once the body is
        wanted (`_body`), as Go's server does, so a request refused for its token or type is answered at
        once and its client never uploads the body."""
        self._continue_owed = True
        return True

    def setup(self) -> None:
        super().setup()
        self._reader = _DeadlineReader(self.connection)
        self.rfile = self._lines = _LineReader(self._reader, 65536)
        self._served = 0
        self._write_deadline: float | None = None
        self._extra_headers: dict[str, str] = {}
        self._body_unread = False
        self._peer = _peer(self.connection)
        self.owner.track(self.connection, True)

    def finish(self) -> None:
        self.owner.track(self.connection, False)
        super().finish()

    def address_string(self) -> str:
        return self._peer

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def handle_one_request(self) -> None:
        config = self.owner.config
        # The first request line must come within read_header_timeout; later ones within idle_timeout.
        wait = (config.idle_timeout or config.read_timeout) if self._served else config.read_header_timeout
        self._reader.deadline = _deadline(wait)
        self._served += 1
        self._lines.budget = MAX_HEADER_BYTES  # the request line's bytes count too
        self.owner.waiting(self.connection, self._peer)
        try:
            super().handle_one_request()
        finally:
            self._lines.budget = None

    def parse_request(self) -> bool:
        self.owner.waiting(self.connection, None)  # its request line came
        config = self.owner.config
        self._reader.deadline = _deadline(config.read_header_timeout or config.read_timeout)
        self._lines.watching, self._lines.bare_cr = True, False
        try:
            parsed = super().parse_request() and self._framing_accepted()
        finally:
            self._lines.budget = None
            self._lines.watching = False
        self._reader.deadline = _deadline(config.read_timeout or UNSET_BODY_DEADLINE)  # the body
        self._write_deadline = _deadline(config.write_timeout)
        return parsed

    def _framing_accepted(self) -> bool:
        if self._lines.bare_cr or has_bare_cr(self.raw_requestline):
            self.send_error(400, "a bare CR (not followed by LF) in the request line or a header")
            return False
        if not _HTTP_VERSION.fullmatch(self.request_version):  # the stdlib reads HTTP/1.10 as 1.1
            self.send_error(400, f"HTTP version {self.request_version[:20]!r} is not HTTP/<digit>.<digit>")
            return False
        try:
            check_framing(self.headers, self.request_version)
        except UnsupportedTransfer as exc:
            self.send_error(501, str(exc))
            return False
        except BadBody as exc:
            self.send_error(400, str(exc))
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The HTTP layer's own refusals (a bad request line, headers too large, ambiguous framing): counted
        as the receiver's other refusals are. The connection closes after the answer."""
        self.owner.ingest.refused(_PROTOCOL_ERRORS.get(code, f"http_{code}"))
        super().send_error(code, message, explain)

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

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    # -- routing ----------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        self.owner.busy(1)
        self._body_unread = has_body(self.headers)
        try:
            headers = self._first_values()
            cors = self.owner.cors
            if cors.enabled and cors.is_preflight(method, headers):  # before auth: a preflight has no credentials
                self._extra_headers = cors.preflight(headers)
                self._reply(204, "text/plain", b"")
                return
            self._extra_headers = cors.actual(method, headers)
            url = urlsplit(self.path)
            if url.path in self.owner.logs_paths:
                if method == "POST":
                    self._export(parse_qs(url.query))
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
        except TimeoutError:
            raise  # a deadline passed: the connection is closed without an answer, as Go's server does
        except _ClientGone as gone:
            self.close_connection = True
            log.debug("HTTP %s %s: the client left before its answer (%s)", method, self.path, gone.__cause__)
        except Exception:
            log.exception("HTTP %s %s failed", method, self.path)
            self._reply(500, "text/plain", b"internal error\n")
        finally:
            self._continue_owed = False
            self.owner.busy(-1)

    def _route(self, route: HttpRoute, query: dict[str, list[str]]) -> None:
        if not route.authenticated:  # open routes (/healthz) never read a body: a client cannot make them work
            status, content_type, payload = route.handler(None, query, b"")
            self._reply(status, content_type, payload)
            return
        try:
            tenant = self.owner.ingest.tenant(self._auth_headers(query))
        except Unauthenticated as exc:
            self._skip_body()
            self._reply(401, JSON, _json({"error": str(exc)}), {"WWW-Authenticate": "Bearer"})
            return
        refusal = self._cross_site_refusal(route)
        if refusal is not None:
            self._skip_body()
            self._reply(refusal[0], JSON, _json({"error": refusal[1]}))
            return
        try:
            self._check_encoding()
            body = self._body(limit=_ROUTE_BODY_LIMIT)
        except BodyTooLarge:
            self._reply(413, JSON, _json({"error": "request body too large"}))
            return
        except BadBody as exc:
            self._reply(400, JSON, _json({"error": str(exc)}))
            return
        status, content_type, payload = route.handler(tenant, query, body)
        self._reply(status, content_type, payload)

    def _cross_site_refusal(self, route: HttpRoute) -> tuple[int, str] | None:
        """(status, why) when a web page of another site could be the sender. A POST must say it is JSON: a
        browser sends a page's text/plain or form POST to any site without asking first, and `acknowledge`
        changes what is learned. Without `auth`, a data route's Host must be this machine's (an IP address,
        localhost or its host name): a DNS-rebinding page is sent as its own site, to which it may read and
        POST."""
        host = (self.headers.get("Host") or "").strip().lower()
        if route.data and not self.owner.ingest.authenticates and not _own_host(host):
            return 403, (f"Host {host[:100]!r} is not this machine's address or name; without `auth` the query "
                         "routes answer only requests addressed by IP, localhost or the host name (configure "
                         "`auth` on the receiver to serve them under other names)")
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if self.command == "POST" and content_type != JSON:
            return 415, f"send the body as {JSON} (Content-Type {content_type[:100]!r})"
        return None

    # -- OTLP export ------------------------------------------------------------------------------

    def _export(self, query: dict[str, list[str]]) -> None:
        ingest = self.owner.ingest
        config = self.owner.config
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        decode = _DECODERS.get(content_type)
        if decode is None:
            ingest.refused("unsupported_media_type")
            self._skip_body()
            self._reply(415, JSON, _json({"code": 3, "message": f"unsupported Content-Type {content_type!r}; "
                                          f"use {PROTOBUF} or {JSON}"}), {"Accept-Post": f"{PROTOBUF}, {JSON}"})
            return
        try:
            tenant = ingest.tenant(self._auth_headers(query))
            self._check_encoding()
            with self.owner.arriving(tenant, self._declared_size(config.body_limit)):
                body = self._body(limit=config.body_limit)
            response = ingest.export(decode, body, tenant, self._metadata() if config.include_metadata else None)
        except Unauthenticated as exc:
            self._skip_body()
            self._status(401, content_type, 16, str(exc), {"WWW-Authenticate": "Bearer"})
        except BodyTooLarge:
            ingest.refused("too_large")
            self._status(413, content_type, 8, "request body larger than max_request_body_size "
                                               f"({config.body_limit} bytes)")
        except BadBody as exc:
            ingest.refused("bad_body")
            self._status(400, content_type, 3, str(exc))
        except InvalidRequest as exc:
            self._status(400, content_type, 3, str(exc))
        except TooManyPartitions as exc:
            self._status(500, content_type, 13, str(exc))
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

    # -- headers ----------------------------------------------------------------------------------

    def _metadata(self) -> ClientMetadata:
        """Every request header, names in lower case (the Collector's client.Info.Metadata)."""
        metadata: ClientMetadata = {}
        for name, value in self.headers.items():
            metadata.setdefault(name.lower(), []).append(value)
        return metadata

    def _first_values(self) -> dict[str, str]:
        return {name: values[0] for name, values in self._metadata().items()}

    def _auth_headers(self, query: dict[str, list[str]]) -> ClientMetadata:
        """What the authenticator sees: the headers, and the query parameters `auth.request_params` names
        (a parameter wins over a header of the same name, as in the Collector)."""
        headers = self._metadata()
        auth = self.owner.config.auth
        for param in auth.request_params if auth else ():
            if query.get(param):
                headers[param.lower()] = query[param][:1]
        return headers

    def _skip_body(self) -> None:
        """Before answering a request whose body is not wanted: a small body is read and dropped, so the
        connection serves the next request; otherwise the connection closes after the answer (closing with
        unread data would reset it, and the client could lose the answer)."""
        if not self._body_unread:
            return
        if self._continue_owed:  # the client holds its body back: nothing to drain, the connection ends
            self.close_connection = True
            return
        try:
            length = content_length(self.headers.get("Content-Length"))
        except BadBody:
            length = _DRAIN_LIMIT + 1
        if length <= _DRAIN_LIMIT and not self.headers.get("Transfer-Encoding"):
            self.rfile.read(length)
            self._body_unread = False
        else:
            self.close_connection = True

    def _check_encoding(self) -> None:
        """Only the Content-Encodings of `compression_algorithms` (every one upstream takes, by default)."""
        encoding = self._content_encoding()
        if encoding not in self.owner.config.accepted_encodings:
            self._skip_body()
            accepted = ", ".join(e for e in self.owner.config.accepted_encodings if e)
            raise BadBody(f"unsupported Content-Encoding {encoding!r}; use one of: {accepted}")

    # -- bodies -----------------------------------------------------------------------------------

    def _declared_size(self, limit: int) -> int:
        """The body's size as its headers declare it, at most `limit`; `limit` when they do not (chunked)."""
        try:
            declared = content_length(self.headers.get("Content-Length"))
        except BadBody:
            return limit  # refused once read
        return min(limit, declared) if "Transfer-Encoding" not in self.headers else limit

    def _body(self, limit: int) -> bytes:
        """The request body, decompressed, never more than `limit` bytes. A body refused unread or cut
        short leaves the connection unusable, so it is closed after the reply."""
        try:
            if self._continue_owed:
                self._continue_owed = False
                self.send_response_only(100)
                self.end_headers()
            raw = read_body(self.rfile, self.headers, limit)
        except (BodyTooLarge, BadBody):
            self.close_connection = True
            raise
        self._body_unread = False
        return decompress(self._content_encoding(), raw, limit)

    def _content_encoding(self) -> str:
        """The Content-Encoding as `compression_algorithms` names it: "" for none, `x-gzip` as gzip. Several
        header lines are one list of codings applied in turn (RFC 9110 section 5.3), which no algorithm names:
        read as the first, as Go's Header.Get does, `gzip` then `identity` would be one body to us and another
        to a proxy that went by the last."""
        encoding = ", ".join(self.headers.get_all("Content-Encoding") or ()).strip().lower()
        return {"identity": "", "x-gzip": "gzip"}.get(encoding, encoding)

    def _reply(self, status: int, content_type: str, payload: bytes, headers: dict[str, str] | None = None) -> None:
        config = self.owner.config
        if not config.keep_alives_enabled or self._body_unread:  # an unread body would be read as a request
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        safety = _PAGE_HEADERS if content_type.startswith("text/html") else _API_HEADERS
        for name, value in {**safety, **config.response_headers, **self._extra_headers, **(headers or {})}.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        try:
            self.end_headers()
            self.connection.settimeout(_left(self._write_deadline))
            self.wfile.write(payload)
        except ConnectionError as exc:
            raise _ClientGone from exc


# Answers echo what clients sent (a record id, a query): never sniffed as another type; the page is never framed.
_API_HEADERS = {"X-Content-Type-Options": "nosniff"}
_PAGE_HEADERS = {**_API_HEADERS, "X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}


def _deadline(seconds: float) -> float | None:
    return time.monotonic() + seconds if seconds else None


def _left(deadline: float | None) -> float | None:
    """Seconds until `deadline` for a socket timeout (None: no deadline); TimeoutError once it passed."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def _peer(connection: socket.socket) -> str:
    with contextlib.suppress(OSError):
        peer = connection.getpeername()
        if isinstance(peer, tuple):
            return str(peer[0])
    return "unix"


def _own_host(host: str) -> bool:
    """A Host header naming this machine (or none): an IP address, localhost (or a name under it), or its host
    name, with or without a port."""
    name = host[1:host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]  # [::1]:4318, 127.0.0.1:4318
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name in ("", "localhost", *_OWN_NAMES) or name.endswith(".localhost")


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")
