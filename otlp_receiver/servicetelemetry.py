"""`service.telemetry`: the receiver's own logs and metrics, with the Collector's keys.

    service:
      telemetry:
        logs: {level: debug, encoding: json}
        metrics:
          level: normal
          readers:
            - pull: {exporter: {prometheus: {host: 0.0.0.0, port: 8888}}}

`logs` sets the level, encoding (console or json), outputs, initial fields, sampling and stack traces of the
process's log (applied by `procsight receiver`). Each `pull` reader serves `/metrics` (Prometheus text, the
same series as `/metrics` on the OTLP/HTTP port) on its own port, as the Collector serves its own metrics on
8888. procsight starts no such port unless a reader asks for it. `metrics.level: none` turns the metrics off,
on the OTLP/HTTP port too. What procsight cannot do (export its own telemetry over OTLP, metric views) fails
start-up naming the key, and so does the `metrics.address` the Collector removed.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from core.confmap import ConfigError, Duration
from otlp_receiver.telemetry import Telemetry

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR,
          "dpanic": logging.CRITICAL, "panic": logging.CRITICAL, "fatal": logging.CRITICAL}
METRICS_LEVELS = ("none", "basic", "normal", "detailed")
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class SamplingConfig:
    """As zap's sampler: per level and message, the first `initial` entries of each `tick`, then one in
    `thereafter`."""

    enabled: bool = True
    tick: Duration = Duration("10s")
    initial: int = 10
    thereafter: int = 100

    def validate(self) -> None:
        if self.initial < 0 or self.thereafter < 0:
            raise ConfigError("", "initial and thereafter must be 0 or more")


@dataclass
class LogsConfig:
    level: str = "info"
    development: bool = False  # stack traces from warn up (from error up otherwise)
    encoding: str = "console"  # or json
    disable_caller: bool = False
    disable_stacktrace: bool = False
    sampling: SamplingConfig | None = field(default_factory=SamplingConfig)
    output_paths: list[str] = field(default_factory=lambda: ["stderr"])  # stderr, stdout or files
    error_output_paths: list[str] = field(default_factory=lambda: ["stderr"])
    initial_fields: dict[str, Any] = field(default_factory=dict)
    processors: list[Any] = field(default_factory=list)
    disable_zap_resource: bool = False  # procsight adds no resource to its log entries either way

    def validate(self) -> None:
        if self.level.lower() not in LEVELS:
            raise ConfigError("level", f"expected one of {', '.join(LEVELS)}, got {self.level!r}")
        if self.encoding not in ("console", "json"):
            raise ConfigError("encoding", f"expected console or json, got {self.encoding!r}")
        if not self.output_paths:
            raise ConfigError("output_paths", "give at least one of stderr, stdout or a file path")
        if self.error_output_paths != ["stderr"]:
            raise ConfigError("error_output_paths", "procsight reports errors of its logging itself on stderr; "
                                                    "remove it")
        if self.processors:
            raise ConfigError("processors", "procsight does not send its own logs over OTLP; collect them from "
                                            "output_paths (stderr by default)")

    def apply(self) -> None:
        """Configures the process's logging (the root logger) as these settings say."""
        formatter = _Formatter(self)
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for path in self.output_paths:
            handler = (logging.StreamHandler(sys.stderr) if path == "stderr" else
                       logging.StreamHandler(sys.stdout) if path == "stdout" else logging.FileHandler(path))
            handler.setFormatter(formatter)
            if self.sampling is not None and self.sampling.enabled:
                handler.addFilter(_Sampler(self.sampling))
            root.addHandler(handler)
        root.setLevel(LEVELS[self.level.lower()])


class _Formatter(logging.Formatter):
    def __init__(self, config: LogsConfig) -> None:
        super().__init__()
        self.config = config
        self.stack_from = logging.WARNING if config.development else logging.ERROR

    def format(self, record: logging.LogRecord) -> str:
        config = self.config
        level = "warn" if record.levelno == logging.WARNING else record.levelname.lower()  # zap's names
        entry: dict[str, Any] = {"level": level, "ts": self.formatTime(record),
                                 "logger": record.name}
        if not config.disable_caller:
            entry["caller"] = f"{record.pathname}:{record.lineno}"
        entry["msg"] = record.getMessage()
        entry.update(config.initial_fields)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        elif record.levelno >= self.stack_from and not config.disable_stacktrace:
            entry["stacktrace"] = _caller_stack(record)
        if config.encoding == "json":
            return json.dumps(entry, default=str)
        extra = {k: v for k, v in entry.items() if k not in ("ts", "level", "logger", "caller", "msg")}
        fields = [entry["ts"], entry["level"].upper(), entry["logger"], entry.get("caller", ""), entry["msg"]]
        text = "\t".join(part for part in fields if part)
        return text + (f"\t{json.dumps(extra, default=str)}" if extra else "")


