"""`procsight agent`, `procsight host snapshot` and `procsight scan`."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from core.confmap import ConfigError, check

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    agent = subparsers.add_parser(
        "agent", help="capture every process execution on this host and send it as OTLP logs",
        description="Reports every exec (and TCP connect/listen) of this host as an OpenTelemetry log record.")
    agent.add_argument("--endpoint", help="OTLP endpoint, HOST:PORT for gRPC or a URL for HTTP "
                                          "(overrides exporter.endpoint)")
    agent.add_argument("--mode", choices=["auto", "ebpf", "netlink", "proc"], help="capture mode (default auto: "
                                                                                    "eBPF, else netlink, else /proc)")
    agent.add_argument("--protocol", choices=["grpc", "http"], help="OTLP transport (default grpc)")
    agent.add_argument("--config", type=Path, help="agent YAML (see config/agent.yaml)")
    agent.add_argument("--spool", help="spool directory (overrides spool.directory)")
    agent.set_defaults(handler=run_agent)

    host = subparsers.add_parser("host", help="host snapshots for `procsight scan`")
    host.set_defaults(handler=lambda _args: host.print_help() or 2)  # no action given
    actions = host.add_subparsers(dest="host_action", metavar="ACTION")
    snap = actions.add_parser("snapshot", help="save process names, listening ports and remote addresses")
    snap.add_argument("-o", "--output", type=Path, default=Path("host_snapshot.json"), help="file to write")
    snap.set_defaults(handler=run_snapshot)

    scan = subparsers.add_parser("scan", help="diff the live host against a host snapshot and rank findings",
                                 description="Reports new processes, ports and remotes with heuristic reasons and "
                                             "lineage. Read-only: it never kills or blocks anything.")
    scan.add_argument("--snapshot", type=Path, required=True, help="file from `procsight host snapshot`")
    scan.add_argument("--allow", type=Path, help="allow-list of known-good findings (KIND PATTERN per line)")
    scan.add_argument("--json", action="store_true", help="print findings as JSON")
    scan.add_argument("--color", choices=["auto", "always", "never"], default="auto", help="red for risky findings")
    scan.add_argument("--cpu-sample", type=float, default=0.5, help="seconds to measure CPU use over (0: skip)")
    scan.set_defaults(handler=run_scan)


def run_agent(args: argparse.Namespace) -> int:
    from otel_agent.agent import create_agent
    from otel_agent.capture import CaptureUnavailable
    from otel_agent.config import load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"procsight agent: {exc}", file=sys.stderr)
        return 2
    if args.endpoint:
        config.exporter.endpoint = args.endpoint
    if args.mode:
        config.mode = args.mode
    if args.protocol:
        config.exporter.protocol = args.protocol
    if args.spool:
        config.spool.directory = args.spool
    try:
        check(config)  # the flags too
    except ConfigError as exc:
        print(f"procsight agent: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        agent = create_agent(config)
    except OSError as exc:  # typically the spool directory: not writable without root
        print(f"procsight agent: cannot prepare {exc.filename or 'the agent'}: {exc.strerror} "
              "(choose another place with --spool DIR)", file=sys.stderr)
        return 1
    try:
        agent.start()
    except CaptureUnavailable as exc:
        print(f"procsight agent: {exc}", file=sys.stderr)
        agent.stop()
        return 1
    log.info("agent running (mode %s), sending to %s over %s", agent.mode, config.exporter.endpoint,
             config.exporter.protocol)
    stop.wait()
    agent.stop()
    return 0


def run_snapshot(args: argparse.Namespace) -> int:
    from otel_agent.hostscan import take_snapshot

    data = take_snapshot()
    args.output.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {len(data['processes'])} process names, {len(data['listening'])} listening ports, "
          f"{len(data['remotes'])} remote addresses")
    return 0


def run_scan(args: argparse.Namespace) -> int:
    from otel_agent.hostscan import AllowList, ScanError, host_state, load_snapshot, render_json, render_text, scan

    try:
        snapshot = load_snapshot(args.snapshot)
        allow = AllowList.load(args.allow) if args.allow else None
    except ScanError as exc:
        print(f"procsight scan: {exc}", file=sys.stderr)
        return 2
    findings = scan(snapshot, host_state(cpu_sample=args.cpu_sample), allow)
    if args.json:
        sys.stdout.write(render_json(findings))
    else:
        color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
        sys.stdout.write(render_text(findings, color))
    return 0
