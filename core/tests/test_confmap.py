from __future__ import annotations

import pytest

from core.confmap import ConfigError, decode, expand_env, load_yaml, parse_duration
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
        decode(EngineConfig, data["anomaly"], f"{path}: processors.anomaly")
    message = str(info.value)
    assert str(path) in message and "processors.anomaly.thresholds.default.alret" in message
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


def test_durations():
    assert parse_duration("720h") == 720 * 3600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    assert parse_duration(5) == 5.0
