"""A ClickHouse HTTP interface served by the embedded engine, for tests only.

Debian's ClickHouse server (18.16) is too old for procsight's table, so the http transport's requests (as
clickhouse-connect sends them: SQL, `param_*` bindings, settings, Arrow bodies, over TLS when given a
certificate) are answered by chdb. The SQL is executed for real; only the HTTP framing is reimplemented.
Each request's user and URL parameters are recorded. Tests using it carry `fake_server` in their name.
"""

from __future__ import annotations

import base64
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from otlp_receiver.exporters.clickhouse.transport import _EmbeddedEngine

# Settings clickhouse-connect sends that the embedded engine should apply to the statement.
_STATEMENT_SETTINGS = ("insert_deduplication_token", "insert_deduplicate", "async_insert", "wait_for_async_insert",
                       "async_insert_deduplicate")
_FORMAT = re.compile(r"\s+FORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)


class ChdbHttpBridge:
    def __init__(self, chdb_path: str, port: int = 0, tls: tuple[Path, Path] | None = None) -> None:
        self.engine = _EmbeddedEngine.acquire(chdb_path)
        self.requests: list[str] = []
        self.users: set[str] = set()  # who the requests authenticated as
        self.params: list[dict[str, str]] = []  # each request's URL parameters
        bridge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                bridge._handle(self)

            def do_POST(self) -> None:
                bridge._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> ChdbHttpBridge:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
        self.engine.release()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        query = dict(parse_qsl(urlsplit(request.path).query, keep_blank_values=True))
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        sql = query.get("query")
        if sql is None and body.lstrip()[:6].upper() == b"INSERT":
            statement, _, body = body.partition(b"\n")  # "INSERT ... FORMAT X\n" then the data
            sql = statement.decode("utf-8")
        elif sql is None:
            sql, body = body.decode("utf-8"), b""
        self.requests.append(sql)
        self.users.add(_user(request.headers))
        self.params.append(query)
        params = {key[len("param_"):]: value for key, value in query.items() if key.startswith("param_")}
        settings = {key: value for key, value in query.items() if key in _STATEMENT_SETTINGS}
        try:
            payload = self._execute(sql, body, params, settings, query.get("default_format", "TabSeparated"))
        except RuntimeError as exc:
            message = str(exc).encode()
            code = re.search(r"Code: (\d+)", str(exc))
            request.send_response(500)
            request.send_header("X-ClickHouse-Exception-Code", code.group(1) if code else "1")
            request.send_header("Content-Length", str(len(message)))
            request.end_headers()
            request.wfile.write(message)
            return
        request.send_response(200)
        request.send_header("X-ClickHouse-Summary", '{"read_rows":"0","written_rows":"0"}')
        request.send_header("X-ClickHouse-Timezone", "UTC")
        request.send_header("X-ClickHouse-Server-Display-Name", "chdb-bridge")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def _execute(self, sql: str, body: bytes, params: dict[str, str], settings: dict[str, str],
                 default_format: str) -> bytes:
        match = _FORMAT.search(sql)
        fmt = match.group(1) if match else default_format
        statement = sql[: match.start()] if match else sql
        clause = (" SETTINGS " + ", ".join(f"{k} = '{v}'" for k, v in settings.items())) if settings else ""
        with self.engine.lock:
            session = self.engine.session
            if statement.lstrip().upper().startswith("INSERT") and body:
                with session.send_insert(statement + clause, fmt) as inserter:
                    inserter.append(body)
                    inserter.finish()
                return b""
            if statement.lstrip().upper().startswith("SELECT") and clause:
                statement += clause
            return session.query(statement, fmt, params=params).bytes()


def _user(headers: object) -> str:
    """The user of a request: clickhouse-connect sends X-ClickHouse-User or HTTP basic authentication."""
    user = headers.get("X-ClickHouse-User")  # type: ignore[attr-defined]
    if user:
        return str(user)
    scheme, _, value = str(headers.get("Authorization") or "").partition(" ")  # type: ignore[attr-defined]
    if scheme.lower() == "basic":
        return base64.b64decode(value).decode().partition(":")[0]
    return ""
