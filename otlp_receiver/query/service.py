"""QueryService: what the page, the HTTP routes and `procsight top/search` ask of the `security_events` table.

- `anomalies`: recent anomalies grouped by incident (one entry per chain, its process tree drawn),
  events outside any incident grouped by distinct command line;
- `event`: one event with its incident, tree, raw attributes, nearest normal pattern and the SQL that
  shows the same rows;
- `search`: plain-English search that understands behaviour (`search.py`);
- `volume` (events over time by severity) and `facets` (workloads and hosts, for filters);
- `acknowledgeable`: a stored event as the attributes the anomaly processor learns from.

The same SQL runs on both ClickHouse transports; every user value is a bound `{name:Type}` parameter,
and every query is confined to the caller's tenant.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from core import semconv
from otlp_receiver.exporters.clickhouse.config import Config as ClickHouseConfig
from otlp_receiver.exporters.clickhouse.transport import Transport, open_transport
from otlp_receiver.query import attack
from otlp_receiver.query.incidents import SEVERITIES, SEVERITY_LEVEL, highest_severity, process_tree
from otlp_receiver.query.neural import SentenceEmbedder
from otlp_receiver.query.search import BehaviourSearch, Match, Pattern

MAX_LIMIT = 1000  # search results
MAX_BUCKETS = 10_000  # of the chart (the page asks for about 60)
MAX_GROUPS = 10_000  # anomaly list entries: the page's table holds this many
MAX_QUERY_CHARS = 4096
MAX_SEARCHED_PATTERNS = 200_000  # distinct command lines a search ranks, the most recent first
MAX_CHAIN_EVENTS = 50  # events of an incident drawn in the list; the event view draws up to MAX_INCIDENT_EVENTS
MAX_INCIDENT_EVENTS = 500

# The incident verdict: the clickhouse exporter's own columns (indexed); the techniques as the record carries
# them (a JSON array in LogAttributes, which string_list reads).
INCIDENT = "AnomalyIncident"
INCIDENT_SCORE = "AnomalyIncidentScore"
TECHNIQUES = f"LogAttributes['{semconv.ANOMALY_TECHNIQUES}']"

HOST = f"ResourceAttributes['{semconv.HOST_NAME}']"
COMMAND_LINE = (f"if(LogAttributes['{semconv.PROCESS_COMMAND_LINE}'] != '', "
                f"LogAttributes['{semconv.PROCESS_COMMAND_LINE}'], Body)")
# Characters of a command line, or of any other text field, the lists and search read (scoring reads as many,
# core/event.py): a stored 4 MB line cost seconds of search CPU and megabytes on every page refresh, and so did
# an executable, user or ancestors value as large. An event's raw attributes keep them whole.
MAX_LISTED_COMMAND = 8192
LISTED_COMMAND_LINE = f"substringUTF8({COMMAND_LINE}, 1, {MAX_LISTED_COMMAND})"
LEVEL = "multiIf(AnomalySeverity = 'alert', 2, AnomalySeverity = 'warn', 1, 0)"


def _attribute(key: str) -> str:
    """A record attribute as the lists and search read it: its first MAX_LISTED_COMMAND characters."""
    return f"substringUTF8(LogAttributes['{key}'], 1, {MAX_LISTED_COMMAND})"


LISTED_HOST = f"substringUTF8({HOST}, 1, {MAX_LISTED_COMMAND})"


_FIELDS = f"""
    toUnixTimestamp64Nano(Timestamp) AS time_ns, RecordId AS record_id, AnomalyScore AS score,
    AnomalySeverity AS severity, Workload AS workload, ServiceName AS service, {LISTED_HOST} AS host,
    EventName AS event_name, {LISTED_COMMAND_LINE} AS command_line,
    {_attribute(semconv.PROCESS_EXECUTABLE_NAME)} AS executable,
    {_attribute(semconv.PROCESS_USER_NAME)} AS user_name, {_attribute(semconv.PROCESS_USER_ID)} AS user_id,
    {_attribute(semconv.PROCESS_PID)} AS pid, {_attribute(semconv.PROCESS_PARENT_PID)} AS parent_pid,
    {_attribute(semconv.PROCESS_PARENT_EXECUTABLE_NAME)} AS parent,
    {_attribute(semconv.ANOMALY_REASONS)} AS reasons, {_attribute(semconv.PROCESS_ANCESTORS)} AS ancestors,
    {_attribute(semconv.ANOMALY_NEAREST)} AS nearest, {_attribute(semconv.ANOMALY_MODEL)} AS model,
    {INCIDENT} AS incident, {INCIDENT_SCORE} AS incident_score, {TECHNIQUES} AS techniques"""

_WHERE = f"""TenantId = {{tenant:String}}
  AND Timestamp >= fromUnixTimestamp64Nano({{since_ns:Int64}})
  AND Timestamp < fromUnixTimestamp64Nano({{until_ns:Int64}})
  AND ({{workload:String}} = '' OR Workload = {{workload:String}})
  AND ({{host:String}} = '' OR {HOST} = {{host:String}})"""

# Events of one incident form one group; the others, one group per distinct (workload, host, command line),
# so a command repeated a thousand times is one line with its count instead of hiding everything else.
# Only events of the chosen severities count (a line "seen 3 times" among alerts means 3 alerts).
_GROUPS = f"""SELECT group_id, any(incident) AS incident, max(AnomalyScore) AS top_score,
  max(incident_score) AS incident_score, greatest(top_score, incident_score) AS group_rank, count() AS events,
  toUnixTimestamp64Nano(min(Timestamp)) AS first_ns, toUnixTimestamp64Nano(max(Timestamp)) AS last_ns,
  max(level) AS group_level, argMax(RecordId, tuple(AnomalyScore, Timestamp)) AS lead
