"""`procsight run`: the whole thing on one host, on embedded defaults.

Starts the receiver pipeline of `config/receiver.yaml` (LanceDB baselines and ClickHouse through
chdb under ./procsight-data) and a local agent sending to it, then shows live status until Ctrl-C.
The agent runs in the same process, so its export connections are the receiver's own and are not
reported back.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when the command runs, so `procsight --help` stays quick
    from otel_agent.agent import Agent
    from otlp_receiver.service import Service

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="run the receiver and a local agent on embedded defaults (what `make run` does)",
        description="Receiver (config/receiver.yaml) plus a local agent sending to it; Ctrl-C stops both.")
    parser.add_argument("--config", type=Path, default=Path("config/receiver.yaml"), help="receiver YAML")
    parser.add_argument("--agent-config", type=Path, help="agent YAML (default: agent defaults)")
    parser.add_argument("--mode", choices=["auto", "ebpf", "netlink", "proc"], default="auto",
                        help="agent capture mode (default auto)")
    parser.add_argument("--no-agent", action="store_true", help="run only the receiver")
    parser.add_argument("--status-interval", type=float, default=10.0, help="seconds between status lines")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from core.confmap import ConfigError
    from otlp_receiver.service import Service

    if not args.config.exists():
        print(f"procsight run: {args.config} not found; run from the repository root or pass --config FILE",
              file=sys.stderr)
        return 2
    try:
        service = Service.from_config_file(args.config)
        service.start()
    except (ConfigError, OSError) as exc:
        print(f"procsight run: cannot start the receiver: {exc}", file=sys.stderr)
        return 2
    http = service.http_endpoint()
    print(f"receiver: OTLP/gRPC {service.grpc_endpoint()}, OTLP/HTTP and queries http://{http}")
    if ("GET", "/ui/") in service.http_routes():
        print(f"page: http://{http}/ui/   (triage, search, baselines; open it in a browser)")
    agent = None if args.no_agent else _start_agent(args, service.grpc_endpoint())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("running; Ctrl-C to stop. In another terminal: .venv/bin/procsight top, "
          ".venv/bin/procsight search \"reverse shell\"")
    try:
        while not stop.wait(args.status_interval):
            print(_status_line(service), flush=True)
    finally:
        if agent is not None:
            agent.stop()
        service.shutdown(timeout=10)
    return 0


def _start_agent(args: argparse.Namespace, endpoint: str) -> Agent | None:
    from otel_agent.agent import create_agent
    from otel_agent.capture import CaptureUnavailable
    from otel_agent.config import load_config

    config = load_config(args.agent_config)
    config.exporter.endpoint = endpoint
    config.exporter.protocol = "grpc"
    config.mode = args.mode
    if args.agent_config is None:
        config.spool.directory = str(Path("procsight-data/agent-spool").resolve())
    agent = create_agent(config)
    try:
        agent.start()
    except CaptureUnavailable as exc:
        agent.stop()  # its exporter thread started with it
        log.error("local agent not started: %s (is this root? see otel_agent/README.md, 'Capture modes')", exc)
        return None
    print(f"agent: capturing with {agent.mode}, sending to {endpoint}")
    return agent


def _status_line(service: Service) -> str:
    telemetry = service.telemetry
    received = telemetry.counter("procsight_receiver_accepted_log_records_total", "").total()
    scored = telemetry.counter("procsight_scored_log_records_total", "")
    return (f"received {received:.0f}  scored {scored.total():.0f}  "
            f"warn {scored.value(severity='warn'):.0f}  alert {scored.value(severity='alert'):.0f}"
            f"{_learning(service)}")


def _learning(service: Service) -> str:
    """The baselines still in warm-up, with their progress (a new workload learns before it alerts)."""
    from otlp_receiver.component import DEFAULT_TENANT, BaselineKeeper

    learning = []
    for processor in service.processors.values():
        if not isinstance(processor, BaselineKeeper):
            continue
        try:
            baselines = processor.baselines(DEFAULT_TENANT)
        except RuntimeError:  # the scoring process is restarting: no progress to show this time
            continue
        learning += [f"{b['workload']} {b['events_learned']}/{b['warmup_events']}" for b in baselines
                     if b["state"] == "learning"]
    return f"  warm-up: {', '.join(learning)}" if learning else ""
