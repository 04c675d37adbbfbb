"""The fault suite: the receiver under kill -9 under load, spool corruption, and a receiver outage while
the agent runs. Each asserts that every acknowledged record is stored exactly once (or, for a
corrupted spool entry, that only the records of the entry hit are lost, and counted) and that
`/healthz` tells the truth. The ClickHouse outage is tests/test_e2e_outage.py; corruption at every
byte position is otlp_receiver/tests/test_spool.py.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from conftest import receiver_config, write_config
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from test_e2e_crash_replay import metric, start_receiver

from core.event import ProcessEvent
from otel_agent.counters import Counters
from otel_agent.emitter import Emitter
from otel_agent.procfs import list_pids, read_status
from otel_agent.tests.conftest import agent_config
from otlp_receiver.exporters.clickhouse.transport import ChdbTransport
from testing import free_port, wait_until
from testing.otlp_values import key_values

EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def fault_config(data_dir: Path, clickhouse: str | None = None, **spool: Any) -> dict[str, Any]:
    """The receiver without scoring (start-up in a second, so it can be killed often): batch, ClickHouse."""
    config = receiver_config(data_dir, {}, grpc=f"127.0.0.1:{free_port()}", http=f"127.0.0.1:{free_port()}")
    config["service"]["pipelines"]["logs"]["processors"] = ["batch"]
    del config["processors"]["anomaly"]
    config["service"]["extensions"] = []
    del config["extensions"]
    if clickhouse:
        config["exporters"]["clickhouse"]["endpoint"] = clickhouse
    if spool:
        config["service"]["spool"] = spool
    return config


def endpoints(config: dict[str, Any]) -> tuple[str, str]:
    protocols = config["receivers"]["otlp"]["protocols"]
    return protocols["grpc"]["endpoint"], protocols["http"]["endpoint"]


def request(ids: list[str], padding: int = 0) -> bytes:
    message = ExportLogsServiceRequest()
    resource_logs = message.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values({"service.name": "faults", "procsight.workload": "web"}))
    scope_logs = resource_logs.scope_logs.add()
    for record_id in ids:
        record = scope_logs.log_records.add(time_unix_nano=time.time_ns())
        record.body.string_value = f"/usr/bin/worker --job={record_id} " + "x" * padding
        record.attributes.extend(key_values({"fault.id": record_id}))
    return message.SerializeToString()


def health(http: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://{http}/healthz", timeout=5) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def stored_ids(data_dir: Path) -> list[str]:
    clickhouse = ChdbTransport(str(data_dir / "clickhouse"))
    try:
        rows = clickhouse.query("SELECT LogAttributes['fault.id'] AS id FROM procsight.security_events")
    finally:
        clickhouse.close()
    return [row["id"] for row in rows]


def drained(http: str) -> bool:
    return health(http)["pipelines"]["logs"]["spool_uncommitted_entries"] == 0


class Load:
    """Sender threads sending 20-record requests as fast as acknowledged; records the acknowledged ids."""

    def __init__(self, grpc_endpoint: str, senders: int = 3) -> None:
        self.acknowledged: set[str] = set()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(grpc_endpoint, f"s{i}"), daemon=True)
                         for i in range(senders)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def wait_for_more(self, records: int) -> None:
        target = len(self.acknowledged) + records
        wait_until(lambda: len(self.acknowledged) >= target, 60, f"{records} more records acknowledged")

    def _send(self, endpoint: str, name: str) -> None:
        channel = grpc.insecure_channel(endpoint)
        export = channel.unary_unary(EXPORT)
        number = 0
        while not self._stop.is_set():
            ids = [f"{name}-{number + i}" for i in range(20)]
            number += 20
            try:
                export(request(ids), timeout=5)
            except grpc.RpcError as error:  # the receiver is down or restarting: not acknowledged
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                        grpc.StatusCode.RESOURCE_EXHAUSTED):
                    self.errors.append(str(error))
                time.sleep(0.05)
                continue
            with self._lock:
                self.acknowledged.update(ids)
        channel.close()


def test_kill_9_under_load_loses_and_duplicates_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = fault_config(data_dir)
    grpc_endpoint, http = endpoints(config)
    config_file = write_config(tmp_path / "receiver.yaml", config)
    log = tmp_path / "receiver.log"
    receiver = start_receiver(config_file, http, log)
    try:
        with Load(grpc_endpoint) as load:
            for _ in range(3):
                load.wait_for_more(2000)
                receiver.send_signal(signal.SIGKILL)  # a crash under load: no shutdown, no flush
                receiver.wait(timeout=30)
                receiver = start_receiver(config_file, http, log)
            load.wait_for_more(2000)
        wait_until(lambda: drained(http), 120, "the spool to drain")
        assert health(http)["status"] == "ok"
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=60)
    assert not load.errors, load.errors[:3]
    stored = stored_ids(data_dir)
    assert len(stored) == len(set(stored)), "a record was stored twice"
    assert load.acknowledged <= set(stored), f"{len(load.acknowledged - set(stored))} acknowledged records lost"


def test_a_receiver_killed_by_kill_9_leaves_no_process_behind(tmp_path: Path) -> None:
    """Its helpers (the ClickHouse encoder for batches of 1,000 records or more, the resource tracker) exit
    with it: a receiver restarted after every OOM kill must not pile up orphans and their memory."""
    data_dir = tmp_path / "data"
    config = fault_config(data_dir)
    grpc_endpoint, http = endpoints(config)
    receiver = start_receiver(write_config(tmp_path / "receiver.yaml", config), http, tmp_path / "receiver.log")
    try:
        with grpc.insecure_channel(grpc_endpoint) as channel:
            channel.unary_unary(EXPORT)(request([f"r{i}" for i in range(1500)]), timeout=30)
        wait_until(lambda: children_of(receiver.pid), 60, "the encoder process to start")
        helpers = children_of(receiver.pid)
    finally:
        receiver.send_signal(signal.SIGKILL)
        receiver.wait(timeout=30)
    wait_until(lambda: not [pid for pid in helpers if Path(f"/proc/{pid}").exists()], 15,
               f"the receiver's helper processes {helpers} to exit with it")


def children_of(pid: int) -> list[int]:
    return [child for child in list_pids() if (status := read_status(child)) is not None and status.ppid == pid]


def test_a_corrupt_spool_segment_costs_only_the_entry_hit_and_health_stays_true(tmp_path: Path) -> None:
    """The attack's flipped byte in a non-last segment: the pipeline thread died, /healthz said ok, and
    records acknowledged afterwards were never delivered."""
    data_dir = tmp_path / "data"
    down = fault_config(data_dir, clickhouse=f"http://127.0.0.1:{free_port()}", max_size_mib=64,
                        segment_size_mib=1)
    grpc_endpoint, http = endpoints(down)
    log = tmp_path / "receiver.log"
    receiver = start_receiver(write_config(tmp_path / "down.yaml", down), http, log)
    channel = grpc.insecure_channel(grpc_endpoint)
    export = channel.unary_unary(EXPORT)
    try:
        for number in range(40):  # ~100 KB each: 4 segments of 1 MiB, all waiting for ClickHouse
            export(request([f"r{number}-{i}" for i in range(10)], padding=10_000), timeout=10)
    finally:
        receiver.send_signal(signal.SIGKILL)
        receiver.wait(timeout=30)
    segments = sorted((data_dir / "spool" / "logs").glob("seg-*.log"))
    assert len(segments) >= 3
    middle = bytearray(segments[1].read_bytes())
    middle[len(middle) // 2] ^= 0xFF
    segments[1].write_bytes(bytes(middle))

    up = {**down, "exporters": fault_config(data_dir)["exporters"]}  # same data_dir and spool: ClickHouse is back
    receiver = start_receiver(write_config(tmp_path / "up.yaml", up), http, log)
    try:
        export(request([f"after-{i}" for i in range(10)]), timeout=10)  # acknowledged after the corruption
        wait_until(lambda: drained(http), 120, "the spool to drain")
        assert health(http)["status"] == "ok" and health(http)["problems"] == []
        assert metric(http, "procsight_spool_corrupt_entries_total", spool="logs") == 1
    finally:
        channel.close()
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=60)
    stored = stored_ids(data_dir)
    assert len(stored) == len(set(stored))
    assert {f"after-{i}" for i in range(10)} <= set(stored)
    lost = {f"r{n}-{i}" for n in range(40) for i in range(10)} - set(stored)
    assert len(lost) == 10, sorted(lost)  # one request: the entry the flipped byte hit


def test_the_agent_spool_delivers_after_a_receiver_outage(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = fault_config(data_dir)
    grpc_endpoint, http = endpoints(config)
    emitter = Emitter(agent_config(grpc_endpoint, tmp_path / "agent-spool", exporter={"timeout": "500ms"},
                                   spool={"retry_interval": "500ms"}), Counters())
    try:
        for number in range(300):  # the receiver is down: the agent spools to disk
            emitter.emit([ProcessEvent(executable_name="worker", command_line=f"/usr/bin/worker --job=a{number}",
                                       pid=10_000 + number, parent_pid=1, timestamp=time.time())])
        wait_until(lambda: emitter.spool.pending == 300, 30, "the agent to spool every record")
        receiver = start_receiver(write_config(tmp_path / "receiver.yaml", config), http, tmp_path / "receiver.log")
        try:
            wait_until(lambda: emitter.spool.pending == 0, 60, "the agent's spool to deliver")
            wait_until(lambda: metric(http, "procsight_exporter_sent_log_records_total", exporter="clickhouse") >= 300,
                       60, "rows written")
            wait_until(lambda: drained(http), 60, "the receiver's spool to drain")
            assert health(http)["status"] == "ok"
        finally:
            receiver.send_signal(signal.SIGTERM)
            receiver.wait(timeout=60)
    finally:
        emitter.shutdown()
    clickhouse = ChdbTransport(str(data_dir / "clickhouse"))
    try:
        rows = clickhouse.query("SELECT LogAttributes['process.command_line'] AS line FROM procsight.security_events")
    finally:
        clickhouse.close()
    lines = [row["line"] for row in rows]
    assert sorted(lines) == sorted(f"/usr/bin/worker --job=a{n}" for n in range(300))
