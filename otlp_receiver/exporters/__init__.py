"""Exporters: where enriched records go (ClickHouse, OTLP onward, debug)."""
