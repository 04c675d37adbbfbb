"""The OTLP side: mapping, never dropping under bursts, the disk spool, auth and TLS, gRPC and HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.event import CONNECTION, ProcessEvent
from otel_agent.counters import Counters
from otel_agent.emitter import Emitter
from otel_agent.tests.conftest import agent_config
from testing import free_port, redirect_trap, self_signed_cert, wait_until
from testing.otlp_sink import OtlpSink


def exec_event(number: int, **fields: object) -> ProcessEvent:
    args = ("/usr/bin/curl", f"https://example.com/{number}")
    return ProcessEvent(executable_name="curl", command_line=" ".join(args), command_args=args, pid=10_000 + number,
                        parent_pid=1, user_id=0, timestamp=time.time(), **fields)


def pids(endpoint: OtlpSink) -> list[int]:
    return [r.attributes["process.pid"] for r in endpoint.flat()]


def test_network_event_maps_to_design_keys(tmp_path):
    with OtlpSink() as endpoint:
        emitter = Emitter(agent_config(endpoint.grpc_endpoint, tmp_path), Counters())
        emitter.emit([ProcessEvent(executable_name="nc", command_line="nc 203.0.113.9 4444",
                                   command_args=("nc", "203.0.113.9", "4444"), event_name=CONNECTION, pid=42,
                                   parent_pid=7, parent_name="bash", user_id=1000, user_name="alice",
                                   working_directory="/home/alice", container_id="c" * 64, timestamp=1_700_000_000.5,
                                   transport="tcp", local_address="10.0.0.2", local_port=51000,
                                   remote_address="203.0.113.9", remote_port=4444, cpu_percent=97.5,
                                   command_args_truncated=True)])
        emitter.shutdown()
        (record,) = endpoint.flat()
    assert record.event_name == "network.connection" == record.attributes["event.name"]
    assert record.time_unix_nano == 1_700_000_000_500_000_000
    assert record.attributes == {
        "event.name": "network.connection", "process.executable.name": "nc",
        "process.command_line": "nc 203.0.113.9 4444", "process.command_args": ["nc", "203.0.113.9", "4444"],
        "process.pid": 42, "process.parent_pid": 7, "process.user.id": 1000, "process.user.name": "alice",
        "process.parent.executable.name": "bash", "process.working_directory": "/home/alice",
        "container.id": "c" * 64, "process.cpu.utilization": 97.5, "network.transport": "tcp",
        "source.address": "10.0.0.2", "source.port": 51000, "destination.address": "203.0.113.9",
        "destination.port": 4444, "process.command_args_truncated": True}


def test_burst_of_20000_overflowing_memory_is_delivered_whole(tmp_path):
    """The SDK's BatchLogRecordProcessor drops past its queue (bench/agent.py measures it); ours spills to disk.

    The memory queue is made tiny so that the burst certainly overflows it."""
    counters = Counters()
    with OtlpSink() as endpoint:
        config = agent_config(endpoint.grpc_endpoint, tmp_path, batch={"queue_size": 128, "send_batch_size": 128})
        emitter = Emitter(config, counters)
        for number in range(20_000):
            emitter.emit([exec_event(number)])
        wait_until(lambda: len(endpoint.records()) >= 20_000, timeout=60)
        emitter.shutdown()
        assert sorted(pids(endpoint)) == [10_000 + n for n in range(20_000)]
    assert counters.get("exported") == 20_000
    assert counters.get("spooled") > 0  # the burst really overflowed memory
    assert counters.get("dropped_oldest") == 0


def test_records_wait_on_disk_while_the_endpoint_is_down_and_arrive_when_it_returns(tmp_path):
    port = free_port()
    counters = Counters()
    emitter = Emitter(agent_config(f"127.0.0.1:{port}", tmp_path, exporter={"timeout": "500ms"}), counters)
    for number in range(300):
        emitter.emit([exec_event(number)])
    wait_until(lambda: emitter.spool.pending == 300, timeout=20)
    assert list(tmp_path.glob("*.spool"))  # on disk, not in memory
    assert counters.get("export_failures") >= 1
    with OtlpSink(grpc_port=port) as endpoint:
        wait_until(lambda: len(endpoint.records()) >= 300, timeout=20)
        emitter.shutdown()
        assert sorted(pids(endpoint)) == [10_000 + n for n in range(300)]
    assert emitter.spool.pending == 0
    assert not list(tmp_path.glob("*.spool"))


def test_spool_survives_an_agent_restart(tmp_path):
    port = free_port()
    first = Emitter(agent_config(f"127.0.0.1:{port}", tmp_path, exporter={"timeout": "300ms"}), Counters())
    for number in range(50):
        first.emit([exec_event(number)])
    first.shutdown()  # endpoint still down: everything must be on disk now
    with OtlpSink(grpc_port=port) as endpoint:
        second = Emitter(agent_config(endpoint.grpc_endpoint, tmp_path), Counters())
        assert second.spool.pending == 50
        wait_until(lambda: len(endpoint.records()) >= 50, timeout=20)
        second.shutdown()
        records = endpoint.flat()
    assert sorted(pids(endpoint)) == [10_000 + n for n in range(50)]
    assert records[0].resource["service.name"] == "procsight-agent"
    assert records[0].attributes["process.command_args"] == ["/usr/bin/curl", "https://example.com/0"]


def test_full_spool_drops_oldest_first_and_counts_them(tmp_path):
    port = free_port()
    counters = Counters()
    config = agent_config(f"127.0.0.1:{port}", tmp_path, exporter={"timeout": "300ms"},
                          spool={"max_size_mib": 0.05, "retry_interval": "200ms"})
    emitter = Emitter(config, counters)
    for number in range(2000):
        emitter.emit([exec_event(number)])
    emitter.shutdown()
    dropped = counters.get("dropped_oldest")
    assert dropped > 0
    assert emitter.spool.bytes <= 0.05 * 1024 * 1024
    with OtlpSink(grpc_port=port) as endpoint:
        emitter = Emitter(agent_config(endpoint.grpc_endpoint, tmp_path), Counters())
        wait_until(lambda: len(endpoint.records()) >= 2000 - dropped, timeout=20)
        emitter.shutdown()
        delivered = sorted(pids(endpoint))
    assert len(delivered) == 2000 - dropped
    assert delivered == [10_000 + n for n in range(dropped, 2000)]  # the newest survived


def test_bearer_token_from_environment_over_grpc(tmp_path, monkeypatch):
    monkeypatch.setenv("PROCSIGHT_TOKEN", "s3cret")
    with OtlpSink() as endpoint:
        emitter = Emitter(agent_config(endpoint.grpc_endpoint, tmp_path), Counters())
        emitter.emit([exec_event(1)])
        emitter.shutdown()
        assert endpoint.received[0].headers["authorization"] == "Bearer s3cret"


def test_http_exporter_with_gzip_and_token(tmp_path, monkeypatch):
    monkeypatch.setenv("PROCSIGHT_TOKEN", "t0ken")
    with OtlpSink() as endpoint:
        config = agent_config(endpoint.logs_url, tmp_path, exporter={"protocol": "http"})
        emitter = Emitter(config, Counters())
        emitter.emit([exec_event(3)])
        emitter.shutdown()
        (record,) = endpoint.flat()
        headers = endpoint.received[0].headers
    assert record.attributes["process.pid"] == 10_003
    assert headers["authorization"] == "Bearer t0ken"
    assert headers["content-encoding"] == "gzip"


@pytest.mark.parametrize("status", [301, 302, 303, 307])
def test_http_exporter_does_not_follow_a_redirect_and_keeps_the_records(tmp_path, monkeypatch, status):
    """urllib followed a 301/302/303 with a GET to the Location, carrying the bearer token and not the records,
    and its 200 counted them exported."""
    monkeypatch.setenv("PROCSIGHT_TOKEN", "t0ken")
    with redirect_trap(status) as (url, followed):
        counters = Counters()
        emitter = Emitter(agent_config(f"{url}/v1/logs", tmp_path, exporter={"protocol": "http"}), counters)
        emitter.emit([exec_event(4)])
        emitter.shutdown()
    assert followed == []
    assert counters.get("exported") == 0 and counters.get("spooled") == 1


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path)


def test_grpc_over_tls_verifies_the_server_certificate(tmp_path, certificate):
    cert, _ = certificate
    with OtlpSink(tls=certificate) as endpoint:
        config = agent_config(endpoint.grpc_endpoint, tmp_path / "spool",
                              exporter={"tls": {"insecure": False, "ca_file": str(cert)}})
        emitter = Emitter(config, Counters())
        emitter.emit([exec_event(5)])
        emitter.shutdown()
        assert [r.attributes["process.pid"] for r in endpoint.flat()] == [10_005]


def test_http_over_tls_verifies_the_server_certificate_and_refuses_an_untrusted_one(tmp_path, certificate):
    cert, _ = certificate
    with OtlpSink(tls=certificate) as endpoint:
        trusted = agent_config(endpoint.logs_url, tmp_path / "trusted",
                               exporter={"protocol": "http", "tls": {"insecure": False, "ca_file": str(cert)}})
        emitter = Emitter(trusted, Counters())
        emitter.emit([exec_event(7)])
        emitter.shutdown()
        assert pids(endpoint) == [10_007]
        counters = Counters()
        untrusted = agent_config(endpoint.logs_url, tmp_path / "untrusted",
                                 exporter={"protocol": "http", "tls": {"insecure": False}, "timeout": "500ms"})
        emitter = Emitter(untrusted, counters)
        emitter.emit([exec_event(8)])
        emitter.shutdown()
        assert pids(endpoint) == [10_007]
    assert counters.get("export_failures") >= 1 and emitter.spool.pending == 1


def test_grpc_over_tls_refuses_an_untrusted_server(tmp_path, certificate):
    counters = Counters()
    with OtlpSink(tls=certificate) as endpoint:
        config = agent_config(endpoint.grpc_endpoint, tmp_path / "spool",
                              exporter={"tls": {"insecure": False}, "timeout": "500ms"})  # system CAs only
        emitter = Emitter(config, counters)
        emitter.emit([exec_event(6)])
        emitter.shutdown()
        assert endpoint.flat() == []
    assert counters.get("export_failures") >= 1
    assert emitter.spool.pending == 1  # kept for when the endpoint is trusted
