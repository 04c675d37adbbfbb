"""procsight: rule-free detection of unusual processes, inside OpenTelemetry pipelines."""

__version__ = "0.1.0"
