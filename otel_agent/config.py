"""Typed configuration of the host agent (config/agent.yaml), decoded strictly by `core.confmap`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from core.confmap import ConfigError, Duration, check_positive, decode, load_yaml, url_problem
from core.otlpwire import MAX_RECORDS_PER_REQUEST

MODES = ("auto", "ebpf", "netlink", "proc")
PROTOCOLS = ("grpc", "http")
COMPRESSIONS = ("gzip", "none")


@dataclass
class ArgvLimits:
    """How much of argv the kernel side copies; anything cut is marked `process.command_args_truncated`."""

    max_args: int = 64
    max_bytes: int = 4096  # all arguments together, NUL-separated; rounded up to a power of two for the verifier
    max_arg_bytes: int = 1024  # one argument

    def validate(self) -> None:
        if not 1 <= self.max_args <= 256:
            raise ConfigError("max_args", f"must be 1..256, got {self.max_args}")
        if not 64 <= self.max_bytes <= 32768:
            raise ConfigError("max_bytes", f"must be 64..32768, got {self.max_bytes}")
        if not 16 <= self.max_arg_bytes <= self.max_bytes:
            raise ConfigError("max_arg_bytes", f"must be 16..max_bytes, got {self.max_arg_bytes}")

    @property
    def buffer_bytes(self) -> int:
        return 1 << (self.max_bytes - 1).bit_length()


@dataclass
class CaptureConfig:
    argv: ArgvLimits = field(default_factory=ArgvLimits)
    ring_buffer_pages: int = 1024  # 4 MiB: about 8,000 typical execs of slack while user space catches up
    # eBPF: how long an exec may wait in the ring buffer before user space drains it and reads /proc/PID.
    # Longer costs less CPU per exec, but more short-lived processes are gone before their working directory
    # and stdio are read. Execs whose stdin or stdout was just redirected (pipelines) never wait.
    drain_interval: Duration = Duration("20ms")
    proc_poll_interval: Duration = Duration("1s")  # /proc mode: how often the process table is compared
    socket_poll_interval: Duration = Duration("1s")  # netlink and /proc modes: how often sockets are compared
    cpu_interval: Duration = Duration("30s")  # how often CPU use of running processes is sampled
    cpu_threshold_percent: float = 80.0  # at or above this (of one core) over an interval, a process is reported

    def validate(self) -> None:
        pages = self.ring_buffer_pages
        if not 8 <= pages <= 65536 or pages & (pages - 1):
            raise ConfigError("ring_buffer_pages", f"must be a power of two from 8 to 65536 (256 MiB), "
                                                           f"got {pages}")
        check_positive(self, "drain_interval", "proc_poll_interval", "socket_poll_interval", "cpu_interval",
                       "cpu_threshold_percent")
        if self.drain_interval > 10:
            raise ConfigError("drain_interval", f"must be at most 10s, got {self.drain_interval:g}s")


@dataclass
class TLSConfig:
    insecure: bool = True  # plain text; set false for TLS
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    def validate(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError("", "cert_file and key_file go together (client certificate)")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ConfigError(name, f"no such file: {path}")


@dataclass
class ExporterConfig:
    """Where records go. `endpoint` is HOST:PORT for gRPC, a URL (or HOST:PORT) for HTTP."""

    endpoint: str = "127.0.0.1:4317"
    protocol: str = "grpc"
    tls: TLSConfig = field(default_factory=TLSConfig)
    compression: str = "gzip"
    timeout: Duration = Duration("10s")
    token: str = ""  # sent as `authorization: Bearer <token>`; empty means $PROCSIGHT_TOKEN
    headers: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError("protocol", f"must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.compression not in COMPRESSIONS:
            raise ConfigError("compression", f"must be gzip or none, got {self.compression!r}")
        if not self.endpoint:
            raise ConfigError("endpoint", "required")
        # A mistyped endpoint ran an agent that only failed, at every export, or raised in the exporter's thread.
        problem = self._endpoint_problem()
        if problem:
            raise ConfigError("endpoint", f"{problem} in {self.endpoint!r}: give HOST:PORT, or for http a URL such as "
                                          "http://HOST:4318")
        check_positive(self, "timeout")

    def logs_url(self) -> str:
        """For http: a URL as given, HOST:PORT as http(s)://HOST:PORT; without a path, /v1/logs."""
        url = self.endpoint
        if "://" not in url:
            url = f"{'http' if self.tls.insecure else 'https'}://{url}"
        if url.count("/") < 3:
            url += "/v1/logs"
        return url

    def grpc_target(self) -> str:
        """For grpc: HOST:PORT (a scheme given with it is dropped)."""
        return self.endpoint.split("://", 1)[-1]

    def _endpoint_problem(self) -> str:
        scheme = self.endpoint.split("://", 1)[0] if "://" in self.endpoint else "http"
        if scheme not in ("http", "https"):
            return f"the scheme {scheme!r} (http or https)"
        if self.protocol == "http":
            return url_problem(self.logs_url())
        target = f"grpc://{self.grpc_target()}"
        problem = url_problem(target)
        if problem:
            return problem
        parts = urlsplit(target)
        return "no port" if parts.port is None else "a path (gRPC takes HOST:PORT)" if parts.path else ""


@dataclass
class BatchConfig:
    """Batching between capture and export.

    `timeout` 1s rather than a minute: an exec is a security signal, and a minute of delay is a
    minute an attacker works unseen; at 1 s a busy host still sends few, large requests (up to
    `send_batch_size` records each). `queue_size` records wait in memory; beyond it they go to the spool,
    so a burst never blocks capture and never drops silently.
    """

    timeout: Duration = Duration("1s")
    send_batch_size: int = 1000
    queue_size: int = 100_000

    def validate(self) -> None:
        check_positive(self, "timeout")
        if not 1 <= self.send_batch_size <= MAX_RECORDS_PER_REQUEST:
            raise ConfigError("send_batch_size", f"must be 1 to {MAX_RECORDS_PER_REQUEST:,}: a procsight receiver "
                                                 "refuses larger requests")
        if self.queue_size < self.send_batch_size:
            raise ConfigError("queue_size", "must be at least send_batch_size")


@dataclass
class SpoolConfig:
    """Records wait here while the endpoint is down or the memory queue is full; oldest dropped beyond the bound."""

    directory: str = "/var/lib/procsight/spool"
    max_size_mib: float = 256.0
    retry_interval: Duration = Duration("5s")  # how often a down endpoint is tried again

    def validate(self) -> None:
        check_positive(self, "max_size_mib", "retry_interval")
        if not self.directory:
            raise ConfigError("directory", "required")


@dataclass
class AgentConfig:
    mode: str = "auto"
    workload: str = ""  # resource attribute procsight.workload; empty leaves it out
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    exporter: ExporterConfig = field(default_factory=ExporterConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    stats_interval: Duration = Duration("60s")  # how often counters are logged

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError("mode", f"must be one of {', '.join(MODES)}, got {self.mode!r}")
        check_positive(self, "stats_interval")


def load_config(path: str | Path | None) -> AgentConfig:
    """Reads the agent's YAML file; no file means the defaults."""
    if path is None:
        return decode(AgentConfig, {})
    return decode(AgentConfig, load_yaml(path), source=str(path))
