"""auditd records, one line per log record as the Collector's filelog receiver ships `audit.log`,
assembled into exec events.

A line is `[node=<host> ]type=<TYPE> msg=audit(<seconds>.<fraction>:<serial>):? <key>=<value> ...`
(`DAEMON_*` records have no colon after the header; `log_format=ENRICHED` appends upper-case
interpretations such as `EUID="www-data"` after a group-separator byte; userspace records nest
fields in `msg='...'`, read as fields of the line). The records of one event share the serial and
come in the kernel's order: `SYSCALL`, `EXECVE` (one or more records when argv is long), `CWD`,
`PATH` x `items`, `PROCTITLE`, then `EOE` where the log has it. The assembler keeps them per
(tenant, host, serial), across batches, and emits the exec on the record that completes it: the
`PROCTITLE` or `EOE` that ends the event, or the last `PATH` the `SYSCALL` announced (`items=N`), or
with no `items=` the `EXECVE` with the whole argv. The records that do not complete it pass as
`auditd_partial`; other record types (logins, `DAEMON_CONFIG`, AVC, ...) as `auditd_other`. A record
whose text holds several lines (the `recombine` operator) is read line by line.

Values the kernel hex-encodes (argv with spaces, quotes or control bytes, `comm`, `exe`, `cwd`, path
`name`, `proctitle`, and `cmd` of `USER_CMD`) are decoded; an argument split into `aN[0]`, `aN[1]`...
(over several records too) is joined before decoding.

Every parse is linear: bounded regular expressions whose every attempt fails in constant time, and
lines over `MAX_LINE` are refused (`invalid`) before any field is read. What waits for its other
records is bounded by count and by bytes, per (tenant, host) and in total; the oldest is evicted
first, and evictions are counted. Past the total, the tenant with the most waiting gives way (its least
recently used host's oldest event): another tenant's 11,000 incomplete events once evicted a pending exec.
"""

from __future__ import annotations

import posixpath
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from core import semconv
from core.event import MAX_ARGS
from otlp_receiver.normalize import eventtime
from otlp_receiver.normalize.fields import Found, executable, identifier

MAX_LINE = 64 * 1024  # characters of one line; the kernel's records stay under 9 KiB
MAX_LINES = 64  # lines read from one record's text
MAX_EVENT_BYTES = 256 * 1024  # line characters kept for one event; more is dropped, the event flagged
MAX_PATHS = 64  # PATH records kept for one event
# What waits for its other records: events and line characters, per (tenant, host) and in total.
MAX_PENDING = 10_000
MAX_PENDING_BYTES = 32 * 1024 * 1024
MAX_HOST_PENDING = 1_000
MAX_HOST_PENDING_BYTES = 4 * 1024 * 1024

_HEADER_WINDOW = 1024  # the header starts within this many characters (after `node=` or a syslog prefix)
_HEADER = re.compile(r"type=(?P<type>[A-Z0-9_]{1,40}|UNKNOWN\[\d{1,10}\]) msg=audit\("
                     r"(?P<seconds>\d{1,12})(?:\.(?P<fraction>\d{1,9}))?:(?P<serial>\d{1,20})\):?")
_NODE = re.compile(r"node=(\S{1,255})\s{1,8}$")
# A key starts a token (line start, whitespace, or the quote of a nested msg='...'). A value is
# "quoted" or runs to whitespace or a quote. Every failed attempt costs at most the 64 characters of a
# key, or one scan to the end of the line for a quote that is never closed (only the last one can be).
_FIELD = re.compile(r"(?<![^\s'])([A-Za-z0-9_-]{1,64}(?:\[\d{1,6}\])?)=(\"[^\"]*\"|[^\s']*)")
_HEX = re.compile(r"(?:[0-9A-F]{2})+")  # the kernel writes upper-case hex
_HEX_ENCODED = frozenset({"comm", "exe", "cwd", "name", "proctitle", "cmd"})
_ARGUMENT = re.compile(r"a\d{1,6}")  # EXECVE's argv (SYSCALL's a0..a3 are numbers in hex, not text)
_CHUNK = re.compile(r"a\d{1,6}\[\d{1,6}\]")

