"""confmap on a small config of the usual shape: nested sections, durations, lists, maps, validate()."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from core.confmap import ConfigError, Duration, Raw, YamlScalar, check, check_positive, decode, expand, load_yaml


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


@dataclass
class Server:
    endpoint: str = ""
    port: int = 0
    token: str = ""
    verbose: bool = False
    tags: list[str] = field(default_factory=list)
    limits: Limits | None = None


def test_env_expansion_forms():
    env = {"TOKEN": "s3cret", "PORT": "4317", "EMPTY": "", "NAME": "TOKEN"}
    assert expand("${env:TOKEN}/${TOKEN}/${env:MISSING:-dflt}/$$", env) == "s3cret/s3cret/dflt/$"
    assert expand("${env:EMPTY:-dflt}|${env:MISSING}|${MISSING:-}", env) == "||"  # set-but-empty stays empty
    assert expand("$${env:TOKEN} $$$${TOKEN} $$${TOKEN} $HOME", env) == "${env:TOKEN} $${TOKEN} $s3cret $HOME"
    assert expand("${env:${env:NAME}}", env) == "s3cret"  # the inner expansion first


@pytest.mark.parametrize(("text", "fragment"), [
    ("${env:bad-name}", "not an environment variable name"),
    ("${http://example.com/c.yaml}", "env and file providers only"),
    ("${s3:bucket/key}", "env and file providers only, not 's3:'"),
    ("${env:TOKEN", "without its closing"),
    ("${file:}", "no file named"),
    ("${file:/nonexistent/token}", "cannot read /nonexistent/token"),
])
def test_bad_expansions_say_what_is_wrong(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        expand(text, {"TOKEN": "x"})


def test_a_lone_variable_takes_its_yaml_type_unless_the_setting_is_text(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sample:\n  k: ${env:K}\n  name: ${env:DIR}/b\n"
                    "server:\n  port: ${env:PIN}\n  token: ${env:PIN}\n  verbose: ${env:ON}\n  tags: ${env:TAGS}\n")
    data = load_yaml(path, {"K": "7", "DIR": "/data", "PIN": "0123", "ON": "true", "TAGS": "[a, b]"})
    assert data["sample"]["name"] == "/data/b" and isinstance(data["sample"]["k"], YamlScalar)
    assert decode(Sample, data["sample"]).k == 7
    server = decode(Server, data["server"])
    assert server.token == "0123" and type(server.token) is str  # text keeps the text as written
    assert server.port == 0o123 and server.verbose is True and server.tags == ["a", "b"]


def test_raw_sections_keep_the_text_for_their_own_decoding(tmp_path):
    @dataclass
    class Document:
        sections: dict[str, Raw] = field(default_factory=dict)

    path = tmp_path / "c.yaml"
    path.write_text("sections:\n  server: {token: '${env:PIN}', port: '${env:PIN}', limits: '${env:UNSET}'}\n")
    document = decode(Document, load_yaml(path, {"PIN": "0123"}))
    server = decode(Server, document.sections["server"])
    assert (server.token, server.port, server.limits) == ("0123", 83, None)  # unset: the section is absent


def test_file_provider_reads_text_and_whole_sections(tmp_path):
    (tmp_path / "token").write_text("s3cret\n")
    (tmp_path / "limits.yaml").write_text("warn: 0.25\nalert: ${env:ALERT}\n")
    path = tmp_path / "c.yaml"
    path.write_text(f"server:\n  token: ${{file:{tmp_path}/token}}\n  endpoint: Bearer ${{file:{tmp_path}/token}}\n"
                    f"  limits: ${{file:{tmp_path}/limits.yaml}}\n")
    server = decode(Server, load_yaml(path, {"ALERT": "0.5"})["server"])
    assert server.token == "s3cret" and server.endpoint == "Bearer s3cret"
    assert server.limits == Limits(warn=0.25, alert=0.5)  # the file's own ${...} expand too


def test_expansion_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(f"server:\n  tags: [a, '${{file:{tmp_path}/missing}}']\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert info.value.path == "server.tags[1]" and info.value.source == str(path)
    (tmp_path / "section.yaml").write_text("a: 1\n")
    path.write_text(f"server:\n  endpoint: http://${{file:{tmp_path}/section.yaml}}\n")
    with pytest.raises(ConfigError, match=r"server\.endpoint: .*only be a whole value"):
        load_yaml(path)


def test_an_optional_section_can_be_switched_off():
    assert decode(Server, {"limits": {"enabled": False, "warn": 0.1}}).limits is None
    assert decode(Server, {"limits": {"enabled": True, "warn": 0.1}}).limits == Limits(warn=0.1)
    assert decode(Server, {"limits": {}}).limits == Limits()
    with pytest.raises(ConfigError, match=r"limits\.enabled: expected a boolean"):
        decode(Server, {"limits": {"enabled": "no"}})


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


@pytest.mark.parametrize(("text", "fragment"), [
    ("".join(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10) if prev else ', '.join(['x'] * 10)}]\n"
             for prev, name in zip(["", *"abcdefg"], "abcdefgh", strict=True)), "more than 100,000 values"),
    ("a: &a [*a]\n", "alias (*name) inside the section it names"),
])
def test_yaml_aliases_cannot_expand_a_config_without_end(tmp_path, text, fragment):
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(fragment)) as raised:
        load_yaml(path)
    assert str(path) in str(raised.value)
