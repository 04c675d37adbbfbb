from __future__ import annotations

import pytest

from core.confmap import ConfigError, Duration, check, decode, expand_env, load_yaml
from scoring.config import EngineConfig


def test_env_expansion_forms():
    env = {"TOKEN": "s3cret", "PORT": "4317"}
    assert expand_env("${env:TOKEN}/${TOKEN}/${env:MISSING:-dflt}/$$", env) == "s3cret/s3cret/dflt/$"


def test_a_lone_variable_takes_its_yaml_type(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("anomaly:\n  k: ${env:K}\n  baselines: ${env:DIR}/b\n")
    data = load_yaml(path, {"K": "7", "DIR": "/data"})
    assert data == {"anomaly": {"k": 7, "baselines": "/data/b"}}


def test_misspelt_key_names_file_path_and_suggestion(tmp_path):
    path = tmp_path / "receiver.yaml"
    path.write_text("anomaly:\n  thresholds:\n    default: {warn: 0.5, alret: 0.9}\n")
    data = load_yaml(path)
    with pytest.raises(ConfigError) as info:
        decode(EngineConfig, data["anomaly"], "processors.anomaly", source=str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: processors.anomaly.thresholds.default.alret: unknown setting")
    assert info.value.path == "processors.anomaly.thresholds.default.alret" and info.value.source == str(path)
    assert "did you mean 'alert'" in message


@pytest.mark.parametrize(("data", "fragment"), [
    ({"k": "ten"}, "k: expected an integer"),
    ({"k": True}, "k: expected an integer"),
    ({"thresholds": {"default": {"warn": 0.9, "alert": 0.5}}}, "warn <= alert"),
    ({"retention": "forever"}, "expected a duration"),
    ({"model": "bert"}, "unknown model 'bert'"),
    ({"learning": []}, "learning: expected a mapping"),
])
def test_wrong_values_are_clear_errors(data, fragment):
    with pytest.raises(ConfigError, match=fragment):
        decode(EngineConfig, data, "")


def test_durations_are_decoded_once_into_seconds():
    assert Duration("720h") == 720 * 3600
    assert Duration("1h30m") == 5400
    assert Duration("500ms") == 0.5
    assert Duration(5) == 5.0
    assert str(Duration("90s")) == "1m30s" and str(Duration("500ms")) == "500ms"
    config = decode(EngineConfig, {"retention": "24h", "learning": {"recurrence_window": 30}})
    assert isinstance(config.retention, Duration) and config.retention == 86400
    assert config.learning.recurrence_window == 30.0


@pytest.mark.parametrize("value", ["5 s", "5x", "-5s", -1, True, "", [5]])
def test_a_bad_duration_names_its_key(value):
    with pytest.raises(ConfigError) as info:
        decode(EngineConfig, {"learning": {"recurrence_window": value}}, "processors.anomaly")
    assert info.value.path == "processors.anomaly.learning.recurrence_window"
    assert "duration" in info.value.message


def test_validate_errors_are_anchored_at_their_section():
    with pytest.raises(ConfigError) as info:
        decode(EngineConfig, {"thresholds": {"workloads": {"prod": {"warn": 0.9}}}}, "processors.anomaly")
    assert info.value.path == "processors.anomaly.thresholds.workloads.prod"
    assert "warn <= alert" in info.value.message


def test_check_validates_a_config_built_in_code_with_the_same_paths():
    config = EngineConfig()
    config.learning.recurrence_windows = 0
    with pytest.raises(ConfigError) as info:
        check(config)
    assert info.value.path == "learning.recurrence_windows"
