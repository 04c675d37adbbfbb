"""The `query` extension: serves the page and the query routes (`routes.py`) over the table of one
clickhouse exporter, with the QueryService (`otlp_receiver/query/service.py`) opened on first use, and
reaches the baselines of the anomaly processors that feed that exporter (a `BaselineClient`)."""

from __future__ import annotations

import threading

from core.confmap import ConfigError
from otlp_receiver.component import BaselineKeeper, BaselineKeepers, Routes
from otlp_receiver.extensions.query import routes
from otlp_receiver.extensions.query.config import Config
from otlp_receiver.query import neural
from otlp_receiver.query.service import QueryService


class QueryExtension:
    def __init__(self, config: Config, name: str = "query") -> None:
        if config.clickhouse is None:
            raise ValueError(f"{name}: config not resolved against the service (ServiceSettings does that)")
        self.config = config
        self.name = name
        self._service: QueryService | None = None
        self._embedder: neural.SentenceEmbedder | None = None
        self._keepers: BaselineKeepers = lambda _exporter: []
        self._lock = threading.Lock()

    def start(self) -> None:
        # The table is opened on the first query (its exporter may still be creating it); the sentence
        # embedder now, so a missing `procsight[neural]` fails start-up with what to install.
        if self.config.neural:
            try:
                self._embedder = neural.load(self.config.neural)
            except (ImportError, FileNotFoundError) as exc:
                raise ConfigError(f"extensions.{self.name}.neural", str(exc)) from exc

    def shutdown(self) -> None:
        with self._lock:
            if self._service is not None:
                self._service.close()
                self._service = None

    def bind_baselines(self, keepers: BaselineKeepers) -> None:
        self._keepers = keepers

    def baseline_keepers(self) -> list[BaselineKeeper]:
        return self._keepers(self.config.exporter)

    def http_routes(self) -> Routes:
        return routes.build(self.query_service, self.baseline_keepers, page=self.config.page)

    def query_service(self) -> QueryService:
        with self._lock:
            if self._service is None:
                assert self.config.clickhouse is not None
                self._service = QueryService.from_exporter_config(self.config.clickhouse, self._embedder)
            return self._service
