"""The process event, free of any wire format: what the agent captures and the scoring engine scores.

Its OTLP attribute names, in both directions, are in `core/semconv.py`; the record format is
documented in docs/records.md.
"""

from __future__ import annotations

from dataclasses import dataclass

EXEC = "process.exec"
CONNECTION = "network.connection"
LISTEN = "network.listen"
CPU_SAMPLE = "process.cpu"  # the agent's CPU sampler: a running process above the CPU threshold
SCORED_EVENT_NAMES = (EXEC, CONNECTION, LISTEN)  # what the receiver scores; other events pass through

# The bounds every event read from attributes is held to (core/semconv.py), whoever sent it: past them a
# command line or argv is cut and flagged `command_args_truncated`.
MAX_COMMAND_LINE = 8192  # characters of a command line, and of argv's arguments together
MAX_ARGS = 256  # argv entries, and ancestors


class InvalidEvent(ValueError):
    """An event lacks what scoring needs (the executable and the command line)."""


@dataclass(slots=True)
class ProcessEvent:
    """One process execution or network event of one process.

    Only `executable_name` and `command_line` are required; everything else is evidence when present.
    """

    executable_name: str
    command_line: str
    command_args: tuple[str, ...] = ()
    event_name: str = EXEC
    executable_path: str = ""
    parent_name: str = ""
    ancestors: tuple[str, ...] = ()  # executable names up the parent chain, nearest first
    pid: int | None = None
    parent_pid: int | None = None
    user_id: int | None = None  # effective uid: what the process may do
    real_user_id: int | None = None  # real uid: who started it; differs after a setuid exec
    user_name: str = ""
    working_directory: str = ""
    container_id: str = ""
    host: str = ""
    timestamp: float = 0.0  # seconds since the epoch
    command_args_truncated: bool = False
    executable_deleted: bool = False  # the backing file is gone ("(deleted)") or never existed
    cpu_percent: float | None = None
    transport: str = ""
    local_address: str = ""
    local_port: int | None = None
    remote_address: str = ""
    remote_port: int | None = None
    stdin: str = ""  # what fd 0 is: pipe:<inode>, socket:<inode>, tty, file:<path>; "" when unknown
    stdout: str = ""  # what fd 1 is, in the same form

    @property
    def args(self) -> tuple[str, ...]:
        """argv, falling back to a whitespace split of the command line."""
        return self.command_args or tuple(self.command_line.split())


def bounded_command(command_line: str, args: tuple[str, ...]) -> tuple[str, tuple[str, ...], bool]:
    """`command_line` and `args` held to MAX_COMMAND_LINE and MAX_ARGS; True when anything was cut. In linear
    time: the bound is what keeps the scoring engine's checks short (one strips wrappers in time quadratic in
    argv, and an unbounded argv made it take minutes)."""
    truncated = len(command_line) > MAX_COMMAND_LINE
    command_line = command_line[:MAX_COMMAND_LINE]
    if len(args) > MAX_ARGS or sum(map(len, args)) > MAX_COMMAND_LINE:
        kept: list[str] = []
        room = MAX_COMMAND_LINE
        for arg in args[:MAX_ARGS]:
            kept.append(arg[:room])
            room -= len(kept[-1])
            if room <= 0:
                break
        args, truncated = tuple(kept), True
    return command_line, args, truncated
