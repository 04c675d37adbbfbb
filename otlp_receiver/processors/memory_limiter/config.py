"""Settings of the `memory_limiter` processor: the Collector's keys (`check_interval`, `limit_mib`,
`spike_limit_mib`, `limit_percentage`, `spike_limit_percentage`)."""

from __future__ import annotations

from dataclasses import dataclass

from core.confmap import ConfigError, Duration, check_positive

MIB = 1024 * 1024


@dataclass
class Config:
    check_interval: Duration = Duration("1s")
    limit_mib: int = 0
    spike_limit_mib: int = 0  # 0: 20% of the limit, as in the Collector
    limit_percentage: int = 0  # of total system memory, instead of limit_mib
    spike_limit_percentage: int = 0

    def validate(self) -> None:
        check_positive(self, "check_interval")
        if bool(self.limit_mib) == bool(self.limit_percentage):
            raise ConfigError("", "set exactly one of limit_mib and limit_percentage")
        if not 0 <= self.limit_percentage <= 100 or not 0 <= self.spike_limit_percentage <= 100:
            raise ConfigError("limit_percentage", "percentages are 0..100")
        if self.limit_mib and self.spike_limit_mib >= self.limit_mib:
            raise ConfigError("spike_limit_mib", "must be below limit_mib")

    def soft_limit_bytes(self, total_memory: int) -> int:
        if self.limit_mib:
            limit = self.limit_mib * MIB
            spike = self.spike_limit_mib * MIB if self.spike_limit_mib else limit // 5
        else:
            limit = total_memory * self.limit_percentage // 100
            spike = total_memory * self.spike_limit_percentage // 100 if self.spike_limit_percentage else limit // 5
        return max(limit - spike, 0)
