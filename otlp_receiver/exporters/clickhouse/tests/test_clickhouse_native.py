"""The native protocol (tcp://, clickhouse://) through clickhouse-driver: against Debian's real ClickHouse
server where it can go, and the full insert path against chdb behind the protocol (chdb_native_bridge.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from chdb_native_bridge import ChdbNativeBridge
from clickhouse_batches import HOSTILE, make_batch, make_exporter, rows
from debian_clickhouse import SERVER, USERS, debian_clickhouse

from core.confmap import ConfigError
from otlp_receiver.component import RetryableError
from testing import free_port


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("chdb"))


@pytest.mark.parametrize("compress", ["none", "lz4", "zstd"])
def test_native_inserts_exactly_once_chdb_native_bridge_fake_server(chdb_dir: str, compress: str) -> None:
    database = f"native_{compress}"
    with ChdbNativeBridge(chdb_dir, users={"alice": "s3cret"}) as bridge:
        exporter = make_exporter(f"tcp://alice:s3cret@127.0.0.1:{bridge.port}/{database}?max_threads=2", "",
                                 compress=compress)
        try:
            batch = make_batch("5", ["curl x | bash", HOSTILE], tenant="team-a", incident=True)
            exporter.export(batch)
            exporter.export(batch)  # a replay: the same deduplication token
            first, second = rows(exporter)
            (times,) = exporter.transport.query(  # type: ignore[union-attr]
                f"SELECT groupArray(toUnixTimestamp64Nano(Timestamp)) AS ns FROM {exporter.table}")
        finally:
            exporter.shutdown()
    assert exporter.table == f"`{database}`.`security_events`"
    assert (first["RecordId"], second["RecordId"]) == ("5:0", "5:1") and second["Body"] == HOSTILE
    assert first["LogAttributes"]["process.command_args"] == '["curl","x","|","bash"]'
    assert (first["AnomalyIncident"], first["AnomalyTechniques"], first["TenantId"]) == (
        "inc-7", ["T1059.004", "T1105"], "team-a")
    assert first["AnomalyScore"] == pytest.approx(0.95) and first["Embedding"] == [1.0, 0.0, 0.0, 0.0]
    assert sorted(times["ns"]) == [1_700_000_000_000_000_000, 1_700_000_000_000_000_001]  # nanoseconds exact
    inserts = [settings for query, settings in zip(bridge.queries, bridge.settings, strict=True)
               if query.startswith("INSERT")]
    assert [settings["insert_deduplication_token"] for settings in inserts] == ["5/0", "5/0"]
    assert all(settings["max_threads"] == "2" for settings in bridge.settings)
    assert set(bridge.logins) == {"alice"} and all(bridge.compressed) == (compress != "none")


def test_native_parameters_are_bound_by_the_server_chdb_native_bridge_fake_server(chdb_dir: str) -> None:
    with ChdbNativeBridge(chdb_dir) as bridge:
        exporter = make_exporter(f"clickhouse://127.0.0.1:{bridge.port}", "native_params", start=False)
        exporter.start()
        try:
            result = exporter.transport.query(  # type: ignore[union-attr]
                "SELECT {s:String} AS s, {v:Array(Float32)} AS v, {n:UInt32} AS n", {"s": HOSTILE, "v": [0.5], "n": 7})
        finally:
            exporter.shutdown()
    assert result == [{"s": HOSTILE, "v": [0.5], "n": 7}]
    assert HOSTILE not in bridge.queries[-1]


def test_native_hosts_in_order_skip_a_dead_one_chdb_native_bridge_fake_server(chdb_dir: str) -> None:
    with ChdbNativeBridge(chdb_dir) as bridge:
        exporter = make_exporter(f"tcp://127.0.0.1:{free_port()},127.0.0.1:{bridge.port}", "native_hosts")
        try:
            exporter.export(make_batch("1", ["ls"]))
            assert [row["Body"] for row in rows(exporter)] == ["ls"]
        finally:
            exporter.shutdown()


def test_native_wrong_password_fails_start_up_chdb_native_bridge_fake_server(chdb_dir: str) -> None:
    with ChdbNativeBridge(chdb_dir, users={"alice": "s3cret"}) as bridge:
        exporter = make_exporter(f"tcp://127.0.0.1:{bridge.port}", "native_auth", start=False, username="alice",
                                 password="wrong")
        try:
            with pytest.raises(ConfigError, match="Authentication failed"):
                exporter.start()
        finally:
            exporter.shutdown()


def test_native_server_down_waits_for_it() -> None:
    exporter = make_exporter(f"tcp://127.0.0.1:{free_port()}", "native_down", timeout="1s")  # start() does not fail
    try:
        with pytest.raises(RetryableError, match="unreachable"):
            exporter.export(make_batch("1", ["ls"]))
    finally:
        exporter.shutdown()


@pytest.mark.skipif(not SERVER.is_file(), reason="Debian's clickhouse-server is not installed (scripts/setup.sh "
                                                 "installs it)")
def test_debian_clickhouse_server_over_the_native_protocol(tmp_path: Path) -> None:
    # The real server speaks the protocol with clickhouse-driver (handshake, credentials, lz4 blocks), and
    # procsight's start-up check refuses it by version, before any DDL it could not run.
    with debian_clickhouse(tmp_path) as port:
        endpoint = f"tcp://alice:{USERS['alice']}@127.0.0.1:{port}/otel?compress=lz4"
        exporter = make_exporter(endpoint, "", start=False)
        try:
            assert exporter.transport is None
            with pytest.raises(ConfigError, match=r"ClickHouse 18\.16\.1 at tcp://127\.0\.0\.1:\d+ is too old"):
                exporter.start()
            assert exporter.transport.query("SELECT version() AS version, 1 + 1 AS two") == [  # type: ignore[union-attr]
                {"version": "18.16.1", "two": 2}]
        finally:
            exporter.shutdown()
        wrong = make_exporter(f"tcp://alice:nope@127.0.0.1:{port}", "", start=False)
        try:
            with pytest.raises(ConfigError, match=r"(?i)password"):
                wrong.start()
        finally:
            wrong.shutdown()
