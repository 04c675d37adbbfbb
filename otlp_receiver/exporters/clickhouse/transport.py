"""Two ways to reach ClickHouse behind one interface: the embedded engine (chdb) and a server over HTTP.

Both run the same SQL text with the same `{name:Type}` query parameters (ClickHouse binds them
server-side, so user input never becomes SQL), and both insert Arrow IPC streams. Failures come out
as `RetryableError` (the engine or server may recover: network, overload, timeouts) or
`PermanentError` (the statement or the data is wrong).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from clickhouse_connect.driver.binding import format_bind_value

from otlp_receiver.component import PermanentError, RetryableError
from otlp_receiver.exporters.clickhouse.config import Config

log = logging.getLogger(__name__)

# ClickHouse error codes worth retrying: the statement was fine, the server was not (yet).
_RETRYABLE_CODES = {
    3,  # UNEXPECTED_END_OF_FILE
    159,  # TIMEOUT_EXCEEDED
    164,  # READONLY (a replica in maintenance)
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    203,  # NO_FREE_CONNECTION
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY
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
    short = message.splitlines()[0][:500] if message else type(exc).__name__
    if code in _RETRYABLE_CODES:
        return RetryableError(f"ClickHouse is unavailable (code {code}): {short}")
    return ClickHouseError(f"ClickHouse refused the statement: {short}", code)


class Transport(Protocol):
    def command(self, sql: str) -> None: ...

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def insert_arrow(self, table: str, columns: tuple[str, ...], stream: bytes, settings: Mapping[str, str]) -> None:
        """`table` is already quoted and qualified; `stream` an Arrow IPC stream of `columns`."""
        ...

    def close(self) -> None: ...


def open_transport(config: Config) -> Transport:
    if config.scheme == "chdb":
        return ChdbTransport(config.chdb_path)
    return HttpTransport(config)


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
        statement = f"INSERT INTO {table} ({', '.join(columns)})" + _settings_clause(settings)

        def insert(session: Any) -> None:
            with session.send_insert(statement, "ArrowStream") as inserter:
                inserter.append(stream)
                inserter.finish()

        self._run(insert)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.release()
            self._engine = None


def _settings_clause(settings: Mapping[str, str]) -> str:
    if not settings:
        return ""
    pairs = ", ".join(f"{name} = '{_quote(str(value))}'" for name, value in settings.items())
    return f" SETTINGS {pairs}"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _parse_json_each_row(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


# -- server over HTTP ----------------------------------------------------------------------------


class HttpTransport:
    """A ClickHouse server through clickhouse-connect. The client is created on first use, so a server that
    is down at start-up delays delivery (records wait in the spool) instead of failing the receiver."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._client: Any = None
        self._lock = threading.Lock()

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                import clickhouse_connect

                url = urlsplit(self.config.endpoint)
                secure = url.scheme == "https"
                timeout = self.config.timeout
                compress: bool | str = False if self.config.compress == "none" else self.config.compress
                self._client = clickhouse_connect.get_client(
                    host=url.hostname, port=url.port or (8443 if secure else 8123), secure=secure,
                    username=self.config.username, password=self.config.password, compress=compress,
                    connect_timeout=timeout, send_receive_timeout=timeout, autogenerate_session_id=False,
                )
            return self._client

    def _run(self, call: Any) -> Any:
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

        try:
            return call(self._get_client())
        except OperationalError as exc:
            # Connection refused, reset, timed out: the server is away; forget the client to reconnect.
            with self._lock:
                self._client = None
            raise RetryableError(f"ClickHouse at {self.config.endpoint} is unreachable: {exc}") from exc
        except DatabaseError as exc:
            raise classify(exc) from exc
        except OSError as exc:
            with self._lock:
                self._client = None
            raise RetryableError(f"ClickHouse at {self.config.endpoint} is unreachable: {exc}") from exc

    def command(self, sql: str) -> None:
        self._run(lambda client: client.command(sql))

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        data = self._run(lambda client: client.raw_query(sql, parameters=dict(params or {}), fmt="JSONEachRow"))
        return _parse_json_each_row(data)

    def insert_arrow(self, table: str, columns: tuple[str, ...], stream: bytes, settings: Mapping[str, str]) -> None:
        self._run(lambda client: client.raw_insert(table, list(columns), stream, settings=dict(settings),
                                                   fmt="ArrowStream"))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
