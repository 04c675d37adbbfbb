"""End-to-end receiver benchmark: OTLP/gRPC in, scored, rows queryable in ClickHouse.

Measured in one run, on the same machine, with the same pre-encoded requests sent by the same
sender processes (several, so the client is not the bottleneck; one Python SDK process tops out
near 16k records/s):

1. ceiling "parse+count": a grpcio server that only parses each request and counts its records;
2. ceiling "parse+objects": the same, also turning every record into a `scoring.ProcessEvent`;
3. procsight: the real service (otlp receiver -> fsynced spool -> batch -> anomaly scoring and
   learning -> clickhouse exporter on the embedded engine), timed until every row is queryable;
4. latency: procsight fed at a steady rate (default 5,000 records/s); for each request, the time from
   send to all its rows being visible to `SELECT` (polled every 50 ms, so figures carry up to 50 ms of
   polling granularity; each poll reads only the parts that can hold requests not seen yet); p50/p99 printed
   over the whole run, which starts cold (empty baselines and caches, the ClickHouse encoder process not yet
   started), and over the steady part after its first --warm-up seconds. It runs first, in a process of its
   own: this one's embedded ClickHouse, once it has the stage and throughput runs' tables, goes on merging
   them and competes with the receiver measured;
5. where the CPU goes: each stage of the path run alone in this process on the same records, CPU
   microseconds per record (`time.process_time`, best of three passes, so other load on the machine
   counts less than in the wall-clock figures). The throughput runs also print the CPU the receiver's
   processes used per record (psutil: the receiver, its scoring child, its ClickHouse encoder), and the
   rate two cores would give at that cost.

Records are process execs from the evaluation data (benign traces of three workloads plus GTFOBins attack
command lines; not in the repository: --eval-dir, by default shared/eval beside it, where CI has it),
spread over several hosts and workloads.

    .venv/bin/python bench/receiver.py [--records 200000] [--senders 2] [--rate 5000] [--seconds 20] [--processes 1 2]
                                       [--warm-up 2] [--skip-ceilings] [--only stages|throughput|latency]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import queue
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import psutil
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: `testing` is not installed

from testing.otlp_values import attributes_of, key_values

EXPORT_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
EVAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval"
WORKLOADS = ("web", "ci", "admin")
HOSTS_PER_WORKLOAD = 4
REFERENCE = {"parse+count": 340_000, "parse+objects": 100_000, "go clickhouse exporter (per core, no scoring)": 40_000}
TARGET_RECORDS_PER_SECOND = 40_000
TARGET_P99_SECONDS = 0.5  # issue 12, at 5,000 records/s
GRPC_WORKERS = 16  # as the otlp receiver's server


# -- requests ------------------------------------------------------------------------------------


def load_events(eval_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Eval events by workload, attacks mixed into their workload (about 1 in 10)."""
    events: dict[str, list[dict[str, Any]]] = {}
    for workload in WORKLOADS:
        events[workload] = [json.loads(line) for line in (eval_dir / f"benign_{workload}.jsonl").open()]
    for line in (eval_dir / "gtfobins_attacks.jsonl").open():
        attack = json.loads(line)
        events.setdefault(attack.get("workload") or "web", []).append(attack)
    return events


RECORD_KEYS = ("process.pid", "process.parent_pid", "process.executable.name", "process.executable.path",
               "process.command_line", "process.command_args", "process.user.id", "process.parent.executable.name",
               "process.working_directory")


def request_contents(events: dict[str, list[dict[str, Any]]], count: int,
                     records_per_request: int) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """(workload, host, records) of `count` requests: the workloads in turn, HOSTS_PER_WORKLOAD hosts each,
    each workload's events cycled; a record holds the event's RECORD_KEYS."""
    cursor = dict.fromkeys(events, 0)
    for index in range(count):
        workload = WORKLOADS[index % len(WORKLOADS)]
        pool = events[workload]
        records = []
        for _ in range(records_per_request):
            raw = pool[cursor[workload] % len(pool)]
            cursor[workload] += 1
            records.append({key: raw[key] for key in RECORD_KEYS if raw.get(key) is not None})
        yield workload, f"{workload}-{index // len(WORKLOADS) % HOSTS_PER_WORKLOAD}", records


