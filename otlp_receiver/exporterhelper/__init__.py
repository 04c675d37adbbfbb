"""The Collector's exporterhelper for procsight: `sending_queue` and `retry_on_failure` around an exporter."""

from otlp_receiver.exporterhelper.config import HelperSettings, QueueConfig, RetryConfig
from otlp_receiver.exporterhelper.queued import Backoff, ExporterStoppedError, QueuedExporter

__all__ = ["Backoff", "ExporterStoppedError", "HelperSettings", "QueueConfig", "QueuedExporter", "RetryConfig"]
