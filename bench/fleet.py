"""Fleet benchmark: N simulated hosts at a realistic exec rate, through M real procsight receivers on loopback.

What a fleet's Collector tier does is reproduced in the sender: each host's records carry its resource
(`host.name`, `procsight.workload`), every 200 ms they are batched per receiver, and the receiver of a workload
is chosen by consistent hashing of `procsight.workload`, as the loadbalancing exporter with
`routing_key: attributes` does (config/collector-loadbalancing.yaml); that exporter is not in the Collector
build here, so the ring is this file's (crc32, 100 points per receiver, like upstream's). The receivers are
real: `procsight receiver` subprocesses running docker/receiver.yaml (the image's config) with the embedded
ClickHouse and LanceDB baselines each in their own directory.

Three measurements, printed with their assumptions:
1. steady state: the fleet's offered rate for --seconds; per receiver, records/s written to ClickHouse, CPU
   seconds used per 1,000 records, end-to-end latency (receipt to ClickHouse, from the receiver's histogram);
2. capacity: the same receivers offered --overload times that rate for --seconds, then drained; records/s
   each over the whole time;
3. baseline memory per workload: a scoring engine learning --workloads workloads from the real captures,
   resident memory and LanceDB bytes per workload;
then the receivers (and cores) 10,000 hosts need.

    .venv/bin/python bench/fleet.py [--hosts 300] [--receivers 2] [--seconds 20] [--hosts-per-workload 1]
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psutil
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository root: `testing` is not installed

from testing import EVAL_DIR, free_port, wait_until  # noqa: E402
from testing.otlp_values import key_values  # noqa: E402

EXPORT_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
PROFILES = ("web", "ci", "admin")  # the real captures of shared/eval: each simulated host runs one of them
TICK = 0.2  # seconds: the Collector's batch timeout
RING_POINTS = 100  # per receiver, as the loadbalancing exporter's ring
FLEET_HOSTS = 10_000
HEADROOM = 0.5  # run receivers at half their measured capacity: bursts, a receiver down, rebalancing
CORES_PER_RECEIVER = 2  # the StatefulSet's CPU request (docker/kubernetes/receiver-statefulset.yaml)
_RECORD_KEYS = ("process.pid", "process.parent_pid", "process.executable.name", "process.executable.path",
                "process.command_line", "process.command_args", "process.user.id",
                "process.parent.executable.name", "process.working_directory")


# -- the fleet -------------------------------------------------------------------------------------


def capture_rates(eval_dir: Path) -> dict[str, float]:
    """Execs per second of each real capture: its records over its duration (benign_<w>.meta.json)."""
    rates = {}
    for profile in PROFILES:
        meta = json.loads((eval_dir / f"benign_{profile}.meta.json").read_text())
        rates[profile] = meta["records"] / (meta["end"] - meta["start"])
    return rates


@dataclass
class Host:
    name: str
    profile: str
    workload: str
    rate: float
    due: float = 0.0
    chunks: dict[int, list[bytes]] = field(default_factory=dict)  # n records -> pre-encoded ResourceLogs
    turn: int = 0


def make_hosts(count: int, per_workload: int, rates: dict[str, float], eval_dir: Path) -> list[Host]:
    events = {p: [json.loads(line) for line in (eval_dir / f"benign_{p}.jsonl").open()] for p in PROFILES}
    hosts = []
    for index in range(count):
        profile = PROFILES[index % len(PROFILES)]
        name = f"{profile}-{index:05d}"
        # The agent's default: no procsight.workload, each host its own baseline; or groups sharing one.
        workload = name if per_workload == 1 else f"{profile}-group-{index // (per_workload * len(PROFILES))}"
        host = Host(name, profile, workload, rates[profile])
        pool, offset = events[profile], index * 7
        for size in range(1, 9):
            host.chunks[size] = [_resource_logs(host, pool, offset + variant * size, size) for variant in range(4)]
        hosts.append(host)
    return hosts


def _resource_logs(host: Host, pool: list[dict[str, Any]], offset: int, size: int) -> bytes:
    """One ResourceLogs of `size` records, serialized as a one-entry ExportLogsServiceRequest: such requests
    concatenate into one request with several entries (protobuf repeated fields)."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values({"service.name": "procsight-agent", "host.name": host.name,
                                                         "procsight.workload": host.workload}))
    scope = resource_logs.scope_logs.add()
    scope.scope.name = "procsight.agent"
    now = time.time_ns()
    for i in range(size):
        raw = pool[(offset + i) % len(pool)]
        record = scope.log_records.add()
        record.time_unix_nano = record.observed_time_unix_nano = now
        record.event_name = "process.exec"
        record.severity_number = 9
        record.body.string_value = raw["process.command_line"]
        record.attributes.extend(key_values({k: raw[k] for k in _RECORD_KEYS if raw.get(k) is not None}))
    return request.SerializeToString()


