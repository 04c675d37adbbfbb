"""The service: Collector-YAML config -> extensions, receivers, pipelines; start, drain, shutdown.

Data flow (one mechanism for durability):
  receiver --decode/validate/auth--> every pipeline's spool (fsynced) --> acknowledge the client
  pipeline worker: spool entries --group (batch settings, recorded in the spool)--> LogBatch per tenant
      --> processors in order --> QueuedExporter.submit for each exporter
  each exporter reports done(batch) --> when all reported, the group is committed in the spool.
A full spool or the memory limiter refuses requests with backpressure; nothing acknowledged is dropped.

    service = Service.from_config_file("config/receiver.yaml")
    service.start()
    service.grpc_endpoint(), service.http_endpoint()   # bound addresses (port 0 in the config works)
    service.shutdown(timeout=10)
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.confmap import ConfigError, Duration, decode, load_yaml
from otlp_receiver import components
from otlp_receiver.component import Backpressure, CreateSettings, LogBatch
from otlp_receiver.exporterhelper import ExporterStoppedError, QueueConfig, QueuedExporter, RetryConfig
from otlp_receiver.receivers.otlp.decode import Decoded
from otlp_receiver.receivers.otlp.receiver import HttpRoute
from otlp_receiver.spool import Spool, SpoolClosedError, SpoolEntry, SpoolFullError
from otlp_receiver.telemetry import Telemetry

log = logging.getLogger(__name__)

MIB = 1024 * 1024
_KINDS = ("extensions", "receivers", "processors", "exporters")


# -- configuration ------------------------------------------------------------------------------------


@dataclass
class PipelineConfig:
    receivers: list[str]
    exporters: list[str]
    processors: list[str] = field(default_factory=list)


@dataclass
class SpoolConfig:
    """The ingest write-ahead spool of each pipeline (procsight's own; the Collector has none)."""

    max_size_mib: int = 1024  # per pipeline; past it clients get RESOURCE_EXHAUSTED / 429
    segment_size_mib: int = 16
    fsync: bool = True  # false only for throwaway setups: an acknowledged record could then be lost

    def validate(self) -> None:
        if self.max_size_mib < 1 or self.segment_size_mib < 1:
            raise ConfigError("", "max_size_mib and segment_size_mib must be at least 1")


@dataclass
class ServiceConfig:
    pipelines: dict[str, PipelineConfig]
    extensions: list[str] = field(default_factory=list)
    data_dir: str = "./procsight-data"  # spools and component state live under here
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    shutdown_timeout: Duration = Duration("10s")

    def validate(self) -> None:
        if not self.pipelines:
            raise ConfigError("pipelines", "define at least one pipeline")
        for name in self.pipelines:
            kind = components.component_type(name)
            if kind != "logs":
                raise ConfigError(f"pipelines.{name}", f"procsight handles logs pipelines only, not '{kind}'")


@dataclass
class Document:
    service: ServiceConfig
    receivers: dict[str, Any] = field(default_factory=dict)
    processors: dict[str, Any] = field(default_factory=dict)
    exporters: dict[str, Any] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServiceSettings:
    """The decoded, validated configuration: every component's typed config by kind and id."""

    source: str
    service: ServiceConfig
    configs: dict[str, dict[str, Any]]  # kind -> id -> typed config

    @classmethod
    def load(cls, path: str | Path, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        return cls.from_mapping(load_yaml(path, environ), str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<config>") -> ServiceSettings:
        document = decode(Document, data, source=source)
        configs: dict[str, dict[str, Any]] = {kind: {} for kind in _KINDS}
        for kind in _KINDS:
            for component_id, raw in getattr(document, kind).items():
                where = f"{kind}.{component_id}"
                try:
                    module = components.factory(kind, str(component_id))
                except ConfigError as exc:
                    raise exc.within(where).in_file(source) from None
                prepare = getattr(module, "prepare", None)
                configs[kind][str(component_id)] = decode(module.Config, prepare(raw) if prepare else raw, where,
                                                          source=source)
        settings = cls(source, document.service, configs)
        try:
            settings._check_references()
        except ConfigError as exc:
            raise exc.in_file(source) from None
        return settings

    def _check_references(self) -> None:
        where = "service"
        for index, ext in enumerate(self.service.extensions):
            if ext not in self.configs["extensions"]:
                raise ConfigError(f"{where}.extensions[{index}]", f"extension '{ext}' is not configured "
                                  "under extensions:")
        for name, pipeline in self.service.pipelines.items():
            for kind in ("receivers", "processors", "exporters"):
                for index, component_id in enumerate(getattr(pipeline, kind)):
                    if component_id not in self.configs[kind]:
                        known = ", ".join(sorted(self.configs[kind])) or "none"
                        raise ConfigError(f"{where}.pipelines.{name}.{kind}[{index}]",
                                          f"'{component_id}' is not configured under {kind}: (configured: {known})")
            if not pipeline.receivers or not pipeline.exporters:
                raise ConfigError(f"{where}.pipelines.{name}", "a pipeline needs at least one receiver and exporter")
        for receiver_id, config in self.configs["receivers"].items():
            for protocol in ("grpc", "http"):
                settings = getattr(config.protocols, protocol)
                if settings is not None and settings.auth is not None:
                    ext = settings.auth.authenticator
                    if ext not in self.service.extensions:
                        raise ConfigError(f"receivers.{receiver_id}.protocols.{protocol}.auth."
                                          "authenticator", f"'{ext}' is not an extension enabled in "
                                                           "service.extensions")


# -- a pipeline ---------------------------------------------------------------------------------------


class _Group:
    """Spool entries first..last in flight: committed when every (batch, exporter) reported."""

    def __init__(self, first: int, last: int, pending: int) -> None:
        self.first, self.last, self.pending = first, last, pending
        self.lock = threading.Lock()


class Pipeline:
    def __init__(self, name: str, spool: Spool, processors: list[Any], exporters: list[QueuedExporter],
                 batching: Any, telemetry: Telemetry) -> None:
        self.name = name
        self.spool = spool
        self.processors = processors
        self.exporters = exporters
        self.batch_timeout = batching.timeout if batching else 0.0
        self.batch_size = batching.send_batch_size if batching else 1
        self.batch_max = batching.send_batch_max_size if batching else 0
        self.limiters = [p for p in processors if hasattr(p, "refusing")]
        self._stop = threading.Event()
        self._drain_deadline = float("inf")
        self._thread: threading.Thread | None = None
        self._stage = telemetry.histogram("procsight_stage_latency_seconds",
                                          "Time spent per stage (spool wait, each processor, submit to exporters)")
        self._batches = telemetry.counter("procsight_pipeline_batches_total", "Batches formed, by pipeline")
        self._processor_errors = telemetry.counter("procsight_processor_errors_total",
                                                   "Batches a processor failed on (passed on unprocessed)")
        self._committed = telemetry.counter("procsight_pipeline_committed_log_records_total",
                                            "Log records every exporter of the pipeline reported")
        self._end_to_end = telemetry.histogram("procsight_end_to_end_latency_seconds",
                                               "From receipt to every exporter done, by pipeline")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"pipeline-{self.name}", daemon=True)
        self._thread.start()

    def drain(self, timeout: float) -> None:
        """Processes what is in the spool (up to `timeout`), then stops the worker."""
        self._drain_deadline = time.monotonic() + timeout
        self._stop.set()
        if self._thread:
            self._thread.join(timeout + 1.0)

    def _run(self) -> None:
        while True:
            if self._stop.is_set() and time.monotonic() > self._drain_deadline:
                break
            entries = self._collect()
            if not entries:
                if self._stop.is_set():
                    break
                continue
            try:
                self._handle(entries)
            except (ExporterStoppedError, SpoolClosedError):
                break  # shutting down: the group stays uncommitted and is replayed next start
            except Exception:
                # A bug must not wedge the pipeline silently; the group stays uncommitted (replayed on restart).
                log.exception("pipeline %s: failed on spool entries %d..%d", self.name, entries[0].seq,
                              entries[-1].seq)

    def _collect(self) -> list[SpoolEntry]:
        """The next group of spool entries: a group recorded before a restart, or a new one of up to
        send_batch_size records gathered within the batch timeout."""
        first = self.spool.read(timeout=0.1)
        if first is None:
            return []
        recorded = self.spool.recorded_group(first.seq)
        entries = [first]
        if recorded is not None:
            while entries[-1].seq < recorded:
                entry = self.spool.read(timeout=1.0)
                if entry is None:
                    break  # closed under us
                entries.append(entry)
            return entries
        records = first.records
        deadline = time.monotonic() + self.batch_timeout
        while records < self.batch_size and (not self.batch_max or records < self.batch_max):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            entry = self.spool.read(timeout=remaining)
            if entry is None:
                break
            entries.append(entry)
            records += entry.records
        return entries

    def _handle(self, entries: list[SpoolEntry]) -> None:
        first, last = entries[0].seq, entries[-1].seq
        group_id = self.spool.form_group(first, last)
        started = time.monotonic()
        self._stage.observe(max(0.0, time.time() - entries[0].received_ns / 1e9), stage="spool_wait",
                            pipeline=self.name)
        batches = _batches_by_tenant(entries, group_id)
        group = _Group(first, last, len(batches) * len(self.exporters))
        received = entries[0].received_ns / 1e9
        records = sum(e.records for e in entries)
        self._batches.inc(len(batches), pipeline=self.name)

        def done(batch: LogBatch, delivered: bool) -> None:
            with group.lock:
                group.pending -= 1
                finished = group.pending == 0
            if finished:
                self.spool.commit(group.first, group.last)
                self._committed.inc(records, pipeline=self.name)
                self._end_to_end.observe(time.time() - received, pipeline=self.name)

        for batch in batches:
            batch = self._process(batch)
            submit_started = time.monotonic()
            for exporter in self.exporters:
                exporter.submit(batch, done)
            self._stage.observe(time.monotonic() - submit_started, stage="submit", pipeline=self.name)
        self._stage.observe(time.monotonic() - started, stage="pipeline", pipeline=self.name)

    def _process(self, batch: LogBatch) -> LogBatch:
        for processor in self.processors:
            started = time.monotonic()
            try:
                batch = processor.process(batch) or batch
            except Exception:
                self._processor_errors.inc(processor=processor.name)
                log.exception("processor %s failed on batch %s; passing it on unprocessed", processor.name,
                              batch.batch_id)
            self._stage.observe(time.monotonic() - started, stage=f"processor:{processor.name}", pipeline=self.name)
        return batch


def _batches_by_tenant(entries: list[SpoolEntry], group_id: str) -> list[LogBatch]:
    """One LogBatch per tenant, in order of first appearance; concatenated protobuf messages parse as
    one message whose repeated fields are joined, so merging costs one parse."""
    payloads: dict[str, list[bytes]] = {}
    for entry in entries:
        payloads.setdefault(entry.tenant, []).append(entry.payload)
    batches = []
    for index, (tenant, parts) in enumerate(payloads.items()):
        request = ExportLogsServiceRequest()
        request.ParseFromString(b"".join(parts))
        batch_id = group_id if len(payloads) == 1 else f"{group_id}.{index}"
        batches.append(LogBatch(logs=request, tenant=tenant, batch_id=batch_id))
    return batches


# -- the service --------------------------------------------------------------------------------------


class Service:
    def __init__(self, settings: ServiceSettings, telemetry: Telemetry | None = None) -> None:
        self.settings = settings
        self.telemetry = telemetry or Telemetry()
        self.state = "created"
        self.extensions: dict[str, Any] = {}
        self.receivers: dict[str, Any] = {}
        self.exporters: dict[str, QueuedExporter] = {}
        self.processors: dict[tuple[str, str], Any] = {}
        self.pipelines: dict[str, Pipeline] = {}
        self._query_service: Any = None
        self._query_lock = threading.Lock()

    @classmethod
    def from_config_file(cls, path: str | Path, environ: Mapping[str, str] | None = None) -> Service:
        return cls(ServiceSettings.load(path, environ))

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Builds and starts everything; on failure, stops what was started and re-raises."""
        try:
            self._build()
            for extension in self.extensions.values():
                extension.start()
            for exporter in self.exporters.values():
                exporter.start()
            for processor in self.processors.values():
                processor.start()
            for pipeline in self.pipelines.values():
                pipeline.start()
            self.state = "running"
            for receiver_id, receiver in self.receivers.items():
                receiver.start(_ReceiverHost(self, receiver_id))
        except BaseException:
            self.shutdown(timeout=1.0)
            raise

    def shutdown(self, timeout: float | None = None) -> None:
        """Graceful: stop accepting, answer requests in flight, process what is spooled, let the
        exporters deliver it, all within `timeout` (service.shutdown_timeout by default). What is not
        delivered by then stays in the spool and is replayed on the next start."""
        if self.state == "stopped":
            return
        if timeout is None:
            timeout = self.settings.service.shutdown_timeout
        deadline = time.monotonic() + timeout
        # Receivers refuse new requests first and answer those in flight (which still spool normally).
        for receiver in self.receivers.values():
            _quietly(lambda r=receiver: r.shutdown(_left(deadline)))
        self.state = "stopping"
        for pipeline in self.pipelines.values():
            _quietly(lambda p=pipeline: p.drain(_left(deadline)))
        for exporter in self.exporters.values():
            _quietly(lambda e=exporter: e.shutdown(_left(deadline)))
        for processor in self.processors.values():
            _quietly(processor.shutdown)
        for pipeline in self.pipelines.values():
            _quietly(pipeline.spool.close)
        for extension in self.extensions.values():
            _quietly(extension.shutdown)
        if self._query_service is not None and hasattr(self._query_service, "close"):
            _quietly(self._query_service.close)
        self.state = "stopped"

    def _build(self) -> None:
        service = self.settings.service
        data_dir = Path(service.data_dir)
        configs = self.settings.configs
        for ext_id in service.extensions:
            self.extensions[ext_id] = self._create("extensions", ext_id, data_dir)
        used = {kind: {c for p in service.pipelines.values() for c in getattr(p, kind)}
                for kind in ("receivers", "processors", "exporters")}
        for receiver_id in sorted(used["receivers"]):
            self.receivers[receiver_id] = self._create("receivers", receiver_id, data_dir)
        for exporter_id in sorted(used["exporters"]):
            exporter = self._create("exporters", exporter_id, data_dir)
            config = configs["exporters"][exporter_id]
            # Exporters without the helper's settings (debug) export inline, without retries.
            queue = getattr(config, "sending_queue", QueueConfig(enabled=False))
            retry = getattr(config, "retry_on_failure", RetryConfig(enabled=False))
            self.exporters[exporter_id] = QueuedExporter(exporter, queue, retry, self.telemetry, name=exporter_id)
        for name, pipeline in service.pipelines.items():
            processors = []
            for processor_id in pipeline.processors:
                # Like the Collector, each pipeline gets its own processor instances.
                processor = self._create("processors", processor_id, data_dir)
                self.processors[(name, processor_id)] = processor
                processors.append(processor)
            batching = next((configs["processors"][p] for p in pipeline.processors
                             if components.component_type(p) == "batch"), None)
            spool = Spool(data_dir / "spool" / _safe_name(name), max_bytes=service.spool.max_size_mib * MIB,
                          segment_bytes=service.spool.segment_size_mib * MIB, fsync=service.spool.fsync,
                          telemetry=self.telemetry, name=name)
            self.pipelines[name] = Pipeline(name, spool, processors, [self.exporters[e] for e in pipeline.exporters],
                                            batching, self.telemetry)

    def _create(self, kind: str, component_id: str, data_dir: Path) -> Any:
        module = components.factory(kind, component_id)
        component_dir = data_dir / kind / _safe_name(component_id)
        settings = CreateSettings(component_id=component_id, data_dir=component_dir, telemetry=self.telemetry)
        return module.create(self.settings.configs[kind][component_id], settings)

    # -- what receivers and tests see -------------------------------------------------------------

    def grpc_endpoint(self, receiver_id: str | None = None) -> str | None:
        return self._receiver(receiver_id).grpc_endpoint

    def http_endpoint(self, receiver_id: str | None = None) -> str | None:
        return self._receiver(receiver_id).http_endpoint

    def _receiver(self, receiver_id: str | None) -> Any:
        return self.receivers[receiver_id] if receiver_id else next(iter(self.receivers.values()))

    def consume(self, receiver_id: str, decoded: Decoded, tenant: str) -> None:
        if self.state != "running":
            raise Backpressure("the receiver is shutting down", retry_after=5.0, reason="shutting_down",
                               unavailable=True)
        targets = [p for name, p in self.pipelines.items()
                   if receiver_id in self.settings.service.pipelines[name].receivers]
        for pipeline in targets:
            if any(limiter.refusing for limiter in pipeline.limiters):
                raise Backpressure("memory limit reached, retry later", retry_after=5.0, reason="memory_limit",
                                   unavailable=True)
        for pipeline in targets:
            try:
                pipeline.spool.append(decoded.payload, tenant, decoded.accepted)
            except SpoolFullError as exc:
                raise Backpressure(str(exc), retry_after=exc.retry_after, reason="spool_full") from exc
            except SpoolClosedError as exc:
                raise Backpressure("the receiver is shutting down", retry_after=5.0, reason="shutting_down",
                                   unavailable=True) from exc

    def http_routes(self) -> dict[tuple[str, str], HttpRoute]:
        from otlp_receiver.receivers.otlp import routes

        return routes.build(self)

    def query_service(self) -> Any:
        """The QueryService over the first clickhouse exporter of the config, built on first use."""
        with self._query_lock:
            if self._query_service is None:
                config = next((c for i, c in self.settings.configs["exporters"].items()
                               if components.component_type(i) == "clickhouse"), None)
                if config is None:
                    return None
                from otlp_receiver.query.service import QueryService

                self._query_service = QueryService.from_exporter_config(config)
            return self._query_service

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.state == "running" else self.state,
            "pipelines": {name: {"spool_uncommitted_entries": p.spool.uncommitted_entries(),
                                 "spool_bytes": p.spool.size_bytes(),
                                 "exporter_queues": {e.name: e.queue_depth() for e in p.exporters}}
                          for name, p in self.pipelines.items()},
        }


class _ReceiverHost:
    """The `Host` a receiver sees: its pipelines, the authenticator extensions, the extra routes."""

    def __init__(self, service: Service, receiver_id: str) -> None:
        self.service = service
        self.receiver_id = receiver_id

    def consume(self, decoded: Decoded, tenant: str) -> None:
        self.service.consume(self.receiver_id, decoded, tenant)

    def authenticator(self, extension_id: str) -> Any:
        return self.service.extensions[extension_id]

    def http_routes(self) -> dict[tuple[str, str], HttpRoute]:
        return self.service.http_routes()


def _safe_name(component_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", component_id)


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _quietly(stop: Any) -> None:
    try:
        stop()
    except Exception:
        log.exception("error while stopping %s", stop)


__all__ = ["Pipeline", "Service", "ServiceSettings"]
