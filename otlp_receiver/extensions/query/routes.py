"""The query extension's HTTP routes, on the receivers' HTTP port. Every `/api` route and search answer for
the caller's tenant (with `auth`, the bearer token's) in JSON; bad input is a 400 with `{"error": ...}`, a
table that cannot be read (ClickHouse down) a 503.

| route | answer |
|---|---|
| `POST /telemetry/security/search` `{"query", "limit", "workload"}` | `{"results", "incomplete"}` best match first |
| `GET /api/anomalies?since&until&min_score&workload&host&severity&group&limit` | `{"results": [...]}` highest first |
| `GET /api/event?record_id=` | the event, its incident and process tree, raw attributes, SQL |
| `GET /api/volume?since&until&workload&host&step` | `{"buckets": [{"time", "none", "warn", "alert"}]}` |
| `GET /api/facets?since&until` | `{"workloads": [...], "hosts": [...]}` |
| `GET /api/baselines` | `{"baselines": [...]}` of the anomaly processors feeding the table |
| `POST /api/acknowledge` `{"record_id"}` | learns the event as normal in its workload's baseline, now |

The page (`GET /ui/`, its files in `page/`) holds no data and needs no token; it asks the routes above
with the token a person gives it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from core import semconv
from core.confmap import Duration
from core.otlpwire import mend_lone_surrogates
from otlp_receiver.component import DEFAULT_TENANT, BaselineKeeper, HttpRoute, PermanentError, RetryableError, Routes
from otlp_receiver.query.incidents import SEVERITIES
from otlp_receiver.query.service import MAX_GROUPS, MAX_LIMIT, MAX_QUERY_CHARS, Filter, QueryService

log = logging.getLogger(__name__)

JSON = "application/json"
PAGE_DIR = Path(__file__).resolve().parent / "page"
PAGE_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
              "app.css": "text/css; charset=utf-8"}
Reply = tuple[int, str, bytes]
Query = dict[str, list[str]]


class BadQuery(ValueError):
    pass


def build(query_service: Callable[[], QueryService], keepers: Callable[[], list[BaselineKeeper]],
          page: bool = True) -> Routes:
    """The routes, asking `query_service()` for the (lazily opened) QueryService on each request and
    `keepers()` for the anomaly processors whose baselines the page shows and teaches."""

    def ask(tenant: str | None, work: Callable[[QueryService, str], Any], missing: str = "") -> Reply:
        return _answer(query_service, lambda service: work(service, tenant or DEFAULT_TENANT), missing)

    def search(tenant: str | None, _query: Query, body: bytes) -> Reply:
        try:
            request = _search_request(body)
        except BadQuery as exc:
            return _error(400, str(exc))
        return ask(tenant, lambda q, t: q.search_answer(t, request["query"], request["limit"], request["workload"]))

    def anomalies(tenant: str | None, query: Query, _body: bytes) -> Reply:
        try:
            limit = _limit(_one(query, "limit"), 50, MAX_GROUPS)
            group = _one(query, "group") or "incident"
            if group not in ("incident", "pattern"):
                raise BadQuery("group must be incident or pattern")
            where = _filter(query, min_score=True)
        except BadQuery as exc:
            return _error(400, str(exc))
        return ask(tenant, lambda q, t: {"results": q.anomalies(where(t), limit, by_incident=group == "incident")})

    def event(tenant: str | None, query: Query, _body: bytes) -> Reply:
        record_id = _one(query, "record_id")
        if not record_id:
            return _error(400, "record_id is required")
        return ask(tenant, lambda q, t: q.event(t, record_id), f"no event {record_id!r}")

    def volume(tenant: str | None, query: Query, _body: bytes) -> Reply:
        try:
            where = _filter(query)
            step = int(_number(_one(query, "step"), "step", 300))
        except BadQuery as exc:
            return _error(400, str(exc))
        return ask(tenant, lambda q, t: {"step": step, "buckets": q.volume(where(t), step)})

    def facets(tenant: str | None, query: Query, _body: bytes) -> Reply:
        try:
            where = _filter(query)
        except BadQuery as exc:
            return _error(400, str(exc))
        return ask(tenant, lambda q, t: q.facets(where(t)))

    def baselines(tenant: str | None, _query: Query, _body: bytes) -> Reply:
        found = keepers()
        if not found:
            return _error(409, "no anomaly processor feeds this table: there are no baselines to show")
        try:
            return 200, JSON, _json({"baselines": [summary for keeper in found
                                                   for summary in keeper.baselines(tenant or DEFAULT_TENANT)]})
        except RuntimeError as exc:  # the scoring process is restarting
            return _error(503, f"baselines unavailable: {exc}")

    def acknowledge(tenant: str | None, _query: Query, body: bytes) -> Reply:
        try:
            record_id = _acknowledge_request(body)
        except BadQuery as exc:
            return _error(400, str(exc))
        found = keepers()
        if not found:
            return _error(409, "no anomaly processor feeds this table: there is no baseline to learn into")
        tenant = tenant or DEFAULT_TENANT
        try:
            workload, attributes = _run(query_service, lambda q: q.acknowledgeable(tenant, record_id),
                                        f"no event {record_id!r}")
        except _Refused as exc:
            return _error(exc.status, str(exc))
        try:
            for keeper in found:
                keeper.acknowledge(tenant, workload, attributes)
        except ValueError as exc:
            return _error(400, f"cannot learn this event: {exc}")
        except RuntimeError as exc:
            return _error(503, f"acknowledge failed: {exc}")
        log.info("acknowledged %s as normal for %s/%s", record_id, tenant, workload)
        return 200, JSON, _json({"acknowledged": record_id, "workload": workload,
                                 "command_line": attributes.get(semconv.PROCESS_COMMAND_LINE, "")})

    routes: Routes = {
        ("POST", "/telemetry/security/search"): HttpRoute(search, data=True),
        ("GET", "/api/anomalies"): HttpRoute(anomalies, data=True),
        ("GET", "/api/event"): HttpRoute(event, data=True),
        ("GET", "/api/volume"): HttpRoute(volume, data=True),
        ("GET", "/api/facets"): HttpRoute(facets, data=True),
        ("GET", "/api/baselines"): HttpRoute(baselines, data=True),
        ("POST", "/api/acknowledge"): HttpRoute(acknowledge, data=True),
    }
    if page:
        routes.update(_page_routes())
    return routes


def _page_routes() -> Routes:
    """The page's files, read once. They hold no data, so they are served without a token."""
    routes: Routes = {}
    for name, content_type in PAGE_FILES.items():
        payload = (PAGE_DIR / name).read_bytes()
        routes[("GET", f"/ui/{name}")] = HttpRoute(lambda _t, _q, _b, p=payload, c=content_type: (200, c, p),
                                                   authenticated=False)
    index = routes[("GET", "/ui/index.html")]
    routes[("GET", "/ui/")] = index
    moved = b'<!doctype html><meta http-equiv="refresh" content="0; url=/ui/"><a href="/ui/">procsight</a>\n'
    for path in ("/", "/ui"):
        routes[("GET", path)] = HttpRoute(lambda _t, _q, _b: (200, "text/html; charset=utf-8", moved),
                                          authenticated=False)
    return routes


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _run(query_service: Callable[[], QueryService], ask: Callable[[QueryService], Any], missing: str = "") -> Any:
    """What `ask` answers, or _Refused with the status that says why not (None answered: 404 `missing`)."""
    try:
        service = query_service()
    except Exception as exc:
        log.exception("query service unavailable")
        raise _Refused(503, f"query service unavailable: {exc}") from exc
    try:
        answer = ask(service)
    except ValueError as exc:
        raise _Refused(400, str(exc)) from exc
    except (RetryableError, PermanentError) as exc:  # the table's ClickHouse is down or refused the query
        raise _Refused(503, f"query failed: {exc}") from exc
    if answer is None:
        raise _Refused(404, missing)
    return answer