def _caller_stack(record: logging.LogRecord) -> str:
    """The stack of the code that logged `record` (formatting runs in the same thread, inside its call)."""
    frame = sys._getframe()
    while frame is not None and (frame.f_code.co_filename, frame.f_lineno) != (record.pathname, record.lineno):
        frame = frame.f_back
    return "".join(traceback.format_stack(frame)) if frame is not None else ""


class _Sampler(logging.Filter):
    def __init__(self, config: SamplingConfig) -> None:
        super().__init__()
        self.config = config
        self._lock = threading.Lock()
        self._tick = 0
        self._counts: dict[tuple[int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        tick = int(time.monotonic() / self.config.tick) if self.config.tick else 0
        with self._lock:
            if tick != self._tick:
                self._tick, self._counts = tick, {}
            key = (record.levelno, str(record.msg))
            count = self._counts[key] = self._counts.get(key, 0) + 1
        if count <= self.config.initial:
            return True
        return bool(self.config.thereafter) and (count - self.config.initial) % self.config.thereafter == 0


@dataclass
class PrometheusConfig:
    host: str = "localhost"
    port: int = 8888  # 0: any free port
    # The Collector's switches for names built from OpenTelemetry metrics; procsight's series are Prometheus
    # series from the start (procsight_*_total, no units, no scope), which is what `true` asks for.
    without_scope_info: bool | None = None
    without_units: bool | None = None
    without_type_suffix: bool | None = None

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("port", f"expected 0 to 65535, got {self.port}")
        for key in ("without_scope_info", "without_units", "without_type_suffix"):
            if getattr(self, key) is False:
                raise ConfigError(key, "procsight's metric names are fixed Prometheus names; only true (the "
                                       "default) describes them")


@dataclass
class PullExporterConfig:
    prometheus: PrometheusConfig | None = None

    def validate(self) -> None:
        if self.prometheus is None:
            raise ConfigError("", "procsight's pull reader serves Prometheus: give exporter.prometheus")


@dataclass
class PullReaderConfig:
    exporter: PullExporterConfig = field(default_factory=PullExporterConfig)


@dataclass
class ReaderConfig:
    pull: PullReaderConfig | None = None
    periodic: dict[str, Any] | None = None

    def validate(self) -> None:
        if self.periodic is not None:
            raise ConfigError("periodic", "procsight does not push its own metrics; serve them for Prometheus with "
                                          "pull: {exporter: {prometheus: {host: ..., port: ...}}}")
        if self.pull is None:
            raise ConfigError("", "give a pull reader: pull: {exporter: {prometheus: {host: ..., port: ...}}}")


@dataclass
class MetricsConfig:
    level: str = "normal"  # none turns procsight's metrics off; the others all give every series
    readers: list[ReaderConfig] = field(default_factory=list)
    views: list[Any] = field(default_factory=list)
    address: str = ""  # removed from the Collector: present only to say what replaced it

    def validate(self) -> None:
        if self.address:
            host, _, port = self.address.rpartition(":")
            prometheus = "{host: '" + (host or "0.0.0.0") + "', port: " + port + "}"
            raise ConfigError("address", "was removed from the Collector (v0.123); write instead "
                                         f"readers: [{{pull: {{exporter: {{prometheus: {prometheus}}}}}}}]")
        if self.level not in METRICS_LEVELS:
            raise ConfigError("level", f"expected one of {', '.join(METRICS_LEVELS)}, got {self.level!r}")
        if self.views:
            raise ConfigError("views", "procsight's metrics cannot be reshaped with views; remove it")

    @property
    def prometheus(self) -> list[PrometheusConfig]:
        if self.level == "none":
            return []
        return [r.pull.exporter.prometheus for r in self.readers if r.pull and r.pull.exporter.prometheus]


@dataclass
class TracesConfig:
    level: str = "none"
    propagators: list[str] = field(default_factory=list)
    processors: list[Any] = field(default_factory=list)

    def validate(self) -> None:
        if self.processors:
            raise ConfigError("processors", "procsight records no traces of its own; remove it")


@dataclass
class TelemetryConfig:
    logs: LogsConfig = field(default_factory=LogsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    traces: TracesConfig = field(default_factory=TracesConfig)
    resource: dict[str, Any] = field(default_factory=dict)  # labels of the target_info series


class MetricsServer:
    """`GET /metrics` on the address of a pull reader's `prometheus` exporter."""

    def __init__(self, config: PrometheusConfig, telemetry: Telemetry) -> None:
        render = telemetry.render

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = self.path.split("?")[0] == "/metrics"
                payload = render().encode() if found else b"not found\n"
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", PROMETHEUS if found else "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((config.host, config.port), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.endpoint = f"{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def record_resource(config: TelemetryConfig, telemetry: Telemetry) -> None:
    """`resource` as the labels of a `target_info` series, as OpenTelemetry's Prometheus exporters write it."""
    labels = {key.replace(".", "_").replace("-", "_"): value for key, value in config.resource.items()
              if value is not None}
    if labels:
        telemetry.gauge("target_info", "Target metadata (service.telemetry.resource)").set(1, **labels)