FROM (
  SELECT Timestamp, RecordId, AnomalyScore, {INCIDENT} AS incident,
    if({{by_incident:UInt8}} = 1, {INCIDENT_SCORE}, 0) AS incident_score,
    {LEVEL} AS level,
    if({{by_incident:UInt8}} = 1 AND incident != '', incident,
       concat('p:', hex(cityHash64(Workload, {HOST}, {COMMAND_LINE})))) AS group_id
  FROM {{table}} WHERE {_WHERE} AND has({{levels:Array(UInt8)}}, {LEVEL}))
GROUP BY group_id
HAVING group_rank >= {{min_score:Float32}}
ORDER BY group_rank DESC, last_ns DESC
LIMIT {{limit:UInt32}}"""

_BY_RECORD = f"""SELECT {_FIELDS} FROM {{table}}
WHERE TenantId = {{tenant:String}} AND RecordId IN (SELECT arrayJoin({{records:Array(String)}}))"""

_MEMBERS = f"""SELECT {_FIELDS} FROM {{table}}
WHERE TenantId = {{tenant:String}} AND {INCIDENT} IN (SELECT arrayJoin({{incidents:Array(String)}}))
ORDER BY Timestamp, RecordId
LIMIT {{per_incident:UInt32}} BY incident"""

# Maps as key and value arrays: a key sent twice is stored twice, and read as JSON objects its last value
# would win where scoring and `LogAttributes['key']` read the first (`_first_wins`).
_EVENT = f"""SELECT {_FIELDS}, mapKeys(LogAttributes) AS attribute_keys, mapValues(LogAttributes) AS attribute_values,
  mapKeys(ResourceAttributes) AS resource_keys, mapValues(ResourceAttributes) AS resource_values, Body AS body,
  SeverityText AS severity_text, SeverityNumber AS severity_number, ScopeName AS scope
FROM {{table}} WHERE TenantId = {{tenant:String}} AND RecordId = {{record_id:String}} LIMIT 1"""

_SEEN = f"""SELECT count() AS seen FROM {{table}}
WHERE TenantId = {{tenant:String}} AND Workload = {{workload:String}} AND {COMMAND_LINE} = {{command_line:String}}"""

# Search ranks distinct patterns by their latest score (a routine command's first run scores high, its
# later runs low); their text fields, and the record shown, are those of the highest-scored occurrence.
_PATTERNS = f"""SELECT argMax(RecordId, AnomalyScore) AS record_id, Workload AS workload, {LISTED_HOST} AS host,
  {LISTED_COMMAND_LINE} AS command_line, count() AS occurrences, argMax(AnomalyScore, Timestamp) AS latest_score,
  argMax({_attribute(semconv.PROCESS_EXECUTABLE_NAME)}, AnomalyScore) AS executable,
  argMax({_attribute(semconv.PROCESS_PARENT_EXECUTABLE_NAME)}, AnomalyScore) AS parent,
  argMax({_attribute(semconv.PROCESS_ANCESTORS)}, AnomalyScore) AS ancestors,
  argMax({_attribute(semconv.PROCESS_USER_NAME)}, AnomalyScore) AS user_name,
  argMax({_attribute(semconv.PROCESS_USER_ID)}, AnomalyScore) AS user_id,
  argMax({_attribute(semconv.ANOMALY_REASONS)}, AnomalyScore) AS reasons,
  argMax({TECHNIQUES}, AnomalyScore) AS techniques, max(Timestamp) AS last_seen