_ASSEMBLED = frozenset({"SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE", "EOE"})
_ENDS = frozenset({"PROCTITLE", "EOE"})


@dataclass(slots=True)
class AuditRecord:
    type: str
    serial: str
    time: eventtime.EventTime | None
    node: str
    fields: dict[str, str]


def find_header(line: str) -> re.Match[str] | None:
    return _HEADER.search(line, 0, _HEADER_WINDOW + 128)


def parse_line(line: str) -> AuditRecord | None:
    """One audit line, or None if it is not one. Linear in the line's length, whatever it holds."""
    header = find_header(line)
    if header is None:
        return None
    node = _NODE.search(line[max(0, header.start() - 300):header.start()])
    time = eventtime.from_epoch(header["seconds"], header["fraction"] or "")
    return AuditRecord(header["type"], header["serial"], time, node[1] if node else "",
                       parse_fields(line, header.end(), header["type"] == "EXECVE"))


def parse_fields(line: str, start: int = 0, execve: bool = False) -> dict[str, str]:
    """The `key=value` fields from `start` on; the first of a repeated key wins (the record's own,
    before those of a nested `msg='...'`)."""
    fields: dict[str, str] = {}
    for match in _FIELD.finditer(line, start):
        key, raw = match.groups()
        if key not in fields:
            fields[key] = _value(key, raw, execve)
    return fields


def _value(key: str, raw: str, execve: bool) -> str:
    if execve and _CHUNK.fullmatch(key):
        return raw  # a piece of a split argument: decoded once joined (`argv`)
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        return raw[1:-1]
    if (key in _HEX_ENCODED or (execve and _ARGUMENT.fullmatch(key))) and _HEX.fullmatch(raw):
        return _decoded(bytes.fromhex(raw))
    return raw


def _decoded(data: bytes) -> str:
    # NUL separates proctitle's arguments.
    return data.decode("utf-8", "replace").replace("\x00", " ")


def _chunk_bytes(raw: str) -> bytes:
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        return raw[1:-1].encode("utf-8", "surrogatepass")
    if _HEX.fullmatch(raw):
        return bytes.fromhex(raw)
    return raw.encode("utf-8", "surrogatepass")


def argv(execve: dict[str, str]) -> tuple[list[str], bool]:
    """(argv, whether all of it is there): at most `MAX_ARGS` + 1 arguments (the event's bound cuts and
    flags the rest), split arguments joined from their pieces."""
    count = identifier(execve.get("argc")) or 0
    args, complete = [], _args_complete(execve, count)
    for index in range(min(count, MAX_ARGS + 1)):
        whole = execve.get(f"a{index}")
        if whole is not None:
            args.append(whole)
            continue
        pieces = []
        while (piece := execve.get(f"a{index}[{len(pieces)}]")) is not None:
            pieces.append(_chunk_bytes(piece))
        args.append(_decoded(b"".join(pieces)))
    return args, complete


def _args_complete(execve: dict[str, str], count: int) -> bool:
    """Whether the last argument arrived whole (the kernel logs argv in order, across records)."""
    if count == 0:
        return "argc" in execve
    last = count - 1
    if f"a{last}" in execve:
        return True
    if f"a{last}[0]" not in execve:
        return False
    expected = identifier(execve.get(f"a{last}_len"))
    if expected is None:
        return True  # the kernel always writes it; without it the pieces cannot be counted
    pieces, index = 0, 0
    while (piece := execve.get(f"a{last}[{index}]")) is not None:
        pieces += len(_chunk_bytes(piece))
        index += 1
    return pieces >= expected


