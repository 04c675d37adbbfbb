"""Settings of the `memory_limiter` processor: the Collector's keys (`check_interval`, `limit_mib`,
`spike_limit_mib`, `limit_percentage`, `spike_limit_percentage`) with its defaults and checks."""

from __future__ import annotations

from dataclasses import dataclass

from core.confmap import ConfigError, Duration, check_positive

MIB = 1024 * 1024


@dataclass
class Config:
    check_interval: Duration = Duration("1s")
    limit_mib: int = 0
    spike_limit_mib: int = 0  # 0: 20% of the limit, as in the Collector
    limit_percentage: int = 0  # of total memory (the cgroup's limit, else the host's); ignored with limit_mib
    spike_limit_percentage: int = 0  # 0: 20% of the computed limit

    def validate(self) -> None:
        check_positive(self, "check_interval")
        for name in ("limit_mib", "spike_limit_mib", "limit_percentage", "spike_limit_percentage"):
            if getattr(self, name) < 0:
                raise ConfigError(name, "must not be negative")
        if not self.limit_mib and not self.limit_percentage:
            raise ConfigError("", "set limit_mib or limit_percentage")
        if self.limit_mib:
            if self.spike_limit_mib >= self.limit_mib:
                raise ConfigError("spike_limit_mib", "must be below limit_mib")
            return
        if self.limit_percentage > 100 or self.spike_limit_percentage > 100:
            raise ConfigError("limit_percentage", "percentages are 0..100")
        if self.spike_limit_percentage >= self.limit_percentage:
            raise ConfigError("spike_limit_percentage", "must be below limit_percentage")

    def limits_bytes(self, total_memory: int) -> tuple[int, int]:
        """(hard limit, soft limit = hard limit - spike) in bytes; `total_memory` backs the percentages."""
        if self.limit_mib:
            limit = self.limit_mib * MIB
            spike = self.spike_limit_mib * MIB if self.spike_limit_mib else limit // 5
        else:
            limit = total_memory * self.limit_percentage // 100
            spike = total_memory * self.spike_limit_percentage // 100 if self.spike_limit_percentage else limit // 5
        return limit, max(limit - spike, 0)
