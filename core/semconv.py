"""The one attribute vocabulary of procsight records, and the mapping between it and `ProcessEvent`.

Names follow the OpenTelemetry semantic conventions where they have one (`process.*`, `host.*`,
`container.id`, `network.transport`) and ECS-style `source.*` / `destination.*` for socket ends.
`event_to_attributes` is what the agent sends and what the receiver adds to third-party records;
`event_from_attributes` reads the same keys back (records, and the JSONL of `procsight score`).
docs/records.md documents every key for senders and query writers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.event import (
    CONNECTION,
    EXEC,
    LISTEN,
    MAX_ARGS,
    MAX_COMMAND_LINE,
    InvalidEvent,
    ProcessEvent,
    bounded_command,
)

# -- resource ---------------------------------------------------------------------------------------
SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"
HOST_NAME = "host.name"
HOST_ID = "host.id"
WORKLOAD = "procsight.workload"
AGENT_SERVICE_NAME = "procsight-agent"  # the `service.name` of procsight's own agent

# -- record ----------------------------------------------------------------------------------------
EVENT_NAME = "event.name"  # also in the LogRecord's EventName field
PROCESS_PID = "process.pid"
PROCESS_PARENT_PID = "process.parent_pid"
PROCESS_EXECUTABLE_NAME = "process.executable.name"
PROCESS_EXECUTABLE_PATH = "process.executable.path"
PROCESS_EXECUTABLE_DELETED = "process.executable.deleted"
PROCESS_COMMAND_LINE = "process.command_line"
PROCESS_COMMAND_ARGS = "process.command_args"
PROCESS_COMMAND_ARGS_TRUNCATED = "process.command_args_truncated"
PROCESS_USER_ID = "process.user.id"  # the effective uid, as the semantic conventions define it
PROCESS_REAL_USER_ID = "process.real_user.id"
PROCESS_USER_NAME = "process.user.name"
PROCESS_PARENT_EXECUTABLE_NAME = "process.parent.executable.name"
PROCESS_WORKING_DIRECTORY = "process.working_directory"
PROCESS_CPU_UTILIZATION = "process.cpu.utilization"  # percent of one core, `process.cpu` events
CONTAINER_ID = "container.id"
NETWORK_TRANSPORT = "network.transport"
SOURCE_ADDRESS = "source.address"
SOURCE_PORT = "source.port"
DESTINATION_ADDRESS = "destination.address"
DESTINATION_PORT = "destination.port"
# What the exec'd process's stdin and stdout are (procsight's own; no semantic convention exists):
# `pipe:<inode>`, `socket:<inode>`, `tty`, `file:<path>`. Two processes sharing a pipe inode are piped.
PROCESS_STDIN = "procsight.stdin"
PROCESS_STDOUT = "procsight.stdout"

# -- the receiver's verdict, added to every scored record ----------------------------------------------
ANOMALY_SCORE = "anomaly_score"
ANOMALY_SEVERITY = "anomaly_severity"
ANOMALY_REASONS = "anomaly_reasons"
ANOMALY_WORKLOAD = "anomaly_workload"
ANOMALY_NEAREST = "anomaly_nearest"
ANOMALY_MODEL = "anomaly_model"
ANOMALY_INCIDENT = "anomaly_incident"  # id of the chain of processes the event belongs to
ANOMALY_INCIDENT_SCORE = "anomaly_incident_score"  # the chain's strongest event, raised by the evidence across it
ANOMALY_TECHNIQUES = "anomaly_techniques"  # ATT&CK technique ids of the evidence, strongest first
PROCESS_ANCESTORS = "process.ancestors"  # executable names up the parent chain, nearest first
RECORD_ID = "procsight.record_id"  # written by the clickhouse exporter: "{batch id}:{ordinal}", exactly-once key
VERDICT_KEYS = frozenset({ANOMALY_SCORE, ANOMALY_SEVERITY, ANOMALY_REASONS, ANOMALY_WORKLOAD, ANOMALY_NEAREST,
                          ANOMALY_MODEL, ANOMALY_INCIDENT, ANOMALY_INCIDENT_SCORE, ANOMALY_TECHNIQUES})

# Keys of the JSONL shape only (`procsight score` input): the event time in epoch seconds.
_TIME_KEYS = ("ts", "timestamp")
# Characters kept of any other text field (PATH_MAX): scoring keeps paths, names and stdio in its process table
# and caches, where a sender's 15 MB working directory would stay for as long as the process is remembered.
MAX_FIELD = 4096
LATEST_TIME = 9223372036.0  # 2262-04-11: the last second whose nanoseconds an Int64 (ClickHouse, queries) holds


def event_to_attributes(event: ProcessEvent) -> dict[str, Any]:
    """An event as record attributes: the event name, executable and command line always, the rest when known."""
    attributes: dict[str, Any] = {EVENT_NAME: event.event_name, PROCESS_EXECUTABLE_NAME: event.executable_name,
                                  PROCESS_COMMAND_LINE: event.command_line}
    optional = (
        (PROCESS_COMMAND_ARGS, event.command_args),
        (PROCESS_PID, event.pid),
        (PROCESS_PARENT_PID, event.parent_pid),
        (PROCESS_EXECUTABLE_PATH, event.executable_path),
        (PROCESS_USER_ID, event.user_id),
        (PROCESS_REAL_USER_ID, event.real_user_id),
        (PROCESS_USER_NAME, event.user_name),
        (PROCESS_PARENT_EXECUTABLE_NAME, event.parent_name),
        (PROCESS_WORKING_DIRECTORY, event.working_directory),
        (CONTAINER_ID, event.container_id),
        (PROCESS_CPU_UTILIZATION, event.cpu_percent),
        (NETWORK_TRANSPORT, event.transport),
        (SOURCE_ADDRESS, event.local_address),
        (SOURCE_PORT, event.local_port),
        (DESTINATION_ADDRESS, event.remote_address),
        (DESTINATION_PORT, event.remote_port),
        (PROCESS_STDIN, event.stdin),
        (PROCESS_STDOUT, event.stdout),
    )
    attributes.update((key, value) for key, value in optional if value is not None and value != "" and value != ())
    if event.command_args_truncated:
        attributes[PROCESS_COMMAND_ARGS_TRUNCATED] = True
    if event.executable_deleted:
        attributes[PROCESS_EXECUTABLE_DELETED] = True
    return attributes


def event_from_attributes(attrs: Mapping[str, Any]) -> ProcessEvent:
    """An event from flat attributes (values as JSON or OTLP give them; numbers may be strings of digits).

    Raises InvalidEvent without an executable (name, path or argv[0]). An exec with no command line and no
    argv (argc 0, how pwnkit-style exploits start a program) is read as its executable's path: scored on what ran.
    """
    args = _as_args(attrs.get(PROCESS_COMMAND_ARGS))
    command_line = _as_str(attrs.get(PROCESS_COMMAND_LINE), MAX_COMMAND_LINE + 1) or " ".join(args[:MAX_ARGS])
    path = _as_str(attrs.get(PROCESS_EXECUTABLE_PATH))
    name = _as_str(attrs.get(PROCESS_EXECUTABLE_NAME)) or _basename(path) or (_basename(args[0]) if args else "")
    if not name:
        raise InvalidEvent(f"needs {PROCESS_EXECUTABLE_NAME}, {PROCESS_EXECUTABLE_PATH} or {PROCESS_COMMAND_ARGS}")
    command_line = command_line or path or name
    command_line, args, truncated = bounded_command(command_line, args)
    return ProcessEvent(
        executable_name=name,
        command_line=command_line,
        command_args=args,
        event_name=_event_name(_as_str(attrs.get(EVENT_NAME) or attrs.get("EventName"))),
        executable_path=path,
        parent_name=_as_str(attrs.get(PROCESS_PARENT_EXECUTABLE_NAME)),
        ancestors=_as_args(attrs.get(PROCESS_ANCESTORS))[:MAX_ARGS],
        pid=_as_int(attrs.get(PROCESS_PID)),
        parent_pid=_as_int(attrs.get(PROCESS_PARENT_PID)),
        user_id=_as_int(attrs.get(PROCESS_USER_ID)),
        real_user_id=_as_int(attrs.get(PROCESS_REAL_USER_ID)),
        user_name=_as_str(attrs.get(PROCESS_USER_NAME)),
        working_directory=_as_str(attrs.get(PROCESS_WORKING_DIRECTORY)),
        container_id=_as_str(attrs.get(CONTAINER_ID)),
        host=_as_str(attrs.get(HOST_NAME)),
        timestamp=_as_time(next((attrs[k] for k in _TIME_KEYS if k in attrs), None)),
        command_args_truncated=truncated or bool(attrs.get(PROCESS_COMMAND_ARGS_TRUNCATED, False)),
        executable_deleted=bool(attrs.get(PROCESS_EXECUTABLE_DELETED, False)),
        cpu_percent=_as_float(attrs.get(PROCESS_CPU_UTILIZATION)),
        transport=_as_str(attrs.get(NETWORK_TRANSPORT)),
        local_address=_as_str(attrs.get(SOURCE_ADDRESS)),
        local_port=_as_int(attrs.get(SOURCE_PORT)),
        remote_address=_as_str(attrs.get(DESTINATION_ADDRESS)),
        remote_port=_as_int(attrs.get(DESTINATION_PORT)),
        stdin=_as_str(attrs.get(PROCESS_STDIN)),
        stdout=_as_str(attrs.get(PROCESS_STDOUT)),
    )


# Spellings of the scored event names that sources use (`EXEC`, `execve`): read as the name, so a record is
# not left unscored for its case.
_EVENT_ALIASES = {"exec": EXEC, "execve": EXEC, "process_exec": EXEC, "process.exec": EXEC, "process.execve": EXEC,
                  "network.listen": LISTEN, "network.connection": CONNECTION}


def _event_name(name: str) -> str:
    return _EVENT_ALIASES.get(name.strip().lower(), name) if name else EXEC


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _as_str(value: Any, limit: int = MAX_FIELD) -> str:
    if value is None:
        return ""
    return (value if isinstance(value, str) else str(value))[:limit]


def _as_args(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value[:MAX_COMMAND_LINE + 1].split())
    if isinstance(value, Sequence):
        return tuple(_as_str(v, MAX_COMMAND_LINE + 1) for v in value[:MAX_ARGS + 1])
    return ()


def _as_int(value: Any) -> int | None:
    number = _as_number(value, int)
    return None if number is None else int(number)


def _as_float(value: Any) -> float | None:
    return _as_number(value, float)


def _as_time(value: Any) -> float:
    """Seconds since the epoch; 0.0 (unknown: scoring takes the time it sees the event) for anything that is no
    such time. An infinite time would keep a chain's window open for ever."""
    seconds = _as_float(value)
    return seconds if seconds is not None and 0.0 < seconds <= LATEST_TIME else 0.0


def _as_number(value: Any, kind: type[int] | type[float]) -> int | float | None:
    """A number from JSON or attribute values (strings of digits included); None when it is not one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        return None
