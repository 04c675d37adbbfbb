"""`procsight search "..."` and `procsight top`: the ranked triage list in the terminal, grouped by incident.

By default they ask a running receiver over HTTP (`--endpoint`, bearer token from PROCSIGHT_TOKEN),
exactly what the HTTP routes return; `--clickhouse chdb://PATH` or `http://host:8123` reads the
table directly (for the embedded engine only while no receiver holds that path).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from core import httpclient
from core.confmap import ConfigError, Duration, decode
from otlp_receiver.component import DEFAULT_TENANT, PermanentError, RetryableError
from otlp_receiver.exporters.clickhouse.config import Config as ClickHouseConfig
from otlp_receiver.query.incidents import SEVERITIES
from otlp_receiver.query.render import triage_list

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"


class QueryError(Exception):
    """A problem the user can fix, printed without a traceback."""


def register(subparsers: argparse._SubParsersAction) -> None:
    search = subparsers.add_parser("search", help="find stored process events by what they do, in plain English",
                                   description="Search stored events by behaviour, e.g. procsight search "
                                               "\"reverse shell\" or \"persistence via cron\"")
    search.add_argument("query", help="plain English (\"download and execute\"), ATT&CK ids, command words")
    search.add_argument("--limit", type=int, default=20, help="how many results (default 20)")
    _common_options(search)
    search.set_defaults(handler=run_search)

    top = subparsers.add_parser("top", help="the highest-scoring recent anomalies, one line per incident",
                                description="Ranked recent anomalies with reasons, the incident's chain of "
                                            "processes as a tree, and the nearest normal pattern")
    top.add_argument("--since", default="24h", help="how far back: a duration like 1h or 7d (default 24h)")
    top.add_argument("--min-score", type=float, default=0.5, help="lowest score shown (default 0.5)")
    top.add_argument("--limit", type=int, default=20, help="how many results (default 20)")
    top.add_argument("--host", default="", help="only this host")
    top.add_argument("--severity", default=",".join(SEVERITIES),
                     help="comma-separated severities shown (default none,warn,alert)")
    top.add_argument("--group", choices=["incident", "pattern"], default="incident",
                     help="one line per incident (default), or per distinct command line")
    _common_options(top)
    top.set_defaults(handler=run_top)


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workload", default=None, help="only this workload")
    parser.add_argument("--endpoint", default=os.environ.get("PROCSIGHT_ENDPOINT", DEFAULT_ENDPOINT),
                        help=f"a running receiver's HTTP address (default {DEFAULT_ENDPOINT}); "
                             "the bearer token comes from PROCSIGHT_TOKEN")
    parser.add_argument("--clickhouse", metavar="URL", default=None,
                        help="read ClickHouse directly instead: chdb://PATH or http(s)://host:8123")
    parser.add_argument("--database", default="procsight", help="with --clickhouse (default procsight)")
    parser.add_argument("--table", default="security_events", help="with --clickhouse (default security_events)")
    parser.add_argument("--tenant", default=DEFAULT_TENANT, help="with --clickhouse: whose events (default default)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the triage list")


def run_search(args: argparse.Namespace) -> int:
    return _run(args, "search", f"Nearest to {args.query!r}")


def run_top(args: argparse.Namespace) -> int:
    grouped = ", by incident" if args.group == "incident" else ""
    return _run(args, "top", f"Top anomalies since {args.since} (score >= {args.min_score:g}{grouped})")


def _run(args: argparse.Namespace, kind: str, title: str) -> int:
    try:
        results = _query_directly(args, kind) if args.clickhouse else _query_receiver(args, kind)
    except QueryError as exc:
        print(f"procsight {kind}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"results": results}, indent=2, ensure_ascii=False))
    else:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        sys.stdout.write(triage_list(results, color=color, title=title))
    return 0


def _since_epoch(args: argparse.Namespace) -> float:
    try:
        return time.time() - Duration(args.since)
    except ValueError as exc:
        raise QueryError(f"--since: {exc}") from None


def _severities(args: argparse.Namespace) -> tuple[str, ...]:
    severities = tuple(s.strip() for s in args.severity.split(",") if s.strip())
    if not severities or set(severities) - set(SEVERITIES):
        raise QueryError(f"--severity: a comma-separated list of {', '.join(SEVERITIES)}")
    return severities


def _query_directly(args: argparse.Namespace, kind: str) -> list[dict[str, Any]]:
    # Imported here: every `procsight` command registers this module, and only --clickhouse reads storage.
    from otlp_receiver.exporters.clickhouse.transport import UNKNOWN_TABLE_CODES, ClickHouseError
    from otlp_receiver.query.service import Filter, QueryService

    try:
        config = decode(ClickHouseConfig, {"endpoint": args.clickhouse, "database": args.database,
                                           "logs_table_name": args.table}, "--clickhouse")
        connection = config.connection()
        if connection.kind == "chdb" and not os.path.isdir(connection.path):  # the engine would create it, empty
            raise QueryError(f"--clickhouse: no embedded ClickHouse at {connection.path}: give the receiver's "
                             "(its exporters.clickhouse endpoint, chdb://./procsight-data/clickhouse by default)")
        service = QueryService.from_exporter_config(config)
    except (ConfigError, PermanentError) as exc:
        raise QueryError(str(exc)) from None
    try:
        if kind == "search":
            return service.search(args.tenant, args.query, args.limit, args.workload)
        where = Filter(args.tenant, _since_epoch(args), None, args.workload or "", args.host,
                       _severities(args), args.min_score)
        return service.anomalies(where, args.limit, by_incident=args.group == "incident")
    except ClickHouseError as exc:
        if exc.code in UNKNOWN_TABLE_CODES:
            raise QueryError(f"no table {args.database}.{args.table} at {args.clickhouse}: has a receiver written "
                             "there yet? (or name it with --database and --table)") from None
        raise QueryError(str(exc)) from None
    except (ValueError, RetryableError, PermanentError) as exc:
        raise QueryError(str(exc)) from None
    finally:
        service.close()


def _query_receiver(args: argparse.Namespace, kind: str) -> list[dict[str, Any]]:
    base = args.endpoint.rstrip("/")
    headers = {"Accept": "application/json"}
    token = os.environ.get("PROCSIGHT_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if kind == "search":
        body: dict[str, Any] = {"query": args.query, "limit": args.limit}
        if args.workload:
            body["workload"] = args.workload
        request = urllib.request.Request(f"{base}/telemetry/security/search", data=json.dumps(body).encode(),
                                         headers={**headers, "Content-Type": "application/json"}, method="POST")
    else:
        params = {"since": f"{_since_epoch(args):.3f}", "min_score": args.min_score, "limit": args.limit,
                  "group": args.group, "severity": ",".join(_severities(args))}
        for name in ("workload", "host"):
            if getattr(args, name):
                params[name] = getattr(args, name)
        request = urllib.request.Request(f"{base}/api/anomalies?{urllib.parse.urlencode(params)}", headers=headers)
    try:
        with httpclient.opener().open(request, timeout=30) as answer:
            return json.loads(answer.read())["results"]
    except urllib.error.HTTPError as error:
        detail = error.read()[:300].decode("utf-8", "replace")
        hint = " (set PROCSIGHT_TOKEN to a token the receiver accepts)" if error.code in (401, 403) else ""
        hint = hint or httpclient.redirect_hint(error)
        raise QueryError(f"{base} answered HTTP {error.code}{hint}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise QueryError(f"no receiver at {base} ({error}); start `procsight receiver` or read ClickHouse "
                         "directly with --clickhouse chdb://PATH") from None
    except (ValueError, KeyError) as error:
        raise QueryError(f"{base} did not answer with search results: {error}") from None
