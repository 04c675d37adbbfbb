"""Chains of processes: evidence that only shows across execs, and incidents that group them.

Intrusions are chains. `curl URL | sh` is two processes, neither naming the other; a dropper fetches
a file in one exec and runs it in another; a web shell's `id` is ordinary unless you see it came from
a shell nginx started. Per (tenant, host) this module keeps a bounded table of recent processes and
files, and for each new exec finds:

- **lineage**: the ancestors (for `process.ancestors`), and whether the process runs below a server
  (web/app server, CGI gateway, database) or a network-connected shell, where people do not type:
  there, looking around (`id`, `uname -a`) is reconnaissance, and anything new is suspect;
- **pipes**: a downloader or decoder feeding a shell, a reader of secrets feeding an encoder and a
  network sender; from stdin/stdout identities when the agent reports them (`pipe:<inode>`), else from
  timing (siblings of one parent started within `PIPE_WINDOW`), which is weaker evidence;
- **write, then execute**: a file fetched, decoded, copied or made executable, then run, by its path
  or as a shell's or interpreter's script (or deleted after it ran); resolved against the working directory;
- **session bursts**: sensitive commands of one session (the descendants of one interactive or
  script shell, or of one server) add up within `BURST_WINDOW`; and looking around in many ways the
  workload has not seen (`id; uname -a; ss -antp; ps auxf; cat /etc/passwd`, new here) within
  `RECON_WINDOW` is hands-on reconnaissance, whatever each command is alone;
- **privilege**: an effective uid that differs from the real one (a setuid gain);
- **incidents**: events linked by any of the above share an id and a score, the strongest event raised
  by the evidence around it. An incident starts at the first event strong enough to warn.

The same rules judge the inside of one shell script (`sh -c "cp /bin/sleep /tmp/.x; /tmp/.x"`), whose
commands are joined by syntax rather than by timing (scoring/commands.py).
Everything is bounded: processes per host, hosts, files, sessions and incidents are evicted oldest first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from core.event import ProcessEvent
from scoring.commands import Command, program_name, unwrap
from scoring.evidence import DEFENSE_EVASION, DISCOVERY, EXECUTION, PRIVILEGE_ESCALATION, Evidence
from scoring.knowledge import deletes_of
from scoring.programs import CGI_GATEWAYS, DATABASES, INTERPRETERS, RAW_CLIENTS, SETUID_HELPERS, SHELLS, WEB_SERVERS
from scoring.sequences import (
    CONSUMER,
    PRODUCER,
    copy_source,
    deleted_after_run_weight,
    discounted,
    hideout,
    pipe_role,
    pipeline_evidence,
    prepared_files,
    reads_program_from_fd,
    resolve,
    script_file,
)

MAX_ANCESTORS = 16
PIPE_WINDOW = 0.25  # seconds between the execs of two siblings for a pipe guessed from timing
WRITE_WINDOW = 3600.0  # a file written this recently and then run is evidence
BURST_WINDOW = 900.0  # sensitive commands of one session within this add up
RECON_WINDOW = 120.0  # discovery acts new to the workload within this, in one session, add up ...
RECON_TECHNIQUES = 4  # ... when they are of this many kinds (ATT&CK techniques) and the looker asked the host
RECON_SELF = frozenset({"id", "whoami"})  # who they are, and what system this is (T1082): its own admin knows both
RECON_WEIGHT = 0.35
INCIDENT_IDLE = 3600.0  # an incident with no new event for this long is closed
MAX_PROCESSES = 32768  # per host
MAX_HOSTS = 4096  # in all: past it, the tenant with the most hosts gives up its least recently seen one
MAX_FILES = 4096  # per host
MAX_SESSIONS = 2048  # per host
MAX_ARGS_KEPT = 32
SUSPECT_ARRIVAL = 0.3  # evidence this strong about how a file arrived makes preparing and running it count in full
MADE_EXECUTABLE_WEIGHT = 0.35  # making a suspect file executable; discounted for any other prepared file
SERVERS = WEB_SERVERS | CGI_GATEWAYS | DATABASES
_SHELLS_AND_INTERPRETERS = SHELLS | INTERPRETERS


@dataclass(slots=True)
class Incident:
    id: str
    started: float
    last: float
    score: float = 0.0  # the strongest event's score
    techniques: dict[str, float] = field(default_factory=dict)  # technique -> strongest evidence weight
    events: int = 0

    def raised_score(self) -> float:
        """The strongest event, raised by the other techniques the chain showed."""
        remaining = 1.0 - self.score
        for weight in sorted(self.techniques.values(), reverse=True)[1:]:
            remaining *= 1.0 - 0.5 * weight
        return round(1.0 - remaining, 4)


@dataclass(slots=True)
class Lineage:
    """Where a process runs: below a server or a network-connected shell (`origin` names it), or neither."""

    kind: str = ""  # "", "server", "network"
    origin: str = ""  # e.g. "nginx", "php-fpm (via sh)", "a shell reading a socket"
    via_shell: bool = False  # a shell sits between the origin and this process


_NO_LINEAGE = Lineage()


@dataclass(slots=True)
class Node:
    pid: int
    name: str
    parent_pid: int | None
    started: float
    args: tuple[str, ...]
    cwd: str
    stdin: str
    stdout: str
    lineage: Lineage
    session: int | None  # pid of the session root (see _session_root)
    incident: Incident | None = None
    alerted: bool = False  # its own score reached the alert line
    role: int = 0  # its possible part in a pipe (scoring/sequences.py pipe_role)
    # Inherited from the parent when evaluated, so no event walks its ancestors: the nearest incident
    # above it, and the nearest ancestor that alerted (name, pid).
    incident_above: Incident | None = None
    alerted_above: tuple[str, int] | None = None


@dataclass(slots=True)
class Written:
    path: str
    when: float
    how: str  # "downloaded by curl", ...
    weight: float  # evidence weight of running it when it is suspect (run_weight)
    technique: str
    incident: Incident | None
    executed: bool = False
    writer: Node | None = None  # the process that wrote it, to join the incident its use starts
    arrival: float = 0.0  # the strongest evidence about the command that wrote it (a bare address, ...)

    def suspect(self) -> bool:
        """Prepared where droppers put files, or by a command that was itself suspect: a download from a
        bare address counts as much in a build directory as in /tmp; a release fetched by name does not."""
        return hideout(self.path) or self.arrival >= SUSPECT_ARRIVAL

    def run_weight(self) -> float:
        return self.weight if self.suspect() else discounted(self.weight)


@dataclass(slots=True)
class SessionItem:
    when: float
    technique: str
    weight: float
    program: str


@dataclass(slots=True)
class ChainView:
    """What the chain knows about one event, before it is scored."""

    key: tuple[str, str]
    node: Node
    evidence: list[Evidence]
    linked: list[Incident]  # incidents this event belongs to by lineage, pipe or file
    linked_nodes: list[Node]  # earlier processes it is linked to (pipe partners, writers of files it runs)
    written: list[Written] = field(default_factory=list)  # files this event prepared (they join its incident)
    session_incident: Incident | None = None  # its session's incident: joined only if the event is notable


class _Files:
    """Files prepared on one host (downloaded, copied, made executable), by path and by name: a file
    written as `.x` in an unknown directory is found when `./.x` or `/tmp/.x` runs. Oldest evicted first."""

    def __init__(self) -> None:
        self._by_path: OrderedDict[str, Written] = OrderedDict()
        self._by_name: dict[str, str] = {}

    def add(self, written: Written) -> None:
        self._by_path[written.path] = written
        self._by_path.move_to_end(written.path)
        self._by_name[written.path.rsplit("/", 1)[-1]] = written.path
        while len(self._by_path) > MAX_FILES:
            oldest, _ = self._by_path.popitem(last=False)
            name = oldest.rsplit("/", 1)[-1]
            if self._by_name.get(name) == oldest:
                del self._by_name[name]

    def __bool__(self) -> bool:
        return bool(self._by_path)

    def find(self, path: str, cwd: str, now: float) -> Written | None:
        """`lookup(resolve(path, cwd), now)`, answered at once when no prepared file has the path's name (most
        execs). Exact: every path kept has its name in `_by_name` (the newest of a name is evicted last)."""
        if not path or path.strip("'\"").rsplit("/", 1)[-1] not in self._by_name:
            return None
        return self.lookup(resolve(path, cwd), now)

    def has_name(self, path: str) -> bool:
        return path.rstrip("/").rsplit("/", 1)[-1] in self._by_name

    def lookup(self, path: str, now: float) -> Written | None:
        if not path:
            return None
        written = self._by_path.get(path)
        if written is None:
            alias = self._by_name.get(path.rsplit("/", 1)[-1])
            candidate = self._by_path.get(alias) if alias else None
            # Only a relative or bare name may stand for a path written elsewhere.
            if candidate is not None and ("/" not in candidate.path or "/" not in path or not path.startswith("/")
                                          or not candidate.path.startswith("/")):
                written = candidate
        if written is not None and now - written.when <= WRITE_WINDOW:
            return written
        return None


class _Host:
    def __init__(self) -> None:
        self.nodes: OrderedDict[int, Node] = OrderedDict()
        self.files = _Files()
        self.children: dict[int, deque[int]] = {}
        self.pipes: dict[str, int] = {}  # "pipe:<inode>" -> pid of the process writing it
        self.readers: dict[str, int] = {}  # "pipe:<inode>" -> pid of the process reading it
        self.sessions: OrderedDict[int, deque[SessionItem]] = OrderedDict()
        self.looked: OrderedDict[int, deque[SessionItem]] = OrderedDict()  # session -> discovery new here
        self.incidents: dict[int, Incident] = {}  # session root -> its open incident


class ChainTracker:
    """Thread-safe; one per engine. `observe` before scoring an event, `record` after."""

    def __init__(self, max_processes: int = MAX_PROCESSES, max_hosts: int = MAX_HOSTS) -> None:
        self.max_processes = max_processes
        self.max_hosts = max_hosts
        # Per tenant, its hosts least recently seen first. One tenant's execs from 4,200 new host names evicted
        # another's: its web shell's chain split in three and its alerts fell to warn.
        self._tenants: dict[str, OrderedDict[str, _Host]] = {}
        self._host_count = 0
        self._lock = threading.Lock()

    # -- before scoring ---------------------------------------------------------------------------------

    def register(self, tenant: str, event: ProcessEvent) -> Node:
        """Adds an exec to its host's process table and fills `event.ancestors` when the source gave none.
        Call for every event of a batch, in order, before evaluating any: a pipe's two ends may arrive
        in either order within a batch."""
        with self._lock:
            host = self._host((tenant, event.host))
            node = self._register(host, event, self._parent(host, event))
            if not event.ancestors:
                event.ancestors = self._ancestors(host, node)
            return node

    def evaluate(self, tenant: str, event: ProcessEvent, node: Node, own: Sequence[Evidence]) -> ChainView:
        """The chain evidence of a registered event, given everything recorded before it and the event's
        own evidence (`own`: what its command does, scoring/heuristics.py)."""
        with self._lock:
            key = (tenant, event.host)
            host = self._host(key)
            parent = host.nodes.get(node.parent_pid) if node.parent_pid is not None else None
            if parent is not None:  # settled now: the parent's own verdict may have marked it (a reverse shell)
                node.lineage = _lineage_below(parent, node, event)
            node.session = _session_root(parent, node)
            view = ChainView(key, node, [], [], [])
            self._link_lineage(view, parent)
            if event.event_name == "process.exec":
                self._lineage_evidence(view, event)
                self._pipes(view, host, event)
                self._files(view, host, event, own)
                self._privilege(view, event)
                self._session_burst(view, host, own)
                self._reconnaissance(view, host, own)
            return view

    def parent_command_line(self, view: ChainView) -> str:
        """The command line of the event's parent, as far as the table knows it."""
        with self._lock:
            host = self._known(view.key)
            parent = host.nodes.get(view.node.parent_pid) if host and view.node.parent_pid is not None else None
            return " ".join(parent.args) if parent is not None else ""

    def _host(self, key: tuple[str, str]) -> _Host:
        tenant, name = key
        hosts = self._tenants.setdefault(tenant, OrderedDict())
        host = hosts.get(name)
        if host is not None:
            hosts.move_to_end(name)
            return host
        host = hosts[name] = _Host()
        self._host_count += 1
        while self._host_count > self.max_hosts:
            heaviest = max(self._tenants, key=lambda t: len(self._tenants[t]))  # a few tenants: the auth's list
            self._tenants[heaviest].popitem(last=False)
            self._host_count -= 1
        return host

    def _known(self, key: tuple[str, str]) -> _Host | None:
        hosts = self._tenants.get(key[0])
        return hosts.get(key[1]) if hosts is not None else None

    def host_count(self) -> int:
        """Hosts whose process tables are kept, of all tenants."""
        with self._lock:
            return self._host_count

    def _parent(self, host: _Host, event: ProcessEvent) -> Node | None:
        if event.parent_pid is None:
            return None
        parent = host.nodes.get(event.parent_pid)
        if parent is None and event.parent_name:
            # A parent that started before anything was watching: known by name only.
            name = program_name(event.parent_name)
            parent = Node(event.parent_pid, name, None, event.timestamp, (event.parent_name,), "", "", "",
                          _lineage_of_name(name), None)
            self._store(host, parent)
        elif parent is not None and event.parent_name and parent.name != program_name(event.parent_name) and (
                program_name(event.parent_name) not in (parent.args[0].rsplit("/", 1)[-1][:15], "")):
            parent.name = program_name(event.parent_name)  # the parent exec'd since (or the pid was reused)
        return parent

    def _register(self, host: _Host, event: ProcessEvent, parent: Node | None) -> Node:
        name = program_name(event.executable_name)
        args = event.args[:MAX_ARGS_KEPT]
        previous = host.nodes.get(event.pid) if event.pid is not None else None
        node = Node(event.pid if event.pid is not None else -1, name, event.parent_pid, event.timestamp, args,
                    event.working_directory, event.stdin, event.stdout, _lineage_of_name(name), None,
                    role=pipe_role(args))
        if previous is not None and previous.parent_pid == event.parent_pid:
            node.incident = previous.incident  # the same process exec'd again: still part of its chain
            node.lineage = previous.lineage
        if previous is not None and event.event_name != "process.exec":
            return node  # a connection or listen of a known process: its exec (args, stdio) stays in the table
        if event.pid is not None:
            self._store(host, node)
            if event.parent_pid is not None:
                siblings = host.children.setdefault(event.parent_pid, deque(maxlen=16))
                siblings.append(event.pid)
                if len(host.children) > self.max_processes:
                    host.children.pop(next(iter(host.children)))
        return node

    def _store(self, host: _Host, node: Node) -> None:
        host.nodes[node.pid] = node
        host.nodes.move_to_end(node.pid)
        while len(host.nodes) > self.max_processes:
            host.nodes.popitem(last=False)

    @staticmethod
    def _ancestors(host: _Host, node: Node) -> tuple[str, ...]:
        names: list[str] = []
        seen = {node.pid}
        pid = node.parent_pid
        while pid is not None and pid not in seen and len(names) < MAX_ANCESTORS:
            seen.add(pid)
            parent = host.nodes.get(pid)
            if parent is None:
                break
            names.append(parent.name)
            pid = parent.parent_pid
        return tuple(names)

    # -- the evidence -----------------------------------------------------------------------------------

    @staticmethod
    def _lineage_evidence(view: ChainView, event: ProcessEvent) -> None:
        lineage, node = view.node.lineage, view.node
        if lineage.kind == "network":
            view.evidence.append(Evidence(0.5, f"runs under {lineage.origin}", "T1059.004", EXECUTION))
        elif lineage.kind == "server" and lineage.via_shell and node.name not in SHELLS:
            view.evidence.append(Evidence(0.15, f"runs under a shell started by {lineage.origin}", "T1505.003",
                                          EXECUTION))
        if node.name in _SHELLS_AND_INTERPRETERS and (_is_socket(event.stdin) or _is_socket(event.stdout)):
            view.evidence.append(Evidence(0.8, f"{node.name} with its input or output on a network socket "
                                               "(reverse shell)", "T1059.004", EXECUTION))

    @staticmethod
    def _link_lineage(view: ChainView, parent: Node | None) -> None:
        """An event below a process of an incident belongs to that incident; below one that alerted, a new
        program is evidence."""
        node = view.node
        if parent is None:
            return
        node.incident_above = parent.incident or parent.incident_above
        node.alerted_above = (parent.name, parent.pid) if parent.alerted else parent.alerted_above
        if node.incident_above is not None and _open(node.incident_above, node.started):
            view.linked.append(node.incident_above)
            if node.alerted_above is not None:
                name, pid = node.alerted_above
                view.evidence.append(Evidence(0.3, f"runs below {name} (pid {pid}), which alerted", "", EXECUTION))

    def _pipes(self, view: ChainView, host: _Host, event: ProcessEvent) -> None:
        node = view.node
        partners: list[tuple[Node, bool]] = []  # (earlier process, confirmed by a pipe identity)
        reads_pipe, writes_pipe = event.stdin.startswith("pipe:"), event.stdout.startswith("pipe:")
        if reads_pipe:
            producer = host.nodes.get(host.pipes.get(event.stdin, -1))
            if producer is not None:
                partners.append((producer, True))
            host.readers[event.stdin] = node.pid
        if writes_pipe:
            consumer = host.nodes.get(host.readers.get(event.stdout, -1))
            if consumer is not None:
                partners.append((consumer, True))
            host.pipes[event.stdout] = node.pid
        if reads_pipe or writes_pipe:
            _bound(host.pipes, 4096)
            _bound(host.readers, 4096)
        if not partners and node.role and node.parent_pid is not None:
            for pid in host.children.get(node.parent_pid, ()):
                sibling = host.nodes.get(pid)
                if sibling is not None and sibling is not node and sibling.role and \
                        abs(node.started - sibling.started) <= PIPE_WINDOW and _may_share_a_pipe(node, sibling):
                    partners.append((sibling, False))
        roles = node.role
        for partner, _ in partners:
            roles |= partner.role
        if not partners or roles != CONSUMER | PRODUCER:
            return
        ordered = _pipeline_order(node, partners)
        found = pipeline_evidence([Command(n.args) for n in ordered], confirmed=all(c for _, c in partners))
        if found:
            view.evidence.extend(found)
            view.linked_nodes.extend(p for p, _ in partners)
            view.linked.extend(p.incident for p, _ in partners if p.incident is not None)

    def _files(self, view: ChainView, host: _Host, event: ProcessEvent, own: Sequence[Evidence]) -> None:
        """Files this exec runs, handles or deletes that the chain prepared; then what it prepares itself."""
        acts = _file_acts(view.node.args)
        if host.files:
            self._prepared_files_used(view, host, event, acts)
        if acts.prepares:
            arrival = max((e.weight for e in own if e.technique), default=0.0)
            self._prepare(view, host, acts, arrival)

    @staticmethod
    def _prepared_files_used(view: ChainView, host: _Host, event: ProcessEvent, acts: _FileActs) -> None:
        node, now = view.node, view.node.started
        for path in (event.executable_path, node.args[0] if node.args else "", acts.script):
            written = host.files.find(path, node.cwd, now)
            if written is not None:
                written.executed = True
                view.evidence.append(Evidence(written.run_weight(), f"runs {written.path[:80]}, {written.how} "
                                                              f"{max(0.0, now - written.when):.0f}s before",
                                              written.technique, EXECUTION))
                if written.incident is not None:
                    view.linked.append(written.incident)
                if written.writer is not None:
                    view.linked_nodes.append(written.writer)
                break
        for operand in acts.path_operands:
            if not host.files.has_name(operand):
                continue
            touched = host.files.find(operand, node.cwd, now)
            if touched is not None and touched.incident is not None:
                view.linked.append(touched.incident)  # it handles a file of the chain (ls, rm, cat): same incident
        for path in acts.deletes:
            written = host.files.find(path, node.cwd, now)
            if written is not None and written.executed:
                view.evidence.append(Evidence(deleted_after_run_weight(written.suspect()),
                                              f"deletes {written.path[:80]} after it ran", "T1070.004",
                                              DEFENSE_EVASION))
                if written.incident is not None:
                    view.linked.append(written.incident)

    @staticmethod
    def _prepare(view: ChainView, host: _Host, acts: _FileActs, arrival: float) -> None:
        node, now = view.node, view.node.started
        for path, how, weight, technique in acts.prepares:
            file_arrival = arrival
            if acts.copied_from:  # a copy is what it was copied from: `cp /tmp/.t /usr/local/lib/netlogd`
                source = resolve(acts.copied_from, node.cwd)
                origin = host.files.lookup(source, now)
                if origin is not None:
                    how, weight = f"{origin.how}, then {how}", max(weight, origin.weight)
                    file_arrival = max(arrival, origin.arrival, SUSPECT_ARRIVAL if origin.suspect() else 0.0)
                    if origin.incident is not None:
                        view.linked.append(origin.incident)
                elif hideout(source):
                    how, file_arrival = f"{how} from {source[:60]}", max(arrival, SUSPECT_ARRIVAL)
            resolved = resolve(path, node.cwd)
            earlier = host.files.lookup(resolved, now)
            if earlier is not None and how.startswith(("made executable", "given the setuid bit")):
                full = earlier.suspect() or how.startswith("given the setuid bit")
                strength = MADE_EXECUTABLE_WEIGHT if full else discounted(MADE_EXECUTABLE_WEIGHT)
                view.evidence.append(Evidence(strength, f"{how.split(' by ')[0]} {earlier.path[:80]}, "
                                                        f"{earlier.how} {max(0.0, now - earlier.when):.0f}s before",
                                              "T1222.002", DEFENSE_EVASION))
                weight, how = max(weight, earlier.weight), f"{earlier.how}, then {how}"
                file_arrival = max(arrival, earlier.arrival)
                if earlier.incident is not None:
                    view.linked.append(earlier.incident)
                if earlier.writer is not None:
                    view.linked_nodes.append(earlier.writer)
            written = Written(resolved, now, how, weight, technique, None, writer=node, arrival=file_arrival)
            host.files.add(written)
            view.written.append(written)

    @staticmethod
    def _privilege(view: ChainView, event: ProcessEvent) -> None:
        if event.user_id == 0 and event.real_user_id not in (None, 0) and view.node.name not in SETUID_HELPERS:
            view.evidence.append(Evidence(0.6, f"runs as root through the setuid bit (real uid {event.real_user_id})",
                                          "T1548.001", PRIVILEGE_ESCALATION))

    def _session_burst(self, view: ChainView, host: _Host, own: Sequence[Evidence]) -> None:
        """A sensitive command in a session that already ran others adds up with them."""
        session = view.node.session
        if session is None:
            return
        now = view.node.started
        incident = host.incidents.get(session)
        if incident is not None and _open(incident, now):
            view.session_incident = incident
        if not own:
            return  # nothing of its own to add up (most execs)
        items = host.sessions.get(session)
        if not items or not any(_counts_in_burst(e, view.node.lineage) for e in own):
            return
        strongest: dict[str, SessionItem] = {}
        for item in items:
            if now - item.when <= BURST_WINDOW and item.program != view.node.name and (
                    item.technique not in strongest or strongest[item.technique].weight < item.weight):
                strongest[item.technique] = item
        if not strongest:
            return
        remaining = 1.0
        for item in strongest.values():
            remaining *= 1.0 - item.weight
        burst = min(0.6, 1.0 - remaining)
        if burst >= 0.2:
            programs = ", ".join(sorted({i.program for i in strongest.values()}))[:100]
            view.evidence.append(Evidence(round(burst, 3), f"follows {len(strongest)} other sensitive commands in "
                                                           f"this session within {int(BURST_WINDOW // 60)} min "
                                                           f"({programs})", "", ""))

    @staticmethod
    def _reconnaissance(view: ChainView, host: _Host, own: Sequence[Evidence]) -> None:
        """Looking around in several ways new to the workload, in a short while, having asked who one is and
        what system this is: hands-on reconnaissance by someone new to the host. An admin investigating an
        incident looks at the same files (setuid programs, accounts, crontabs) but knows the host."""
        session = view.node.session
        looking = [e for e in own if e.tactic == DISCOVERY and e.technique]
        if session is None or not looking or not (items := host.looked.get(session)):
            return
        now, name = view.node.started, view.node.name
        if now - items[-1].when > RECON_WINDOW:
            return  # the session's last new look is long past (most events of a session)
        recent = [i for i in items if now - i.when <= RECON_WINDOW and i.program != name]
        earlier = {i.technique: i.program for i in recent}
        kinds = {*earlier, *(e.technique for e in looking)}
        asked_who = name in RECON_SELF or any(i.program in RECON_SELF for i in recent)
        if len(kinds) >= RECON_TECHNIQUES and asked_who and "T1082" in kinds:
            programs = ", ".join(sorted({*earlier.values(), name}))[:100]
            view.evidence.append(Evidence(RECON_WEIGHT, f"looks around in {len(kinds)} ways new to this workload "
                                                        f"within {int(RECON_WINDOW)} s ({programs})",
                                          looking[0].technique, DISCOVERY))

    # -- after scoring ----------------------------------------------------------------------------------

    def record(self, view: ChainView, score: float, evidence: Sequence[Evidence], novelty: float, warn: float,
               alert: float) -> Incident | None:
        """Joins the event to its chain's incident (or starts one) and remembers what it did."""
        with self._lock:
            host = self._known(view.key)
            if host is None:
                return None
            node = view.node
            node.alerted = score >= alert
            if not evidence and not view.linked:
                return None  # most execs: nothing to remember, and no incident to join or start
            if node.lineage.kind != "network" and any(e.technique == "T1059.004" and e.weight >= 0.8 for e in evidence):
                node.lineage = Lineage("network", f"{node.name} (pid {node.pid}), a reverse shell")
            self._remember_session(host, node, evidence, novelty)
            strong = any(e.weight >= 0.3 for e in evidence)
            notable = score >= warn and (strong or any(_counts_in_burst(e, node.lineage) for e in evidence))
            incident = next((i for i in view.linked if _open(i, node.started)), None)
            if incident is None and notable and view.session_incident is not None:
                incident = view.session_incident
            if incident is None and score >= warn and strong:
                incident = self._start(view, node)
            if incident is None:
                return None
            node.incident = incident
            for partner in view.linked_nodes:
                if partner.incident is None:
                    partner.incident = incident
            if node.session is not None and notable:
                host.incidents[node.session] = incident
                _bound(host.incidents, MAX_SESSIONS)
            for written in view.written:
                written.incident = written.incident or incident
            incident.last = max(incident.last, node.started)
            incident.score = max(incident.score, score)
            incident.events += 1
            for item in evidence:
                if item.technique and item.weight >= 0.1:
                    incident.techniques[item.technique] = max(incident.techniques.get(item.technique, 0.0), item.weight)
            return incident

    @staticmethod
    def _start(view: ChainView, node: Node) -> Incident:
        digest = hashlib.blake2b(f"{view.key[0]}|{view.key[1]}|{node.pid}|{node.started:.6f}".encode(),
                                 digest_size=8).hexdigest()
        return Incident(digest, node.started, node.started)

    @staticmethod
    def _remember_session(host: _Host, node: Node, evidence: Sequence[Evidence], novelty: float) -> None:
        """Sensitive commands that were new here count toward the session's burst, and discovery toward its
        reconnaissance."""
        if node.session is None or novelty < 0.5:
            return
        looking = [e for e in evidence if e.tactic == DISCOVERY and e.technique]
        if looking:
            seen = host.looked.get(node.session)
            if seen is None:
                seen = host.looked[node.session] = deque(maxlen=32)
                _bound(host.looked, MAX_SESSIONS)
            seen.extend(SessionItem(node.started, e.technique, e.weight, node.name) for e in looking)
        items = [e for e in evidence if _counts_in_burst(e, node.lineage)]
        if not items:
            return
        queue = host.sessions.get(node.session)
        if queue is None:
            queue = host.sessions[node.session] = deque(maxlen=32)
            _bound(host.sessions, MAX_SESSIONS)
        for item in items:
            queue.append(SessionItem(node.started, item.technique, item.weight, node.name))


