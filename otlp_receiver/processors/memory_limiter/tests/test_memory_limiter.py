"""The memory limiter measures this process's real resident memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.confmap import ConfigError, decode, load_yaml
from otlp_receiver.component import Backpressure
from otlp_receiver.processors.memory_limiter.config import MIB, Config
from otlp_receiver.processors.memory_limiter.limiter import MemoryLimiter
from otlp_receiver.telemetry import Telemetry

TESTDATA = Path(__file__).parent / "testdata"


def test_refuses_above_the_soft_limit_and_reports_it() -> None:
    telemetry = Telemetry()
    limiter = MemoryLimiter(decode(Config, {"limit_mib": 2, "check_interval": "50ms"}), telemetry=telemetry)
    limiter.start()
    try:
        assert limiter.refusing  # a Python process is far above 2 MiB
        assert telemetry.gauge("procsight_memory_limiter_refusing", "").value(processor="memory_limiter") == 1
        with pytest.raises(Backpressure) as refused:
            limiter.admit()
        assert refused.value.reason == "memory_limit" and refused.value.unavailable
    finally:
        limiter.shutdown()


def test_accepts_below_the_soft_limit() -> None:
    limiter = MemoryLimiter(decode(Config, {"limit_percentage": 100, "spike_limit_percentage": 1}))
    limiter.check()
    assert not limiter.refusing
    limiter.admit()  # returns: admitted


def test_spike_defaults_to_a_fifth_of_the_limit() -> None:
    assert decode(Config, {"limit_mib": 1000}).soft_limit_bytes(0) == 800 * MIB


@pytest.mark.parametrize("settings", [{}, {"limit_mib": 10, "limit_percentage": 50}, {"limit_mib": 10,
                                                                                       "spike_limit_mib": 10},
                                      {"limit_mib": 10, "check_interval": "0s"}])
def test_invalid_settings(settings: dict) -> None:
    with pytest.raises(ConfigError):
        decode(Config, settings)


def test_yaml_testdata_decodes() -> None:
    processors = load_yaml(TESTDATA / "config.yaml")["processors"]
    fixed = decode(Config, processors["memory_limiter"], "processors.memory_limiter")
    assert (fixed.check_interval, fixed.soft_limit_bytes(0)) == (2.0, 1536 * MIB - 1536 * MIB // 5)
    share = decode(Config, processors["memory_limiter/share"], "processors.memory_limiter/share")
    assert share.soft_limit_bytes(1000 * MIB) == 400 * MIB
