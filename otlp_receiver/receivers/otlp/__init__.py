"""The `otlp` receiver: OTLP/gRPC and OTLP/HTTP logs into the ingest spool (see README.md)."""
