"""bearertokenauth: the upstream shapes (token, tokens, filename, header, scheme), token files watched for
changes, procsight's tenants, and the client side."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import testing
from core.confmap import ConfigError, decode, load_yaml
from otlp_receiver.component import Unauthenticated
from otlp_receiver.extensions.bearertokenauth import factory
from otlp_receiver.extensions.bearertokenauth.authenticator import BearerTokenAuth
from otlp_receiver.extensions.bearertokenauth.config import Config

TESTDATA = Path(__file__).parent / "testdata"


def started(settings: dict) -> BearerTokenAuth:
    auth = BearerTokenAuth(decode(Config, factory.prepare(settings)))
    auth.start()
    return auth


def test_single_token_is_the_default_tenant_and_the_scheme_is_exact() -> None:
    auth = started({"token": "s3cret"})
    assert auth.authenticate({"authorization": "Bearer s3cret"}) == "default"
    assert auth.client_headers() == {"Authorization": "Bearer s3cret"}
    for value in ("bearer s3cret", "Bearer  s3cret", "Bearer s3cret ", "s3cret"):  # compared whole, as upstream
        with pytest.raises(Unauthenticated):
            auth.authenticate({"authorization": value})


def test_tokens_accepts_any_and_a_client_sends_the_first() -> None:
    auth = started({"tokens": ["tok-a", "tok-b"]})
    assert auth.authenticate({"authorization": "Bearer tok-b"}) == "default"
    assert auth.client_headers() == {"Authorization": "Bearer tok-a"}


def test_custom_header_and_empty_scheme() -> None:
    auth = started({"token": "abc", "header": "X-Auth", "scheme": ""})
    assert auth.authenticate({"x-auth": "abc"}) == "default"
    assert auth.client_headers() == {"X-Auth": "abc"}
    with pytest.raises(Unauthenticated, match="missing or empty authorization header: X-Auth"):
        auth.authenticate({"authorization": "Bearer abc"})


def test_tenants_map_tokens_and_token_files(tmp_path: Path) -> None:
    (tmp_path / "b.token").write_text("token-b\n")
    auth = started({"token": "shared", "tenants": [{"token": "token-a", "tenant": "team-a"},
                                                   {"filename": str(tmp_path / "b.token"), "tenant": "team-b"}]})
    assert auth.authenticate({"authorization": "Bearer shared"}) == "default"
    assert auth.authenticate({"authorization": "Bearer token-a"}) == "team-a"
    assert auth.authenticate({"authorization": "Bearer token-b"}) == "team-b"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer wrong",
                                    "Bearer token-a2", "Bearer \udcff", "token-a"])
def test_bad_credentials_are_refused(header: str | None) -> None:
    auth = started({"tenants": [{"token": "token-a", "tenant": "team-a"}]})
    with pytest.raises(Unauthenticated):
        auth.authenticate({} if header is None else {"authorization": header})


def test_a_token_file_is_watched_for_changes(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\nsecond\n\n")  # every line a token; empty lines are not tokens
    auth = started({"filename": str(token_file)})
    assert auth.authenticate({"authorization": "Bearer second"}) == "default"
    with pytest.raises(Unauthenticated):
        auth.authenticate({"authorization": "Bearer "})
    # A Kubernetes Secret changes by a new file swapped in: a new inode.
    replacement = tmp_path / "token.new"
    replacement.write_text("rotated\n")
    os.replace(replacement, token_file)
    testing.wait_until(lambda: auth.client_headers() == {"Authorization": "Bearer rotated"}, timeout=5,
                       what="the rotated token")
    with pytest.raises(Unauthenticated):
        auth.authenticate({"authorization": "Bearer first"})
    token_file.write_text("")  # half written: the previous tokens stay
    time.sleep(1.2)  # past the next look at the file
    with pytest.raises(Unauthenticated):
        auth.authenticate({"authorization": "Bearer first"})
    assert auth.authenticate({"authorization": "Bearer rotated"}) == "default"


def test_file_retry_waits_for_a_token_file_to_appear(tmp_path: Path) -> None:
    token_file = tmp_path / "late.token"
    retry = {"enabled": True, "max_retries": 3, "retry_interval": "50ms"}
    auth = BearerTokenAuth(decode(Config, {"filename": str(token_file), "file_retry": retry}))
    with pytest.raises(ConfigError, match="cannot read token file"):
        auth.start()  # three tries, then a clear error
    token_file.write_text("late\n")
    auth.start()
    assert auth.authenticate({"authorization": "Bearer late"}) == "default"


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no bearer token provided"):
        decode(Config, {})
    with pytest.raises(ConfigError, match="either tokens or token"):
        decode(Config, {"token": "a", "tokens": ["b"]})
    with pytest.raises(ConfigError, match=r"tenants\[0\]"):
        decode(Config, {"tenants": [{"tenant": "x"}]})
    with pytest.raises(ConfigError, match="max_retries and retry_interval"):
        decode(Config, {"filename": "x", "file_retry": {"enabled": True}})
    with pytest.raises(ConfigError, match=r"tokens: is a list of tokens.*tenants: \[\{token"):
        factory.prepare({"tokens": [{"token": "a", "tenant": "t"}]})
    auth = BearerTokenAuth(decode(Config, {"filename": str(tmp_path / "missing")}))
    with pytest.raises(ConfigError, match="cannot read token file"):
        auth.start()


def test_yaml_testdata_decodes() -> None:
    raw = load_yaml(TESTDATA / "config.yaml", {"SHARED_TOKEN": "shared", "TEAM_A_TOKEN": "a"})["extensions"]
    configs = {name: decode(Config, factory.prepare(section), f"extensions.{name}") for name, section in raw.items()}
    assert configs["bearertokenauth"].token == "shared"
    assert configs["bearertokenauth/multi"].tokens == ["tok-a", "tok-b"]
    assert (configs["bearertokenauth/file"].header, configs["bearertokenauth/file"].scheme) == ("X-Auth", "")
    assert [(t.token, t.filename, t.tenant) for t in configs["bearertokenauth/tenants"].tenants] == [
        ("a", "", "team-a"), ("", "/etc/procsight/team-b.token", "team-b")]
