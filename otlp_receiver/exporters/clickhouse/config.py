"""Settings of the `clickhouse` exporter: the upstream Collector exporter's keys, same meaning and units.

`Config` is what the YAML says; `Config.connection()` resolves it the way upstream's DSN is resolved
(clickhouse-go's `ParseDSN` on the endpoint plus the keys): credentials, database and parameters in the
URL are honoured, `connection_params` override URL parameters, the `username` key replaces the URL's
user and password. Every driver option is either honoured or refused by name; every other parameter is a
ClickHouse setting, sent with each statement and checked against the server at start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from core.confmap import ConfigError, Duration, check_positive
from otlp_receiver.configtls import TLSClientConfig
from otlp_receiver.exporterhelper.config import QueueConfig, RetryConfig

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_ENGINE = re.compile(r"^[A-Za-z]*MergeTree$")
DEFAULT_DATABASE = "procsight"  # upstream's is `default`; procsight keeps its table apart unless told otherwise

# `compress` values per transport. Upstream's list is none, zstd, lz4, gzip, deflate, br and true (= lz4);
# the native protocol compresses blocks (lz4, lz4hc, zstd), HTTP compresses bodies.
HTTP_COMPRESSIONS = ("lz4", "zstd", "gzip", "deflate", "br", "none")
NATIVE_COMPRESSIONS = ("lz4", "lz4hc", "zstd", "none")

# clickhouse-go's DSN options that procsight honours; every other parameter is a ClickHouse setting.
DRIVER_OPTIONS = frozenset({"username", "password", "database", "compress", "secure", "skip_verify", "tls_server_name",
                            "dial_timeout", "read_timeout", "connection_open_strategy", "client_info_product",
                            "debug", "http_path", "http_proxy"})
# clickhouse-go's DSN options procsight cannot honour, with what to do instead.
REFUSED_OPTIONS = {
    "max_open_conns": "procsight keeps one connection per exporter and sending_queue.num_consumers inserts on it",
    "max_idle_conns": "procsight keeps one connection per exporter",
    "conn_max_lifetime": "procsight keeps one connection per exporter and reconnects only after an error",
    "block_buffer_size": "procsight sends each part of a batch as one block",
    "max_compression_buffer": "procsight compresses each block whole",
    "compress_level": "the Python drivers compress at their default level",
    "free_buf_on_connection_release": "procsight keeps one connection per exporter",
}
# Settings procsight sets itself on every insert for exactly-once delivery; a parameter may not undo them.
_OWN_SETTINGS = {"insert_deduplicate": "1", "wait_for_async_insert": "1", "async_insert_deduplicate": "1"}
_DEFAULT_PORTS = {("native", False): 9000, ("native", True): 9440, ("http", False): 8123, ("http", True): 8443}
_SCHEMES = {"tcp": "native", "clickhouse": "native", "http": "http", "https": "http", "chdb": "chdb"}


@dataclass
class TableEngine:
    """`ENGINE = name(params)`, e.g. ReplicatedMergeTree with `'/clickhouse/tables/{shard}/{table}', '{replica}'`."""

    name: str = "MergeTree"
    params: str = ""

    def validate(self) -> None:
        if not _ENGINE.match(self.name):
            raise ConfigError("name", f"{self.name!r} is not a MergeTree-family engine (MergeTree, "
                                      "ReplicatedMergeTree, SharedMergeTree, ...): the table needs partitions, "
                                      "ORDER BY, TTL and insert deduplication")
        if ";" in self.params:
            raise ConfigError("params", "must be the engine's arguments only, without ';'")

    @property
    def replicated(self) -> bool:
        return self.name.startswith(("Replicated", "Shared"))

    def render(self) -> str:
        return f"{self.name}({self.params})"


@dataclass(frozen=True)
class Connection:
    """Where and how to connect, resolved from the endpoint URL and the keys (see `Config.connection`)."""

    kind: str  # chdb | http | native
    path: str = ""  # chdb only
    hosts: tuple[tuple[str, int], ...] = ()
    secure: bool = False
    skip_verify: bool = False
    server_name: str = ""
    ca_file: str = ""
    cert_file: str = ""  # client certificate (mutual TLS), with key_file
    key_file: str = ""
    username: str = "default"
    password: str = ""
    database: str = DEFAULT_DATABASE
    compress: str = "none"
    connect_timeout: float = 5.0
    read_timeout: float = 5.0
    open_strategy: str = "in_order"  # native, several hosts: in_order | round_robin | random
    client_name: str = ""
    debug: bool = False
    http_path: str = ""
    http_proxy: str = ""
    settings: dict[str, str] = field(default_factory=dict)  # sent with every statement

    @property
    def address(self) -> str:
        """For messages: the endpoint without credentials."""
        if self.kind == "chdb":
            return f"chdb://{self.path}"
        scheme = {"http": "https" if self.secure else "http", "native": "tcp"}[self.kind]
        return f"{scheme}://{','.join(f'{host}:{port}' for host, port in self.hosts)}"

    def insert_settings(self, async_insert: bool) -> dict[str, str]:
        """The connection's settings plus the ones exactly-once inserts need."""
        settings = dict(self.settings)
        settings["insert_deduplicate"] = _OWN_SETTINGS["insert_deduplicate"]
        # An `async_insert` parameter wins over the key, as upstream's does.
        if settings.get("async_insert", "1" if async_insert else "0") == "1":
            settings.update(async_insert="1", wait_for_async_insert="1", async_insert_deduplicate="1")
        return settings