@dataclass(frozen=True, slots=True)
class _FileActs:
    """What an argv does to files, worked out once per distinct argv (most execs repeat one)."""

    path_operands: tuple[str, ...]  # operands naming a path: a file of the chain it may handle
    script: str  # the script file a shell or interpreter runs (scoring/sequences.py script_file)
    deletes: tuple[str, ...]
    prepares: tuple[tuple[str, str, float, str], ...]  # scoring/sequences.py prepared_files
    copied_from: str = ""  # the file a copy takes its content from (scoring/sequences.py copy_source)


@lru_cache(maxsize=1 << 13)
def _file_acts(args: tuple[str, ...]) -> _FileActs:
    command = unwrap(Command(args))
    return _FileActs(tuple(a for a in command.args[1:] if "/" in a), script_file(command), deletes_of(command),
                     tuple(prepared_files(command)), copy_source(command))


# What a command does that adds up in a session; where it runs (lineage, execution) is judged apart.
BURST_WEIGHT = 0.3  # weaker acts (a packet capture, a debugger attached) are an investigator's routine too
BURST_TACTICS = frozenset({"credential-access", "persistence", "privilege-escalation", "defense-evasion",
                           "collection", "exfiltration", "command-and-control", "impact", "lateral-movement"})


def _counts_in_burst(item: Evidence, lineage: Lineage) -> bool:
    """Strong sensitive acts add up anywhere; below a server or a reverse shell, looking around does too
    (it is raised to strong there: scoring/engine.py)."""
    if item.weight < BURST_WEIGHT or not item.technique:
        return False
    return item.tactic in BURST_TACTICS or (item.tactic == DISCOVERY and bool(lineage.kind))


