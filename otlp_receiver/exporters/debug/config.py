"""Settings of the `debug` exporter: the Collector's keys (`verbosity`, `sampling_initial`, `sampling_thereafter`)."""

from __future__ import annotations

from dataclasses import dataclass

from core.confmap import ConfigError

VERBOSITIES = ("basic", "normal", "detailed")


@dataclass
class Config:
    verbosity: str = "basic"
    sampling_initial: int = 2
    sampling_thereafter: int = 1

    def validate(self) -> None:
        if self.verbosity not in VERBOSITIES:
            raise ConfigError("verbosity", f"expected one of {', '.join(VERBOSITIES)}, got {self.verbosity!r}")
        if self.sampling_initial < 0 or self.sampling_thereafter < 1:
            raise ConfigError("sampling_thereafter", "sampling_initial >= 0 and sampling_thereafter >= 1")
