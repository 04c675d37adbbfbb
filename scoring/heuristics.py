"""Layered heuristics: evidence about one event that needs no baseline.

Each heuristic returns `Evidence(weight, reason)`; the scorer folds the weights into the model score
(noisy-OR), damped for patterns the workload has already learned. The same `assess` serves the
receiver's scoring and the agent's host scan, so a reason reads the same wherever it is shown.

Weights are evidence strengths, not verdicts; they were set on textbook examples (a shell under nginx, a
binary in /dev/shm, `curl | bash`) and checked on the evaluation data (bench/detect.py), never tuned to
its individual command lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.event import CONNECTION, ProcessEvent
from scoring.tokens import ELEVATORS, address_class, base_name, elevated_program, path_class

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "ash", "busybox"})
WEB_SERVERS = frozenset({
    "nginx", "apache2", "httpd", "lighttpd", "caddy", "php-fpm", "php-cgi", "java", "node", "tomcat",
    "gunicorn", "uwsgi", "uvicorn", "puma", "unicorn", "passenger", "httpd-prefork",
})
# Runtimes that host app servers but also run every other script on a host: weaker evidence.
SCRIPT_RUNTIMES = frozenset({"python", "ruby"})
INTERPRETERS = frozenset({"python", "perl", "ruby", "php", "node", "nodejs", "lua", "luajit", "julia", "Rscript", "R",
                          "jjs", "jrunscript", "tclsh", "wish", "expect", "gjs", "pwsh", "osascript", "irb"})
INLINE_CODE_FLAGS = frozenset({"-c", "-e", "-E", "-r", "--eval", "--exec", "-x", "--execute", "--command"})
DOWNLOADERS = frozenset({"curl", "wget", "fetch", "tftp", "ftp", "scp", "sftp", "rsync", "nc", "ncat", "socat"})
TEMP_CLASSES = frozenset({"tmp", "shm"})
WEB_PORTS = frozenset({80, 443, 8080, 8443})
HIGH_CPU_PERCENT = 80.0
MAX_SCAN = 2048  # characters of the command line the patterns look at: bounded work on hostile argv

# Every repetition is bounded (or possessive): these run on attacker-controlled argv, so a pattern
# must not backtrack quadratically over a long argument.
_SHELL_WORD = re.compile(r"(?<![\w.-])(?:/usr)?(?:/bin/)?(?:ba|da|z|k|c|tc|a|fi|ya|mk)?sh(?![\w.-])")
_REVERSE_SHELL = re.compile(r"/dev/(?:tcp|udp)/|\bmkfifo\b|\bnc\b.{0,200}?\s-[ec]\b|\bsocat\b.{0,200}?exec:|"
                            r"pty\.spawn|\bsocket\b.{0,300}?\bconnect\b|fsockopen|TCPSocket", re.IGNORECASE)
_PIPE_TO_SHELL = re.compile(r"\|\s{0,8}(?:sudo\s{1,8})?(?:/usr)?(?:/bin/)?(?:ba|da|z)?sh\b")
_NETWORK_DESTINATION = re.compile(
    r"\b[a-z][a-z0-9+.-]{0,15}://[^\s/]{1,255}"
    r"|\b(?:[a-z0-9-]{1,63}\.){1,8}[a-z]{2,24}:\d{2,5}\b"
    r"|\b[\w.-]{1,64}@(?:[a-z0-9-]{1,63}\.){1,8}[a-z]{2,24}\b"
    r"|\btcp(?:-connect|-listen)?:|\b(?:-connect|--host|-h)\s{1,8}[^\s.]{1,63}\.\S", re.IGNORECASE)
_SPAWN_CALL = re.compile(r"\b(?:system|exec[lv]?p?e?|popen|spawn|subprocess|os\.system|Runtime\.getRuntime|"
                         r"child_process|shell_exec|passthru|proc_open)\s*[(.]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Evidence:
    weight: float  # 0..1, how strongly this alone suggests "investigate"
    reason: str


def is_shell(name: str) -> bool:
    return base_name(name) in SHELLS


def is_web_server(name: str) -> bool:
    return base_name(name) in WEB_SERVERS


def _server_kind(name: str) -> float:
    """Evidence weight of a shell under this parent: dedicated servers 0.7, scripting runtimes 0.4."""
    name = base_name(name)
    return 0.7 if name in WEB_SERVERS else 0.4 if name in SCRIPT_RUNTIMES else 0.0


def assess(event: ProcessEvent) -> list[Evidence]:
    """All heuristic evidence for one event, strongest first."""
    found: list[Evidence] = []
    for check in _CHECKS:
        found.extend(check(event))
    found.sort(key=lambda e: -e.weight)
    return found


def _scan_text(args: tuple[str, ...] | list[str]) -> str:
    return " ".join(a[:MAX_SCAN] for a in args[:64])[:MAX_SCAN]


def _lineage(event: ProcessEvent) -> list[str]:
    names = list(event.ancestors) if event.ancestors else []
    if event.parent_name and (not names or names[0] != event.parent_name):
        names.insert(0, event.parent_name)
    return names


def _shell_under_web_server(event: ProcessEvent) -> list[Evidence]:
    if not is_shell(event.executable_name):
        return []
    lineage = _lineage(event)
    for depth, name in enumerate(lineage):
        weight = _server_kind(name)
        if weight:
            how = "" if depth == 0 else f" (via {' <- '.join(base_name(n) for n in lineage[:depth])})"
            return [Evidence(weight, f"shell spawned by {base_name(name)}{how}")]
        if not is_shell(name):
            break  # only look through intermediate shells: bash under cron under nginx is not this
    return []


def _child_of_web_server(event: ProcessEvent) -> list[Evidence]:
    parent = event.parent_name
    if event.event_name != "process.exec" or not parent or not is_web_server(parent) or is_shell(
            event.executable_name):
        return []
    if base_name(event.executable_name) == base_name(parent):
        return []  # a server re-executing itself (workers, reloads)
    return [Evidence(0.4, f"{base_name(event.executable_name)} started directly by {base_name(parent)}")]


def _binary_in_temp(event: ProcessEvent) -> list[Evidence]:
    location = path_class(event.executable_path)
    if location not in TEMP_CLASSES and not (event.executable_path.startswith("./") and location == "relative"
                                             and path_class(event.working_directory + "/") in TEMP_CLASSES):
        return []
    where = "/dev/shm" if location == "shm" else "a temp directory"
    found = [Evidence(0.75, f"binary in {where} ({event.executable_path})")]
    if event.user_id == 0:
        found.append(Evidence(0.6, "privileged process (root) running from a temp directory"))
    return found


def _missing_executable(event: ProcessEvent) -> list[Evidence]:
    path = event.executable_path
    if event.executable_deleted or path.endswith(" (deleted)") or path.startswith("/memfd:"):
        return [Evidence(0.7, "no backing executable on disk (deleted or memfd)")]
    return []


def _shell_escape(event: ProcessEvent) -> list[Evidence]:
    """Arguments that open a shell or a reverse connection: the classic 'living off the land'."""
    args = event.args[1:]
    if not args:
        return []
    text = _scan_text(args)
    name = base_name(event.executable_name)
    found: list[Evidence] = []
    if _REVERSE_SHELL.search(text):
        found.append(Evidence(0.8, "reverse-shell pattern in arguments"))
    if _PIPE_TO_SHELL.search(text) and (name in DOWNLOADERS or any(d in text for d in DOWNLOADERS)):
        found.append(Evidence(0.8, "download piped into a shell"))
    if is_shell(name):
        if "-i" in args:
            found.append(Evidence(0.4, "interactive shell started non-interactively"))
    elif _SHELL_WORD.search(text):
        found.append(Evidence(0.55, f"{name} arguments start a shell"))
    elif _SPAWN_CALL.search(text):
        found.append(Evidence(0.35, f"{name} arguments execute commands"))
    return found


def _privilege_elevation(event: ProcessEvent) -> list[Evidence]:
    name = base_name(event.executable_name)
    if name not in ELEVATORS:
        return []
    found = []
    if any(is_web_server(n) for n in _lineage(event)[:3]):
        found.append(Evidence(0.6, f"{name} run under a web/app server"))
    elif event.user_id is not None and event.user_id != 0:
        found.append(Evidence(0.3, f"privilege elevation ({name}) by uid {event.user_id}"))
    if is_shell(elevated_program(event)):
        found.append(Evidence(0.5, f"shell started through {name}"))
    return found


def _inline_code(event: ProcessEvent) -> list[Evidence]:
    """An interpreter given code on its command line (python -c, perl -e, node -e, ...), possibly behind sudo."""
    args = list(event.args)
    while args and base_name(args[0]) in ELEVATORS:
        args = args[1:]
    if len(args) < 3 or base_name(args[0]) not in INTERPRETERS:
        return []
    flags = set(args[1:-1])
    if flags & INLINE_CODE_FLAGS or any(a.startswith("-M") for a in flags):
        return [Evidence(0.3, f"inline code run by {base_name(args[0])}")]
    return []


def _network_destination(event: ProcessEvent) -> list[Evidence]:
    """A command line naming a remote endpoint (URL, host:port, tcp-connect): data may leave or arrive."""
    if event.event_name != "process.exec":
        return []
    text = _scan_text(event.args[1:])
    match = _NETWORK_DESTINATION.search(text)
    if match is None or "localhost" in match.group(0) or "127.0.0.1" in match.group(0):
        return []
    return [Evidence(0.3, f"remote endpoint in arguments ({match.group(0)[:60]})")]


def _privileged_shell_mode(event: ProcessEvent) -> list[Evidence]:
    """`-p` keeps a setuid shell's privileges: the textbook way to keep root from a suid binary."""
    args = event.args
    if (any(is_shell(a) for a in args[:-1]) or is_shell(event.executable_name)) and "-p" in args[1:]:
        return [Evidence(0.4, "shell started in privileged mode (-p)")]
    return []


def _high_cpu(event: ProcessEvent) -> list[Evidence]:
    if event.cpu_percent is not None and event.cpu_percent >= HIGH_CPU_PERCENT:
        return [Evidence(0.4, f"sustained high CPU ({event.cpu_percent:.0f}%)")]
    return []


def _network(event: ProcessEvent) -> list[Evidence]:
    """Static facts of a connection; whether the port or peer is new to the workload is the engine's call."""
    if event.event_name == CONNECTION and event.remote_port not in WEB_PORTS and address_class(
            event.remote_address) == "public":
        return [Evidence(0.3, f"connection to {event.remote_address}:{event.remote_port} on a non-web port")]
    return []


_CHECKS = (
    _shell_under_web_server,
    _child_of_web_server,
    _binary_in_temp,
    _missing_executable,
    _shell_escape,
    _privilege_elevation,
    _inline_code,
    _network_destination,
    _privileged_shell_mode,
    _high_cpu,
    _network,
)
