"""A ClickHouse native-protocol (TCP) interface served by the embedded engine, for tests only.

Debian's ClickHouse server (18.16) speaks the native protocol but predates Map columns and deduplication
tokens, so the native transport's full path (clickhouse-driver's Hello, queries with server-side
parameters, INSERT with a sample block and Native data blocks, lz4 or zstd compression, exceptions) is
answered here by chdb. The SQL runs for real in ClickHouse; only the protocol framing is reimplemented,
with clickhouse-driver's own column codecs: blocks the client sends are re-encoded as `FORMAT Native` for
chdb, and chdb's Native results are re-encoded as protocol blocks. Tests using it carry `fake_server` in
their name. Revision 54460 is the oldest with server-side parameters and without the password-complexity
rules and nonce that later Hello packets carry.
"""

from __future__ import annotations

import io
import re
import socket
import threading
from typing import Any

from clickhouse_driver import defines
from clickhouse_driver.block import BlockInfo
from clickhouse_driver.bufferedreader import BufferedSocketReader, CompressedBufferedReader
from clickhouse_driver.bufferedwriter import BufferedSocketWriter, CompressedBufferedWriter
from clickhouse_driver.columns.service import read_column, write_column
from clickhouse_driver.compression import get_compressor_cls
from clickhouse_driver.connection import ServerInfo
from clickhouse_driver.context import Context
from clickhouse_driver.reader import read_binary_str, read_binary_uint8, read_binary_uint64, read_binary_uint128
from clickhouse_driver.streams.compressed import CompressedBlockInputStream, CompressedBlockOutputStream
from clickhouse_driver.varint import read_varint, write_varint
from clickhouse_driver.writer import write_binary_int32, write_binary_str, write_binary_uint8

from otlp_receiver.exporters.clickhouse.transport import _EmbeddedEngine

REVISION = 54460
_HELLO, _QUERY, _DATA, _PING = 0, 1, 2, 4  # client packets
_S_DATA, _S_EXCEPTION, _S_PONG, _S_END, _S_PROFILE_EVENTS = 1, 2, 4, 5, 14  # server packets
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\S+)\s*\((.*)\)\s*VALUES\s*$", re.IGNORECASE | re.DOTALL)
_UNESCAPE = {"b": "\b", "f": "\f", "r": "\r", "n": "\n", "t": "\t", "0": "\0", "a": "\a", "v": "\v"}