FROM {{table}}
WHERE TenantId = {{tenant:String}} AND ({{workload:String}} = '' OR Workload = {{workload:String}})
  AND EventName != 'process.cpu'
GROUP BY workload, host, command_line
ORDER BY last_seen DESC
LIMIT {MAX_SEARCHED_PATTERNS}"""

_VOLUME = f"""SELECT toUnixTimestamp(toStartOfInterval(Timestamp, INTERVAL {{step:UInt32}} SECOND)) AS bucket,
  AnomalySeverity AS severity, count() AS events
FROM {{table}} WHERE {_WHERE}
GROUP BY bucket, severity ORDER BY bucket"""

_FACETS = f"""SELECT groupUniqArray(200)(Workload) AS workloads, groupUniqArray(200)({HOST}) AS hosts
FROM {{table}} WHERE {_WHERE}"""


@dataclass
class Filter:
    """Which events: the caller's tenant, a time range (epoch seconds), a workload, a host, severities."""

    tenant: str
    since: float | None = None  # default: a day before `until`
    until: float | None = None  # default: now (and a little after, for clocks that run ahead)
    workload: str = ""
    host: str = ""
    severities: tuple[str, ...] = SEVERITIES
    min_score: float = 0.0

    def params(self) -> dict[str, Any]:
        until = time.time() + 300 if self.until is None else self.until
        since = until - 86400 if self.since is None else self.since
        if since >= until:
            raise ValueError("since: must be before until")
        unknown = set(self.severities) - set(SEVERITIES)
        if unknown or not self.severities:
            raise ValueError(f"severity: one or more of {', '.join(SEVERITIES)}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError("min_score: must be between 0 and 1")
        return {"tenant": self.tenant, "since_ns": int(max(since, 0.0) * 1e9), "until_ns": int(until * 1e9),
                "workload": self.workload or "", "host": self.host or "",
                "levels": [SEVERITY_LEVEL[s] for s in self.severities], "min_score": self.min_score}


@dataclass
class QueryService:
    transport: Transport
    database: str
    table_name: str
    clickhouse_endpoint: str = ""  # for the page's link to the rows; credentials never leave
    embedder: SentenceEmbedder | None = None
    search_engine: BehaviourSearch = field(init=False)

    def __post_init__(self) -> None:
        self.table = f"`{self.database}`.`{self.table_name}`"
        self.search_engine = BehaviourSearch(self.embedder)

    @classmethod
    def from_exporter_config(cls, config: ClickHouseConfig, embedder: SentenceEmbedder | None = None) -> QueryService:
        """Reads the table the `clickhouse` exporter of a running pipeline writes (same transport kind,
        sharing the embedded engine when it is chdb)."""
        return cls(open_transport(config), config.connection().database, config.logs_table_name, config.endpoint,
                   embedder)

    def close(self) -> None:
        self.transport.close()

    def _query(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.transport.query(sql.replace("{table}", self.table), params)

    # -- the ranked list --------------------------------------------------------------------------------

    def anomalies(self, where: Filter, limit: int = 50, by_incident: bool = True) -> list[dict[str, Any]]:
        """Groups of events at or above `where.min_score`, highest first: one per incident (with its process
        tree under `chain`), one per distinct command line outside incidents (`events` counts its runs).
        Each group carries its lead event's fields (the highest-scored)."""
        params = {**where.params(), "by_incident": int(by_incident), "limit": _check_limit(limit, MAX_GROUPS)}
        groups = self._query(_GROUPS, params)
        if not groups:
            return []
        leads = {row["record_id"]: row for row in self._rows(_BY_RECORD, where.tenant,
                                                              records=[g["lead"] for g in groups])}
        incidents = [g["incident"] for g in groups if g["incident"] and g["group_id"] == g["incident"]]
        members: dict[str, list[dict[str, Any]]] = {}
        if incidents:
            for row in self._rows(_MEMBERS, where.tenant, incidents=incidents, per_incident=MAX_CHAIN_EVENTS):
                members.setdefault(row["incident"], []).append(row)
        results = []
        for group in groups:
            lead = leads.get(group["lead"])
            if lead is None:  # deleted (TTL) between the two queries
                continue
            results.append(_group(group, lead, members.get(group["group_id"])))
        return results

    def _rows(self, sql: str, tenant: str, **params: Any) -> list[dict[str, Any]]:
        return [_result(row) for row in self._query(sql, {"tenant": tenant, **params})]

    # -- one event ----------------------------------------------------------------------------------------

    def event(self, tenant: str, record_id: str) -> dict[str, Any] | None:
        """The event with everything the page's event view shows, or None when the tenant has no such record."""
        rows = self._query(_EVENT, {"tenant": tenant, "record_id": record_id})
        if not rows:
            return None
        row = _with_maps(rows[0])
        raw = {"attributes": row.pop("attributes"), "resource": row.pop("resource"), "body": row.pop("body"),
               "severity_text": row.pop("severity_text"), "severity_number": row.pop("severity_number"),
               "scope": row.pop("scope")}
        event = _result(row)
        event["raw"] = raw
        event["reasons_explained"] = [_explain(reason) for reason in event["reasons"]]
        answer: dict[str, Any] = {"event": event, "incident": None}
        members = [event]
        if event["incident"]:
            members = self._rows(_MEMBERS, tenant, incidents=[event["incident"]], per_incident=MAX_INCIDENT_EVENTS)
            answer["incident"] = {"id": event["incident"], "score": max(m["incident_score"] for m in members),
                                  "events": len(members),
                                  "severity": highest_severity([m["severity"] for m in members]),
                                  "techniques": _techniques_of(members)}
        answer["chain"] = process_tree(members)
        answer["context"] = members[0]["ancestors"] if members else []
        if event["nearest"]:
            seen = self._query(_SEEN, {"tenant": tenant, "workload": event["workload"],
                                       "command_line": event["nearest"]})
            answer["nearest"] = {"command_line": event["nearest"], "seen": int(seen[0]["seen"]) if seen else 0}
        else:
            answer["nearest"] = None
        answer["sql"] = self._sql_for(tenant, event)
        answer["sql_url"] = self._sql_url(answer["sql"])
        return answer

    def _sql_for(self, tenant: str, event: dict[str, Any]) -> str:
        if event["incident"]:
            condition = f"{INCIDENT} = {_literal(event['incident'])}"
        else:
            condition = f"RecordId = {_literal(event['record_id'])}"
        return (f"SELECT Timestamp, Workload, AnomalyScore, AnomalySeverity, Body, LogAttributes\n"
                f"FROM {self.database}.{self.table_name}\n"
                f"WHERE TenantId = {_literal(tenant)} AND {condition}\nORDER BY Timestamp")

    def _sql_url(self, sql: str) -> str | None:
        """The rows through a ClickHouse server's HTTP interface (read-only GET); None for the embedded engine."""
        url = urlsplit(self.clickhouse_endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            return None
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{url.hostname}{port}/?query={quote(sql + ' FORMAT PrettyCompact')}"

    # -- search ---------------------------------------------------------------------------------------------

    def search(self, tenant: str, query: str, limit: int = 20, workload: str | None = None) -> list[dict[str, Any]]:
        """Stored events matching a plain-English query, best first (one per distinct command line)."""
        return self.search_answer(tenant, query, limit, workload)["results"]

    def search_answer(self, tenant: str, query: str, limit: int = 20,
                      workload: str | None = None) -> dict[str, Any]:
        """`{"results": search(...), "incomplete": None}`, or with `incomplete` saying how many patterns the
        search left out (or ranked without similarity) because its budget of new patterns ran out."""
        text = query.strip()
        if not text:
            raise ValueError("query: give some words to search for")
        if len(text) > MAX_QUERY_CHARS:
            raise ValueError(f"query: at most {MAX_QUERY_CHARS} characters")
        limit = _check_limit(limit, MAX_LIMIT)
        # No lock around ranking: the engine locks its caches only while reading or writing them, so one
        # tenant's search never waits for another's.
        ranking = self.search_engine.rank(text, self.patterns(tenant, workload), limit)
        incomplete = None if ranking.complete else {"ranked": ranking.ranked, "left_out": ranking.left_out,
                                                    "unembedded": ranking.unembedded}
        return {"results": self._search_results(tenant, ranking.matches), "incomplete": incomplete}

    def _search_results(self, tenant: str, matches: list[Match]) -> list[dict[str, Any]]:
        if not matches:
            return []
        rows = {row["record_id"]: row for row in self._rows(_BY_RECORD, tenant,
                                                             records=[m.pattern.record_id for m in matches])}
        results = []
        for match in matches:
            row = rows.get(match.pattern.record_id)
            if row is None:
                continue
            row.update(relevance=match.relevance, occurrences=match.pattern.occurrences,
                       matched={"techniques": [attack.describe(t) for t in match.techniques[:5]],
                                "words": match.words, "similarity": match.similarity})
            results.append(row)
        return results

    def patterns(self, tenant: str, workload: str | None = None) -> list[Pattern]:
        """The tenant's distinct command lines (per workload and host), the most recent first."""
        rows = self._query(_PATTERNS, {"tenant": tenant, "workload": workload or ""})
        return [Pattern(record_id=row["record_id"], workload=row["workload"], host=row["host"],
                        command_line=row["command_line"], executable=row["executable"], parent=row["parent"],
                        ancestors=_string_tuple(row["ancestors"]), user=_user(row["user_name"], row["user_id"]),
                        reasons=_string_tuple(row["reasons"]), techniques=_string_tuple(row["techniques"]),
                        score=float(row["latest_score"]),
                        occurrences=int(row["occurrences"]))
                for row in rows]

    # -- the chart and the filters -----------------------------------------------------------------------

    def volume(self, where: Filter, step: int) -> list[dict[str, Any]]:
        """Events per `step` seconds by severity: `[{"time": epoch, "none": n, "warn": n, "alert": n}]`."""
        if not 1 <= step <= 86400 * 31:
            raise ValueError("step: between 1 second and 31 days")
        params = where.params()
        seconds = (params["until_ns"] - params["since_ns"]) / 1e9
        if seconds / step > MAX_BUCKETS:  # a row per bucket and severity, every one read into this process
            raise ValueError(f"step: at least {math.ceil(seconds / MAX_BUCKETS)} seconds over this time range "
                             f"(at most {MAX_BUCKETS:,} buckets)")
        buckets: dict[int, dict[str, Any]] = {}
        for row in self._query(_VOLUME, {**params, "step": step}):
            time_bucket = int(row["bucket"])
            bucket = buckets.setdefault(time_bucket, {"time": time_bucket, **dict.fromkeys(SEVERITIES, 0)})
            if row["severity"] in SEVERITY_LEVEL:
                bucket[row["severity"]] += int(row["events"])
        return [buckets[key] for key in sorted(buckets)]

    def facets(self, where: Filter) -> dict[str, list[str]]:
        rows = self._query(_FACETS, where.params())
        row = rows[0] if rows else {"workloads": [], "hosts": []}
        return {"workloads": sorted(w for w in row["workloads"] if w), "hosts": sorted(h for h in row["hosts"] if h)}

    # -- acknowledge --------------------------------------------------------------------------------------------

    def acknowledgeable(self, tenant: str, record_id: str) -> tuple[str, dict[str, Any]] | None:
        """(workload, attributes) of a stored event, as the anomaly processor learns an acknowledged event
        from them: the record's attributes with arrays, numbers and flags in their types again, its host
        and time; None when the tenant has no such record."""
        rows = self._query(_EVENT, {"tenant": tenant, "record_id": record_id})
        if not rows:
            return None
        row = _with_maps(rows[0])
        attributes = {key: _typed(value) for key, value in row["attributes"].items()
                      if key not in semconv.VERDICT_KEYS}
        attributes.setdefault(semconv.HOST_NAME, row["resource"].get(semconv.HOST_NAME, ""))
        attributes["ts"] = int(row["time_ns"]) / 1e9
        return row["workload"], attributes


def _with_maps(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its attribute maps as dicts (`_EVENT` reads them as key and value arrays)."""
    row["attributes"] = _first_wins(row.pop("attribute_keys"), row.pop("attribute_values"))
    row["resource"] = _first_wins(row.pop("resource_keys"), row.pop("resource_values"))
    return row


def _first_wins(keys: list[str], values: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in zip(keys, values, strict=True):
        found.setdefault(key, value)
    return found


def _check_limit(limit: int, most: int) -> int:
    if not 1 <= limit <= most:
        raise ValueError(f"limit: must be between 1 and {most}")
    return limit


def _group(group: dict[str, Any], lead: dict[str, Any], members: list[dict[str, Any]] | None) -> dict[str, Any]:
    is_incident = bool(group["incident"]) and group["group_id"] == group["incident"]
    item = dict(lead)
    item.update({
        "id": group["group_id"], "kind": "incident" if is_incident else "pattern",
        "rank": round(float(group["group_rank"]), 4), "incident_score": round(float(group["incident_score"]), 4),
        "events": int(group["events"]), "first": _iso(int(group["first_ns"])), "last": _iso(int(group["last_ns"])),
        "severity": SEVERITIES[int(group["group_level"])], "lead_severity": lead["severity"],
    })
    if is_incident and members:
        item["chain"] = process_tree(members)
        item["techniques"] = _techniques_of(members)
    return item


def _techniques_of(events: Sequence[dict[str, Any]]) -> list[str]:
    """The techniques of a chain's events, those of its highest-scored events first."""
    ordered: dict[str, None] = {}
    for event in sorted(events, key=lambda e: -e["score"]):
        ordered.update(dict.fromkeys(event["techniques"]))
    return list(ordered)


def _explain(reason: str) -> dict[str, Any]:
    """A reason with the ATT&CK technique it names, if any, spelled out."""
    found = attack.technique_ids([reason])
    return {"text": attack.without_technique(reason), "technique": attack.describe(found[-1]) if found else None}


def _iso(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _result(row: dict[str, Any]) -> dict[str, Any]:
    time_ns = int(row.pop("time_ns"))
    row["time"] = _iso(time_ns)
    row["score"] = round(float(row["score"]), 4)
    row["incident_score"] = round(float(row["incident_score"]), 4)
    row["reasons"] = string_list(row["reasons"])
    row["ancestors"] = string_list(row["ancestors"])
    row["techniques"] = string_list(row["techniques"]) or attack.technique_ids(row["reasons"])
    row["pid"] = _integer(row["pid"])
    row["parent_pid"] = _integer(row["parent_pid"])
    row["user"] = _user(row.pop("user_name"), row.pop("user_id"))
    return row


def _user(name: str, uid: str) -> str:
    if name:
        return name
    if uid == "0":
        return "root"
    return f"uid {uid}" if uid else ""


def _integer(text: str) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def string_list(value: str | list[Any]) -> list[str]:
    """Array attributes are stored as JSON arrays (the Collector's AsString); an Array column arrives as a
    list; anything else is one item."""
    if isinstance(value, list):
        return [str(item) for item in value]
    if not value:
        return []
    try:
        decoded = json.loads(value)
    except (ValueError, RecursionError):  # stored as sent: `[[[...]]]` thousands deep is text, not a 500
        return [value]
    return [str(item) for item in decoded] if isinstance(decoded, list) else [str(decoded)]


@functools.lru_cache(maxsize=1 << 16)
def _string_tuple(value: str) -> tuple[str, ...]:
    """`string_list` of a stored text, cached: patterns share their ancestors, reasons and techniques."""
    return tuple(string_list(value))


def _typed(text: str) -> Any:
    """An attribute value as stored (text) back to what it was sent as: arrays, booleans, numbers."""
    if text in ("true", "false"):
        return text == "true"
    if text.startswith("["):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return text
    return text


def _literal(text: str) -> str:
    """A ClickHouse string literal, for SQL shown to a person (queries run with bound parameters)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
