"""Fixtures: agents capturing in each mode (one eBPF compile per module), sending to a real OTLP endpoint."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.confmap import decode
from otel_agent.agent import Agent, create_agent
from otel_agent.config import AgentConfig
from testing.otlp_sink import OtlpSink


def agent_config(endpoint: str, spool_dir: Path, **overrides: object) -> AgentConfig:
    """Agent settings for tests: fast polling and batching so events arrive within a second."""
    data = {
        "exporter": {"endpoint": endpoint, "timeout": "2s"},
        "batch": {"timeout": "100ms"},
        "spool": {"directory": str(spool_dir), "retry_interval": "200ms"},
        "capture": {"proc_poll_interval": "100ms", "socket_poll_interval": "100ms"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return decode(AgentConfig, data, "test")


def bcc_missing() -> str:
    """Why the eBPF path cannot run here, or '' if it can."""
    if os.geteuid() != 0:
        return "eBPF capture needs root"
    try:
        import bcc  # noqa: F401
    except ImportError as exc:
        return f"bcc is not installed ({exc}); scripts/setup.sh installs python3-bpfcc"
    return ""


@pytest.fixture(scope="module")
def capture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, Agent, OtlpSink]]:
    """An agent in mode `request.param` (parametrize indirectly), sending to its own OTLP sink over gRPC.

    Module scope keeps one agent per mode alive at a time, and one eBPF compile per module.
    """
    mode = request.param
    if mode == "ebpf" and (reason := bcc_missing()):
        pytest.skip(reason)
    if mode == "netlink" and os.geteuid() != 0:
        pytest.skip("the netlink process connector needs root (CAP_NET_ADMIN)")
    with OtlpSink() as endpoint:
        agent = create_agent(agent_config(endpoint.grpc_endpoint, tmp_path_factory.mktemp(mode) / "spool", mode=mode))
        agent.start()
        try:
            yield mode, agent, endpoint
        finally:
            agent.stop()
