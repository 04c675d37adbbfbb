"""Typed configuration of the scoring engine (the `anomaly` processor's options), with defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.confmap import ConfigError, Duration, check_positive
from scoring.featurizer import MODELS

SEVERITIES = ("none", "warn", "alert")


@dataclass
class Thresholds:
    """Scores at or above `warn` are warnings, at or above `alert` alerts.

    The defaults follow from how scores are built (scoring/engine.py): novelty alone reaches at most
    0.66 (a never-seen executable), so alert=0.75 means "new here AND evidence of about 0.3", never "new"
    alone, and weak evidence (a plain download, `id`) ranks a new command without making it an alert;
    warn=0.5 is where a first-seen but plausible command (a new build script) lands. Measured with
    bench/detect.py on the evaluation data; a sensitive workload can alert lower, a noisy one higher.
    """

    warn: float = 0.5
    alert: float = 0.75

    def validate(self) -> None:
        if not 0.0 <= self.warn <= self.alert <= 1.0:
            raise ConfigError("", f"thresholds need 0 <= warn <= alert <= 1, got warn={self.warn} alert={self.alert}")

    def severity(self, score: float) -> str:
        if score >= self.alert:
            return "alert"
        if score >= self.warn:
            return "warn"
        return "none"


@dataclass
class ThresholdOverride:
    """Per-workload override; an unset value falls back to the default thresholds."""

    warn: float | None = None
    alert: float | None = None


@dataclass
class ThresholdsConfig:
    default: Thresholds = field(default_factory=Thresholds)
    workloads: dict[str, ThresholdOverride] = field(default_factory=dict)

    def validate(self) -> None:
        for name in self.workloads:
            try:
                self.for_workload(name).validate()
            except ConfigError as exc:
                raise exc.within(f"workloads.{name}") from None

    def for_workload(self, workload: str) -> Thresholds:
        override = self.workloads.get(workload)
        if override is None:
            return self.default
        return Thresholds(
            warn=self.default.warn if override.warn is None else override.warn,
            alert=self.default.alert if override.alert is None else override.alert,
        )


@dataclass
class LearningConfig:
    """When a scored event becomes part of the baseline.

    Events below alert level are learned right after scoring (as the reference kNN does). An alert-level
    pattern is held back until it recurs in `recurrence_windows` distinct windows of
    `recurrence_window` each (so a burst of one attacker command counts once) or is acknowledged.
    A new workload is in warm-up for its first `warmup_events` events: scores are emitted, severity
    is capped at warn, and everything without heuristic evidence is learned.
    """

    recurrence_windows: int = 3
    recurrence_window: Duration = Duration("1h")
    warmup_events: int = 50

    def validate(self) -> None:
        if self.recurrence_windows < 1:
            raise ConfigError("recurrence_windows", "must be at least 1")
        if self.warmup_events < 0:
            raise ConfigError("warmup_events", "cannot be negative")
        check_positive(self, "recurrence_window")


@dataclass
class EngineConfig:
    """Options of the scoring engine; the `anomaly` processor's YAML keys are these."""

    baselines: str = "./procsight-data/baselines"  # a directory or an object-store URI LanceDB accepts
    model: str = "hash128-v2"
    k: int = 10
    retention: Duration = Duration("168h")  # patterns unseen this long are pruned
    thresholds: ThresholdsConfig = field(default_factory=ThresholdsConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    flush_interval: Duration = Duration("5s")  # how often learned patterns are written to LanceDB
    compact_interval: Duration = Duration("10m")  # how often tables are compacted and old versions removed
    version_retention: Duration = Duration("10m")  # table versions this young survive clean-up (concurrent readers)
    max_resident_workloads: int = 1000  # baselines held in memory; the least recently used are unloaded
    # A directory of your own Sigma rules (Linux process_creation): each match is evidence weighted by its
    # level and named by its title. Empty: none. Needs the `sigma` extra (pySigma).
    sigma_rules: str = ""
    # Baselines one tenant may have (0: no cap); events of a workload past it are scored in the
    # tenant's OVERFLOW_WORKLOAD baseline instead, and counted.
    max_workloads_per_tenant: int = 500

    def validate(self) -> None:
        if not self.baselines.strip():
            raise ConfigError("baselines", "is empty: name a directory (or object-store URI) for the baselines")
        local = Path(self.baselines)
        if "://" not in self.baselines and local.exists() and not local.is_dir():
            raise ConfigError("baselines", f"{self.baselines} is a file: name a directory for the baselines")
        if self.sigma_rules and not Path(self.sigma_rules).is_dir():
            raise ConfigError("sigma_rules", f"{self.sigma_rules} is not a directory of Sigma rules")
        if self.model not in MODELS:
            raise ConfigError("model", f"unknown model '{self.model}' (known: {', '.join(sorted(MODELS))})")
        if self.k < 1:
            raise ConfigError("k", "k must be at least 1")
        check_positive(self, "retention", "flush_interval", "compact_interval")
