"""The `clickhouse` exporter: one Arrow insert per batch part, deduplicated by a token stable across replays.

Turning OTLP records into columns is pure-Python work (about 1 us per attribute read through the
protobuf runtime), which would compete for the GIL with receiving and scoring. Large batches are
therefore encoded in a helper process (the serialized protobuf goes in, Arrow IPC streams come out),
so that work runs on another core; the insert itself runs in ClickHouse's own threads either way.
Small batches are encoded in place, where the round trip would cost more than it saves.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from otlp_receiver.component import LogBatch, RetryableError
from otlp_receiver.exporters.clickhouse.columns import encode_parts, encode_serialized
from otlp_receiver.exporters.clickhouse.config import Config
from otlp_receiver.exporters.clickhouse.schema import INSERT_COLUMNS, create_database_sql, create_table_sql
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


class ClickHouseExporter:
    def __init__(self, config: Config, name: str = "clickhouse", telemetry: Telemetry | None = None) -> None:
        telemetry = telemetry or Telemetry()
        self.config = config
        self.name = name
        self.table = f"`{config.database}`.`{config.logs_table_name}`"
        self.transport: Transport | None = None
        self._schema_ready = not config.create_schema
        self._schema_lock = threading.Lock()
        self._encoder: ProcessPoolExecutor | None = None
        self._encoder_lock = threading.Lock()
        self._insert_seconds = telemetry.histogram("procsight_clickhouse_insert_seconds",
                                                   "Time of one ClickHouse insert")

    def start(self) -> None:
        self.transport = open_transport(self.config)
        try:
            self.ensure_schema()
        except RetryableError as exc:
            # The server may come up later; records wait in the spool and export() tries again.
            log.warning("%s: cannot create the schema yet: %s", self.name, exc)

    def shutdown(self) -> None:
        with self._encoder_lock:
            if self._encoder is not None:
                self._encoder.shutdown(wait=True, cancel_futures=True)
                self._encoder = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def ensure_schema(self) -> None:
        with self._schema_lock:
            if self._schema_ready:
                return
            transport = self._transport()
            transport.command(create_database_sql(self.config.database))
            transport.command(create_table_sql(self.config.database, self.config.logs_table_name,
                                               self.config.ttl))
            self._schema_ready = True
            log.info("%s: table %s ready at %s", self.name, self.table, self.config.endpoint)

    def export(self, batch: LogBatch) -> None:
        self.ensure_schema()
        for part, stream in enumerate(self._encode(batch)):
            # A batch without an id (tools, ad-hoc tests) has no stable key, so it is not deduplicated.
            token = f"{batch.batch_id}/{part}" if batch.batch_id else ""
            self._insert(stream, token)

    def _encode(self, batch: LogBatch) -> list[bytes]:
        if batch.record_count() < OFFLOAD_MIN_RECORDS:
            return encode_parts(batch, MAX_PART_ROWS)
        encoder = self._encoder_process()
        try:
            return encoder.submit(encode_serialized, batch.logs.SerializeToString(), batch.tenant, batch.batch_id,
                                  batch.embeddings, MAX_PART_ROWS, batch.record_id_prefix, batch.first_ordinal).result()
        except BrokenProcessPool as exc:
            with self._encoder_lock:
                self._encoder = None  # a new one is started for the retry
            raise RetryableError(f"{self.name}: the encoder process died: {exc}") from exc

    def _encoder_process(self) -> ProcessPoolExecutor:
        with self._encoder_lock:
            if self._encoder is None:
                # spawn, not fork: the parent runs threads and the embedded engine.
                self._encoder = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            return self._encoder

    def _insert(self, stream: bytes, token: str) -> None:
        settings = {"insert_deduplicate": "1"}
        if token:
            settings["insert_deduplication_token"] = token
        if self.config.async_insert:
            settings.update(async_insert="1", wait_for_async_insert="1", async_insert_deduplicate="1")
        started = time.perf_counter()
        try:
            self._transport().insert_arrow(self.table, INSERT_COLUMNS, stream, settings)
        except ClickHouseError as exc:
            if exc.code in UNKNOWN_TABLE_CODES and self.config.create_schema:
                self._schema_ready = False
                raise RetryableError(f"table {self.table} is missing; recreating it: {exc}") from exc
            raise
        self._insert_seconds.observe(time.perf_counter() - started, exporter=self.name)

    def _transport(self) -> Transport:
        if self.transport is None:
            raise RetryableError(f"{self.name} is not started")
        return self.transport
