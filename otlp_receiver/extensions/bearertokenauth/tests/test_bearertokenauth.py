"""bearertokenauth: tokens and token files to tenants."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.confmap import ConfigError, decode, load_yaml
from otlp_receiver.component import Unauthenticated
from otlp_receiver.extensions.bearertokenauth.authenticator import BearerTokenAuth
from otlp_receiver.extensions.bearertokenauth.config import Config

TESTDATA = Path(__file__).parent / "testdata"


def test_single_upstream_token_is_the_default_tenant() -> None:
    auth = BearerTokenAuth(decode(Config, {"token": "s3cret"}))
    auth.start()
    assert auth.authenticate("Bearer s3cret") == "default"
    assert auth.authenticate("bearer s3cret") == "default"  # the scheme is case-insensitive


def test_tokens_and_files_map_to_tenants(tmp_path: Path) -> None:
    (tmp_path / "b.token").write_text("token-b\n")
    auth = BearerTokenAuth(decode(Config, {"tokens": [{"token": "token-a", "tenant": "team-a"},
                                                      {"filename": str(tmp_path / "b.token"), "tenant": "team-b"}]}))
    auth.start()
    assert auth.authenticate("Bearer token-a") == "team-a"
    assert auth.authenticate("Bearer token-b") == "team-b"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer wrong", "Bearer token-a2",
                                    "Bearer \x00\xff", "token-a"])
def test_bad_credentials_are_refused(header: str | None) -> None:
    auth = BearerTokenAuth(decode(Config, {"tokens": [{"token": "token-a", "tenant": "team-a"}]}))
    auth.start()
    with pytest.raises(Unauthenticated):
        auth.authenticate(header)


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no token configured"):
        decode(Config, {})
    with pytest.raises(ConfigError, match=r"tokens\[0\]"):
        decode(Config, {"tokens": [{"tenant": "x"}]})
    auth = BearerTokenAuth(decode(Config, {"filename": str(tmp_path / "missing")}))
    with pytest.raises(ConfigError, match="cannot read token file"):
        auth.start()


def test_yaml_testdata_decodes() -> None:
    raw = load_yaml(TESTDATA / "config.yaml", {"SHARED_TOKEN": "shared", "TEAM_A_TOKEN": "a"})["extensions"]
    config = decode(Config, raw["bearertokenauth"], "extensions.bearertokenauth")
    assert [(e.token, e.filename, e.tenant) for e in config.entries()] == [
        ("shared", "", "default"), ("a", "", "team-a"), ("", "/etc/procsight/team-b.token", "team-b")]