def encode_requests(events: dict[str, list[dict[str, Any]]], count: int, records_per_request: int,
                    epoch: int | None = None) -> list[bytes]:
    """`count` ExportLogsServiceRequests, each one host of one workload. With an `epoch` (for the latency run),
    each is marked with resource attribute bench.request = its index, and its records get the time
    `request_time(epoch, index)`."""
    requests = []
    for index, (workload, host, records) in enumerate(request_contents(events, count, records_per_request)):
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        resource = {"service.name": "procsight-agent", "host.name": host, "procsight.workload": workload}
        if epoch is not None:
            resource["bench.request"] = str(index)
        resource_logs.resource.attributes.extend(key_values(resource))
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = "procsight.agent"
        now = time.time_ns() if epoch is None else request_time(epoch, index)
        for attributes in records:
            record = scope_logs.log_records.add()
            record.time_unix_nano = record.observed_time_unix_nano = now
            record.event_name = "process.exec"
            record.severity_number = 9
            record.body.string_value = attributes.get("process.command_line", "")
            record.attributes.extend(key_values(attributes))
        requests.append(request.SerializeToString())
    return requests


# The latency run's records are timed from an hour before it starts, a millisecond apart: in the past, as the
# receiver keeps them (it sets a time more than 15 minutes ahead of its clock to the arrival time).
LATENCY_EPOCH_OFFSET_NS = 3600 * 10**9


def request_time(epoch: int, index: int) -> int:
    """The time of the latency run's request `index`: its poll reads only the parts that can hold requests
    not seen yet (the table is ordered by Timestamp), so polling costs the receiver next to nothing."""
    return epoch + index * 1_000_000


# -- senders -------------------------------------------------------------------------------------


def _send_all(target: str, requests: list[bytes], window: int, go: Any, results: Any) -> None:
    """A sender process: every request once, `window` in flight, resending on backpressure."""
    channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)])
    grpc.channel_ready_future(channel).result(timeout=30)
    export = channel.unary_unary(EXPORT_METHOD)  # raw bytes in and out: no encoding cost here
    results.put(("ready", 0))
    go.wait()
    pending: list[tuple[bytes, Any]] = []
    queue = list(reversed(requests))
    retries = 0
    while queue or pending:
        while queue and len(pending) < window:
            payload = queue.pop()
            pending.append((payload, export.future(payload, timeout=60)))
        payload, call = pending.pop(0)
        try:
            call.result()
        except grpc.RpcError as error:
            if error.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
                raise
            retries += 1
            time.sleep(0.05)
            queue.append(payload)
    channel.close()
    results.put(("done", retries))


def _send_paced(target: str, requests: list[bytes], interval: float, results: Any) -> None:
    """A sender process for the latency run: one request every `interval` seconds, reporting send times."""
    channel = grpc.insecure_channel(target)
    export = channel.unary_unary(EXPORT_METHOD)
    start = time.monotonic()
    calls = []
    for index, payload in enumerate(requests):
        delay = start + index * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        results.put(("sent", index, time.time()))
        calls.append(export.future(payload, timeout=60))
    for call in calls:
        call.result()
    channel.close()
    results.put(("done", 0))


def run_senders(target: str, requests: list[bytes], senders: int, window: int = 4) -> tuple[float, int]:
    """Seconds until every request was acknowledged, and how many were resent after backpressure."""
    context = mp.get_context("spawn")
    results = context.Queue()
    go = context.Event()
    shares = [requests[i::senders] for i in range(senders)]
    processes = [context.Process(target=_send_all, args=(target, share, window, go, results)) for share in shares]
    for process in processes:
        process.start()
    for _ in processes:
        results.get()  # connected; process start-up is not part of the measurement
    started = time.perf_counter()
    go.set()
    retries = sum(results.get()[1] for _ in processes)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    return elapsed, retries


