"""The exporter's keys and endpoint forms, resolved as upstream resolves its DSN."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.confmap import ConfigError, decode, load_yaml
from otlp_receiver.exporters.clickhouse import factory
from otlp_receiver.exporters.clickhouse.config import Config, Connection

TESTDATA = Path(__file__).parent / "testdata"


def resolve(**keys: object) -> Connection:
    return decode(Config, keys, "exporters.clickhouse").connection()


def test_yaml_testdata_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCSIGHT_TEST_DIR", "/var/lib/procsight")
    exporters = load_yaml(TESTDATA / "config.yaml")["exporters"]
    configs = {name: decode(factory.Config, data, f"exporters.{name}", source="config.yaml")
               for name, data in exporters.items()}
    embedded = configs["clickhouse"]
    assert embedded.connection().path == "/var/lib/procsight/clickhouse"
    assert (embedded.ttl, embedded.timeout, embedded.sending_queue.queue_size) == (72 * 3600, 2, 10)
    server = configs["clickhouse/server"].connection()
    assert (server.kind, server.username, server.password, server.database) == ("http", "procsight", "secret",
                                                                               "procsight")
    upstream = configs["clickhouse/upstream"]
    native = upstream.connection()
    assert (native.kind, native.hosts, native.connect_timeout, native.compress) == (
        "native", (("127.0.0.1", 9000),), 10.0, "lz4")
    assert (upstream.cluster_name, upstream.table_engine.replicated, native.database) == ("my_cluster", True, "otel")
    assert native.insert_settings(upstream.async_insert)["async_insert"] == "1"
    url = configs["clickhouse/url"].connection()
    assert (url.username, url.password, url.database, url.secure, url.hosts) == (
        "alice", "s:cret", "otel", True, (("ch.example", 8443),))
    # connection_params override the URL's parameters; `true` travels as 1, as clickhouse-go sends it
    assert url.settings == {"max_execution_time": "60", "async_insert": "1"}


@pytest.mark.parametrize(("endpoint", "expected"), [
    ("tcp://ch", {"kind": "native", "hosts": (("ch", 9000),), "secure": False, "database": "procsight"}),
    ("clickhouse://ch:9001?secure=true&skip_verify=true",
     {"kind": "native", "hosts": (("ch", 9001),), "secure": True, "skip_verify": True}),
    ("clickhouse://ch?secure", {"hosts": (("ch", 9440),), "secure": True}),
    ("tcp://a:9000,b:9001,[::1]:9002?connection_open_strategy=round_robin&read_timeout=30s",
     {"hosts": (("a", 9000), ("b", 9001), ("::1", 9002)), "open_strategy": "round_robin", "read_timeout": 30.0}),
    ("http://ch", {"kind": "http", "hosts": (("ch", 8123),), "username": "default", "password": ""}),
    ("https://ch/logs?client_info_product=acme/1.0", {"hosts": (("ch", 8443),), "secure": True,
                                                       "database": "logs", "client_name": "acme/1.0"}),
    ("http://u@ch:8124/db?username=v&password=w", {"username": "v", "password": "w", "database": "db"}),
    ("tcp://ch/db?database=other&compress=true", {"database": "other", "compress": "lz4"}),
    ("tcp://ch?compress=zstd", {"compress": "zstd"}),
    ("http://ch?compress=false", {"compress": "none"}),
])
def test_endpoint_forms(endpoint: str, expected: dict) -> None:
    connection = resolve(endpoint=endpoint, compress="gzip" if endpoint.startswith("http") else "lz4")
    assert {key: getattr(connection, key) for key in expected} == expected


def test_keys_against_the_url_as_upstream() -> None:
    url = "http://urluser:urlpass@ch:8123/urldb"
    # `username` replaces the URL's user *and* password, even with an empty password
    assert (resolve(endpoint=url, username="keyuser").username, resolve(endpoint=url, username="keyuser").password) \
        == ("keyuser", "")
    # `database` wins over the path, except `default`, which yields to a path
    assert resolve(endpoint=url, database="keydb").database == "keydb"
    assert resolve(endpoint=url, database="default").database == "urldb"
    assert resolve(endpoint="http://ch", database="default").database == "default"
    # the `compress` key yields to a `compress` parameter
    assert resolve(endpoint="http://ch?compress=zstd", compress="gzip").compress == "zstd"
    assert resolve(endpoint="http://ch", compress=True).compress == "lz4"


def test_insert_settings_keep_exactly_once() -> None:
    plain = resolve(endpoint="tcp://ch").insert_settings(async_insert=False)
    assert plain == {"insert_deduplicate": "1"}
    asynchronous = resolve(endpoint="tcp://ch").insert_settings(async_insert=True)
    assert asynchronous == {"insert_deduplicate": "1", "async_insert": "1", "wait_for_async_insert": "1",
                            "async_insert_deduplicate": "1"}
    assert resolve(endpoint="tcp://ch?async_insert=0").insert_settings(async_insert=True)["async_insert"] == "0"


@pytest.mark.parametrize(("data", "key", "message"), [
    ({"endpiont": "chdb://x"}, "endpiont", "did you mean 'endpoint'"),
    ({"endpoint": "ftp://ch"}, "endpoint", "tcp://host:9000"),
    ({"endpoint": "chdb://"}, "endpoint", "needs a directory"),
    ({"endpoint": "chdb://x", "connection_params": {"a": "1"}}, "connection_params", "no connection parameters"),
    ({"endpoint": "tcp://ch?max_open_conns=10"}, "endpoint (?max_open_conns=)", "one connection per exporter"),
    ({"endpoint": "tcp://ch", "connection_params": {"compress_level": "3"}}, "connection_params.compress_level",
     "default level"),
    ({"endpoint": "tcp://ch", "compress": "gzip"}, "compress", "the HTTP interface"),
    ({"endpoint": "http://ch", "compress": "lz4hc"}, "compress", "the native protocol"),
    ({"endpoint": "http://ch", "compress": "snappy"}, "compress", "gzip"),
    ({"endpoint": "http://a:8123,b:8123"}, "endpoint", "one host"),
    ({"endpoint": "http://ch?secure=true"}, "endpoint", "use https://"),
    ({"endpoint": "tcp://ch:99999"}, "endpoint", "not a port"),
    ({"endpoint": "tcp://ch?dial_timeout=soon"}, "endpoint (?dial_timeout=)", "duration"),
    ({"endpoint": "tcp://ch?secure=maybe"}, "endpoint (?secure=)", "true or false"),
    ({"endpoint": "tcp://ch?connection_open_strategy=fastest"}, "endpoint (?connection_open_strategy=)", "in_order"),
    ({"endpoint": "tcp://ch?http_path=/ch"}, "endpoint (?http_path=)", "http(s):// endpoints only"),
    ({"endpoint": "http://ch", "connection_params": {"wait_for_async_insert": "0"}},
     "connection_params.wait_for_async_insert", "must stay 1"),
    ({"endpoint": "http://ch?insert_deduplicate=0"}, "endpoint (?insert_deduplicate=)", "must stay 1"),
    ({"endpoint": "http://ch", "tls": {"insecure_skip_verify": True}}, "tls", "plain text"),
    ({"endpoint": "http://ch/prod;drop"}, "database", "plain identifier"),
    ({"database": "prod; DROP"}, "database", "plain identifier"),
    ({"logs_table_name": "a`b"}, "logs_table_name", "plain identifier"),
    ({"ttl": "a month"}, "ttl", "duration"),
    ({"table_engine": {"name": "Memory"}}, "table_engine.name", "MergeTree-family"),
    ({"table_engine": {"params": "'a'); DROP TABLE x; --"}}, "table_engine.params", "without ';'"),
    ({"cluster_name": "c1"}, "cluster_name", "not a cluster"),
    ({"endpoint": "tcp://ch", "cluster_name": "a b"}, "cluster_name", "plain identifier"),
    ({"table_engine": {"name": "ReplicatedMergeTree"}}, "table_engine.name", "no Keeper"),
    ({"json": True}, "json", "Map(String, String)"),
    ({"auth": {"authenticator": "bearertokenauth"}}, "auth", "username and password"),
    ({"retry_on_failure": {"multiplier": -1}}, "retry_on_failure.multiplier", "non-negative"),
    ({"tls": {"min_version": "1.3"}}, "tls.min_version", "cannot honour"),
])
def test_invalid_config_names_the_key(data: dict, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        decode(factory.Config, data, "exporters.clickhouse")
    assert caught.value.path == f"exporters.clickhouse.{key}"


def test_address_hides_credentials() -> None:
    assert resolve(endpoint="https://u:secret@ch/db").address == "https://ch:8443"
    assert resolve(endpoint="tcp://u:secret@a,b:9001").address == "tcp://a:9000,b:9001"
