"""confmap on a small config of the usual shape: nested sections, durations, lists, maps, validate()."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from core.confmap import ConfigError, Duration, check, check_positive, decode, expand_env, load_yaml


@dataclass
class Limits:
    warn: float = 0.5
    alert: float = 0.75

    def validate(self) -> None:
        if not 0.0 <= self.warn <= self.alert <= 1.0:
            raise ConfigError("", f"need 0 <= warn <= alert <= 1, got warn={self.warn} alert={self.alert}")


@dataclass
class Window:
    windows: int = 3
    window: Duration = Duration("1h")

    def validate(self) -> None:
        if self.windows < 1:
            raise ConfigError("windows", "must be at least 1")
        check_positive(self, "window")


@dataclass
class Sample:
    name: str = "x"
    k: int = 10
    retention: Duration = Duration("168h")
    tags: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    per_workload: dict[str, Limits] = field(default_factory=dict)
    window: Window = field(default_factory=Window)


def test_env_expansion_forms():
    env = {"TOKEN": "s3cret", "PORT": "4317"}
    assert expand_env("${env:TOKEN}/${TOKEN}/${env:MISSING:-dflt}/$$", env) == "s3cret/s3cret/dflt/$"


def test_a_lone_variable_takes_its_yaml_type(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sample:\n  k: ${env:K}\n  name: ${env:DIR}/b\n")
    data = load_yaml(path, {"K": "7", "DIR": "/data"})
    assert data == {"sample": {"k": 7, "name": "/data/b"}}
    assert decode(Sample, data["sample"]).k == 7


def test_misspelt_key_names_file_path_and_suggestion(tmp_path):
    path = tmp_path / "receiver.yaml"
    path.write_text("sample:\n  limits: {warn: 0.5, alret: 0.9}\n")
    with pytest.raises(ConfigError) as info:
        decode(Sample, load_yaml(path)["sample"], "processors.sample", source=str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: processors.sample.limits.alret: unknown setting 'alret'")
    assert info.value.path == "processors.sample.limits.alret" and info.value.source == str(path)
    assert "did you mean 'alert'" in message


@pytest.mark.parametrize(("data", "fragment"), [
    ({"k": "ten"}, "k: expected an integer"),
    ({"k": True}, "k: expected an integer"),
    ({"limits": {"warn": 0.9, "alert": 0.5}}, "limits: need 0 <= warn <= alert"),
    ({"retention": "forever"}, "retention: expected a duration"),
    ({"window": []}, "window: expected a mapping"),
    ({"tags": "a,b"}, "tags: expected a list"),
    ({"per_workload": {"web": {"alert": "high"}}}, r"per_workload\.web\.alert: expected a number"),
])
def test_wrong_values_are_clear_errors(data, fragment):
    with pytest.raises(ConfigError, match=fragment):
        decode(Sample, data)


def test_durations_are_decoded_once_into_seconds():
    assert Duration("720h") == 720 * 3600
    assert Duration("1h30m") == 5400
    assert Duration("500ms") == 0.5
    assert Duration(5) == 5.0
    assert str(Duration("90s")) == "1m30s" and str(Duration("500ms")) == "500ms"
    config = decode(Sample, {"retention": "24h", "window": {"window": 30}})
    assert isinstance(config.retention, Duration) and config.retention == 86400
    assert config.window.window == 30.0


@pytest.mark.parametrize("value", ["5 s", "5x", "-5s", -1, True, "", [5]])
def test_a_bad_duration_names_its_key(value):
    with pytest.raises(ConfigError) as info:
        decode(Sample, {"window": {"window": value}}, "processors.sample")
    assert info.value.path == "processors.sample.window.window"
    assert "duration" in info.value.message


def test_validate_errors_are_anchored_at_their_section():
    with pytest.raises(ConfigError) as info:
        decode(Sample, {"per_workload": {"prod": {"warn": 0.9}}}, "processors.sample")
    assert info.value.path == "processors.sample.per_workload.prod"
    assert "warn <= alert" in info.value.message
    with pytest.raises(ConfigError) as info:
        decode(Sample, {"window": {"window": "0s"}}, "processors.sample")
    assert info.value.path == "processors.sample.window.window" and "greater than zero" in info.value.message


def test_check_validates_a_config_built_in_code_with_the_same_paths():
    config = Sample(per_workload={"web": Limits(warn=0.9)})
    with pytest.raises(ConfigError) as info:
        check(config)
    assert info.value.path == "per_workload.web"
    config = Sample()
    config.window.windows = 0
    with pytest.raises(ConfigError) as info:
        check(config, "processors.sample")
    assert info.value.path == "processors.sample.window.windows"
