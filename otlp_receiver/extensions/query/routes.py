"""The query extension's HTTP routes, on the receivers' HTTP port, for the caller's tenant:

`POST /telemetry/security/search` with `{"query": "...", "limit": N, "workload": "..."}` and
`GET /api/anomalies?since=...&min_score=...&workload=...&limit=...` answer `{"results": [...]}`.
Bad input is a 400 with `{"error": ...}`; a table that cannot be read (ClickHouse down), a 503.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from core.confmap import Duration
from otlp_receiver.component import DEFAULT_TENANT, HttpRoute, PermanentError, RetryableError, Routes
from otlp_receiver.query.service import MAX_LIMIT, MAX_QUERY_CHARS, QueryService

log = logging.getLogger(__name__)

JSON = "application/json"
Reply = tuple[int, str, bytes]


class BadQuery(ValueError):
    pass


def build(query_service: Callable[[], QueryService]) -> Routes:
    """The routes, asking `query_service()` for the (lazily opened) QueryService on each request."""

    def search(tenant: str | None, _query: dict[str, list[str]], body: bytes) -> Reply:
        try:
            request = _search_request(body)
        except BadQuery as exc:
            return 400, JSON, _json({"error": str(exc)})
        return _answer(query_service, lambda q: q.search(tenant or DEFAULT_TENANT, request["query"],
                                                          request["limit"], request["workload"]))

    def anomalies(tenant: str | None, query: dict[str, list[str]], _body: bytes) -> Reply:
        try:
            since = _since(_one(query, "since"))
            min_score = _number(_one(query, "min_score"), "min_score", 0.0)
            limit = _limit(_one(query, "limit"), 50)
        except BadQuery as exc:
            return 400, JSON, _json({"error": str(exc)})
        workload = _one(query, "workload")
        return _answer(query_service, lambda q: q.anomalies(tenant or DEFAULT_TENANT, since, min_score, workload,
                                                             limit))

    return {
        ("POST", "/telemetry/security/search"): HttpRoute(search),
        ("GET", "/api/anomalies"): HttpRoute(anomalies),
    }


def _answer(query_service: Callable[[], QueryService], ask: Callable[[QueryService], list[dict[str, Any]]]) -> Reply:
    try:
        service = query_service()
    except Exception as exc:
        log.exception("query service unavailable")
        return 503, JSON, _json({"error": f"query service unavailable: {exc}"})
    try:
        results = ask(service)
    except ValueError as exc:
        return 400, JSON, _json({"error": str(exc)})
    except (RetryableError, PermanentError) as exc:  # the table's ClickHouse is down or refused the query
        return 503, JSON, _json({"error": f"query failed: {exc}"})
    return 200, JSON, _json({"results": results})


def _search_request(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadQuery(f"body is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise BadQuery("body is JSON nested too deeply") from exc
    if not isinstance(document, dict):
        raise BadQuery('expected {"query": "...", "limit": N, "workload": "..."}')
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


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _number(value: str | None, name: str, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError as exc:
        raise BadQuery(f"{name} must be a number") from exc
    if not math.isfinite(number):
        raise BadQuery(f"{name} must be finite")
    return number


def _limit(value: str | None, default: int) -> int:
    if value is None:
        return default
    # isascii: str.isdigit alone accepts digits int() refuses, such as "²".
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_LIMIT:
        raise BadQuery(f"limit must be an integer 1..{MAX_LIMIT}")
    return int(value)


def _since(value: str | None) -> float | None:
    """Epoch seconds, an ISO 8601 time, or a duration back from now (`15m`, `24h`)."""
    if value is None or value == "":
        return None
    since = _parse_since(value)
    if not 0 <= since <= _LATEST_SINCE:  # inf, nan, 1e300: the query's Int64 nanoseconds cannot hold them
        raise BadQuery("since must be a time between 1970 and 2262")
    return since


_LATEST_SINCE = 9223372036.0  # 2262-04-11, the last second of Int64 nanoseconds


def _parse_since(value: str) -> float:
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
        raise BadQuery("since must be epoch seconds, an ISO 8601 time or a duration like 24h") from exc


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), default=str).encode("utf-8")
