"""Scoring in several child processes (`processes: N`), each owning the baselines of some workloads.

One scoring child is one core, and it was the receiver's bottleneck (bench/receiver.py). With N children a
batch is split by resource: each `ResourceLogs` goes to the child `shard_of(tenant, workload)` names, where the
workload is the one its resource attributes name (`scorer.resource_workload`; records whose resource names
none are scored by the child of the empty workload). The children score their parts at the same time and the
parts are joined again, child by child, with their feature vectors in the same order. A workload therefore
always meets the same child: its baseline, hold-back, process table and audit assembly live there. A host
whose records name several workloads (pods of one node) has its process table split between children, so
lineage across those workloads is not seen.

On disk each child has a LanceDB database of its own, `<baselines>/shard-K-of-N` (with one child, `<baselines>`
itself, as before), so no two processes write one table, registry or compaction. When N changes, the
baselines of the workloads a child now owns are moved to its database at start (`move_baselines`), so
learning carries over. `max_workloads_per_tenant` is counted per child.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from core.otlpwire import count_log_records, read_varint, skip_field
from otlp_receiver.normalize.values import attributes_dict
from otlp_receiver.processors.anomaly.config import Config
from otlp_receiver.processors.anomaly.isolate import unscored_outcome
from otlp_receiver.processors.anomaly.scorer import BatchScorer, Outcome, resource_workload
from otlp_receiver.processors.anomaly.worker import ScoringWorker
from scoring.baseline import move_baselines

log = logging.getLogger(__name__)

_RESOURCE_LOGS = 1 << 3 | 2  # ExportLogsServiceRequest.resource_logs, length-delimited
_RESOURCE = 1 << 3 | 2  # ResourceLogs.resource
_SHARD_DIRECTORY = re.compile(r"shard-(\d+)-of-(\d+)")


def shard_of(tenant: str, workload: str, count: int) -> int:
    """The child that scores a (tenant, workload): stable across restarts and machines."""
    return zlib.crc32(f"{tenant}\x00{workload}".encode("utf-8", "surrogatepass")) % count


def shard_baselines(baselines: str, index: int, count: int) -> str:
    """The LanceDB database of child `index` of `count`."""
    return baselines if count == 1 else f"{baselines.rstrip('/')}/shard-{index}-of-{count}"


# Records a child is sent in one call. A request may hold 100,000 (decode.py), and at a few hundred microseconds
# each (90,000 resources of one record each cost 18 CPU-s) one call ran past the child's time bound: the
# isolation that follows could not finish either, and the records went unscored.
MAX_RECORDS_PER_CALL = 10_000


def chunks(payload: bytes, limit: int) -> list[bytes]:
    """A serialized request cut at `ResourceLogs` boundaries into requests of at most `limit` records (a single
    `ResourceLogs` of more stays whole); [] for an empty one."""
    records = count_log_records(payload)
    if records is None or records <= limit:
        return [payload] if payload else []
    found: list[bytearray] = []
    held = limit + 1  # records in found[-1]
    position = 0
    while position < len(payload):
        end = skip_field(payload, position)
        records = count_log_records(payload[position:end]) or 0
        if not found or held + records > limit:
            found.append(bytearray())
            held = 0
        found[-1] += payload[position:end]
        held += records
        position = end
    return [bytes(part) for part in found]


def split(payload: bytes, tenant: str, count: int, workload_key: list[str]) -> list[bytes]:
    """A serialized request's `ResourceLogs`, as one serialized request per child (b"" for a child with none)."""
    parts = [bytearray() for _ in range(count)]
    try:
        position = 0
        while position < len(payload):
            start = position
            tag, position = read_varint(payload, position)
            end = skip_field(payload, start)
            shard = 0
            if tag == _RESOURCE_LOGS:
                _, position = read_varint(payload, position)
                workload = resource_workload(_resource_attributes(payload[position:end]), workload_key)
                shard = shard_of(tenant, workload, count)
            parts[shard] += payload[start:end]
            position = end
    except (IndexError, ValueError):  # not a request this process spooled: the first child's to refuse
        return [payload] + [b""] * (count - 1)
    return [bytes(part) for part in parts]


def _resource_attributes(resource_logs: bytes) -> dict[str, Any]:
    position = 0
    while position < len(resource_logs):
        start = position
        tag, position = read_varint(resource_logs, position)
        end = skip_field(resource_logs, start)
        if tag == _RESOURCE:
            _, position = read_varint(resource_logs, position)
            return attributes_dict(Resource.FromString(resource_logs[position:end]).attributes)
        position = end
    return {}