# -- ceilings ------------------------------------------------------------------------------------


def _counting_server(handle: Callable[[ExportLogsServiceRequest], int]) -> tuple[grpc.Server, str, list[int]]:
    counted = [0]
    lock = threading.Lock()
    empty_response = b""  # an empty ExportLogsServiceResponse

    def export(payload: bytes, _context: Any) -> bytes:
        records = handle(ExportLogsServiceRequest.FromString(payload))
        with lock:
            counted[0] += records
        return empty_response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=GRPC_WORKERS),
                         options=[("grpc.max_receive_message_length", 64 << 20)])
    handler = grpc.unary_unary_rpc_method_handler(export)  # no (de)serializers: bytes in, bytes out
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.logs.v1.LogsService", {"Export": handler})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}", counted


def count_only(request: ExportLogsServiceRequest) -> int:
    return sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)


def to_objects(request: ExportLogsServiceRequest) -> int:
    from core.semconv import event_from_attributes

    count = 0
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                event_from_attributes(attributes_of(record.attributes))
                count += 1
    return count


def measure_ceiling(name: str, handle: Callable[[ExportLogsServiceRequest], int], requests: list[bytes],
                    senders: int, total: int) -> float:
    server, target, counted = _counting_server(handle)
    try:
        elapsed, _ = run_senders(target, requests, senders)
    finally:
        server.stop(grace=None)
    assert counted[0] == total, f"{name}: counted {counted[0]} of {total}"
    return total / elapsed


# -- where the CPU goes ---------------------------------------------------------------------------


def cpu_per_record(passes: int, records: int, run: Callable[[], Any]) -> float:
    """CPU microseconds per record of `run` (which handles `records` records), the best of `passes`."""
    best = float("inf")
    for _ in range(passes):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best / records * 1e6


