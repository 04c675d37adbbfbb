"""`batch`: how many spooled requests form one batch, how long the pipeline waits for them, which client
metadata keeps batches apart, and where an oversized batch is split.

Batches are made of whole spooled requests, and the pipeline records each batch's extent in the spool
before it is processed, so after a crash the same requests form the same batch with the same id: what
keeps ClickHouse inserts exactly-once. A batch past `send_batch_max_size` is split by record order, so
its parts are the same after a replay too. The processor's work is the grouping (`gather`, `partition`
and `split`, which the pipeline calls as its `Batcher`); by the time a batch runs through the processors
it is already whole.
"""

from __future__ import annotations

import threading
import time

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otlp_receiver.component import ClientMetadata, LogBatch, ReadEntry, TooManyPartitions
from otlp_receiver.processors.batch.config import Config
from otlp_receiver.spool import SpoolEntry
from otlp_receiver.telemetry import Telemetry

# A batch also closes at this many bytes of requests, whatever its record count: send_batch_size counts records,
# and a backlog of large ones (8,192 records of 1 MiB are 8 GiB) was read into memory as one batch, which
# tripped the memory limiter for every sender. A single request bigger than this is a batch of its own.
MAX_BATCH_BYTES = 64 * 2**20


class BatchProcessor:
    def __init__(self, config: Config, name: str = "batch", telemetry: Telemetry | None = None) -> None:
        self.config = config
        self.name = name
        self._keys = [key.lower() for key in config.metadata_keys]
        self._partitions: set[str] = set()
        self._lock = threading.Lock()
        self._cardinality = (telemetry or Telemetry()).gauge(
            "procsight_batch_metadata_cardinality", "Distinct metadata_keys value combinations seen, by processor")

    def gather(self, first: SpoolEntry, read: ReadEntry) -> list[SpoolEntry]:
        """`first` and the requests after it until send_batch_size records, MAX_BATCH_BYTES or the timeout, which
        runs from when `first` was received, as the Collector's runs from the batch's first item: a request that
        waited in the spool while the pipeline was busy is not held again. Past the timeout the batch still
        takes the requests already spooled, so a backlog is sent in full batches."""
        entries = [first]
        records, size = first.records, len(first.payload)
        if not 0 < records < self.config.send_batch_size or self.config.timeout <= 0:
            return entries  # full already, or `timeout: 0`: each request is sent as it comes
        waited = min(max(0.0, time.time() - first.received_ns / 1e9), self.config.timeout)
        deadline = time.monotonic() + self.config.timeout - waited
        while records < self.config.send_batch_size and size < MAX_BATCH_BYTES:
            entry = read(max(0.0, deadline - time.monotonic()))
            if entry is None:
                break
            entries.append(entry)
            records += entry.records
            size += len(entry.payload)
        return entries

    def partition(self, metadata: ClientMetadata) -> ClientMetadata:
        """The values of `metadata_keys` in the request's metadata (absent keys have no values); a new
        combination past `metadata_cardinality_limit` is refused, as the Collector refuses it."""
        if not self._keys:
            return {}
        partition = {key: list(metadata.get(key, ())) for key in self._keys}
        identity = repr(sorted(partition.items()))
        with self._lock:
            if identity not in self._partitions:
                limit = self.config.metadata_cardinality_limit
                if limit and len(self._partitions) >= limit:
                    raise TooManyPartitions(f"too many batcher metadata-value combinations (processor {self.name}, "
                                            f"metadata_cardinality_limit {limit})")
                self._partitions.add(identity)
                self._cardinality.set(len(self._partitions), processor=self.name)
        return partition

    def split(self, batch: LogBatch) -> list[LogBatch]:
        """The batch in parts of at most send_batch_max_size records, in record order (the batch itself
        when it is small enough); part i of batch B has the id `B/i`."""
        limit = self.config.send_batch_max_size
        if not limit or batch.record_count() <= limit:
            return [batch]
        return [LogBatch(logs=part, tenant=batch.tenant, batch_id=f"{batch.batch_id}/{index}", metadata=batch.metadata)
                for index, part in enumerate(split_request(batch.logs, limit))]

    def start(self) -> None:
        pass

    def process(self, batch: LogBatch) -> LogBatch:
        return batch  # formed whole by the pipeline with gather(), partition() and split()

    def shutdown(self) -> None:
        pass


def split_request(request: ExportLogsServiceRequest, limit: int) -> list[ExportLogsServiceRequest]:
    """The records of `request` in requests of at most `limit` records, each record keeping its resource
    and scope."""
    parts: list[ExportLogsServiceRequest] = []
    current, count = ExportLogsServiceRequest(), 0
    for resource_logs in request.resource_logs:
        target_resource = None
        for scope_logs in resource_logs.scope_logs:
            records = list(scope_logs.log_records)
            while records:
                if count == limit:
                    parts.append(current)
                    current, count, target_resource = ExportLogsServiceRequest(), 0, None
                if target_resource is None:
                    target_resource = current.resource_logs.add(resource=resource_logs.resource,
                                                                 schema_url=resource_logs.schema_url)
                take, records = records[:limit - count], records[limit - count:]
                target_scope = target_resource.scope_logs.add(scope=scope_logs.scope, schema_url=scope_logs.schema_url)
                target_scope.log_records.extend(take)
                count += len(take)
    if count:
        parts.append(current)
    return parts
