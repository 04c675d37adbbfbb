"""Three ways to reach ClickHouse behind one interface: the embedded engine (chdb), a server over HTTP
(clickhouse-connect) and a server over the native protocol (clickhouse-driver).

All run the same SQL text with the same `{name:Type}` query parameters (ClickHouse binds them
server-side, so user input never becomes SQL), and all insert the same Arrow IPC streams: chdb and HTTP
send them as `FORMAT ArrowStream`, the native transport hands the same columns to the driver, which
sends them as Native blocks. Failures come out as `RetryableError` (the engine or server may recover:
network, overload, timeouts, a full disk) or `PermanentError` (the statement or the data is wrong). chdb's
streaming insert does not report a full disk, so the embedded engine's inserts are checked against the table.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import threading
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.binding import format_bind_value

from otlp_receiver.component import PermanentError, RetryableError
from otlp_receiver.exporters.clickhouse.config import Config, Connection

log = logging.getLogger(__name__)

# ClickHouse error codes worth retrying: the statement was fine, the server was not (yet).
_RETRYABLE_CODES = {
    3,  # UNEXPECTED_END_OF_FILE
    75,  # CANNOT_WRITE_TO_FILE_DESCRIPTOR (the server's disk failing)
    159,  # TIMEOUT_EXCEEDED
    164,  # READONLY (a replica in maintenance)
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    203,  # NO_FREE_CONNECTION
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY
    243,  # NOT_ENOUGH_SPACE (the server's disk full)
    252,  # TOO_MANY_PARTS
    319,  # UNKNOWN_STATUS_OF_INSERT
    425,  # SYSTEM_ERROR
    999,  # KEEPER_EXCEPTION
}
UNKNOWN_TABLE_CODES = {60, 81}  # UNKNOWN_TABLE, UNKNOWN_DATABASE: someone dropped it; create_schema recreates
_CODE = re.compile(r"Code: (\d+)")


class ClickHouseError(PermanentError):
    """A permanent failure with the server's error code, for callers that react to specific codes."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


def classify(exc: Exception) -> Exception:
    """The component error for a ClickHouse failure message."""
    message = str(exc).strip()
    match = _CODE.search(message)
    code = int(match.group(1)) if match else None
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 1 and _CODE.fullmatch(lines[0].rstrip(".")):  # clickhouse-driver: "Code: 516." then the message
        lines = [f"{lines[0]} {lines[1]}"]
    short = lines[0][:500] if lines else type(exc).__name__
    if code in _RETRYABLE_CODES:
        return RetryableError(f"ClickHouse is unavailable (code {code}): {short}")
    return ClickHouseError(f"ClickHouse refused the statement: {short}", code)