def _answer(query_service: Callable[[], QueryService], ask: Callable[[QueryService], Any], missing: str = "") -> Reply:
    try:
        return 200, JSON, _json(_run(query_service, ask, missing))
    except _Refused as exc:
        return _error(exc.status, str(exc))


def _error(status: int, message: str) -> Reply:
    return status, JSON, _json({"error": message})


def _json_object(body: bytes, shape: str) -> dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except ValueError as exc:  # not UTF-8, not JSON, or an integer longer than Python converts (4,300 digits)
        raise BadQuery(f"body is not JSON: {str(exc)[:300]}") from exc
    except RecursionError as exc:
        raise BadQuery("body is JSON nested too deeply") from exc
    if not isinstance(document, dict):
        raise BadQuery(f"expected {shape}")
    # As stored (the receiver mends them alike); the database refuses them as parameters: a 503 before.
    return {key: mend_lone_surrogates(value) if isinstance(value, str) else value for key, value in document.items()}


def _search_request(body: bytes) -> dict[str, Any]:
    document = _json_object(body, '{"query": "...", "limit": N, "workload": "..."}')
    unknown = set(document) - {"query", "limit", "workload"}
    if unknown:
        raise BadQuery(f"unknown fields: {', '.join(sorted(unknown))}")
    text = document.get("query")
    if not isinstance(text, str) or not text.strip():
        raise BadQuery("query must be a non-empty string")
    if len(text) > MAX_QUERY_CHARS:
        raise BadQuery(f"query longer than {MAX_QUERY_CHARS} characters")
    workload = document.get("workload")
    if workload is not None and not isinstance(workload, str):
        raise BadQuery("workload must be a string")
    limit = document.get("limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise BadQuery(f"limit must be an integer 1..{MAX_LIMIT}")
    return {"query": text, "limit": limit, "workload": workload or None}


def _acknowledge_request(body: bytes) -> str:
    document = _json_object(body, '{"record_id": "..."}')
    unknown = set(document) - {"record_id"}
    if unknown:
        raise BadQuery(f"unknown fields: {', '.join(sorted(unknown))}")
    record_id = document.get("record_id")
    if not isinstance(record_id, str) or not record_id:
        raise BadQuery("record_id must be a non-empty string (the event's record_id)")
    return record_id


def _filter(query: Query, min_score: bool = False) -> Callable[[str], Filter]:
    """The Filter of a request's parameters, for the tenant given later."""
    since = _time(_one(query, "since"), "since")
    until = _time(_one(query, "until"), "until")
    severities = tuple(s.strip() for s in (_one(query, "severity") or ",".join(SEVERITIES)).split(",") if s.strip())
    if not severities or set(severities) - set(SEVERITIES):
        raise BadQuery(f"severity must be a comma-separated list of {', '.join(SEVERITIES)}")
    score = _number(_one(query, "min_score"), "min_score", 0.0) if min_score else 0.0
    workload, host = _one(query, "workload") or "", _one(query, "host") or ""
    return lambda tenant: Filter(tenant, since, until, workload, host, severities, score)


def _one(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _number(value: str | None, name: str, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError as exc:
        raise BadQuery(f"{name} must be a number") from exc
    if not math.isfinite(number):
        raise BadQuery(f"{name} must be finite")
    return number


def _limit(value: str | None, default: int, most: int) -> int:
    if value is None:
        return default
    # isascii: str.isdigit alone accepts digits int() refuses, such as "²".
    # len: int() refuses more than 4,300 digits with a ValueError (a 500 before this was checked).
    if not (value.isascii() and value.isdigit()) or len(value) > 9 or not 1 <= int(value) <= most:
        raise BadQuery(f"limit must be an integer 1..{most}")
    return int(value)


def _time(value: str | None, name: str) -> float | None:
    """Epoch seconds, an ISO 8601 time, or a duration back from now (`15m`, `24h`)."""
    if value is None or value == "":
        return None
    moment = _parse_time(value, name)
    if not 0 <= moment <= semconv.LATEST_TIME:  # inf, nan, 1e300: the query's Int64 nanoseconds cannot hold them
        raise BadQuery(f"{name} must be a time between 1970 and 2262")
    return moment


def _parse_time(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return time.time() - Duration(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise BadQuery(f"{name} must be epoch seconds, an ISO 8601 time or a duration like 24h") from exc


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), default=str).encode("utf-8")
