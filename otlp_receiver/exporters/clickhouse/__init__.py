"""The `clickhouse` exporter: security_events rows through chdb (embedded) or a server over HTTP."""