class ChdbNativeBridge:
    def __init__(self, chdb_path: str, users: dict[str, str] | None = None) -> None:
        self.engine = _EmbeddedEngine.acquire(chdb_path)
        self.users = users or {"default": ""}
        self.queries: list[str] = []
        self.settings: list[dict[str, str]] = []  # each query's settings, as the client sent them
        self.logins: list[str] = []
        self.compressed: list[bool] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> ChdbNativeBridge:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(10)
        self.engine.release()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.05)
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, connection)

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(0.2)
        with connection:
            fin, fout = BufferedSocketReader(connection, defines.BUFFER_SIZE), BufferedSocketWriter(
                connection, defines.BUFFER_SIZE)
            try:
                context = self._hello(fin, fout)
                while context is not None and not self._closed.is_set():
                    if not self._packet(fin, fout, context):
                        return
            except (EOFError, OSError):  # the client went away
                return

    def _read_varint(self, fin: Any) -> int:
        """A packet type, waiting for the client while the bridge is open."""
        while True:
            try:
                return read_varint(fin)
            except TimeoutError:
                if self._closed.is_set():
                    raise EOFError from None

    def _hello(self, fin: Any, fout: Any) -> Context | None:
        assert self._read_varint(fin) == _HELLO
        read_binary_str(fin)  # client name
        read_varint(fin), read_varint(fin)
        revision = min(read_varint(fin), REVISION)
        read_binary_str(fin)  # default database
        user, password = read_binary_str(fin), read_binary_str(fin)
        self.logins.append(user)
        if self.users.get(user) != password:
            _exception(fout, 516, f"{user}: Authentication failed: password is incorrect, or there is no user with "
                                  "such name. (AUTHENTICATION_FAILED)")
            return None
        write_varint(0, fout)
        for text in ("ClickHouse", 26, 9, REVISION, "UTC", "chdb-native-bridge", 0):
            (write_binary_str if isinstance(text, str) else write_varint)(text, fout)
        fout.flush()
        read_binary_str(fin)  # quota key (addendum)
        context = Context()
        context.server_info = ServerInfo("ClickHouse", 26, 9, 0, REVISION, "UTC", "chdb-native-bridge", revision)
        context.settings = {}
        context.client_settings = {"strings_as_bytes": False, "strings_encoding": "utf-8", "use_numpy": False,
                                   "input_format_null_as_default": False, "namedtuple_as_json": True}
        return context

    def _packet(self, fin: Any, fout: Any, context: Context) -> bool:
        kind = self._read_varint(fin)
        if kind == _PING:
            write_varint(_S_PONG, fout)
            fout.flush()
            return True
        if kind != _QUERY:
            return False
        query, settings, params, compressed = _read_query(fin)
        self.queries.append(query)
        self.settings.append(settings)
        self.compressed.append(compressed)
        blocks = _Blocks(fin, fout, context, compressed)
        blocks.read()  # the (empty) external tables
        try:
            insert = _INSERT.match(query)
            if insert:
                self._insert(blocks, insert.group(1), insert.group(2), settings)
            else:
                self._query(blocks, query, settings, params)
        except RuntimeError as exc:  # chdb's error, with ClickHouse's code
            code = re.search(r"Code: (\d+)", str(exc))
            _exception(fout, int(code.group(1)) if code else 1000, str(exc))
            return True
        write_varint(_S_END, fout)
        fout.flush()
        return True

    def _insert(self, blocks: _Blocks, table: str, column_list: str, settings: dict[str, str]) -> None:
        names = [name.strip().strip("`") for name in column_list.split(",")]
        with self.engine.lock:
            described = self.engine.session.query(f"DESCRIBE TABLE {table}", "JSONEachRow").bytes().decode()
        types = {match.group(1): match.group(2).replace('\\"', '"')
                 for match in re.finditer(r'"name":"((?:[^"\\]|\\.)*)","type":"((?:[^"\\]|\\.)*)"', described)}
        columns = [(name, types[name]) for name in names]
        blocks.write(columns, [])  # the sample block: the client encodes its data with these types
        statement = f"INSERT INTO {table} ({', '.join(f'`{name}`' for name in names)})" + _settings_clause(settings)
        while True:
            sent, data = blocks.read()
            if data and data[0]:
                native = _native(sent, data, blocks.context)
                with self.engine.lock, self.engine.session.send_insert(statement, "Native") as inserter:
                    inserter.append(native)
                    inserter.finish()
            blocks.profile_events()  # the client waits for them after each block (revision 54456 on)
            if not data or not data[0]:
                return

    def _query(self, blocks: _Blocks, query: str, settings: dict[str, str], params: dict[str, str]) -> None:
        if query.lstrip().upper().startswith("SELECT") and settings:
            query += _settings_clause(settings)
        with self.engine.lock:
            result = self.engine.session.query(query, "Native", params=params).bytes()
        for index, (columns, data) in enumerate(_native_blocks(result, blocks.context)):
            if index == 0:
                blocks.write(columns, [])  # the header, as a server sends it first
            if data:
                blocks.write(columns, data)


class _Blocks:
    """Protocol blocks on one connection (block info, custom-serialization flags, optional compression)."""

    def __init__(self, fin: Any, fout: Any, context: Context, compressed: bool) -> None:
        self.fin, self.fout, self.context = fin, fout, context
        self._in = CompressedBlockInputStream(fin, context).fin if compressed else fin
        self._out = CompressedBlockOutputStream(get_compressor_cls("lz4"), 1 << 20, fout, context) \
            if compressed else None

    def read(self) -> tuple[list[tuple[str, str]], list[list[Any]]]:
        assert read_varint(self.fin) == _DATA
        read_binary_str(self.fin)  # external table name
        BlockInfo().read(self._in)
        return _read_columns(self._in, self.context, protocol=True)

    def write(self, columns: list[tuple[str, str]], data: list[list[Any]]) -> None:
        write_varint(_S_DATA, self.fout)
        write_binary_str("", self.fout)
        target = self._out.fout if self._out is not None else self.fout
        BlockInfo().write(target)
        _write_columns(target, self.context, columns, data, protocol=True)
        if self._out is not None:
            self._out.finalize()
        else:
            self.fout.flush()

    def profile_events(self) -> None:
        """An empty ProfileEvents block (never compressed)."""
        write_varint(_S_PROFILE_EVENTS, self.fout)
        write_binary_str("", self.fout)
        BlockInfo().write(self.fout)
        _write_columns(self.fout, self.context, [], [], protocol=True)
        self.fout.flush()