def _may_share_a_pipe(one: Node, other: Node) -> bool:
    """Whether the stdio the agent read allows a pipe between the two: unknown stdio (a process gone before
    it was read) allows one, a terminal or a file does not, and two pipe identities only if they match
    (which the identity check would have found)."""
    def compatible(output: str, input_: str) -> bool:
        return (not output or output.startswith("pipe:")) and (not input_ or input_.startswith("pipe:")) and \
            not (output and input_)

    def program_input(node: Node) -> str:
        return "" if reads_program_from_fd(node.args) else node.stdin  # `bash /dev/fd/63`: not on stdin
    return compatible(other.stdout, program_input(one)) or compatible(one.stdout, program_input(other))


def _pipeline_order(node: Node, partners: list[tuple[Node, bool]]) -> list[Node]:
    """Producers first: by pipe identity where known, else the consumer role decides."""
    nodes = [p for p, _ in partners] + [node]
    consumers = [n for n in nodes if n.role & CONSUMER]
    producers = [n for n in nodes if not n.role & CONSUMER]
    return sorted(producers, key=lambda n: n.started) + sorted(consumers, key=lambda n: n.started)


def _lineage_of_name(name: str) -> Lineage:
    if name in SERVERS or name.endswith(".cgi"):
        return Lineage("server", name)
    return _NO_LINEAGE


