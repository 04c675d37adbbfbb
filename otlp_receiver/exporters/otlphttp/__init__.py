"""The `otlp_http` exporter (alias `otlphttp`): enriched records onward over OTLP/HTTP."""