class Ring:
    """Consistent hashing of a routing key onto receivers, as the loadbalancing exporter's ring."""

    def __init__(self, endpoints: list[str]) -> None:
        points = sorted((zlib.crc32(f"{endpoint}-{i}".encode()), index)
                        for index, endpoint in enumerate(endpoints) for i in range(RING_POINTS))
        self._hashes = [h for h, _ in points]
        self._owners = [owner for _, owner in points]

    def owner(self, key: str) -> int:
        position = bisect.bisect_left(self._hashes, zlib.crc32(key.encode())) % len(self._hashes)
        return self._owners[position]


# -- the receivers ---------------------------------------------------------------------------------


@dataclass
class Receiver:
    process: subprocess.Popen[bytes]
    grpc: str
    http: str
    workloads: int = 0

    def metrics(self) -> dict[str, float]:
        text = urllib.request.urlopen(f"http://{self.http}/metrics", timeout=10).read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def tree(self) -> list[psutil.Process]:
        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for process in self.tree():
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                continue
        return total

    def rss(self) -> int:
        return sum(process.memory_info().rss for process in self.tree() if process.is_running())


def start_receivers(count: int, directory: Path) -> list[Receiver]:
    receivers = []
    for index in range(count):
        data = directory / f"receiver-{index}"
        data.mkdir()
        grpc_endpoint, http_endpoint = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        environ = {**os.environ, "PYTHONPATH": str(ROOT), "PROCSIGHT_GRPC_ENDPOINT": grpc_endpoint,
                   "PROCSIGHT_HTTP_ENDPOINT": http_endpoint, "PROCSIGHT_DATA_DIR": str(data),
                   "PROCSIGHT_BASELINES": str(data / "baselines"), "CLICKHOUSE_ENDPOINT": f"chdb://{data / 'ch'}",
                   "CLICKHOUSE_TTL": "0s"}
        log = (data / "receiver.log").open("wb")
        process = subprocess.Popen([sys.executable, "-m", "procsight", "receiver", "--config",
                                    str(ROOT / "docker" / "receiver.yaml")], env=environ, cwd=data, stdout=log,
                                   stderr=subprocess.STDOUT)
        receivers.append(Receiver(process, grpc_endpoint, http_endpoint))
    for receiver in receivers:
        wait_until(lambda r=receiver: _healthy(r), 120, f"receiver {receiver.http}", interval=0.5)
    return receivers


def _healthy(receiver: Receiver) -> bool:
    if receiver.process.poll() is not None:
        raise RuntimeError(f"a receiver exited with {receiver.process.returncode}: see its receiver.log")
    try:
        return urllib.request.urlopen(f"http://{receiver.http}/healthz", timeout=2).status == 200
    except OSError:
        return False


def stop_receivers(receivers: list[Receiver]) -> None:
    for receiver in receivers:
        receiver.process.terminate()
    for receiver in receivers:
        try:
            receiver.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            receiver.process.kill()
            receiver.process.wait()


