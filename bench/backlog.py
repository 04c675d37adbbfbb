"""A backlog of large records draining: peak memory of the receiver and its children, and whether the memory
limiter refused anyone meanwhile.

The receiver's spool holds `--requests` requests of two records each, every record carrying a `--record-mib`
attribute (as after an outage of ClickHouse, when acknowledged requests waited on disk). The real service
(memory_limiter at limit_mib 3072, batch, anomaly scoring in its child, ClickHouse through chdb) starts
in this process and drains it. Printed, for the backlog and for a reference backlog of the same requests
without the large attribute, each drained by a fresh service: the seconds until every row is queryable,
the peak resident memory of this process and its children (sampled every 50 ms), how long the memory
limiter refused new data, and the ratio of the two peaks. A batch closes at MAX_BATCH_BYTES of requests
(otlp_receiver/processors/batch/processor.py); before that bound the default backlog formed one batch of
800 MiB: peak 9,468 MiB (14.4x the reference), new data refused for every sender for 20 s, drained in 31 s;
with it 2,113 MiB (3.2x), no refusal, 9 s (2 cores, 2026-12-01).

    .venv/bin/python bench/backlog.py [--requests 400] [--record-mib 1]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: `testing` is not installed

from otlp_receiver.config import ServiceSettings
from otlp_receiver.service import Service
from otlp_receiver.spool import Spool
from testing.otlp_values import key_values

LIMIT_MIB = 3072
SAMPLE_SECONDS = 0.05


def request(index: int, record_bytes: int) -> bytes:
    message = ExportLogsServiceRequest()
    resource_logs = message.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values({"host.name": "backlog-1"}))
    scope = resource_logs.scope_logs.add()
    for half in range(2):
        record = scope.log_records.add()
        record.time_unix_nano = time.time_ns()
        record.attributes.extend(key_values({
            "process.executable.name": "ls", "process.command_line": f"ls /srv/{index}/{half}",
            "process.pid": 1000 + 2 * index + half, "bench.payload": "x" * record_bytes}))
    return message.SerializeToString()


def resident() -> int:
    """Bytes resident in this process and every process it started."""
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total


def settings(data_dir: str) -> ServiceSettings:
    return ServiceSettings.from_mapping({
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "processors": {"memory_limiter": {"check_interval": "1s", "limit_mib": LIMIT_MIB},
                       "batch": {"timeout": "200ms", "send_batch_size": 8192},
                       "anomaly": {"baselines": f"{data_dir}/baselines"}},
        "exporters": {"clickhouse": {"endpoint": f"chdb://{data_dir}/clickhouse"}},
        "service": {"data_dir": data_dir, "pipelines": {"logs": {
            "receivers": ["otlp"], "processors": ["memory_limiter", "batch", "anomaly"],
            "exporters": ["clickhouse"]}}},
    }, "bench/backlog.py")


def refusing(service: Service) -> bool:
    """Whether the memory limiter refuses new data now (its gauge, as /metrics shows it)."""
    return any(line.startswith("procsight_memory_limiter_refusing") and line.endswith(" 1")
               for line in service.telemetry.render().splitlines())


def stored_rows(service: Service) -> int:
    transport = service.exporters["clickhouse"].exporter.transport
    try:
        return int(transport.query("SELECT count() AS n FROM procsight.security_events")[0]["n"])
    except Exception:  # the table appears with the first export
        return 0


@dataclass
class Drained:
    rows: int
    seconds: float
    peak: int  # bytes resident at most, this process and its children
    refused: float  # seconds the memory limiter refused new data (sampled)


def drain(requests: int, record_bytes: int) -> Drained:
    """Starts the service on a spool holding the backlog and waits until every row is queryable."""
    with tempfile.TemporaryDirectory() as data_dir:
        spool = Spool(Path(data_dir) / "spool" / "logs")
        for index in range(requests):
            spool.append(request(index, record_bytes), "default", 2)
        spool.close()
        service = Service(settings(data_dir))
        peak, refused = [resident()], [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(SAMPLE_SECONDS):
                peak[0] = max(peak[0], resident())
                refused[0] += SAMPLE_SECONDS if refusing(service) else 0.0

        sampler = threading.Thread(target=sample, daemon=True)
        started = time.monotonic()
        service.start()
        sampler.start()
        try:
            while stored_rows(service) < 2 * requests and time.monotonic() - started < 600:
                time.sleep(0.5)
            return Drained(stored_rows(service), time.monotonic() - started, peak[0], refused[0])
        finally:
            done.set()
            sampler.join()
            service.shutdown(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--record-mib", type=float, default=1.0)
    args = parser.parse_args()
    print(f"backlog: {args.requests} requests of 2 records in the spool; the memory limiter refuses from "
          f"{0.8 * LIMIT_MIB:,.0f} MiB")
    runs = [("small records (reference)", drain(args.requests, 0)),
            (f"records of {args.record_mib:g} MiB", drain(args.requests, int(args.record_mib * 2**20)))]
    for name, run in runs:
        print(f"  {name:26} rows {run.rows:,} of {2 * args.requests:,} in {run.seconds:5.1f} s, peak resident "
              f"{run.peak / 2**20:6,.0f} MiB, refused new data for {run.refused:.1f} s")
    print(f"  peak with large records / reference: {runs[1][1].peak / runs[0][1].peak:.1f}x")


if __name__ == "__main__":
    main()
