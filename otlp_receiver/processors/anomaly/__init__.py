"""The `anomaly` processor: normalise, score and enrich process events (see README.md)."""
