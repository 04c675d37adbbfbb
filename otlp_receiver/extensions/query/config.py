"""Settings of the `query` extension (procsight's own; the Collector has no such component)."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.confmap import ConfigError
from otlp_receiver.config import ServiceSettings
from otlp_receiver.exporters.clickhouse.config import Config as ClickHouseConfig
from otlp_receiver.processors.anomaly.config import Config as AnomalyConfig
from scoring.config import EngineConfig
from scoring.featurizer import MODELS


@dataclass
class Config:
    exporter: str = "clickhouse"  # id of the clickhouse exporter whose table is queried
    # Embedding model of search queries. Empty (the default): the model of the anomaly processor that
    # writes that exporter's table. Search compares a query's vector with the stored ones, so the two
    # must be the same model; a different one fails start-up.
    model: str = ""
    clickhouse: ClickHouseConfig | None = field(default=None, init=False, compare=False)  # set by resolve()

    def validate(self) -> None:
        if self.model and self.model not in MODELS:
            raise ConfigError("model", f"unknown model '{self.model}' (known: {', '.join(sorted(MODELS))})")

    def resolve(self, settings: ServiceSettings) -> None:
        """Finds the exporter's table and the model its rows are embedded with."""
        exporter = settings.configs["exporters"].get(self.exporter)
        if not isinstance(exporter, ClickHouseConfig):
            clickhouse = sorted(i for i, c in settings.configs["exporters"].items() if isinstance(c, ClickHouseConfig))
            raise ConfigError("exporter", f"'{self.exporter}' is not a clickhouse exporter configured under "
                                          f"exporters: (clickhouse exporters: {', '.join(clickhouse) or 'none'})")
        self.clickhouse = exporter
        models = sorted({config.model for pipeline in settings.pipelines_exporting_to(self.exporter)
                         for config in (settings.configs["processors"][p] for p in pipeline.processors)
                         if isinstance(config, AnomalyConfig)})
        if not models:  # nothing scores into this table: its rows carry no vectors to compare with
            self.model = self.model or EngineConfig.model
        elif self.model and self.model not in models:
            raise ConfigError("model", f"'{self.model}' is not the model the anomaly processor writes into "
                                       f"{self.exporter}'s table ({', '.join(models)}): search vectors would not "
                                       "be comparable")
        elif not self.model and len(models) > 1:
            raise ConfigError("model", f"pipelines into {self.exporter} score with several models "
                                       f"({', '.join(models)}): name the one to search with")
        else:
            self.model = self.model or models[0]
