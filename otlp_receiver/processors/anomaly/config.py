"""Settings of the `anomaly` processor: the scoring engine's options plus how records find their workload."""

from __future__ import annotations

from dataclasses import dataclass, field

from core import semconv
from core.confmap import ConfigError, Duration, check_positive
from scoring.config import EngineConfig

MAX_PROCESSES = 64
DEFAULT_WORKLOAD_KEY = [semconv.WORKLOAD, "k8s.deployment.name", "service.namespace", semconv.HOST_NAME]


@dataclass
class Config(EngineConfig):
    """`baselines`, `model`, `k`, `retention`, `thresholds`, `learning`, ... are the engine's own
    (scoring/config.py); `workload_key` picks the baseline: the first resource attribute present."""

    workload_key: list[str] = field(default_factory=lambda: list(DEFAULT_WORKLOAD_KEY))
    default_workload: str = "default"  # when none of workload_key is present
    learn: bool = True  # false scores without learning (a frozen baseline)
    separate_process: bool = True  # score in a child process, on another core (false: in this process)
    processes: int = 1  # scoring children, each owning some workloads' baselines (shards.py); with separate_process
    # Time bounds of the child process: a batch, then (after a batch failed or timed out) each record
    # scored alone. The isolation of one batch gets `timeout` in all; records left then are unscored.
    timeout: Duration = Duration("30s")
    record_timeout: Duration = Duration("5s")

    def validate(self) -> None:
        super().validate()
        check_positive(self, "timeout", "record_timeout")
        if not 1 <= self.processes <= MAX_PROCESSES:
            raise ConfigError("processes", f"must be 1 to {MAX_PROCESSES} (scoring children; one per core at most)")
        if self.processes > 1 and not self.separate_process:
            raise ConfigError("processes", "scoring in several processes needs separate_process: true")
        if not self.workload_key:
            raise ConfigError("workload_key", "list at least one resource attribute")
        if not self.default_workload:
            raise ConfigError("default_workload", "must not be empty")
