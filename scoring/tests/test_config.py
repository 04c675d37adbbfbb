"""The scoring engine's options (the anomaly processor's YAML keys): defaults and clear errors."""

from __future__ import annotations

import pytest

from core.confmap import ConfigError, decode
from scoring.config import EngineConfig


@pytest.mark.parametrize(("data", "path", "fragment"), [
    ({"model": "bert"}, "model", "unknown model 'bert'"),
    ({"k": 0}, "k", "at least 1"),
    ({"thresholds": {"default": {"warn": 0.9, "alert": 0.5}}}, "thresholds.default", "warn <= alert"),
    ({"thresholds": {"workloads": {"prod": {"warn": 0.9}}}}, "thresholds.workloads.prod", "warn <= alert"),
    ({"learning": {"recurrence_windows": 0}}, "learning.recurrence_windows", "at least 1"),
    ({"retention": "0s"}, "retention", "greater than zero"),
])
def test_wrong_values_name_their_key(data, path, fragment):
    with pytest.raises(ConfigError) as info:
        decode(EngineConfig, data, "processors.anomaly")
    assert info.value.path == f"processors.anomaly.{path}" and fragment in info.value.message


def test_defaults_decode_from_nothing():
    config = decode(EngineConfig, {})
    assert config == EngineConfig()
    assert (config.retention, config.learning.recurrence_window, config.flush_interval) == (168 * 3600, 3600, 5)
