"""`procsight run` (what `make run` starts) as a person sees it: the page's address first, then status
lines that show a new workload's warm-up progress; Ctrl-C stops it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import event_attributes, web_resource

pytestmark = pytest.mark.slow


def post_events(http: str, count: int) -> None:
    resource = [{"key": k, "value": {"stringValue": v}} for k, v in web_resource().items()]
    records = []
    for pid in range(count):
        attributes = event_attributes(1000 + pid, 1, "date", "date +%s", "cron", 0)
        records.append({"timeUnixNano": str(time.time_ns()), "body": {"stringValue": "date +%s"}, "attributes": [
            {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else
             {"arrayValue": {"values": [{"stringValue": x} for x in v]}} if isinstance(v, list) else {"stringValue": v}}
            for k, v in attributes.items()]})
    body = {"resourceLogs": [{"resource": {"attributes": resource}, "scopeLogs": [{"logRecords": records}]}]}
    request = urllib.request.Request(f"http://{http}/v1/logs", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def test_run_prints_the_page_address_and_the_warm_up_progress(tmp_path: Path) -> None:
    config = yaml.safe_load((Path(__file__).parents[1] / "config" / "receiver.yaml").read_text())
    config["receivers"]["otlp"]["protocols"] = {"grpc": {"endpoint": "127.0.0.1:0"},
                                                 "http": {"endpoint": "127.0.0.1:0"}}
    path = tmp_path / "receiver.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen([sys.executable, "-u", "-m", "procsight", "run", "--config", str(path), "--no-agent",
                                "--status-interval", "1"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any(line.startswith("page: ") for line in lines) and time.monotonic() < deadline:
            time.sleep(0.2)
        page = next(line for line in lines if line.startswith("page: "))
        url = page.split()[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/ui/")
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert b"<title>procsight</title>" in answer.read()
        post_events(url.removeprefix("http://").removesuffix("/ui/"), 7)
        while not any("warm-up: web 7/50" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any("warm-up: web 7/50" in line for line in lines), lines
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