@dataclass(slots=True)
class _Event:
    time: eventtime.EventTime | None
    node: str
    records: dict[str, dict[str, str]] = field(default_factory=dict)  # SYSCALL, EXECVE (merged), CWD, PROCTITLE
    paths: list[dict[str, str]] = field(default_factory=list)
    size: int = 0
    ended: bool = False
    truncated: bool = False

    def merge(self, record: AuditRecord, size: int) -> int:
        """Adds the record; returns the characters kept."""
        self.ended = self.ended or record.type in _ENDS
        if self.size + size > MAX_EVENT_BYTES:
            self.truncated = True
            return 0
        if record.type == "PATH":
            if len(self.paths) >= MAX_PATHS:
                return 0
            self.paths.append(record.fields)
        elif record.type == "EXECVE":
            self.records.setdefault("EXECVE", {}).update(record.fields)
        elif record.type != "EOE":
            self.records[record.type] = record.fields
        self.size += size
        return size

    def outcome(self) -> str:
        """"exec" when complete, "drop" when it ended (or showed) without being an exec, else "wait"."""
        syscall, execve = self.records.get("SYSCALL"), self.records.get("EXECVE")
        if self.ended:
            return "exec" if syscall is not None and execve is not None else "drop"
        if syscall is None:
            return "wait"
        items = identifier(syscall.get("items"))
        if execve is None:
            # The kernel logs EXECVE before CWD and PATH: PATHs without it are no exec's.
            return "drop" if items and len(self.paths) >= min(items, MAX_PATHS) else "wait"
        if not _args_complete(execve, identifier(execve.get("argc")) or 0):
            return "wait"
        return "exec" if not items or len(self.paths) >= min(items, MAX_PATHS) else "wait"


@dataclass(slots=True)
class _Host:
    events: OrderedDict[str, _Event] = field(default_factory=OrderedDict)  # by serial, oldest first
    size: int = 0


class AuditAssembler:
    """Thread-safe; one per pipeline. Keys include tenant and host so streams never mix."""

    def __init__(self, max_pending: int = MAX_PENDING, max_pending_bytes: int = MAX_PENDING_BYTES,
                 max_host_pending: int = MAX_HOST_PENDING,
                 max_host_pending_bytes: int = MAX_HOST_PENDING_BYTES) -> None:
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.max_host_pending = max_host_pending
        self.max_host_pending_bytes = max_host_pending_bytes
        # Per tenant, its hosts least recently used first; and each tenant's events waiting.
        self._hosts: dict[str, OrderedDict[str, _Host]] = {}
        self._waiting: dict[str, int] = {}
        self._count = 0
        self._size = 0
        self._evicted = 0
        self._lock = threading.Lock()

    def add(self, tenant: str, host: str, text: str) -> Found | None:
        """What the record's text is (None: no audit line); for the line that completes an exec, its
        attributes. A text of several lines (the Collector's `recombine` operator joins the records of an
        event) is read line by line, at most `MAX_LINES` of them, and the record carries the first exec
        they complete."""
        if "\n" not in text:
            return self._add(tenant, host, text)
        found = None
        for line in text.split("\n", MAX_LINES)[:MAX_LINES]:
            result = self._add(tenant, host, line)
            if result is not None and (found is None or found.kind != "auditd"):
                found = result
        return found

    def _add(self, tenant: str, host: str, line: str) -> Found | None:
        if len(line) > MAX_LINE:
            return Found("invalid") if find_header(line) else None
        record = parse_line(line)
        if record is None:
            return None
        if record.type not in _ASSEMBLED:
            return Found("auditd_other", None, record.time)
        host = host or record.node
        with self._lock:
            event = self._merge((tenant, host), record, len(line))
        if event is None:
            return Found("auditd_partial", None, record.time)
        return Found("auditd", _attributes(event, host), record.time)

    def pending(self) -> tuple[int, int]:
        """(events waiting for more records, their line characters)."""
        return self._count, self._size

    def take_evicted(self) -> int:
        """Events evicted by the bounds since the last call."""
        with self._lock:
            evicted, self._evicted = self._evicted, 0
        return evicted

    def _merge(self, key: tuple[str, str], record: AuditRecord, size: int) -> _Event | None:
        """The completed exec event, if this record completed one."""
        tenant, name = key
        hosts = self._hosts.get(tenant)
        host = hosts.get(name) if hosts is not None else None
        if host is None:
            if record.type in _ENDS:
                return None  # the end of an event not held: no exec, or one already emitted
            host = self._hosts.setdefault(tenant, OrderedDict())[name] = _Host()
        self._hosts[tenant].move_to_end(name)
        event = host.events.get(record.serial)
        if event is None:
            if record.type in _ENDS:
                return None
            event = host.events[record.serial] = _Event(record.time, record.node)
            self._count += 1
            self._waiting[tenant] = self._waiting.get(tenant, 0) + 1
        host.events.move_to_end(record.serial)
        kept = event.merge(record, size)
        host.size += kept
        self._size += kept
        outcome = event.outcome()
        if outcome != "wait":
            self._remove(key, host, record.serial)
            return event if outcome == "exec" else None
        self._evict(key, host)
        return None

    def _remove(self, key: tuple[str, str], host: _Host, serial: str) -> None:
        event = host.events.pop(serial)
        host.size -= event.size
        self._size -= event.size
        self._count -= 1
        self._waiting[key[0]] -= 1
        self._drop_if_empty(key, host)

    def _drop_if_empty(self, key: tuple[str, str], host: _Host) -> None:
        tenant, name = key
        if not host.events:
            del self._hosts[tenant][name]
        if not self._hosts[tenant]:
            del self._hosts[tenant], self._waiting[tenant]

    def _evict(self, key: tuple[str, str], host: _Host) -> None:
        while host.events and (len(host.events) > self.max_host_pending or host.size > self.max_host_pending_bytes):
            self._evict_oldest(key, host)
        while self._hosts and (self._count > self.max_pending or self._size > self.max_pending_bytes):
            heaviest = max(self._waiting, key=self._waiting.__getitem__)  # a few tenants: the auth's list
            name, oldest = next(iter(self._hosts[heaviest].items()))
            self._evict_oldest((heaviest, name), oldest)

    def _evict_oldest(self, key: tuple[str, str], host: _Host) -> None:
        self._remove(key, host, next(iter(host.events)))
        self._evicted += 1


