"""The `debug` exporter (see README.md)."""