def _exported(metrics: dict[str, float]) -> float:
    return metrics.get('procsight_exporter_sent_log_records_total{exporter="clickhouse"}', 0.0)


def _latency_buckets(metrics: dict[str, float]) -> list[tuple[float, float]]:
    prefix = "procsight_end_to_end_latency_seconds_bucket{"
    buckets = []
    for name, count in metrics.items():
        if name.startswith(prefix):
            bound = name.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((math.inf if bound == "+Inf" else float(bound), count))
    return sorted(buckets)


def _quantile(before: list[tuple[float, float]], after: list[tuple[float, float]], q: float) -> float:
    """The upper bound of the histogram bucket holding the q-quantile of the observations between two reads."""
    start = dict(before)
    counts = [(bound, count - start.get(bound, 0.0)) for bound, count in after]
    total = counts[-1][1] if counts else 0.0
    for bound, cumulative in counts:
        if total and cumulative >= q * total:
            return bound
    return math.nan


# -- sending ---------------------------------------------------------------------------------------


def run_phase(hosts: list[Host], receivers: list[Receiver], ring: Ring, seconds: float, speed: float,
              window: int = 8) -> dict[str, Any]:
    """Sends for `seconds` at `speed` times the hosts' own rates (at most `window` requests in flight per
    receiver), then waits until the receivers wrote everything. Returns per-receiver records/s written to
    ClickHouse over the whole time, CPU use per record and latency."""
    channels = [grpc.insecure_channel(r.grpc, options=[("grpc.max_send_message_length", 64 << 20)])
                for r in receivers]
    exports = [channel.unary_unary(EXPORT_METHOD) for channel in channels]
    owners = [ring.owner(host.workload) for host in hosts]
    before = [(r.metrics(), r.cpu_seconds()) for r in receivers]
    started = time.monotonic()
    pending: list[list[tuple[Future[Any], bytes, int]]] = [[] for _ in receivers]
    offered, resent = [0] * len(receivers), 0
    while time.monotonic() - started < seconds:
        tick_start = time.monotonic()
        parts: list[list[bytes]] = [[] for _ in receivers]
        counts = [0] * len(receivers)
        for host, owner in zip(hosts, owners, strict=True):
            host.due += host.rate * TICK
            size = min(int(host.due), 8)
            if size:
                host.due -= size
                parts[owner].append(host.chunks[size][host.turn % 4])
                host.turn += 1
                counts[owner] += size
        for index, export in enumerate(exports):
            if not parts[index]:
                continue
            while len(pending[index]) >= window:
                resent += _settle(pending[index], export)
            payload = b"".join(parts[index])
            pending[index].append((export.future(payload, timeout=60), payload, counts[index]))
            offered[index] += counts[index]
        for index, export in enumerate(exports):
            while pending[index] and pending[index][0][0].done():
                resent += _settle(pending[index], export)
        time.sleep(max(0.0, TICK / speed - (time.monotonic() - tick_start)))
    for index, export in enumerate(exports):
        while pending[index]:
            resent += _settle(pending[index], export)
    sent_at = time.monotonic()
    # let the receivers write what they acknowledged before reading the counters
    wait_until(lambda: all(_exported(r.metrics()) - _exported(b[0]) >= o for r, b, o in
                           zip(receivers, before, offered, strict=True)), 600, "the receivers to drain",
               interval=0.5)
    elapsed = time.monotonic() - started
    drain = time.monotonic() - sent_at
    results = []
    for receiver, (metrics_before, cpu_before), records in zip(receivers, before, offered, strict=True):
        metrics_after = receiver.metrics()
        cpu = receiver.cpu_seconds() - cpu_before
        buckets_before, buckets_after = _latency_buckets(metrics_before), _latency_buckets(metrics_after)
        results.append({"records": records, "records_per_s": records / elapsed,
                        "cpu_ms_per_1000": 1000 * cpu / max(records, 1) * 1000,
                        "p50_s": _quantile(buckets_before, buckets_after, 0.5),
                        "p99_s": _quantile(buckets_before, buckets_after, 0.99), "rss_mb": receiver.rss() / 2**20})
    for channel in channels:
        channel.close()
    return {"elapsed_s": elapsed, "drain_s": drain, "resent": resent, "receivers": results}