class ShardedScoring:
    """The scoring children of one pipeline's `anomaly` processor, and the routing of its work among them."""

    def __init__(self, config: Config, name: str = "anomaly",
                 scorer_factory: Callable[[Config], BatchScorer] | None = None) -> None:
        self.config = config
        count = config.processes
        _gather_baselines(config.baselines, count)
        self._pool = futures.ThreadPoolExecutor(max_workers=count, thread_name_prefix=f"{name}-shards")
        names = [name] if count == 1 else [f"{name}-{index}" for index in range(count)]
        started = [self._pool.submit(ScoringWorker, dataclasses.replace(
            config, baselines=shard_baselines(config.baselines, index, count)), names[index], scorer_factory)
            for index in range(count)]
        try:
            self.workers = [future.result() for future in started]
        except BaseException:
            for future in started:
                if future.exception() is None:
                    future.result().close()
            self._pool.shutdown()
            raise

    @property
    def restarts(self) -> int:
        return sum(worker.restarts for worker in self.workers)

    def score(self, payload: bytes, tenant: str) -> tuple[bytes, Outcome]:
        """A serialized batch scored (`ScoringWorker.score`), its records grouped by the child that scored them.
        A child is sent at most MAX_RECORDS_PER_CALL records at a time, each call with its own time bound."""
        count = len(self.workers)
        parts = split(payload, tenant, count, self.config.workload_key) if count > 1 else [payload]
        plans = [(worker, cut) for part, worker in zip(parts, self.workers, strict=True)
                 if (cut := chunks(part, MAX_RECORDS_PER_CALL))]
        if len(plans) == 1 and len(plans[0][1]) == 1:
            return plans[0][0].score(plans[0][1][0], tenant)
        pending = [(chunk, future) for worker, cut in plans
                   for chunk, future in zip(cut, self._each(worker, cut, tenant), strict=True)]
        results = [self._result(chunk, tenant, future) for chunk, future in pending]
        return b"".join(scored for scored, _ in results), _merged([outcome for _, outcome in results],
                                                                 [count_log_records(chunk) for chunk, _ in pending])

    def _each(self, worker: ScoringWorker, parts: list[bytes], tenant: str) -> list[futures.Future[Any]]:
        """The parts scored by one child in order (one after the other), beside the other children's."""
        done: list[futures.Future[Any]] = [futures.Future() for _ in parts]

        def run() -> None:
            for part, future in zip(parts, done, strict=True):
                try:
                    future.set_result(worker.score(part, tenant))
                except Exception as exc:
                    future.set_exception(exc)

        self._pool.submit(run)
        return done

    def _result(self, part: bytes, tenant: str, future: futures.Future[tuple[bytes, Outcome]]) -> tuple[bytes, Outcome]:
        try:
            return future.result()
        except Exception as exc:  # that child cannot be started: its records unscored, the others' kept
            log.exception("%s: a scoring process is unavailable; %d records are marked unscored", tenant,
                          count_log_records(part))
            logs = ExportLogsServiceRequest.FromString(part)
            outcome = unscored_outcome(logs, f"scoring unavailable ({type(exc).__name__})")
            return logs.SerializeToString(), outcome

    def baselines(self, tenant: str) -> list[dict[str, Any]]:
        found = [summary for worker in self.workers for summary in worker.control("baselines", tenant)]
        return sorted(found, key=lambda summary: summary["workload"])

    def acknowledge(self, tenant: str, workload: str, attributes: dict[str, Any]) -> None:
        """Learned by the children that hold the workload's baseline (a workload named by each record's host is
        scored by the child of the empty workload), else by the one it would go to."""
        holders = [worker for worker in self.workers if len(self.workers) > 1
                   and worker.control("has_baseline", tenant, workload)]
        for worker in holders or [self.workers[shard_of(tenant, workload, len(self.workers))]]:
            worker.control("acknowledge", tenant, workload, attributes)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self._pool.shutdown()


def _merged(outcomes: list[Outcome], records: list[int]) -> Outcome:
    """The outcomes of a batch's parts, in part order; feature vectors of a part that scored none are zeros."""
    kinds: Counter[str] = Counter()
    severities: Counter[str] = Counter()
    unscored: Counter[str] = Counter()
    for outcome in outcomes:
        kinds.update(outcome.kinds)
        severities.update(outcome.severities)
        unscored.update(outcome.unscored)
    width = next((outcome.embeddings.shape[1] for outcome in outcomes if outcome.embeddings is not None), 0)
    embeddings = None
    if width:
        embeddings = np.concatenate([outcome.embeddings if outcome.embeddings is not None
                                     else np.zeros((count, width), dtype=np.float32)
                                     for outcome, count in zip(outcomes, records, strict=True)])
    return Outcome(embeddings, dict(kinds), dict(severities), forged=sum(o.forged for o in outcomes),
                   unscored=dict(unscored), overflow_events=sum(o.overflow_events for o in outcomes))


def _gather_baselines(baselines: str, count: int) -> None:
    """Moves each workload's baseline into the database of the child that now owns it, from the databases of
    another number of children (a local directory only: an object store is not listed)."""
    root = Path(baselines)
    if "://" in baselines or not root.is_dir():
        return
    sources = [str(path) for path in sorted(root.iterdir())
               if (match := _SHARD_DIRECTORY.fullmatch(path.name)) and int(match.group(2)) != count]
    if count > 1:
        sources.append(baselines)
    for source in sources:
        for index in range(count):
            moved = move_baselines(source, shard_baselines(baselines, index, count),
                                   lambda tenant, workload, index=index: shard_of(tenant, workload, count) == index)
            if moved:
                log.info("moved %d baselines from %s to %s (the scoring processes are now %d)", moved, source,
                         shard_baselines(baselines, index, count), count)
