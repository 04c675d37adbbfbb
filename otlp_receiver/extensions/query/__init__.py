"""The `query` extension: similarity search and ranked anomalies over a clickhouse exporter's table (see README.md)."""