def _settle(pending: list[tuple[Future[Any], bytes, int]], export: Any) -> int:
    """Waits for the oldest request; resends it on backpressure (as the Collector's retry does). 1 if resent."""
    call, payload, count = pending.pop(0)
    try:
        call.result()
        return 0
    except grpc.RpcError as error:
        if error.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
            raise
        time.sleep(0.1)
        pending.append((export.future(payload, timeout=60), payload, count))
        return 1


# -- baseline memory -------------------------------------------------------------------------------


def baseline_memory(workloads: int, eval_dir: Path, directory: Path) -> dict[str, float]:
    """Resident memory and LanceDB bytes per workload: a scoring engine learning `workloads` baselines, each from
    one real capture shifted per host (own host names and pids in arguments)."""
    from core.semconv import event_from_attributes
    from scoring.config import EngineConfig
    from scoring.engine import AnomalyEngine

    captures = {p: [event_from_attributes(json.loads(line)) for line in (eval_dir / f"benign_{p}.jsonl").open()]
                for p in PROFILES}
    process = psutil.Process()
    engine = AnomalyEngine(EngineConfig(baselines=str(directory / "baselines"), max_resident_workloads=workloads))
    engine.learn_only(captures["web"][:10], workload="warm-up")  # imports, model and LanceDB connection
    start_rss = process.memory_info().rss
    for index in range(workloads):
        engine.learn_only(captures[PROFILES[index % len(PROFILES)]], workload=f"host-{index:05d}")
    engine.flush()
    patterns = statistics.mean(len(b) for b in engine.store.resident() if b.workload != "warm-up")
    grown = process.memory_info().rss - start_rss
    engine.close()
    disk = sum(path.stat().st_size for path in (directory / "baselines").rglob("*") if path.is_file())
    return {"workloads": workloads, "patterns_per_workload": patterns, "rss_kb_per_workload": grown / workloads / 1024,
            "disk_kb_per_workload": disk / (workloads + 1) / 1024}


