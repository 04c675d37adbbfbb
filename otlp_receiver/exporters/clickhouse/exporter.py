"""The `clickhouse` exporter: one Arrow insert per batch part, deduplicated by a token stable across replays.

Turning OTLP records into columns is pure-Python work (about 1 us per attribute read through the
protobuf runtime), which would compete for the GIL with receiving and scoring. Large batches are
therefore encoded in a helper process (the serialized protobuf goes in, Arrow IPC streams come out),
so that work runs on another core; the insert itself runs in ClickHouse's own threads either way.
Small batches are encoded in place, where the round trip would cost more than it saves. The first large
batch starts the helper, and large batches are encoded in place until it is up: a spawned interpreter
importing pyarrow takes most of a second, which the batch would otherwise wait.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from core.confmap import ConfigError
from otlp_receiver.component import LogBatch, RetryableError
from otlp_receiver.exporters.clickhouse.columns import encode_parts, encode_serialized
from otlp_receiver.exporters.clickhouse.config import Config
from otlp_receiver.exporters.clickhouse.schema import (
    DEDUPLICATION_WINDOW,
    FULL_TEXT_SEARCH_VERSION,
    MIN_SERVER_VERSION,
    TableCheck,
    add_columns_sql,
    check_table,
    create_database_sql,
    create_table_sql,
    parse_version,
)
from otlp_receiver.exporters.clickhouse.transport import (
    UNKNOWN_TABLE_CODES,
    ClickHouseError,
    Transport,
    open_transport,
)
from otlp_receiver.telemetry import Telemetry

log = logging.getLogger(__name__)

# Rows per INSERT. A batch is cut at fixed offsets, so a replay cuts it identically and every part
# keeps its deduplication token `{batch_id}/{part}`.
MAX_PART_ROWS = 50_000
OFFLOAD_MIN_RECORDS = 1_000  # batches at least this big are encoded in the helper process
PARENT_CHECK_SECONDS = 1.0  # how often the helper process checks that the receiver is still there


def exit_with_parent(parent: int) -> None:
    """The encoder process's initializer: it exits once the receiver is gone. Its queues are pipes whose
    both ends it holds, so a receiver killed by kill -9 or the OOM killer would leave it waiting on them
    (or writing a result nobody reads) for ever, a process and its memory per crash."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class ClickHouseExporter:
    def __init__(self, config: Config, name: str = "clickhouse", telemetry: Telemetry | None = None) -> None:
        telemetry = telemetry or Telemetry()
        self.config = config
        self.name = name
        self.connection = config.connection()
        self.database = self.connection.database
        self.table = f"`{self.database}`.`{config.logs_table_name}`"
        self.transport: Transport | None = None
        self.exactly_once = True  # false when the table keeps no deduplication window (see _check_deduplication)
        self._insert_settings = self.connection.insert_settings(config.async_insert)
        self._columns: tuple[str, ...] | None = None  # the table's insert columns, once checked
        self._schema_lock = threading.Lock()
        self._encoder: ProcessPoolExecutor | None = None
        self._encoder_up: Future[int] | None = None  # done once the helper process runs
        self._encoder_lock = threading.Lock()
        self._insert_seconds = telemetry.histogram("procsight_clickhouse_insert_seconds",
                                                   "Time of one ClickHouse insert")

    def start(self) -> None:
        """Creates or checks the table. A server that is down only delays that to the first export (records wait
        in the spool); a server or table procsight cannot write to fails start-up with a ConfigError saying why."""
        self.transport = open_transport(self.config)
        try:
            self.ensure_schema()
        except RetryableError as exc:
            log.warning("%s: cannot check the table yet: %s", self.name, exc)

    def shutdown(self) -> None:
        with self._encoder_lock:
            if self._encoder is not None:
                self._encoder.shutdown(wait=True, cancel_futures=True)
                self._encoder = self._encoder_up = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def ensure_schema(self) -> tuple[str, ...]:
        """The columns to insert; creates the database and table first when `create_schema` is on."""
        with self._schema_lock:
            if self._columns is None:
                try:
                    self._columns = self._prepare(self._transport())
                except ClickHouseError as exc:
                    raise self._problem(str(exc)) from exc
            return self._columns

    def _prepare(self, transport: Transport) -> tuple[str, ...]:
        version_text = str(transport.query("SELECT version() AS version")[0]["version"])
        version = parse_version(version_text)
        if version < MIN_SERVER_VERSION:
            raise self._problem(f"ClickHouse {version_text} at {self.connection.address} is too old: procsight needs "
                                f"{'.'.join(map(str, MIN_SERVER_VERSION))} or newer (Map columns, insert "
                                "deduplication tokens)")
        self._check_settings(transport)
        if self.config.create_schema:
            if self.database != "default":
                transport.command(create_database_sql(self.database, self.config.cluster_name))
            transport.command(create_table_sql(
                self.database, self.config.logs_table_name, self.config.ttl, self.config.table_engine,
                self.config.cluster_name, full_text_search=version >= FULL_TEXT_SEARCH_VERSION))
        check = self._check_table(transport)
        if check.missing_procsight and check.made_by_procsight and self.config.create_schema:
            # A table of an older procsight: add the new columns (metadata only) rather than write without them.
            transport.command(add_columns_sql(self.database, self.config.logs_table_name,
                                              list(check.missing_procsight), self.config.cluster_name))
            log.info("%s: added %s to %s", self.name, ", ".join(check.missing_procsight), self.table)
            check = self._check_table(transport)
        if check.missing_procsight:
            log.warning("%s: %s has no %s: rows are written without them, and the query routes need them. To add "
                        "them: %s", self.name, self.table, ", ".join(check.missing_procsight),
                        add_columns_sql(self.database, self.config.logs_table_name, list(check.missing_procsight),
                                        self.config.cluster_name))
        self.exactly_once = self._check_deduplication(transport)
        log.info("%s: writing %d columns of %s at %s", self.name, len(check.insert_columns), self.table,
                 self.connection.address)
        return check.insert_columns

    def _check_settings(self, transport: Transport) -> None:
        names = sorted(self.connection.settings)
        if not names:
            return
        known = {row["name"] for row in transport.query(
            "SELECT name FROM system.settings WHERE has({names:Array(String)}, name)", {"names": names})}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise self._problem(f"{', '.join(unknown)} in the endpoint or connection_params: neither a driver option "
                                "procsight knows nor a setting of this ClickHouse server")

    def _check_table(self, transport: Transport) -> TableCheck:
        rows = transport.query(
            "SELECT name, type FROM system.columns WHERE database = {database:String} AND table = {table:String} "
            "AND default_kind NOT IN ('MATERIALIZED', 'ALIAS', 'EPHEMERAL')",
            {"database": self.database, "table": self.config.logs_table_name})
        if not rows:
            hint = "create it or set create_schema: true" if not self.config.create_schema else (
                "it was created, yet this server does not see it (is it part of cluster_name?)")
            raise self._problem(f"table {self.table} does not exist at {self.connection.address}: {hint}")
        check = check_table({row["name"]: row["type"] for row in rows})
        if not check.usable:
            problems = [f"missing {', '.join(check.missing_required)}"] if check.missing_required else []
            problems += check.wrong_types
            raise self._problem(f"table {self.table} cannot take OpenTelemetry log rows ({'; '.join(problems)}): "
                                "point logs_table_name at a new table (procsight creates it) or fix this one")
        return check

    def _check_deduplication(self, transport: Transport) -> bool:
        """Whether ClickHouse ignores a replayed part; warns with the fix when the table keeps no window."""
        (row,) = transport.query(
            "SELECT engine, create_table_query AS ddl FROM system.tables "
            "WHERE database = {database:String} AND name = {table:String}",
            {"database": self.database, "table": self.config.logs_table_name})
        replicated = row["engine"].startswith(("Replicated", "Shared"))
        if replicated or "non_replicated_deduplication_window" in row["ddl"]:
            return True
        log.warning("%s: %s keeps no deduplication window, so a batch replayed after a crash is written twice. To "
                    "write exactly once: ALTER TABLE %s MODIFY SETTING non_replicated_deduplication_window = %d",
                    self.name, self.table, self.table, DEDUPLICATION_WINDOW)
        return False

    def _problem(self, message: str) -> ConfigError:
        return ConfigError(f"exporters.{self.name}", message)

    def export(self, batch: LogBatch) -> None:
        try:
            columns = self.ensure_schema()
        except ConfigError as exc:
            # Found after start-up (the table changed, or the server was down at start): the records wait in the
            # spool until someone fixes the table; they are never dropped for it.
            log.error("%s", exc)
            raise RetryableError(f"{exc}; the records wait until the table is fixed") from exc
        for part, stream in enumerate(self._encode(batch, columns)):
            # A batch without an id (tools, ad-hoc tests) has no stable key, so it is not deduplicated.
            token = f"{batch.batch_id}/{part}" if batch.batch_id else ""
            self._insert(stream, columns, token)

    def _encode(self, batch: LogBatch, columns: tuple[str, ...]) -> list[bytes]:
        encoder = self._running_encoder() if batch.record_count() >= OFFLOAD_MIN_RECORDS else None
        if encoder is None:
            return encode_parts(batch, MAX_PART_ROWS, columns)
        try:
            return encoder.submit(encode_serialized, batch.serialized(), batch.tenant, batch.batch_id,
                                  batch.embeddings, MAX_PART_ROWS, columns, batch.record_id_prefix,
                                  batch.first_ordinal).result()
        except BrokenProcessPool as exc:
            with self._encoder_lock:
                self._encoder = self._encoder_up = None  # a new one is started for the retry
            raise RetryableError(f"{self.name}: the encoder process died: {exc}") from exc

    def _running_encoder(self) -> ProcessPoolExecutor | None:
        """The helper process once it runs; until then None, and the first call starts it (again, after it
        failed to start)."""
        with self._encoder_lock:
            up = self._encoder_up
            if up is not None and up.done() and (up.cancelled() or up.exception() is not None):
                log.warning("%s: the encoder process did not start (%s); encoding in place, and trying again",
                            self.name, "cancelled" if up.cancelled() else up.exception())
                self._encoder = self._encoder_up = None
            if self._encoder is None:
                # spawn, not fork: the parent runs threads and the embedded engine.
                self._encoder = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                    initializer=exit_with_parent, initargs=(os.getpid(),))
                self._encoder_up = self._encoder.submit(os.getpid)
                return None
            return self._encoder if up is not None and up.done() else None

    def _insert(self, stream: bytes, columns: tuple[str, ...], token: str) -> None:
        settings = dict(self._insert_settings)
        if token:
            settings["insert_deduplication_token"] = token
        started = time.perf_counter()
        try:
            self._transport().insert_arrow(self.table, columns, stream, settings)
        except ClickHouseError as exc:
            if exc.code in UNKNOWN_TABLE_CODES or self._table_changed(columns):
                with self._schema_lock:
                    self._columns = None  # checked (and recreated, with create_schema) before the retry
                raise RetryableError(f"table {self.table} is missing or changed; checking it again: {exc}") from exc
            raise
        self._insert_seconds.observe(time.perf_counter() - started, exporter=self.name)

    def _table_changed(self, columns: tuple[str, ...]) -> bool:
        """After a refused insert: whether the table no longer matches the columns the insert was built for."""
        try:
            return self._check_table(self._transport()).insert_columns != columns
        except (ConfigError, ClickHouseError, RetryableError):
            return True

    def _transport(self) -> Transport:
        if self.transport is None:
            raise RetryableError(f"{self.name} is not started")
        return self.transport
