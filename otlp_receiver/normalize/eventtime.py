"""The event's own time, as each source writes it, and the rule that puts it on the record.

OTLP has two times: `ObservedTimestamp` (when the collection system saw the record; the receiver
stamps it on arrival when the sender did not) and `Timestamp` (when the event happened). Like the
Collector's parsers (`timestamp:` of `json_parser`, `regex_parser`), the normaliser sets `Timestamp`
from the source's own time (Falco `time`, Tetragon `time`, ECS `@timestamp`, auditd
`msg=audit(<time>:...)`), under one rule (`stamp`):

- the record has no `Timestamp`: it becomes the source's time;
- the record has one that agrees with the source's time to the record's own precision (a parser that
  kept whole seconds of a syslog header, the source has milliseconds): the source's more precise time;
- otherwise the record's `Timestamp` stays: a sender that set one explicitly is not overruled.

Times outside 1980..2200 are not event times (counters, a unit gone wrong, hostile values) and are
ignored, so every stamped time fits OTLP's and ClickHouse's 64-bit nanoseconds. So is a source's time more
than FUTURE_SLACK ahead of when the record was observed: the triage views select by event time, and an alert
dated ten years ahead would never be listed (the receiver mends a record's own `Timestamp` alike:
receivers/otlp/decode.py).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from typing import Any

MIN_UNIX_NANO = 315_532_800 * 10**9  # 1980-01-01
MAX_UNIX_NANO = 7_258_118_400 * 10**9  # 2200-01-01
FUTURE_SLACK_NANO = 15 * 60 * 10**9  # clocks drift by seconds; ahead of arrival by more, a time is not the event's

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9})\d{0,9})?(?:([Zz])|([+-])(\d{2}):?(\d{2}))")


@dataclass(frozen=True, slots=True)
class EventTime:
    unix_nano: int
    digits: int  # fractional-second digits the source wrote: 0 (seconds) .. 9 (nanoseconds)

    @property
    def seconds(self) -> float:
        return self.unix_nano / 1e9


def _bounded(unix_nano: int, digits: int) -> EventTime | None:
    return EventTime(unix_nano, digits) if MIN_UNIX_NANO <= unix_nano < MAX_UNIX_NANO else None


def from_rfc3339(value: Any) -> EventTime | None:
    """`2026-11-23T14:02:12.123456789Z`, any offset, up to nanoseconds (further digits ignored)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    match = _RFC3339.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_hours, off_minutes = match.groups()
    fields = (int(year), int(month), int(day), int(hour), int(minute), int(second))
    if not (1900 <= fields[0] <= 2300 and 1 <= fields[1] <= 12 and 1 <= fields[2] <= 31 and fields[3] < 24
            and fields[4] < 60 and fields[5] <= 60):  # (calendar.timegm raises on year 0)
        return None
    seconds = calendar.timegm(fields)
    if not zulu:
        offset = int(off_hours) * 3600 + int(off_minutes) * 60
        seconds -= offset if sign == "+" else -offset
    fraction = fraction or ""
    return _bounded(seconds * 10**9 + int(fraction.ljust(9, "0")), len(fraction))


def from_epoch(seconds: str, fraction: str = "") -> EventTime | None:
    """auditd's `1170021493.123`: seconds and the fraction's digits, as text."""
    return _bounded(int(seconds) * 10**9 + int(fraction.ljust(9, "0")[:9] or "0"), min(len(fraction), 9))


def from_unix_nano(value: Any) -> EventTime | None:
    """An integer of nanoseconds (Falco's `evt.time`)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return _bounded(value, 9)


def _digits(unix_nano: int) -> int:
    """The precision a timestamp was written with, read from its trailing zeros."""
    digits = 9
    while digits and unix_nano % 10 ** (10 - digits) == 0:
        digits -= 1
    return digits


def stamp(record: Any, time: EventTime) -> None:
    """Sets the LogRecord's `time_unix_nano` to the event's time under the rule of this module's docstring."""
    observed = record.observed_time_unix_nano
    if observed and time.unix_nano > observed + FUTURE_SLACK_NANO:
        return
    current = record.time_unix_nano
    if current:
        held = _digits(current)
        unit = 10 ** (9 - held)
        if time.digits <= held or time.unix_nano - time.unix_nano % unit != current:
            return
    record.time_unix_nano = time.unix_nano