def _lineage_below(parent: Node, node: Node, event: ProcessEvent) -> Lineage:
    """The lineage a child inherits, or starts: servers, CGI scripts and shells reading sockets start one."""
    name = node.name
    if node.lineage.kind == "network":
        return node.lineage  # marked by its own verdict (a reverse shell that exec'd again)
    inherited = parent.lineage
    if inherited.kind:
        if name in SHELLS and not inherited.via_shell:
            return Lineage(inherited.kind, inherited.origin, via_shell=True)
        return inherited
    if parent.name in RAW_CLIENTS and name in SHELLS:
        return Lineage("network", f"{parent.name} (a shell behind a network tool)", via_shell=True)
    own = _lineage_of_name(name)
    if own.kind:
        return own
    return _lineage_of_name(parent.name)


def _session_root(parent: Node | None, node: Node) -> int | None:
    """The process whose descendants form one session: a server (for everything it runs), else the
    nearest shell that is not a one-shot `-c` (an interactive shell or one running a script file)."""
    if parent is None:
        return None
    if node.lineage.kind == "server" and parent.lineage.kind == "server" and parent.session is not None:
        return parent.session
    if node.lineage.kind == "server" and not parent.lineage.kind:
        return node.pid  # the server itself
    if parent.name in SHELLS and not _one_shot(parent):
        return parent.pid
    return parent.session if parent.session is not None else parent.pid


def _one_shot(node: Node) -> bool:
    for arg in node.args[1:3]:  # noqa: SIM110 - a loop, not any(): this runs for every exec with a known parent
        if arg == "-c" or (arg.startswith("-") and not arg.startswith("--") and "c" in arg):
            return True
    return False


def _is_socket(stdio: str) -> bool:
    return stdio.startswith(("socket:", "tcp:", "udp:"))


def _open(incident: Incident, now: float) -> bool:
    return now - incident.last <= INCIDENT_IDLE


def _bound(mapping: dict, limit: int) -> None:  # type: ignore[type-arg]
    while len(mapping) > limit:
        mapping.pop(next(iter(mapping)))