def _read_query(fin: Any) -> tuple[str, dict[str, str], dict[str, str], bool]:
    read_binary_str(fin)  # query id
    if read_binary_uint8(fin):  # client info of an initial query (revision 54460's fields)
        for _ in range(3):
            read_binary_str(fin)  # initial user, query id, address
        read_binary_uint64(fin)  # initial query start time
        read_binary_uint8(fin)  # interface
        for _ in range(3):
            read_binary_str(fin)  # os user, hostname, client name
        for _ in range(3):
            read_varint(fin)  # client version and revision
        read_binary_str(fin)  # quota key
        read_varint(fin), read_varint(fin)  # distributed depth, version patch
        if read_binary_uint8(fin):  # OpenTelemetry trace context
            read_binary_uint128(fin), read_binary_uint64(fin), read_binary_str(fin), read_binary_uint8(fin)
        for _ in range(3):
            read_varint(fin)  # parallel replicas
    settings = _read_settings(fin)
    read_binary_str(fin)  # interserver secret
    read_varint(fin)  # stage
    compressed = bool(read_varint(fin))
    query = read_binary_str(fin)
    params = {name: _field_dump_to_text(value) for name, value in _read_settings(fin).items()}
    return query, settings, params, compressed


def _read_settings(fin: Any) -> dict[str, str]:
    settings = {}
    while name := read_binary_str(fin):
        read_binary_uint8(fin)  # flags
        settings[name] = read_binary_str(fin)
    return settings


def _field_dump_to_text(value: str) -> str:
    """A server-side parameter as the protocol carries it (a quoted Field dump, escaped once more) to the
    escaped text the embedded engine takes, as the HTTP interface does."""
    if len(value) < 2 or value[0] != "'" or value[-1] != "'":
        return value
    out, chars = [], iter(value[1:-1])
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            out.append(_UNESCAPE.get(escaped, escaped))
        else:
            out.append(char)
    return "".join(out)


def _raw_type(column_type: str) -> str:
    # DateTime64 read as its Int64 ticks: the driver turns them into datetimes with microseconds otherwise.
    return "Int64" if column_type.startswith("DateTime64") else column_type


def _read_columns(fin: Any, context: Context, protocol: bool) -> tuple[list[tuple[str, str]], list[list[Any]]]:
    count, rows = read_varint(fin), read_varint(fin)
    columns, data = [], []
    for _ in range(count):
        name, column_type = read_binary_str(fin), read_binary_str(fin)
        custom = bool(read_binary_uint8(fin)) if protocol else False
        columns.append((name, column_type))
        if rows:
            data.append(list(read_column(context, _raw_type(column_type), rows, fin,
                                         has_custom_serialization=custom)))
    return columns, data


def _write_columns(fout: Any, context: Context, columns: list[tuple[str, str]], data: list[list[Any]],
                   protocol: bool) -> None:
    write_varint(len(columns), fout)
    write_varint(len(data[0]) if data else 0, fout)
    for index, (name, column_type) in enumerate(columns):
        write_binary_str(name, fout)
        write_binary_str(column_type, fout)
        if protocol:
            write_binary_uint8(0, fout)  # no custom serialization
        if data:
            write_column(context, name, column_type, data[index], fout)


def _native(columns: list[tuple[str, str]], data: list[list[Any]], context: Context) -> bytes:
    sink = io.BytesIO()
    writer = CompressedBufferedWriter(sink, defines.BUFFER_SIZE)  # a buffered writer into `sink`, no compression
    _write_columns(writer, context, columns, data, protocol=False)
    writer.flush()
    return sink.getvalue()


def _native_blocks(payload: bytes, context: Context) -> list[tuple[list[tuple[str, str]], list[list[Any]]]]:
    """chdb's `FORMAT Native` result: blocks one after another until the bytes end."""
    chunks = [payload] if payload else []
    reader = CompressedBufferedReader(lambda: chunks.pop() if chunks else b"", defines.BUFFER_SIZE)
    blocks = []
    while chunks or reader.position < reader.current_buffer_size:
        blocks.append(_read_columns(reader, context, protocol=False))
    return blocks


def _settings_clause(settings: dict[str, str]) -> str:
    if not settings:
        return ""
    return " SETTINGS " + ", ".join(f"{name} = '{value}'" for name, value in settings.items())


def _exception(fout: Any, code: int, message: str) -> None:
    write_varint(_S_EXCEPTION, fout)
    write_binary_int32(code, fout)
    write_binary_str("DB::Exception", fout)
    write_binary_str(message, fout)
    write_binary_str("", fout)
    write_binary_uint8(0, fout)
    fout.flush()