def measure_stages(requests: list[bytes], records_per_batch: int, data_dir: Path) -> list[tuple[str, float]]:
    """Each stage of the path alone, in this process, on the same records: CPU microseconds per record."""
    from otlp_receiver.component import LogBatch
    from otlp_receiver.exporters.clickhouse.columns import encode_parts
    from otlp_receiver.exporters.clickhouse.config import Config as ClickHouseConfig
    from otlp_receiver.exporters.clickhouse.exporter import ClickHouseExporter
    from otlp_receiver.normalize import Normalizer
    from otlp_receiver.normalize.values import attributes_dict
    from otlp_receiver.processors.anomaly.scorer import BatchScorer
    from otlp_receiver.receivers.otlp.decode import decode_protobuf
    from scoring.engine import AnomalyEngine

    per_batch = max(1, records_per_batch // count_only(ExportLogsServiceRequest.FromString(requests[0])))
    payloads = [b"".join(requests[i:i + per_batch]) for i in range(0, len(requests), per_batch)]
    records = sum(count_only(ExportLogsServiceRequest.FromString(payload)) for payload in payloads)
    stages = [("decode and validate a request", cpu_per_record(3, records, lambda: [
        decode_protobuf(request) for request in requests]))]
    # The receiver process passes a batch on as the spooled bytes joined (LogBatch(wire=...)): the scoring
    # process parses it, and serializes its reply, which goes on to the ClickHouse encoder as bytes.
    stages.append(("the scoring process parses its batch", cpu_per_record(3, records, lambda: [
        ExportLogsServiceRequest.FromString(payload) for payload in payloads])))

    normalizer = Normalizer()

    def normalise_all() -> None:
        for payload in payloads:
            for resource_logs in ExportLogsServiceRequest.FromString(payload).resource_logs:
                resource = attributes_dict(resource_logs.resource.attributes)
                for scope_logs in resource_logs.scope_logs:
                    for record in scope_logs.log_records:
                        normalizer.normalize("default", resource, record)

    normalise = cpu_per_record(3, records, normalise_all)
    config = procsight_settings(data_dir).configs["processors"]["anomaly"]
    engine = AnomalyEngine(config)
    scorer = BatchScorer(config, engine)
    engine_seconds = [0.0]
    process = engine.process

    def timed_process(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return process(*args, **kwargs)
        finally:
            engine_seconds[0] += time.process_time() - started

    engine.process = timed_process  # type: ignore[method-assign]
    scored: list[ExportLogsServiceRequest] = []
    outcomes: list[Any] = []

    def score_all() -> None:
        scored.clear()
        outcomes.clear()
        engine_seconds[0] = 0.0
        for payload in payloads:
            batch = ExportLogsServiceRequest.FromString(payload)
            outcomes.append(scorer.score(batch, "default"))
            scored.append(batch)

    score_all()  # the first pass learns every pattern: the throughput runs are mostly repeats
    scoring = cpu_per_record(2, records, score_all)
    scoring_engine = engine_seconds[0] / records * 1e6
    scorer.close()
    stages += [("normalise (anomaly processor)", normalise),
               ("scoring engine (scoring/)", scoring_engine),
               ("enrich and the rest of the scorer", max(0.0, scoring - scoring_engine - normalise)),
               ("the scoring process serializes its reply", cpu_per_record(3, records, lambda: [
                   batch.SerializeToString() for batch in scored]))]
    batches = [LogBatch(logs=batch, tenant="default", batch_id=f"stage-{index}", embeddings=outcome.embeddings)
               for index, (batch, outcome) in enumerate(zip(scored, outcomes, strict=True))]
    streams: list[bytes] = []
    stages.append(("ClickHouse rows (Arrow)", cpu_per_record(3, records, lambda: streams.__setitem__(
        slice(None), [part for batch in batches for part in encode_parts(batch, 50_000)]))))
    exporter = ClickHouseExporter(ClickHouseConfig(endpoint=f"chdb://{data_dir / 'stages'}"))
    exporter.start()
    try:
        columns = exporter.ensure_schema()
        assert exporter.transport is not None
        insert = exporter.transport.insert_arrow
        stages.append(("ClickHouse insert (chdb, in process)", cpu_per_record(1, records, lambda: [
            insert(exporter.table, columns, stream, {}) for stream in streams])))
    finally:
        exporter.shutdown()
    return stages


def print_stages(stages: list[tuple[str, float]]) -> None:
    total = sum(cost for _, cost in stages)
    print("where the CPU goes, each stage alone in this process (CPU us per record, best of 3 passes):")
    for name, cost in stages:
        print(f"    {cost:8.1f} us  {cost / total:6.1%}  {name}")
    print(f"    {total:8.1f} us  total: two cores at this cost make {2e6 / total:,.0f} records/s")


class CpuMeter:
    """CPU seconds this process and its children (the scoring child, the ClickHouse encoder) used since start."""

    def __init__(self) -> None:
        self.started = self._now()

    @staticmethod
    def _now() -> dict[int, float]:
        me = psutil.Process()
        used = {me.pid: sum(me.cpu_times()[:2])}
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):  # gone meanwhile
                used[child.pid] = sum(child.cpu_times()[:2])
        return used

    def report(self, records: int) -> str:
        now = self._now()
        me = psutil.Process().pid
        used = {pid: seconds - self.started.get(pid, 0.0) for pid, seconds in now.items()}
        children = sorted((seconds for pid, seconds in used.items() if pid != me), reverse=True)
        total = sum(used.values())
        parts = ", ".join(f"{seconds / records * 1e6:.0f}" for seconds in children if seconds > 0.01)
        return (f"CPU {total / records * 1e6:.0f} us/record: receiver {used[me] / records * 1e6:.0f}, child "
                f"processes {parts or 'none'} (two cores at this cost: {2 * records / total:,.0f} records/s)")


# -- procsight -----------------------------------------------------------------------------------


def procsight_settings(data_dir: Path, scoring: bool = True, processes: int = 1) -> Any:
    from otlp_receiver.config import ServiceSettings

    processors = ["batch", "anomaly"] if scoring else ["batch"]
    return ServiceSettings.from_mapping({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0", "max_recv_msg_size_mib": 64}}}},
        "processors": {
            "batch": {"timeout": "200ms", "send_batch_size": 5000},
            "anomaly": {"baselines": str(data_dir / "baselines"), "processes": processes},
        },
        "exporters": {"clickhouse": {"endpoint": f"chdb://{data_dir / 'clickhouse'}",
                                     "sending_queue": {"num_consumers": 1, "queue_size": 100}}},
        "service": {"data_dir": str(data_dir),
                    "pipelines": {"logs": {"receivers": ["otlp"], "processors": processors,
                                           "exporters": ["clickhouse"]}}},
    }, "bench/receiver.py")


def _row_count(transport: Any) -> int:
    try:
        return int(transport.query("SELECT count() AS n FROM procsight.security_events")[0]["n"])
    except Exception:  # the table appears with the first export
        return 0


def wait_for_rows(transport: Any, total: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while _row_count(transport) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {_row_count(transport)} of {total} rows after {timeout:.0f}s")
        time.sleep(0.05)


def measure_procsight(requests: list[bytes], senders: int, total: int, data_dir: Path,
                      scoring: bool = True, processes: int = 1) -> tuple[float, float, int]:
    """(records/s to queryable rows, records/s acknowledged, backpressure resends)."""
    from core.runtime import tune_garbage_collection
    from otlp_receiver.exporters.clickhouse.transport import ChdbTransport
    from otlp_receiver.service import Service

    service = Service(procsight_settings(data_dir, scoring, processes))
    service.start()
    tune_garbage_collection()  # as `procsight receiver` does once started
    transport = ChdbTransport(str(data_dir / "clickhouse"))
    try:
        meter = CpuMeter()
        started = time.perf_counter()
        acked_after, retries = run_senders(service.grpc_endpoint(), requests, senders)
        wait_for_rows(transport, total)
        elapsed = time.perf_counter() - started
        print(f"    {meter.report(total)}")
        print_stage_times(service.telemetry.render())
    finally:
        transport.close()
        service.shutdown(timeout=30)
    return total / elapsed, total / acked_after, retries


def print_stage_times(metrics: str) -> None:
    """Where the time went: seconds summed per pipeline stage and per exporter (from /metrics)."""
    wanted = ("procsight_stage_latency_seconds_sum", "procsight_exporter_latency_seconds_sum",
              "procsight_clickhouse_insert_seconds_sum", "procsight_clickhouse_insert_seconds_count",
              "procsight_pipeline_batches_total")
    for line in metrics.splitlines():
        if line.startswith(wanted):
            name, value = line.rsplit(" ", 1)
            print(f"    {float(value):8.2f}s  {name}")


def measure_latency(events: dict[str, list[dict[str, Any]]], rate: int, seconds: float, records_per_request: int,
                    data_dir: Path, processes: int = 1) -> list[tuple[float, float]]:
    """(seconds since the first send, send-to-queryable seconds) of every request at a steady `rate` records/s,
    in the order sent."""
    from core.runtime import tune_garbage_collection
    from otlp_receiver.exporters.clickhouse.transport import ChdbTransport
    from otlp_receiver.service import Service

    count = max(1, int(rate * seconds / records_per_request))
    epoch = time.time_ns() - LATENCY_EPOCH_OFFSET_NS
    requests = encode_requests(events, count, records_per_request, epoch)
    service = Service(procsight_settings(data_dir, processes=processes))
    service.start()
    tune_garbage_collection()  # as `procsight receiver` does once started
    transport = ChdbTransport(str(data_dir / "clickhouse"))
    context = mp.get_context("spawn")
    results = context.Queue()
    sender = context.Process(target=_send_paced, args=(service.grpc_endpoint(), requests, records_per_request / rate,
                                                       results))
    sent: dict[int, float] = {}
    visible: dict[int, float] = {}
    try:
        sender.start()
        finished = False
        deadline = time.monotonic() + seconds + 120
        while len(visible) < count and time.monotonic() < deadline:
            while not results.empty():
                message = results.get()
                if message[0] == "sent":
                    sent[message[1]] = message[2]
                else:
                    finished = True
            polled_at = time.time()
            since = request_time(epoch, next((i for i in range(count) if i not in visible), count))
            try:
                rows = transport.query(
                    "SELECT toUInt32(ResourceAttributes['bench.request']) AS r, count() AS n "
                    "FROM procsight.security_events WHERE Timestamp >= fromUnixTimestamp64Nano({since:Int64}) "
                    "GROUP BY r HAVING n >= {n:UInt32}", {"n": records_per_request, "since": since})
            except Exception:
                rows = []
            for row in rows:
                visible.setdefault(int(row["r"]), polled_at)
            time.sleep(0.05)
        sender.join(timeout=10)
        assert finished or len(visible) == count, "latency sender did not finish"
        print_stage_times(service.telemetry.render())
    finally:
        transport.close()
        service.shutdown(timeout=30)
    missing = count - len(visible)
    if missing:
        raise RuntimeError(f"{missing} of {count} requests never became queryable")
    first = min(sent.values())
    return [(sent[i] - first, visible[i] - sent[i]) for i in sorted(sent)]


def measure_latency_apart(events: dict[str, list[dict[str, Any]]], rate: int, seconds: float,
                          records_per_request: int, data_dir: Path, processes: int = 1) -> list[tuple[float, float]]:
    """`measure_latency` in a process of its own. The embedded ClickHouse runs in the bench's process, and its
    background merges of the throughput runs' tables would go on competing with the receiver measured."""
    context = mp.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_latency_process,
                              args=(events, rate, seconds, records_per_request, data_dir, processes, results))
    process.start()
    try:
        while True:
            with contextlib.suppress(queue.Empty):
                return results.get(timeout=1.0)
            if not process.is_alive():
                raise RuntimeError(f"the latency run's process ended without a result (exit code {process.exitcode})")
    finally:
        process.join(timeout=60)


def _latency_process(events: dict[str, list[dict[str, Any]]], rate: int, seconds: float, records_per_request: int,
                     data_dir: Path, processes: int, results: Any) -> None:
    results.put(measure_latency(events, rate, seconds, records_per_request, data_dir, processes))


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of sorted `values`."""
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def print_latency(latencies: list[tuple[float, float]], rate: int, warm_up: float) -> None:
    print(f"latency at {rate:,} records/s, send -> queryable, p99 / target {TARGET_P99_SECONDS}s:")
    parts = [("whole run, from a cold start", latencies),
             (f"steady, after the first {warm_up:g}s", [item for item in latencies if item[0] >= warm_up])]
    for name, part in parts:
        values = sorted(latency for _, latency in part)
        if not values:
            print(f"  {name}: no requests")
            continue
        p99 = percentile(values, 0.99)
        print(f"  {name + ':':<34} p50 {percentile(values, 0.50):.3f}s  p99 {p99:.3f}s  max {values[-1]:.3f}s  "
              f"(mean {statistics.fmean(values):.3f}s, {len(values)} requests)  {p99 / TARGET_P99_SECONDS:.0%}")


def main() -> None:
    # Run as a script, bench/ is first on sys.path, where bench/scoring.py would shadow the scoring package.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000, help="records per throughput run")
    parser.add_argument("--records-per-request", type=int, default=500)
    parser.add_argument("--senders", type=int, default=2, help="sender processes")
    parser.add_argument("--rate", type=int, default=5000, help="records/s for the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument("--warm-up", type=float, default=2.0,
                        help="seconds at the start of the latency run left out of its steady figures")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2],
                        help="scoring processes (anomaly `processes`) of the end-to-end and latency runs, each")
    parser.add_argument("--eval-dir", type=Path, default=EVAL_DIR)
    parser.add_argument("--skip-ceilings", action="store_true")
    parser.add_argument("--only", choices=("stages", "throughput", "latency"),
                        help="one part: the CPU per stage, the throughput runs (with the ceilings), the latency run")
    args = parser.parse_args()
    if not (args.eval_dir / "gtfobins_attacks.jsonl").exists():
        sys.exit(f"bench/receiver.py sends the evaluation data's events, and {args.eval_dir} has none: put "
                 "shared/eval beside the repository (CI does) or pass --eval-dir DIR")

    events = load_events(args.eval_dir)
    count = args.records // args.records_per_request
    total = count * args.records_per_request
    requests = encode_requests(events, count, args.records_per_request)
    print(f"{total} records in {count} pre-encoded requests of {args.records_per_request}, "
          f"{args.senders} sender processes, {mp.cpu_count()} cores")

    figures: dict[str, float] = {}
    latencies: dict[int, list[tuple[float, float]]] = {}
    if args.only in (None, "latency"):
        # First, each in a process of its own: after the stage and throughput runs, this process's embedded
        # ClickHouse goes on merging their tables and competes with the receiver measured (p99 4-5 s against
        # 1.5-2.9 s measured alone).
        with tempfile.TemporaryDirectory(prefix="procsight-bench-") as tmp:
            for processes in args.processes:
                latencies[processes] = measure_latency_apart(events, args.rate, args.seconds, 100,
                                                             Path(tmp) / f"latency-{processes}", processes)
    if args.only in (None, "stages"):
        with tempfile.TemporaryDirectory(prefix="procsight-bench-") as tmp:
            print_stages(measure_stages(requests[:max(1, 20_000 // args.records_per_request)], 5000, Path(tmp)))
    if args.only == "stages":
        return
    if not args.skip_ceilings:
        figures["parse+count"] = measure_ceiling("parse+count", count_only, requests, args.senders, total)
        print(f"ceiling parse+count:       {figures['parse+count']:>10,.0f} records/s")
        figures["parse+objects"] = measure_ceiling("parse+objects", to_objects, requests, args.senders, total)
        print(f"ceiling parse+objects:     {figures['parse+objects']:>10,.0f} records/s")

    end_to_end = 0.0
    with tempfile.TemporaryDirectory(prefix="procsight-bench-") as tmp:
        if args.only in (None, "throughput"):
            storage_only, _, _ = measure_procsight(requests, args.senders, total, Path(tmp) / "storage",
                                                   scoring=False)
            print(f"procsight without scoring: {storage_only:>10,.0f} records/s  (receiver, spool, batch, ClickHouse "
                  "rows; no anomaly processor)")
            for processes in args.processes:
                measured, acked, retries = measure_procsight(requests, args.senders, total,
                                                             Path(tmp) / f"throughput-{processes}", processes=processes)
                end_to_end = end_to_end or measured  # the ratios below are of the first
                print(f"procsight end to end:      {measured:>10,.0f} records/s  (scored by {processes} process(es), "
                      "learned, queryable in ClickHouse)")
                print(f"procsight acknowledged:    {acked:>10,.0f} records/s  (in the fsynced spool; {retries} "
                      "requests resent after backpressure)")
    for processes, measured_latencies in latencies.items():
        print(f"scored by {processes} process(es):")
        print_latency(measured_latencies, args.rate, args.warm_up)
    if args.only == "latency":
        return

    print("\nratios")
    for name, value in figures.items():
        print(f"  procsight / {name:<16} {end_to_end / value:6.1%}   (this run's ceiling {value:,.0f}; "
              f"reference {REFERENCE[name]:,})")
    go = REFERENCE["go clickhouse exporter (per core, no scoring)"]
    print(f"  without scoring / Go claim     {storage_only / go:6.1%}   (like for like: no scoring either side)")
    print(f"  procsight / Go exporter claim  {end_to_end / go:6.1%}   ({go:,} records/s per core, no scoring)")
    print(f"  procsight / target             {end_to_end / TARGET_RECORDS_PER_SECOND:6.1%}   "
          f"({TARGET_RECORDS_PER_SECOND:,} records/s on 2 cores with scoring)")


if __name__ == "__main__":
    main()