@dataclass
class Config:
    endpoint: str = "chdb://./procsight-data/clickhouse"  # chdb://PATH, tcp://, clickhouse://, http(s)://
    username: str = ""  # set: replaces the URL's user and password
    password: str = ""
    database: str = ""  # empty: the endpoint's /path, else `procsight`
    connection_params: dict[str, str] = field(default_factory=dict)
    logs_table_name: str = "security_events"
    ttl: Duration = Duration(0)  # 0 keeps rows forever
    create_schema: bool = True
    table_engine: TableEngine = field(default_factory=TableEngine)
    cluster_name: str = ""  # ON CLUSTER for CREATE DATABASE / TABLE / ALTER
    compress: str | bool = "lz4"  # true is lz4, false none; `compress` in the URL or connection_params wins
    async_insert: bool = False  # upstream defaults to true; procsight waits for the flush either way
    timeout: Duration = Duration("5s")
    tls: TLSClientConfig = field(default_factory=TLSClientConfig)
    # Upstream's other signals' tables: accepted with upstream's meaning; procsight's pipelines carry logs only,
    # so nothing is written to them.
    traces_table_name: str = "otel_traces"
    metrics_table_name: str = "otel_metrics"
    metrics_tables: dict[str, Any] = field(default_factory=dict)
    profiles_table_name: str = "otel_profiles"
    json: bool = False
    auth: dict[str, Any] | None = None
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def _check_tls(self) -> None:
        """The ClickHouse clients take a CA file, a client certificate and key, and skip-verify; the other
        `configtls` keys would be ignored, so they fail naming the key."""
        tls, default = self.tls, TLSClientConfig()
        for key in ("ca_pem", "cert_pem", "key_pem", "min_version", "max_version", "cipher_suites",
                    "curve_preferences", "include_system_ca_certs_pool", "reload_interval", "insecure"):
            if getattr(tls, key) != getattr(default, key):
                raise ConfigError(f"tls.{key}", "the ClickHouse clients cannot honour it: use ca_file, cert_file, "
                                                "key_file, insecure_skip_verify or server_name_override")

    def validate(self) -> None:
        if not _IDENTIFIER.match(self.logs_table_name):
            raise ConfigError("logs_table_name", f"{self.logs_table_name!r} is not a plain identifier "
                                                 "(letters, digits, _)")
        if self.cluster_name and not _IDENTIFIER.match(self.cluster_name):
            raise ConfigError("cluster_name", f"{self.cluster_name!r} is not a plain identifier (letters, digits, _)")
        check_positive(self, "timeout")
        if self.json:
            raise ConfigError("json", "procsight writes attributes as Map(String, String) columns (the query "
                                      "routes and Grafana's OTel mode read them); JSON columns are not supported")
        if self.auth is not None:
            raise ConfigError("auth", "authenticator extensions are not supported for ClickHouse: use username "
                                      "and password (and https:// or ?secure=true with tls for transport security)")
        self._check_tls()
        connection = self.connection()
        if connection.kind == "chdb" and self.cluster_name:
            raise ConfigError("cluster_name", "the embedded engine (chdb://) is one process, not a cluster")
        if connection.kind == "chdb" and self.table_engine.replicated:
            raise ConfigError("table_engine.name", "the embedded engine (chdb://) has no Keeper for replication")
        if connection.kind == "chdb" and (self.tls.ca_file or self.tls.cert_file):
            raise ConfigError("tls", "the embedded engine (chdb://) is in-process: there is no connection to secure")

    def connection(self) -> Connection:
        """The resolved connection; raises ConfigError naming the key that is wrong."""
        scheme, separator, rest = self.endpoint.partition("://")
        kind = _SCHEMES.get(scheme.lower()) if separator else None
        if kind is None:
            raise ConfigError("endpoint", f"unsupported endpoint {self.endpoint!r}: use tcp://host:9000 or "
                                          "clickhouse://host:9000 (native protocol), http(s)://host:8123 (HTTP), "
                                          "or chdb://PATH for the embedded engine")
        if kind == "chdb":
            return self._embedded(rest)
        if not rest:
            raise ConfigError("endpoint", f"no host in {self.endpoint!r}")
        location, _, query = rest.partition("?")  # first: a parameter's value may hold a '/'
        netloc, _, path = location.partition("/")
        userinfo, _, hostlist = netloc.rpartition("@")
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(self.connection_params)
        for name, reason in REFUSED_OPTIONS.items():
            if name in params:
                raise ConfigError(_param_key(name, self.connection_params), f"not supported: {reason}")
        options = {k: v for k, v in params.items() if k in DRIVER_OPTIONS}
        settings = {k: _setting_value(v) for k, v in params.items() if k not in DRIVER_OPTIONS}
        for name, required in _OWN_SETTINGS.items():
            if name in settings and settings[name] != required:
                raise ConfigError(_param_key(name, self.connection_params),
                                  f"must stay {required}: procsight acknowledges records only once ClickHouse has "
                                  "them, and a replay must be deduplicated")
        secure = scheme.lower() == "https" or _flag(options, "secure", self.connection_params)
        if scheme.lower() == "http" and secure:
            raise ConfigError("endpoint", "http:// with secure=true: use https:// for TLS")
        if (self.tls.ca_file or self.tls.cert_file or self.tls.insecure_skip_verify) and not secure:
            raise ConfigError("tls", "the endpoint is plain text: use https:// or add ?secure=true to a tcp:// "
                                     "endpoint to connect with TLS")
        hosts = _hosts(hostlist, _DEFAULT_PORTS[(kind, secure)])
        if kind == "http" and len(hosts) > 1:
            raise ConfigError("endpoint", "an http(s) endpoint takes one host; several hosts need the native "
                                          "protocol (tcp://a:9000,b:9000)")
        user, _, url_password = userinfo.partition(":")
        username, password = (self.username, self.password) if self.username else (unquote(user), unquote(url_password))
        compress = self._compression(kind, options)
        return Connection(
            kind=kind, hosts=hosts, secure=secure,
            skip_verify=self.tls.insecure_skip_verify or _flag(options, "skip_verify", self.connection_params),
            server_name=options.get("tls_server_name", self.tls.server_name_override), ca_file=self.tls.ca_file,
            cert_file=self.tls.cert_file,
            key_file=self.tls.key_file,
            username=options.get("username", username) or "default",
            password=options.get("password", password),
            database=self._database(unquote(path), options), compress=compress,
            connect_timeout=_duration(options, "dial_timeout", self.timeout, self.connection_params),
            read_timeout=_duration(options, "read_timeout", self.timeout, self.connection_params),
            open_strategy=self._open_strategy(options), client_name=options.get("client_info_product", ""),
            debug=_flag(options, "debug", self.connection_params),
            http_path=self._http_option(options, kind, "http_path"),
            http_proxy=self._http_option(options, kind, "http_proxy"), settings=settings,
        )

    def _embedded(self, path: str) -> Connection:
        if not path:
            raise ConfigError("endpoint", "chdb:// needs a directory, e.g. chdb://./procsight-data/clickhouse")
        if "?" in path or self.connection_params:
            raise ConfigError("connection_params" if self.connection_params else "endpoint",
                              "the embedded engine (chdb://) takes no connection parameters")
        database = self.database or DEFAULT_DATABASE
        _check_identifier("database", database)
        return Connection(kind="chdb", path=path, database=database, compress="none",
                          connect_timeout=self.timeout, read_timeout=self.timeout)

    def _database(self, path: str, options: dict[str, str]) -> str:
        # Upstream: the key wins unless it is `default` and the URL names one; a `database` parameter wins over both.
        if "database" in options:
            database = options["database"]
        elif self.database and (self.database != "default" or not path):
            database = self.database
        else:
            database = path or self.database or DEFAULT_DATABASE
        _check_identifier("database", database)
        return database

    def _compression(self, kind: str, options: dict[str, str]) -> str:
        chosen: str | bool = options.get("compress", self.compress)
        key = _param_key("compress", self.connection_params) if "compress" in options else "compress"
        text = str(chosen).lower()
        method = {"true": "lz4", "1": "lz4", "false": "none", "0": "none", "": "none"}.get(text, text)
        allowed = NATIVE_COMPRESSIONS if kind == "native" else HTTP_COMPRESSIONS
        if method not in allowed:
            other = "the HTTP interface (http://host:8123)" if kind == "native" else "the native protocol (tcp://)"
            raise ConfigError(key, f"{chosen!r} is not a compression of this transport: use one of "
                                   f"{', '.join(allowed)}, or {other}")
        if method == "br":
            try:
                import brotli  # noqa: F401
            except ImportError:
                raise ConfigError(key, "br needs the brotli package (pip install brotli); lz4 and zstd need nothing "
                                       "more") from None
        return method

    def _open_strategy(self, options: dict[str, str]) -> str:
        strategy = options.get("connection_open_strategy", "in_order")
        if strategy not in ("in_order", "round_robin", "random"):
            raise ConfigError(_param_key("connection_open_strategy", self.connection_params),
                              f"expected in_order, round_robin or random, got {strategy!r}")
        return strategy

    def _http_option(self, options: dict[str, str], kind: str, name: str) -> str:
        value = options.get(name, "")
        if value and kind != "http":
            raise ConfigError(_param_key(name, self.connection_params), "applies to http(s):// endpoints only")
        return value


