"""`procsight receiver` as a process: start-up, crash with acknowledged but undelivered records,
replay after restart, graceful SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

TESTDATA = Path(__file__).parent / "testdata"
_LISTENING = re.compile(r"OTLP/HTTP on (\S+)")


class Receiver:
    """A `procsight receiver` subprocess whose stderr is collected line by line."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "procsight", "receiver", "--config", str(config)],
            env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.http = self.wait_for(_LISTENING).group(1)

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_for(self, pattern: re.Pattern[str], count: int = 1, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matches = [m for line in list(self.lines) if (m := pattern.search(line))]
            if len(matches) >= count:
                return matches[-1]
            assert self.process.poll() is None or matches, "receiver exited:\n" + "".join(self.lines)
            time.sleep(0.05)
        raise AssertionError(f"{pattern.pattern} x{count} not seen:\n" + "".join(self.lines))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._reader.join(5)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.stop()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(http: str, *bodies: str) -> int:
    request = ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    for body in bodies:
        scope.log_records.add().body.string_value = body
    return requests.post(f"http://{http}/v1/logs", data=request.SerializeToString(), timeout=10,
                         headers={"Content-Type": "application/x-protobuf"}).status_code


def test_acknowledged_records_survive_sigkill_and_are_replayed(receivers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"DATA_DIR": str(tmp_path / "data"), "DEAD_PORT": str(closed_port())}
    crashed = Receiver(TESTDATA / "crash_exporter_down.yaml", env)
    receivers.append(crashed)
    assert post(crashed.http, "acked-1", "acked-2") == 200
    assert post(crashed.http, "acked-3") == 200
    crashed.wait_for(re.compile(r"retrying in"))  # the exporter cannot deliver: nothing is committed
    crashed.process.send_signal(signal.SIGKILL)
    crashed.process.wait(10)
    replay = Receiver(TESTDATA / "crash_replay.yaml", env)
    receivers.append(replay)
    replay.wait_for(re.compile(r"'acked-3'"))
    delivered = [line for line in replay.lines if "'acked-" in line]
    assert len(delivered) == 3, delivered
    assert any("uncommitted entries will be replayed" in line for line in replay.lines)


def test_sigterm_drains_and_exits_zero(receivers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver(TESTDATA / "crash_replay.yaml", {"DATA_DIR": str(tmp_path / "data")})
    receivers.append(receiver)
    for index in range(10):
        assert post(receiver.http, f"term-{index}") == 200
    receiver.process.send_signal(signal.SIGTERM)
    assert receiver.process.wait(30) == 0
    receiver._reader.join(5)
    assert sum("'term-" in line for line in receiver.lines) == 10


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "procsight", "receiver", "--config",
                             str(TESTDATA / "misspelt_key.yaml")], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2
    assert "receivers.otlp.protocols.grpc.endpiont" in result.stderr and "did you mean 'endpoint'" in result.stderr
