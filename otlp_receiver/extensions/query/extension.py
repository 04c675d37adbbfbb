"""The `query` extension: serves the search and anomaly routes (`routes.py`) over the table of one
clickhouse exporter, with the QueryService (`otlp_receiver/query/service.py`) opened on first use."""

from __future__ import annotations

import threading

from otlp_receiver.component import Routes
from otlp_receiver.extensions.query import routes
from otlp_receiver.extensions.query.config import Config
from otlp_receiver.query.service import QueryService


class QueryExtension:
    def __init__(self, config: Config, name: str = "query") -> None:
        if config.clickhouse is None:
            raise ValueError(f"{name}: config not resolved against the service (ServiceSettings does that)")
        self.config = config
        self.name = name
        self._service: QueryService | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        pass  # the table is opened on the first query: its exporter may still be creating it

    def shutdown(self) -> None:
        with self._lock:
            if self._service is not None:
                self._service.close()
                self._service = None

    def http_routes(self) -> Routes:
        return routes.build(self.query_service)

    def query_service(self) -> QueryService:
        with self._lock:
            if self._service is None:
                assert self.config.clickhouse is not None
                self._service = QueryService.from_exporter_config(self.config.clickhouse, self.config.model)
            return self._service
