"""Search quality on the evaluation data: the feature-hashing search (the article's method, procsight's
search until now) and procsight's behaviour search, side by side.

The evaluation data (shared/eval beside the repository, or --eval-dir) is loaded THROUGH THE RECEIVER:
a real procsight receiver (otlp -> batch -> anomaly -> clickhouse on chdb, the query extension) is
started in this process and sent the benign traces of the three workloads, the intrusion chains and the
GTFOBins lines over OTLP/HTTP; each query then goes to `POST /telemetry/security/search`.

Every query is mapped to the ATT&CK techniques it means. An event is relevant to a query when one of
its labels is one of those techniques. The labels are the data's own: the `technique` of an attack
event, and for GTFOBins lines what their `source` says (the function: shell -> T1059.004,
reverse-/bind-shell -> T1095 and T1059.004, download -> T1105, upload -> T1041; the context: sudo ->
T1548.003, suid -> T1548.001). Attack events under a web server, the GTFOBins lines the data places there
(its README calls that the webshell scenario) and the web chains (command injection into a CGI tool), are
also T1505.003 and T1190: process events cannot tell a web shell from an injected command.
Results are one per distinct (workload, host, command line), so relevance is counted the same way.

    precision@10 = relevant results in the first 10 / min(10, relevant patterns)
    recall@50    = relevant results in the first 50 / relevant patterns

Queries with no relevant pattern in this data are listed and left out of the means. The data measures:
nothing in procsight is tuned to its lines, and unseen queries and data are used for evaluation too.

    .venv/bin/python bench/search.py [--eval-dir DIR] [--neural]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: `testing` is not installed
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # not bench/

import yaml  # noqa: E402
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402

from otlp_receiver.exporters.clickhouse.transport import ChdbTransport  # noqa: E402
from otlp_receiver.query import neural  # noqa: E402
from otlp_receiver.query.service import QueryService  # noqa: E402
from otlp_receiver.service import Service  # noqa: E402
from scoring.featurizer import get_embedder  # noqa: E402
from testing.otlp_values import key_values  # noqa: E402

EVAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval"
TABLE = "procsight.security_events"
KEYS = ("process.pid", "process.parent_pid", "process.executable.name", "process.executable.path",
        "process.command_line", "process.command_args", "process.user.id", "process.parent.executable.name",
        "process.working_directory", "process.command_args_truncated")
WEB_PARENTS = ("nginx", "php-fpm", "apache2", "httpd", "java", "node", "fcgiwrap")
WEB_ATTACK = {"T1505.003", "T1190"}

# Each query with the ATT&CK techniques it means.
QUERIES: dict[str, set[str]] = {
    "reverse shell": {"T1095"},
    "download and execute": {"T1105"},
    "privilege escalation through sudo": {"T1548.003"},
    "persistence via cron": {"T1053.003"},
    "credential access": {"T1003", "T1003.007", "T1003.008", "T1552", "T1552.001", "T1552.003", "T1552.004",
                          "T1555", "T1110"},
    "data sent out": {"T1041", "T1048", "T1567"},
    "crypto miner": {"T1496"},
    "log tampering": {"T1070.002", "T1070.003"},
    "web shell": {"T1505.003"},
    "setuid privilege escalation": {"T1548.001"},
    "system reconnaissance": {"T1082"},
    "create a backdoor account": {"T1136.001"},
    "binary disguised as a hidden file in tmp": {"T1036.005"},
    "spawn an interactive shell": {"T1059.004"},
    "upload a file to a remote server": {"T1041", "T1048"},
    "command injection into a web application": {"T1190"},
}
GTFOBINS_FUNCTIONS = {"shell": {"T1059.004"}, "reverse-shell": {"T1095", "T1059.004"},
                      "bind-shell": {"T1095", "T1059.004"}, "download": {"T1105"}, "upload": {"T1041"}}
GTFOBINS_CONTEXTS = {"sudo": {"T1548.003"}, "suid": {"T1548.001"}, "unprivileged": set()}


# -- the data ------------------------------------------------------------------------------------------


def load(eval_dir: Path) -> list[dict[str, Any]]:
    """Benign traces first (a baseline to learn), then the chains, then the GTFOBins lines; each event with
    its `host` (chains: one per scenario, their pids are only unique within one) and `labels`."""
    events = []
    for workload in ("web", "ci", "admin"):
        for line in (eval_dir / f"benign_{workload}.jsonl").open():
            events.append({**json.loads(line), "host": "vm", "labels": set()})
    for line in (eval_dir / "chains_dev.jsonl").open():
        event = json.loads(line)
        labels = set()
        if event.get("label") == "attack":
            labels = {event["technique"]} | (WEB_ATTACK if event["scenario"].startswith("web-") else set())
        events.append({**event, "host": f"vm-{event['scenario']}", "labels": labels})
    for line in (eval_dir / "gtfobins_attacks.jsonl").open():
        event = json.loads(line)
        function, context = event["source"].split("#", 1)[1].split("@", 1)[0].split("/", 1)
        labels = {event["technique"]} | GTFOBINS_FUNCTIONS.get(function, set()) | GTFOBINS_CONTEXTS.get(context, set())
        if event["process.parent.executable.name"].startswith(WEB_PARENTS):
            labels |= WEB_ATTACK
        events.append({**event, "host": "vm-gtfobins", "labels": labels})
    return events


def requests(events: list[dict[str, Any]], per_request: int = 500) -> Iterator[bytes]:
    """OTLP requests of consecutive events of one (workload, host), in order."""
    index = 0
    while index < len(events):
        first = events[index]
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.extend(key_values({
            "service.name": "procsight-agent", "host.name": first["host"], "procsight.workload": first["workload"]}))
        records = resource_logs.scope_logs.add().log_records
        while (index < len(events) and len(records) < per_request and events[index]["host"] == first["host"]
               and events[index]["workload"] == first["workload"]):
            event = events[index]
            record = records.add()
            record.time_unix_nano = record.observed_time_unix_nano = int(event["ts"] * 1e9)
            record.event_name = "process.exec"
            record.body.string_value = event["process.command_line"]
            record.attributes.extend(key_values({k: event[k] for k in KEYS if event.get(k) is not None}))
            index += 1
        yield request.SerializeToString()


def relevant_patterns(events: list[dict[str, Any]]) -> dict[tuple[str, str, str], set[str]]:
    """The labels of each distinct (workload, host, command line), as search results come."""
    patterns: dict[tuple[str, str, str], set[str]] = {}
    for event in events:
        key = (event["workload"], event["host"], event["process.command_line"])
        patterns.setdefault(key, set()).update(event["labels"])
    return patterns


# -- the receiver ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def receiver(directory: Path) -> Iterator[Service]:
    config = {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "processors": {"batch": {"timeout": "200ms", "send_batch_size": 2000},
                       "anomaly": {"baselines": str(directory / "baselines")}},
        "exporters": {"clickhouse": {"endpoint": f"chdb://{directory / 'clickhouse'}"}},
        "extensions": {"query": {"exporter": "clickhouse"}},
        "service": {"data_dir": str(directory), "extensions": ["query"],
                    "pipelines": {"logs": {"receivers": ["otlp"], "processors": ["batch", "anomaly"],
                                           "exporters": ["clickhouse"]}}},
    }
    path = directory / "receiver.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    service = Service.from_config_file(path)
    service.start()
    try:
        yield service
    finally:
        service.shutdown(timeout=30)


def post(url: str, body: bytes, content_type: str) -> bytes:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    with urllib.request.urlopen(request, timeout=120) as answer:
        return answer.read()


def wait_for_rows(clickhouse: ChdbTransport, expected: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the table appears with the first export
            count = int(clickhouse.query(f"SELECT count() AS n FROM {TABLE}")[0]["n"])
        if count >= expected:
            return
        time.sleep(0.5)
    raise SystemExit(f"only {count} of {expected} events reached ClickHouse in {timeout:.0f} s")


# -- the two searches ----------------------------------------------------------------------------------------

_HASHING_SQL = f"""SELECT Workload AS workload, ResourceAttributes['host.name'] AS host,
  if(LogAttributes['process.command_line'] != '', LogAttributes['process.command_line'], Body) AS command_line,
  cosineDistance(Embedding, {{vector:Array(Float32)}}) AS distance, AnomalyScore AS score
