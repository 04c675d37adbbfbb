"""The `memory_limiter` processor (see README.md)."""