class Transport(Protocol):
    def command(self, sql: str) -> None: ...

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as JSON gives them (numbers, text, lists, dicts); date-times come back as text."""
        ...

    def insert_arrow(self, table: str, columns: tuple[str, ...], stream: bytes, settings: Mapping[str, str]) -> None:
        """`table` is already quoted and qualified; `stream` an Arrow IPC stream of `columns`."""
        ...

    def close(self) -> None: ...


def open_transport(config: Config) -> Transport:
    connection = config.connection()
    if connection.kind == "chdb":
        return ChdbTransport(connection.path)
    if connection.kind == "native":
        return NativeTransport(connection)
    return HttpTransport(connection)


# -- embedded ------------------------------------------------------------------------------------


class _EmbeddedEngine:
    """chdb runs one embedded server per process, on one path. Every transport on that path shares it
    (the exporter and the query service of a receiver do); the last one to close shuts it down, after
    which another path may be opened."""

    _registry_lock = threading.Lock()
    _current: _EmbeddedEngine | None = None

    def __init__(self, path: str) -> None:
        from chdb import session

        self.path = path
        self.session = session.Session(path)
        self.lock = threading.Lock()  # one statement at a time on the shared session
        self.users = 0

    @classmethod
    def acquire(cls, path: str) -> _EmbeddedEngine:
        os.makedirs(path, exist_ok=True)
        real = os.path.realpath(path)
        with cls._registry_lock:
            engine = cls._current
            if engine is None:
                engine = cls._current = cls(real)
            elif engine.path != real:
                raise PermanentError(f"the embedded ClickHouse engine is already open on {engine.path}; chdb allows "
                                     f"one path per process, so {real} cannot be opened (use one chdb:// path)")
            engine.users += 1
            return engine

    def release(self) -> None:
        with _EmbeddedEngine._registry_lock:
            self.users -= 1
            if self.users == 0:
                with self.lock:
                    self.session.close()
                _EmbeddedEngine._current = None


class ChdbTransport:
    def __init__(self, path: str) -> None:
        self._engine: _EmbeddedEngine | None = _EmbeddedEngine.acquire(path)

    def _run(self, call: Any) -> Any:
        engine = self._engine
        if engine is None:
            raise PermanentError("the ClickHouse transport is closed")
        with engine.lock:
            try:
                return call(engine.session)
            except RuntimeError as exc:  # chdb raises ChdbError (a RuntimeError) with the server's message
                raise classify(exc) from exc

    def command(self, sql: str) -> None:
        self._run(lambda session: session.query(sql, "Null"))

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        # The embedded engine takes parameters as the HTTP interface does: text in ClickHouse's
        # escaped format, which clickhouse-connect's formatter produces for the HTTP transport too.
        bound = {name: format_bind_value(value) for name, value in (params or {}).items()}
        result = self._run(lambda session: session.query(sql, "JSONEachRow", params=bound))
        return _parse_json_each_row(result.bytes())

    def insert_arrow(self, table: str, columns: tuple[str, ...], stream: bytes, settings: Mapping[str, str]) -> None:
        """Raises RetryableError when the table did not keep the rows. chdb's streaming insert reports them written
        when the disk is full (NOT_ENOUGH_SPACE), and the batch counted delivered was lost. So the table's count is
        read before and after (inserts are serialized on the session); a part already stored (a replay, which
        deduplication drops) is told apart by its first and last RecordId."""
        statement = f"INSERT INTO {table} ({', '.join(columns)})" + _settings_clause(settings)
        rows = pa.ipc.open_stream(pa.py_buffer(stream)).read_all()

        def insert(session: Any) -> None:
            before = _count(session, table)
            with session.send_insert(statement, "ArrowStream") as inserter:
                inserter.append(stream)
                inserter.finish()
            if _count(session, table) - before < rows.num_rows and not _already_stored(session, table, rows):
                raise RetryableError(f"the embedded ClickHouse did not keep the {rows.num_rows} rows it took: is its "
                                     f"disk full? ({_free_space(self._engine)}); the records wait in the spool")

        self._run(insert)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.release()
            self._engine = None


def _count(session: Any, table: str) -> int:
    return int(session.query(f"SELECT count() FROM {table}", "CSV").bytes())


def _already_stored(session: Any, table: str, rows: pa.Table) -> bool:
    """Whether the table holds the first and the last of `rows` (by RecordId, searched within their time span); True
    for rows without record ids, which cannot be told apart (the engine's word is taken, as before)."""
    if not rows.num_rows or "RecordId" not in rows.column_names:
        return True
    ids = rows.column("RecordId")
    params = {"first": ids[0].as_py(), "last": ids[-1].as_py()}
    where = "RecordId IN ({first:String}, {last:String})"
    if "Timestamp" in rows.column_names:
        span = pc.min_max(rows.column("Timestamp").cast(pa.int64()))
        params |= {"from": span["min"].as_py(), "to": span["max"].as_py()}
        where += " AND Timestamp BETWEEN fromUnixTimestamp64Nano({from:Int64}) AND fromUnixTimestamp64Nano({to:Int64})"
    bound = {name: format_bind_value(value) for name, value in params.items()}
    found = int(session.query(f"SELECT uniqExact(RecordId) FROM {table} WHERE {where}", "CSV", params=bound).bytes())
    return found == (1 if params["first"] == params["last"] else 2)


def _free_space(engine: _EmbeddedEngine | None) -> str:
    if engine is None:
        return "closed"
    try:
        return f"{shutil.disk_usage(engine.path).free / 2**20:,.0f} MiB free at {engine.path}"
    except OSError as exc:
        return f"{engine.path}: {exc.strerror}"


def _settings_clause(settings: Mapping[str, str]) -> str:
    if not settings:
        return ""
    pairs = ", ".join(f"{name} = '{_quote(str(value))}'" for name, value in settings.items())
    return f" SETTINGS {pairs}"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _parse_json_each_row(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


# -- a server over HTTP ------------------------------------------------------------------------


class _ServerTransport:
    """A client made on first use and forgotten after a connection failure, so a server that is down at
    start-up delays delivery (records wait in the spool) instead of failing the receiver."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._client: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        raise NotImplementedError

    def _client_now(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _unreachable(self, exc: Exception) -> RetryableError:
        with self._lock:
            self._client = None  # reconnect on the next call
        return RetryableError(f"ClickHouse at {self.connection.address} is unreachable: {exc}")

    def _disconnect(self, client: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._disconnect(self._client)
                self._client = None


class HttpTransport(_ServerTransport):
    def _connect(self) -> Any:
        import clickhouse_connect

        connection = self.connection
        (host, port), = connection.hosts
        compress: bool | str = False if connection.compress == "none" else connection.compress
        return clickhouse_connect.get_client(
            host=host, port=port, secure=connection.secure, username=connection.username,
            password=connection.password, compress=compress, connect_timeout=connection.connect_timeout,
            send_receive_timeout=connection.read_timeout, autogenerate_session_id=False,
            settings=dict(connection.settings), verify=not connection.skip_verify,
            ca_cert=connection.ca_file or None, client_cert=connection.cert_file or None,
            client_cert_key=connection.key_file or None, server_host_name=connection.server_name or None,
            client_name=connection.client_name or None, proxy_path=connection.http_path,
            http_proxy=connection.http_proxy or None,
        )

    def _run(self, call: Any) -> Any:
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

        try:
            return call(self._client_now())
        except OperationalError as exc:  # connection refused, reset, timed out: the server is away
            raise self._unreachable(exc) from exc
        except DatabaseError as exc:
            raise classify(exc) from exc
        except OSError as exc:
            raise self._unreachable(exc) from exc

    def command(self, sql: str) -> None:
        self._run(lambda client: client.command(sql))

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        data = self._run(lambda client: client.raw_query(sql, parameters=dict(params or {}), fmt="JSONEachRow"))
        return _parse_json_each_row(data)

    def insert_arrow(self, table: str, columns: tuple[str, ...], stream: bytes, settings: Mapping[str, str]) -> None:
        self._run(lambda client: client.raw_insert(table, list(columns), stream, settings=dict(settings),
                                                   fmt="ArrowStream"))

    def _disconnect(self, client: Any) -> None:
        client.close()


# -- a server over the native protocol -------------------------------------------------------------


class NativeTransport(_ServerTransport):
    """clickhouse-driver, with query parameters bound by the server (`server_side_params`), as over HTTP."""

    def _connect(self) -> Any:
        from clickhouse_driver import Client

        connection = self.connection
        hosts = list(connection.hosts)
        if connection.open_strategy == "random":
            random.shuffle(hosts)
        (host, port), others = hosts[0], hosts[1:]
        if connection.debug:
            logging.getLogger("clickhouse_driver").setLevel(logging.DEBUG)
        return Client(
            host=host, port=port, user=connection.username, password=connection.password,
            alt_hosts=",".join(f"{h}:{p}" for h, p in others) or None,
            round_robin=connection.open_strategy == "round_robin",
            secure=connection.secure, verify=not connection.skip_verify, ca_certs=connection.ca_file or None,
            certfile=connection.cert_file or None, keyfile=connection.key_file or None,
            server_hostname=connection.server_name or None,
            compression=False if connection.compress == "none" else connection.compress,
            connect_timeout=connection.connect_timeout, send_receive_timeout=connection.read_timeout,
            sync_request_timeout=connection.read_timeout, client_name=connection.client_name or "procsight",
            settings={**connection.settings, "server_side_params": True},
        )

    def _run(self, call: Any) -> Any:
        from clickhouse_driver import errors

        client = self._client_now()
        try:
            return call(client)
        except errors.ServerException as exc:
            raise classify(exc) from exc
        except (errors.NetworkError, errors.SocketTimeoutError, errors.UnexpectedPacketFromServerError, EOFError,
                OSError) as exc:
            client.disconnect()
            raise self._unreachable(exc) from exc
        except errors.Error as exc:  # raised by the driver itself, e.g. a value it cannot encode
            raise ClickHouseError(f"ClickHouse driver refused the statement: {exc}", exc.code) from exc

    def command(self, sql: str) -> None:
        self._run(lambda client: client.execute(sql))

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        rows, columns = self._run(lambda client: client.execute(sql, dict(params or {}), with_column_types=True))
        names = [name for name, _type in columns]
        return [{name: _json_like(value) for name, value in zip(names, row, strict=True)} for row in rows]

    def insert_arrow(self, table: str, columns: tuple[str, ...], stream: bytes, settings: Mapping[str, str]) -> None:
        arrow = pa.ipc.open_stream(stream).read_all()
        data = [_python_column(arrow.column(name)) for name in columns]
        statement = f"INSERT INTO {table} ({', '.join(f'`{name}`' for name in columns)}) VALUES"
        self._run(lambda client: client.execute(statement, data, columnar=True, settings=dict(settings)))

    def _disconnect(self, client: Any) -> None:
        client.disconnect()


def _python_column(column: pa.ChunkedArray) -> list[Any]:
    """An Arrow column as the values clickhouse-driver encodes: timestamps as raw nanoseconds (exact, no
    datetime round trip), maps as dicts."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        return column.cast(pa.int64()).to_pylist()
    if pa.types.is_map(kind):
        return [dict(items) for items in column.to_pylist()]
    return column.to_pylist()


def _json_like(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return str(value)
    if isinstance(value, tuple):
        return [_json_like(item) for item in value]
    if isinstance(value, list):
        return [_json_like(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_like(item) for key, item in value.items()}
    return value
