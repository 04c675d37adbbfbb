"""The `otlp_grpc` exporter (alias `otlp`): enriched records onward over OTLP/gRPC."""
