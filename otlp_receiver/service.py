"""The service: Collector-YAML config -> extensions, receivers, pipelines; start, drain, shutdown.

    service = Service.from_config_file("config/receiver.yaml")
    service.start()
    service.grpc_endpoint(), service.http_endpoint()   # bound addresses (port 0 in the config works)
    service.shutdown(timeout=10)

It builds each component with the factory its config names (`otlp_receiver/registry.py`) and wires
them by capability (`otlp_receiver/component.py`), never by type name: a processor that is a `Batcher`
groups its pipeline's batches, an `AdmissionController` may refuse requests, an extension that is an
`Authenticator` serves the receivers' `auth`, one that is a `RouteProvider` adds HTTP routes, one that is
a `BaselineClient` reaches the `BaselineKeeper` processors of the pipelines into an exporter.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from core.confmap import ConfigError
from otlp_receiver import registry
from otlp_receiver.component import (
    AdmissionController,
    Authenticator,
    Backpressure,
    BaselineClient,
    BaselineKeeper,
    Batcher,
    ClientMetadata,
    CreateSettings,
    Decoded,
    Exporter,
    Extension,
    HttpRoute,
    Processor,
    Receiver,
    RouteProvider,
    Routes,
)
from otlp_receiver.config import ServiceSettings
from otlp_receiver.exporterhelper import HelperSettings, QueueConfig, QueuedExporter, RetryConfig
from otlp_receiver.pipeline import Pipeline
from otlp_receiver.servicetelemetry import MetricsServer, record_resource
from otlp_receiver.spool import Spool
from otlp_receiver.telemetry import Telemetry

log = logging.getLogger(__name__)

MIB = 1024 * 1024
JSON = "application/json"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
C = TypeVar("C")


class Service:
    def __init__(self, settings: ServiceSettings, telemetry: Telemetry | None = None) -> None:
        self.settings = settings
        self.telemetry = telemetry or Telemetry()
        self.state = "created"
        self.extensions: dict[str, Extension] = {}
        self.receivers: dict[str, Receiver] = {}
        self.exporters: dict[str, QueuedExporter] = {}
        self.processors: dict[tuple[str, str], Processor] = {}  # (pipeline, processor id)
        self.pipelines: dict[str, Pipeline] = {}
        self.metrics_servers: list[MetricsServer] = []  # service.telemetry.metrics readers

    @classmethod
    def from_config_file(cls, path: str | Path, environ: Mapping[str, str] | None = None) -> Service:
        return cls(ServiceSettings.load(path, environ))

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Builds and starts everything; on failure, stops what was started and re-raises."""
        try:
            self._build()
            for server in self.metrics_servers:
                server.start()
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
        deadline = time.monotonic() + (self.settings.service.shutdown_timeout if timeout is None else timeout)
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
        for server in self.metrics_servers:
            _quietly(server.shutdown)
        self.state = "stopped"

    def _build(self) -> None:
        service = self.settings.service
        configs = self.settings.configs
        record_resource(service.telemetry, self.telemetry)
        for prometheus in service.telemetry.metrics.prometheus:
            try:
                self.metrics_servers.append(MetricsServer(prometheus, self.telemetry))
            except OSError as exc:
                raise OSError(f"cannot serve metrics on {prometheus.host}:{prometheus.port} "
                              f"(service.telemetry.metrics.readers): {exc.strerror}") from exc
        for ext_id in service.extensions:
            self.extensions[ext_id] = self._create("extensions", ext_id, Extension)
        used = {kind: {c for p in service.pipelines.values() for c in getattr(p, kind)}
                for kind in ("receivers", "processors", "exporters")}
        for receiver_id in sorted(used["receivers"]):
            self.receivers[receiver_id] = self._create("receivers", receiver_id, Receiver)
        for exporter_id in sorted(used["exporters"]):
            exporter = self._create("exporters", exporter_id, Exporter)
            config = configs["exporters"][exporter_id]
            if isinstance(config, HelperSettings):
                queue, retry = config.sending_queue, config.retry_on_failure
            else:  # an exporter without the helper's settings (debug) exports inline, without retries
                queue, retry = QueueConfig(enabled=False), RetryConfig(enabled=False)
            self.exporters[exporter_id] = QueuedExporter(exporter, queue, retry, self.telemetry, name=exporter_id)
        for name, pipeline in service.pipelines.items():
            processors = []
            for processor_id in pipeline.processors:
                # Like the Collector, each pipeline gets its own processor instances.
                processor = self._create("processors", processor_id, Processor)
                self.processors[(name, processor_id)] = processor
                processors.append(processor)
            batchers = [p for p in processors if isinstance(p, Batcher)]
            if len(batchers) > 1:
                raise ConfigError(f"service.pipelines.{name}.processors", "at most one processor may form "
                                  f"batches, found {len(batchers)}", self.settings.source)
            sizes = service.spool
            spool = Spool(Path(service.data_dir) / "spool" / _safe_name(name), max_bytes=sizes.max_size_mib * MIB,
                          segment_bytes=sizes.segment_size_mib * MIB, fsync=sizes.fsync, telemetry=self.telemetry,
                          name=name)
            self.pipelines[name] = Pipeline(
                name, spool, processors, [self.exporters[e] for e in pipeline.exporters], self.telemetry,
                batcher=batchers[0] if batchers else None,
                admission=[p for p in processors if isinstance(p, AdmissionController)])
        for extension in self.extensions.values():
            if isinstance(extension, BaselineClient):
                extension.bind_baselines(self._baseline_keepers)

    def _baseline_keepers(self, exporter_id: str) -> list[BaselineKeeper]:
        pipelines = self.settings.service.pipelines
        return [processor for (pipeline, _), processor in self.processors.items()
                if isinstance(processor, BaselineKeeper) and exporter_id in pipelines[pipeline].exporters]

    def _create(self, kind: str, component_id: str, shape: type[C]) -> C:
        module = registry.factory(kind, component_id)
        component_dir = Path(self.settings.service.data_dir) / kind / _safe_name(component_id)
        settings = CreateSettings(component_id=component_id, data_dir=component_dir, telemetry=self.telemetry,
                                  extensions=self.extensions)
        component = module.create(self.settings.configs[kind][component_id], settings)
        if not isinstance(component, shape):
            raise TypeError(f"{kind}.{component_id}: the factory built {type(component).__name__}, "
                            f"not a {shape.__name__}")
        return component

    # -- what receivers and tests see -------------------------------------------------------------

    def grpc_endpoint(self, receiver_id: str | None = None) -> str | None:
        return self._receiver(receiver_id).grpc_endpoint

    def http_endpoint(self, receiver_id: str | None = None) -> str | None:
        return self._receiver(receiver_id).http_endpoint

    def _receiver(self, receiver_id: str | None) -> Receiver:
        return self.receivers[receiver_id] if receiver_id else next(iter(self.receivers.values()))

    def consume(self, receiver_id: str, decoded: Decoded, tenant: str, metadata: ClientMetadata | None = None) -> None:
        if self.state != "running":
            raise Backpressure("the receiver is shutting down", retry_after=5.0, reason="shutting_down",
                               unavailable=True)
        targets = [p for name, p in self.pipelines.items()
                   if receiver_id in self.settings.service.pipelines[name].receivers]
        # every pipeline admits the request before any spools it
        partitions = [pipeline.admit(metadata) for pipeline in targets]
        for pipeline, partition in zip(targets, partitions, strict=True):
            pipeline.append(decoded, tenant, partition)

    def authenticator(self, extension_id: str) -> Authenticator:
        extension = self.extensions[extension_id]
        if not isinstance(extension, Authenticator):
            raise ConfigError(f"extensions.{extension_id}", "is not an authenticator", self.settings.source)
        return extension

    def http_routes(self) -> Routes:
        """The service's own routes (`/metrics`, `/healthz`) and those of every RouteProvider extension."""
        routes = {("GET", "/healthz"): HttpRoute(self._health_route, authenticated=False)}
        if self.settings.service.telemetry.metrics.level != "none":
            routes[("GET", "/metrics")] = HttpRoute(self._metrics_route)  # behind the receiver's auth, if it has one
        for extension_id, extension in self.extensions.items():
            if not isinstance(extension, RouteProvider):
                continue
            for key, route in extension.http_routes().items():
                if key in routes:
                    raise ConfigError(f"extensions.{extension_id}", f"route {' '.join(key)} is served twice",
                                      self.settings.source)
                routes[key] = route
        return routes

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.state == "running" else self.state,
            "pipelines": {name: {"spool_uncommitted_entries": p.spool.uncommitted_entries(),
                                 "spool_bytes": p.spool.size_bytes(),
                                 "exporter_queues": {e.name: e.queue_depth() for e in p.exporters}}
                          for name, p in self.pipelines.items()},
        }

    def _metrics_route(self, _tenant: str | None, _query: dict[str, list[str]], _body: bytes) -> tuple[int, str, bytes]:
        return 200, PROMETHEUS, self.telemetry.render().encode("utf-8")

    def _health_route(self, _tenant: str | None, _query: dict[str, list[str]], _body: bytes) -> tuple[int, str, bytes]:
        health = self.health()
        return (200 if health["status"] == "ok" else 503), JSON, json.dumps(health, separators=(",", ":")).encode()


class _ReceiverHost:
    """The `Host` a receiver sees: its pipelines, the authenticator extensions, the extra routes."""

    def __init__(self, service: Service, receiver_id: str) -> None:
        self.service = service
        self.receiver_id = receiver_id

    def consume(self, decoded: Decoded, tenant: str, metadata: ClientMetadata | None = None) -> None:
        self.service.consume(self.receiver_id, decoded, tenant, metadata)

    def authenticator(self, extension_id: str) -> Authenticator:
        return self.service.authenticator(extension_id)

    def http_routes(self) -> Routes:
        return self.service.http_routes()


def _safe_name(component_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", component_id)


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _quietly(stop: Callable[[], object]) -> None:
    try:
        stop()
    except Exception:
        log.exception("error while stopping %s", stop)


__all__ = ["Service"]
