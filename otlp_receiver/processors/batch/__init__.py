"""The `batch` processor (see README.md)."""
