"""The receiver's configuration document: Collector YAML decoded into every component's typed config.

`ServiceSettings.load(path)` reads the file, decodes each component's section with its factory's
`Config`, checks that the pipelines name configured components, and lets a config that refers to
other components (`ResolvesReferences`) check or complete itself against the whole document. Every
problem is a ConfigError naming the file and the key. `procsight receiver --check` stops here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from core.confmap import ConfigError, Duration, Raw, decode, load_yaml
from otlp_receiver import registry
from otlp_receiver.servicetelemetry import TelemetryConfig

KINDS = ("extensions", "receivers", "processors", "exporters")
PIPELINE_KINDS = ("receivers", "processors", "exporters")


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
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)  # the Collector's service.telemetry

    def validate(self) -> None:
        if not self.pipelines:
            raise ConfigError("pipelines", "define at least one pipeline")
        for name in self.pipelines:
            kind = registry.component_type(name)
            if kind != "logs":
                raise ConfigError(f"pipelines.{name}", f"procsight handles logs pipelines only, not '{kind}'")


@dataclass
class Document:
    service: ServiceConfig
    # Each component's section is decoded by its own factory's Config, so it is kept as read.
    receivers: dict[str, Raw] = field(default_factory=dict)
    processors: dict[str, Raw] = field(default_factory=dict)
    exporters: dict[str, Raw] = field(default_factory=dict)
    extensions: dict[str, Raw] = field(default_factory=dict)


@dataclass
class ServiceSettings:
    """The decoded, validated configuration: every component's typed config by kind and id."""

    source: str
    service: ServiceConfig
    configs: dict[str, dict[str, object]]  # kind -> id -> typed config (each factory's own Config class)

    @classmethod
    def load(cls, path: str | Path, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        return cls.from_mapping(load_yaml(path, environ), str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<config>") -> ServiceSettings:
        document = decode(Document, data, source=source)
        configs: dict[str, dict[str, object]] = {kind: {} for kind in KINDS}
        for kind in KINDS:
            for component_id, raw in getattr(document, kind).items():
                where = f"{kind}.{component_id}"
                try:
                    module = registry.factory(kind, str(component_id))
                    prepare = getattr(module, "prepare", None)
                    raw = prepare(raw) if prepare else raw
                except ConfigError as exc:
                    raise exc.within(where).in_file(source) from None
                configs[kind][str(component_id)] = decode(module.Config, raw, where, source=source)
        settings = cls(source, document.service, configs)
        try:
            settings._check_references()
            settings._resolve()
        except ConfigError as exc:
            raise exc.in_file(source) from None
        return settings

    def pipelines_exporting_to(self, exporter_id: str) -> list[PipelineConfig]:
        return [p for p in self.service.pipelines.values() if exporter_id in p.exporters]

    def _check_references(self) -> None:
        for index, ext in enumerate(self.service.extensions):
            if ext not in self.configs["extensions"]:
                raise ConfigError(f"service.extensions[{index}]", f"extension '{ext}' is not configured "
                                  "under extensions:")
        for name, pipeline in self.service.pipelines.items():
            for kind in PIPELINE_KINDS:
                for index, component_id in enumerate(getattr(pipeline, kind)):
                    if component_id not in self.configs[kind]:
                        known = ", ".join(sorted(self.configs[kind])) or "none"
                        raise ConfigError(f"service.pipelines.{name}.{kind}[{index}]",
                                          f"'{component_id}' is not configured under {kind}: (configured: {known})")
            if not pipeline.receivers or not pipeline.exporters:
                raise ConfigError(f"service.pipelines.{name}", "a pipeline needs at least one receiver and exporter")

    def _resolve(self) -> None:
        for kind in KINDS:
            for component_id, config in self.configs[kind].items():
                if isinstance(config, ResolvesReferences):
                    try:
                        config.resolve(self)
                    except ConfigError as exc:
                        raise exc.within(f"{kind}.{component_id}") from None


@runtime_checkable
class ResolvesReferences(Protocol):
    """A component config that names other components (an authenticator, an exporter's table) and
    checks or completes itself against the whole document once every section is decoded."""

    def resolve(self, settings: ServiceSettings) -> None:
        """Raises ConfigError with a key path relative to the component's own section."""
        ...