FROM {TABLE} WHERE length(Embedding) = {{dim:UInt32}}
ORDER BY distance ASC, score DESC
LIMIT 1 BY workload, host, command_line
LIMIT {{limit:UInt32}}"""


def hashing_search(clickhouse: ChdbTransport, query: str, limit: int) -> list[tuple[str, str, str]]:
    """The feature-hashing search: the query embedded as a command line, nearest stored vectors first."""
    vector = get_embedder("hash128-v2").embed_text(query)
    rows = clickhouse.query(_HASHING_SQL, {"vector": [float(x) for x in vector], "dim": len(vector), "limit": limit})
    return [(row["workload"], row["host"], row["command_line"]) for row in rows]


def procsight_search(http: str, query: str, limit: int) -> list[tuple[str, str, str]]:
    answer = json.loads(post(f"http://{http}/telemetry/security/search",
                             json.dumps({"query": query, "limit": limit}).encode(), "application/json"))
    return [(row["workload"], row["host"], row["command_line"]) for row in answer["results"]]


def measure(results: list[tuple[str, str, str]], relevant: set[tuple[str, str, str]]) -> tuple[float, float]:
    hits10 = sum(1 for key in results[:10] if key in relevant)
    hits50 = sum(1 for key in results[:50] if key in relevant)
    return hits10 / min(10, len(relevant)), hits50 / len(relevant)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-dir", type=Path, default=EVAL_DIR)
    parser.add_argument("--neural", action="store_true",
                        help="also rank with the optional sentence embedder (procsight[neural]) and report its cost")
    parser.add_argument("--show", type=int, default=0, help="print the first N results of each query")
    args = parser.parse_args()
    if not (args.eval_dir / "chains_dev.jsonl").exists():
        sys.exit(f"bench/search.py measures on the evaluation data, and {args.eval_dir} has none: put shared/eval "
                 "beside the repository (CI does) or pass --eval-dir DIR")
    events = load(args.eval_dir)
    labels = relevant_patterns(events)
    print(f"eval: {len(events)} events, {len(labels)} distinct patterns, "
          f"{sum(1 for v in labels.values() if v)} with an ATT&CK label")
    with tempfile.TemporaryDirectory(prefix="procsight-search-bench-") as tmp, receiver(Path(tmp)) as service:
        http = service.http_endpoint()
        started = time.monotonic()
        for payload in requests(events):
            post(f"http://{http}/v1/logs", payload, "application/x-protobuf")
        clickhouse = ChdbTransport(str(Path(tmp) / "clickhouse"))
        try:
            wait_for_rows(clickhouse, len(events))
            print(f"loaded through the receiver (scored, learned, stored) in {time.monotonic() - started:.1f} s\n")
            report(http, clickhouse, labels, args)
        finally:
            clickhouse.close()


def report(http: str, clickhouse: ChdbTransport, labels: dict[tuple[str, str, str], set[str]],
           args: argparse.Namespace) -> None:
    methods = {"hashing": lambda q: hashing_search(clickhouse, q, 50),
               "procsight": lambda q: procsight_search(http, q, 50)}
    if args.neural:
        methods["procsight+neural"] = neural_method(clickhouse)
    header = "| query | techniques | relevant | " + " | ".join(f"{m} P@10 | {m} R@50" for m in methods) + " |"
    print(header)
    print("|" + "---|" * (3 + 2 * len(methods)))
    totals: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
    latencies: dict[str, list[float]] = {m: [] for m in methods}
    absent = []
    for query, techniques in QUERIES.items():
        relevant = {key for key, found in labels.items() if found & techniques}
        if not relevant:
            absent.append(query)
            continue
        cells = []
        for name, search in methods.items():
            started = time.perf_counter()
            results = search(query)
            latencies[name].append(time.perf_counter() - started)
            precision, recall = measure(results, relevant)
            totals[name].append((precision, recall))
            cells += [f"{precision:.2f}", f"{recall:.2f}"]
            if args.show:
                for rank, key in enumerate(results[: args.show], 1):
                    print(f"    {name} {rank:>2} {'+' if key in relevant else ' '} {key[0]}/{key[1]}: {key[2][:100]}")
        print(f"| {query} | {', '.join(sorted(techniques))} | {len(relevant)} | " + " | ".join(cells) + " |")
    means = []
    for name in methods:
        means += [f"**{statistics.mean(p for p, _ in totals[name]):.2f}**",
                  f"**{statistics.mean(r for _, r in totals[name]):.2f}**"]
    print(f"| **mean** ({len(QUERIES) - len(absent)} queries) | | | " + " | ".join(means) + " |")
    print()
    for name in methods:
        print(f"{name}: median latency {statistics.median(latencies[name]) * 1000:.0f} ms per query")
    if absent:
        print(f"not measured (no relevant event in this data): {', '.join(absent)}")


def neural_method(clickhouse: ChdbTransport):  # type: ignore[no-untyped-def]
    """procsight's search with the sentence embedder, in this process over the same table; prints what
    embedding the distinct patterns cost."""
    started = time.perf_counter()
    embedder = neural.load("minilm-l6-v2")
    print(f"neural: model loaded in {time.perf_counter() - started:.1f} s")
    service = QueryService(clickhouse, "procsight", "security_events", embedder=embedder)
    patterns = service.patterns("default")
    started = time.perf_counter()
    embedded = service.search_engine.embed_patterns(patterns)
    seconds = time.perf_counter() - started
    occurrences = sum(p.occurrences for p in patterns)
    print(f"neural: embedded {embedded} distinct patterns in {seconds:.1f} s: {seconds / embedded * 1000:.2f} ms per "
          f"pattern; those patterns stand for {occurrences} events, {occurrences / seconds:.0f} events/s\n")
    return lambda query: [(r["workload"], r["host"], r["command_line"]) for r in service.search("default", query, 50)]


if __name__ == "__main__":
    main()