def _attributes(event: _Event, host: str) -> dict[str, Any]:
    syscall, execve = event.records["SYSCALL"], event.records["EXECVE"]
    args, complete = argv(execve)
    cwd = event.records.get("CWD", {}).get("cwd")
    path, name, deleted = executable(syscall.get("exe") or _path_of_item0(event.paths, cwd), syscall.get("comm"))
    proctitle = event.records.get("PROCTITLE", {}).get("proctitle")
    return {
        semconv.PROCESS_EXECUTABLE_NAME: name,
        semconv.PROCESS_EXECUTABLE_PATH: path,
        semconv.PROCESS_EXECUTABLE_DELETED: deleted,
        semconv.PROCESS_COMMAND_ARGS: args,
        semconv.PROCESS_COMMAND_LINE: " ".join(args) or proctitle,
        semconv.PROCESS_COMMAND_ARGS_TRUNCATED: event.truncated or not complete,
        semconv.PROCESS_PID: identifier(syscall.get("pid")),
        semconv.PROCESS_PARENT_PID: identifier(syscall.get("ppid")),
        semconv.PROCESS_USER_ID: identifier(syscall.get("euid")),
        semconv.PROCESS_REAL_USER_ID: identifier(syscall.get("uid")),
        semconv.PROCESS_USER_NAME: syscall.get("EUID"),  # log_format=ENRICHED: the euid's name
        semconv.PROCESS_WORKING_DIRECTORY: cwd,
        semconv.HOST_NAME: host or event.node,
    }


def _path_of_item0(paths: list[dict[str, str]], cwd: str | None) -> str | None:
    """The file execve was given (PATH item 0), where SYSCALL has no `exe`; relative to the CWD record."""
    name = next((p.get("name") for p in paths if p.get("item") == "0"), None)
    if not name or name == "(null)":
        return None
    return posixpath.normpath(posixpath.join(cwd, name)) if cwd and not name.startswith("/") else name