def _hosts(hostlist: str, default_port: int) -> tuple[tuple[str, int], ...]:
    hosts = []
    for item in hostlist.split(","):
        host, port = item.strip(), default_port
        if host.startswith("["):  # [::1]:9000
            host, _, after = host[1:].partition("]")
            if after.startswith(":"):
                port = _port(after[1:])
        elif host.count(":") == 1:
            host, _, text = host.partition(":")
            port = _port(text)
        if not host:
            raise ConfigError("endpoint", f"no host in {item!r}")
        hosts.append((host, port))
    return tuple(hosts)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError("endpoint", f"{text!r} is not a port number")
    return int(text)


def _param_key(name: str, connection_params: dict[str, str]) -> str:
    """Where a parameter came from, for messages: connection_params wins over the URL."""
    return f"connection_params.{name}" if name in connection_params else f"endpoint (?{name}=)"


def _flag(options: dict[str, str], name: str, connection_params: dict[str, str]) -> bool:
    if name not in options:
        return False
    text = options[name].strip().lower()
    if text in ("", "1", "true", "t"):  # clickhouse-go: a bare `?secure` means true
        return True
    if text in ("0", "false", "f"):
        return False
    raise ConfigError(_param_key(name, connection_params), f"expected true or false, got {options[name]!r}")


def _duration(options: dict[str, str], name: str, default: float, connection_params: dict[str, str]) -> float:
    if name not in options:
        return float(default)
    try:
        seconds = float(Duration(options[name]))
    except ValueError as exc:
        raise ConfigError(_param_key(name, connection_params), str(exc)) from None
    if seconds <= 0:
        raise ConfigError(_param_key(name, connection_params), "must be greater than zero")
    return seconds


def _setting_value(text: str) -> str:
    """clickhouse-go sends true/false parameters as 1/0."""
    return {"true": "1", "false": "0"}.get(text.strip().lower(), text)


def _check_identifier(key: str, value: str) -> None:
    if not _IDENTIFIER.match(value):
        raise ConfigError(key, f"{value!r} is not a plain identifier (letters, digits, _)")