# -- report ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--receivers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--hosts-per-workload", type=int, default=1, help="1: each host its own baseline")
    parser.add_argument("--workloads", type=int, default=300, help="baselines learned for the memory measurement")
    parser.add_argument("--overload", type=float, default=4.0, help="capacity phase: this many times the fleet's rate")
    parser.add_argument("--eval-dir", type=Path, default=EVAL_DIR)
    args = parser.parse_args()
    if not (args.eval_dir / "benign_web.jsonl").is_file():
        print(f"bench/fleet.py: the evaluation data is not at {args.eval_dir} (--eval-dir)", file=sys.stderr)
        return 2

    rates = capture_rates(args.eval_dir)
    hosts = make_hosts(args.hosts, args.hosts_per_workload, rates, args.eval_dir)
    fleet_rate = sum(h.rate for h in hosts)
    mean_rate = fleet_rate / len(hosts)
    load = os.getloadavg()
    print("assumptions")
    for profile, rate in rates.items():
        print(f"  {profile:6s} host: {rate:5.2f} execs/s (its real capture: records / duration)")
    sharing = "each host its own baseline" if args.hosts_per_workload == 1 else \
        f"{args.hosts_per_workload} hosts per baseline"
    print(f"  fleet: hosts cycle through the three, mean {mean_rate:.2f} execs/s per host; {sharing}")
    print(f"  Collector tier: {TICK * 1000:.0f} ms batches per receiver, routed by consistent hashing of "
          "procsight.workload (the loadbalancing exporter's routing, done by this script)")
    print(f"  machine: {os.cpu_count()} cores, load average {load[0]:.1f} at start (other work shares them)")

    with tempfile.TemporaryDirectory(prefix="procsight-fleet-") as tmp:
        receivers = start_receivers(args.receivers, Path(tmp))
        ring = Ring([r.grpc for r in receivers])
        for host in hosts:
            receivers[ring.owner(host.workload)].workloads += 1
        try:
            steady = run_phase(hosts, receivers, ring, args.seconds, speed=1.0)
            capacity = run_phase(hosts, receivers, ring, args.seconds, speed=args.overload)
        finally:
            stop_receivers(receivers)
        workloads = [r.workloads for r in receivers]
        memory = baseline_memory(args.workloads, args.eval_dir, Path(tmp))

    print(f"\nsteady state: {args.hosts} hosts, {fleet_rate:,.0f} records/s offered, {args.receivers} receivers, "
          f"{args.seconds:.0f} s")
    _print_phase(steady, workloads)
    print(f"\ncapacity: {args.overload:g} times that rate for {args.seconds:.0f} s, then drained (backpressure "
          f"resends: {capacity['resent']})")
    _print_phase(capacity, workloads)
    print(f"\nbaseline memory: {memory['workloads']} workloads learned from the real captures: "
          f"{memory['patterns_per_workload']:.0f} patterns each, {memory['rss_kb_per_workload']:.0f} KiB resident and "
          f"{memory['disk_kb_per_workload']:.0f} KiB in LanceDB per workload")

    fleet = FLEET_HOSTS * mean_rate
    total_capacity = sum(r["records_per_s"] for r in capacity["receivers"])
    print(f"\n{FLEET_HOSTS:,} hosts at {mean_rate:.2f} execs/s: {fleet:,.0f} records/s")
    print(f"  measured: {total_capacity:,.0f} records/s from {args.receivers} receivers sharing {os.cpu_count()} "
          "cores with whatever else ran; CPU time per record (all of each receiver's processes) does not depend "
          "on that sharing, so the sizing uses it")
    for name, phase in (("steady state (small batches)", steady), ("capacity (large batches)", capacity)):
        per_core = 1e6 / statistics.mean(r["cpu_ms_per_1000"] for r in phase["receivers"])
        cores = fleet / (per_core * HEADROOM)
        needed = math.ceil(cores / CORES_PER_RECEIVER)
        per_receiver = math.ceil(FLEET_HOSTS / args.hosts_per_workload / needed)
        print(f"  from the {name}: {per_core:,.0f} records per CPU-second; at {HEADROOM:.0%} of it {cores:.0f} cores "
              f"= {needed} receivers of {CORES_PER_RECEIVER} cores, {per_receiver} workloads each "
              f"({per_receiver * memory['rss_kb_per_workload'] / 1024:.0f} MiB of baselines)")
    return 0


def _print_phase(phase: dict[str, Any], workloads: list[int]) -> None:
    print(f"  {'receiver':>8} {'workloads':>9} {'records':>8} {'rec/s':>7} {'CPU ms/1k':>9} {'p50':>6} {'p99':>6} "
          f"{'RSS MiB':>7}")
    for index, (result, count) in enumerate(zip(phase["receivers"], workloads, strict=True)):
        print(f"  {index:>8} {count:>9} {result['records']:>8} {result['records_per_s']:>7.0f} "
              f"{result['cpu_ms_per_1000']:>9.0f} {_seconds(result['p50_s']):>6} {_seconds(result['p99_s']):>6} "
              f"{result['rss_mb']:>7.0f}")
    print(f"  drained {phase['drain_s']:.1f} s after the last request (latency: upper bound of its histogram "
          "bucket)")


def _seconds(bound: float) -> str:
    return ">10s" if math.isinf(bound) else f"{bound:g}s"


if __name__ == "__main__":
    sys.exit(main())
