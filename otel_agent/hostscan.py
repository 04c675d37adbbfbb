"""The host scan: a mini host-IDS that diffs the live host against a saved snapshot.

`snapshot()` records process names, listening ports and established remote addresses. `scan()` finds
what is new since, walks each process's lineage, applies the scoring engine's heuristics
(`scoring.heuristics.assess`, the one implementation) and ranks processes by combined evidence.
It only reads /proc and the socket table: it never kills or blocks anything.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from core.event import CONNECTION, LISTEN, ProcessEvent
from otel_agent.procfs import Enricher
from scoring.heuristics import WEB_PORTS, Evidence, assess

SNAPSHOT_VERSION = 1
NOVELTY_PROCESS = 0.5  # a process name the host did not run at snapshot time
NOVELTY_PORT = 0.4  # a port nobody listened on at snapshot time
NOVELTY_REMOTE = 0.3  # a remote address not connected to at snapshot time
NOVELTY_REMOTE_NON_WEB = 0.5  # ... on a port other than the web ports: what a reverse shell or C2 looks like
ALLOW_KINDS = ("process", "command", "port", "remote", "reason")


class ScanError(ValueError):
    """A snapshot or allow-list file that cannot be used, with the reason."""


@dataclass(frozen=True, slots=True)
class Socket:
    pid: int | None
    transport: str  # tcp, udp
    local_address: str
    local_port: int
    remote_address: str = ""
    remote_port: int = 0

    @property
    def port_key(self) -> str:
        return f"{self.transport}/{self.local_port}"


@dataclass
class HostState:
    processes: dict[int, ProcessEvent]  # pid -> process, with lineage filled in
    listening: list[Socket]
    established: list[Socket]


def _sockets() -> tuple[list[Socket], list[Socket]]:
    listening, established = [], []
    for c in psutil.net_connections(kind="inet"):
        if not c.laddr:
            continue
        transport = "tcp" if c.type == socket.SOCK_STREAM else "udp"
        if c.status == psutil.CONN_LISTEN or (transport == "udp" and not c.raddr):
            listening.append(Socket(c.pid, transport, c.laddr.ip, c.laddr.port))
        elif c.status == psutil.CONN_ESTABLISHED and c.raddr:
            established.append(Socket(c.pid, transport, c.laddr.ip, c.laddr.port, c.raddr.ip, c.raddr.port))
    return listening, established


def _processes(cpu_sample: float) -> dict[int, ProcessEvent]:
    attrs = ["pid", "ppid", "name", "exe", "cmdline", "uids", "cwd"]
    names = Enricher()  # user names, cached (psutil's `username` is the real user's)
    found: dict[int, ProcessEvent] = {}
    handles: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(attrs):
        info = proc.info
        args = tuple(info["cmdline"] or ())
        name = info["name"] or ""
        exe = info["exe"] or ""
        if not name or not (args or exe):
            continue  # kernel threads: no program of their own, and names like kworker/u8:1 that churn
        uids = info["uids"]
        found[proc.pid] = ProcessEvent(
            executable_name=name, command_line=" ".join(args) or f"[{name}]", command_args=args,
            executable_path=exe, pid=proc.pid, parent_pid=info["ppid"],
            user_id=uids.effective if uids else None, real_user_id=uids.real if uids else None,
            user_name=names.user_name(uids.effective) if uids else "",
            working_directory=info["cwd"] or "", timestamp=time.time(),
            executable_deleted=exe.endswith(" (deleted)"))
        handles[proc.pid] = proc
        with contextlib.suppress(psutil.Error):
            proc.cpu_percent(None)  # primes the per-process CPU measurement
    if cpu_sample > 0:
        time.sleep(cpu_sample)
        for pid, proc in handles.items():
            with contextlib.suppress(psutil.Error):
                found[pid].cpu_percent = proc.cpu_percent(None)
    for event in found.values():
        event.ancestors = tuple(found[p].executable_name for p in _ancestor_pids(event.pid, found))
        event.parent_name = event.ancestors[0] if event.ancestors else ""
    return found


def _ancestor_pids(pid: int | None, processes: dict[int, ProcessEvent]) -> list[int]:
    chain: list[int] = []
    current = processes.get(pid) if pid is not None else None
    while current is not None and current.parent_pid and current.parent_pid not in chain:
        chain.append(current.parent_pid)
        current = processes.get(current.parent_pid)
    return [p for p in chain if p in processes]


def host_state(cpu_sample: float = 0.0) -> HostState:
    listening, established = _sockets()
    return HostState(_processes(cpu_sample), listening, established)


def take_snapshot(state: HostState | None = None) -> dict:
    """What `procsight host snapshot` writes: process names, listening ports, remote addresses."""
    state = state or host_state()
    return {
        "version": SNAPSHOT_VERSION,
        "host": socket.gethostname(),
        "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "processes": sorted({p.executable_name for p in state.processes.values()}),
        "listening": sorted({s.port_key for s in state.listening}),
        "remotes": sorted({s.remote_address for s in state.established}),
    }


def load_snapshot(path: str | Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScanError(f"{path}: cannot read the host snapshot: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != SNAPSHOT_VERSION:
        raise ScanError(f"{path}: not a procsight host snapshot (version {SNAPSHOT_VERSION})")
    for key in ("processes", "listening", "remotes"):
        if not isinstance(data.get(key), list):
            raise ScanError(f"{path}: '{key}' must be a list")
    return data


@dataclass
class AllowList:
    """Known-good findings to tune out: one `KIND PATTERN` per line (shell globs), `#` comments.

    process NAME      a process by executable name (all its findings)
    command PATTERN   a process by command line
    port    tcp/8080  a listening port
    remote  10.0.*    a remote address
    reason  PATTERN   one reason wherever it appears
    """

    rules: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in ALLOW_KINDS})

    @classmethod
    def load(cls, path: str | Path) -> AllowList:
        allow = cls()
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ScanError(f"{path}: cannot read the allow-list: {exc.strerror}") from exc
        for number, line in enumerate(lines, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            kind, _, pattern = text.partition(" ")
            if kind not in ALLOW_KINDS or not pattern.strip():
                raise ScanError(f"{path}:{number}: expected 'KIND PATTERN' with KIND one of "
                                f"{', '.join(ALLOW_KINDS)}, got {text!r}")
            allow.rules[kind].append(pattern.strip())
        return allow

    def allows(self, kind: str, value: str) -> bool:
        return any(fnmatch.fnmatchcase(value, pattern) for pattern in self.rules[kind])


@dataclass
class Finding:
    pid: int
    name: str
    command_line: str
    user: str
    score: float
    reasons: list[str]
    lineage: list[str]  # "name(pid)" from the process up to the oldest known ancestor
    red: list[str]  # reasons to show in red: connections to new remotes on non-web ports


def _combined(weights: list[float]) -> float:
    """Noisy-OR: independent pieces of evidence, each alone enough to look."""
    remaining = 1.0
    for weight in weights:
        remaining *= 1.0 - weight
    return round(1.0 - remaining, 3)


def scan(snapshot: dict, state: HostState | None = None, allow: AllowList | None = None) -> list[Finding]:
    """Ranked findings of the live host against a host `snapshot`, most suspicious first."""
    state = state or host_state(cpu_sample=0.5)
    allow = allow or AllowList()
    known_names = set(snapshot["processes"])
    known_ports = set(snapshot["listening"])
    known_remotes = set(snapshot["remotes"])
    evidence: dict[int, list[Evidence]] = {pid: [] for pid in state.processes}
    red: dict[int, list[str]] = {pid: [] for pid in state.processes}
    for pid, process in state.processes.items():
        evidence[pid].extend(assess(process))
        if process.executable_name not in known_names:
            evidence[pid].append(Evidence(NOVELTY_PROCESS, "new process name since the snapshot"))
    for sock in state.listening:
        if sock.pid in state.processes and sock.port_key not in known_ports and not allow.allows("port", sock.port_key):
            event = _network_event(state.processes[sock.pid], LISTEN, sock)
            evidence[sock.pid].append(Evidence(NOVELTY_PORT, f"new listening port {sock.port_key}"))
            evidence[sock.pid].extend(assess(event))
    for sock in state.established:
        if sock.pid not in state.processes or sock.remote_address in known_remotes or allow.allows(
                "remote", sock.remote_address):
            continue
        where = f"{sock.remote_address}:{sock.remote_port}"
        if sock.remote_port in WEB_PORTS:
            evidence[sock.pid].append(Evidence(NOVELTY_REMOTE, f"connection to new remote {where}"))
        else:
            reason = f"connection to new remote {where} on a non-web port"
            evidence[sock.pid].append(Evidence(NOVELTY_REMOTE_NON_WEB, reason))
            red[sock.pid].append(reason)
        evidence[sock.pid].extend(assess(_network_event(state.processes[sock.pid], CONNECTION, sock)))
    findings = []
    for pid, found in evidence.items():
        process = state.processes[pid]
        if allow.allows("process", process.executable_name) or allow.allows("command", process.command_line):
            continue
        kept = _dedupe([e for e in found if not allow.allows("reason", e.reason)])
        if not kept:
            continue
        lineage = [f"{process.executable_name}({pid})"] + [
            f"{state.processes[p].executable_name}({p})" for p in _ancestor_pids(pid, state.processes)]
        findings.append(Finding(pid=pid, name=process.executable_name, command_line=process.command_line,
                                user=process.user_name or str(process.user_id),
                                score=_combined([e.weight for e in kept]), reasons=[e.reason for e in kept],
                                lineage=lineage, red=red[pid]))
    findings.sort(key=lambda f: (-f.score, f.pid))
    return findings


def _network_event(process: ProcessEvent, event_name: str, sock: Socket) -> ProcessEvent:
    return ProcessEvent(
        executable_name=process.executable_name, command_line=process.command_line,
        command_args=process.command_args, event_name=event_name, executable_path=process.executable_path,
        parent_name=process.parent_name, ancestors=process.ancestors, pid=process.pid, user_id=process.user_id,
        transport=sock.transport, local_address=sock.local_address, local_port=sock.local_port,
        remote_address=sock.remote_address, remote_port=sock.remote_port or None)


def _dedupe(evidence: list[Evidence]) -> list[Evidence]:
    seen: dict[str, Evidence] = {}
    for item in sorted(evidence, key=lambda e: -e.weight):
        seen.setdefault(item.reason, item)
    return list(seen.values())


RED = "\033[31m"
BOLD = "\033[1m"
RESET = "\033[0m"


def _printable(text: str) -> str:
    """Process names and paths are attacker-chosen: escape control characters before they reach a terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def render_text(findings: list[Finding], color: bool) -> str:
    def paint(text: str, code: str) -> str:
        text = _printable(text)
        return f"{code}{text}{RESET}" if color else text

    if not findings:
        return "no findings: the host matches its snapshot\n"
    lines = [f"{len(findings)} processes with findings, most suspicious first (nothing was stopped or blocked)"]
    for rank, finding in enumerate(findings, 1):
        command = finding.command_line if len(finding.command_line) <= 160 else finding.command_line[:157] + "..."
        lines.append(paint(f"{rank:3d}. {finding.score:.2f}  {finding.name} (pid {finding.pid}, user {finding.user})",
                           BOLD) + f"  {command!r}")
        lines.append("       lineage: " + _printable(" <- ".join(finding.lineage)))
        for reason in finding.reasons:
            lines.append("       - " + (paint(reason, RED) if reason in finding.red else _printable(reason)))
    return "\n".join(lines) + "\n"


def render_json(findings: list[Finding]) -> str:
    return json.dumps([asdict(f) for f in findings], indent=2) + "\n"
