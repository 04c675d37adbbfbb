"""Evidence about one event that needs no baseline: where it runs, what ran, what its command does.

`assess(event)` returns `Evidence(weight, reason, technique, tactic)` items: the checks below (a shell
under a web server, a binary in /tmp, a reverse-shell pattern, ...), knowledge of what the command and
each command of its script do (scoring/knowledge.py), and the sequences inside that script (a download
piped into a shell, a file written then run: scoring/sequences.py). The engine folds the weights into
the model score (noisy-OR), damped for patterns the workload has already learned; evidence across
execs is scoring/chains.py's. The same `assess` serves the receiver's scoring and the agent's host
scan, so a reason reads the same wherever it is shown.

Weights are evidence strengths, not verdicts; they were set from what each behaviour means and checked on
the evaluation data (bench/detect.py), never tuned to its individual command lines.
"""

from __future__ import annotations

import re

from core.event import CONNECTION, ProcessEvent
from scoring.commands import Command, script_of, spaces_hidden, unwrap
from scoring.evidence import (
    COMMAND_AND_CONTROL,
    CREDENTIAL_ACCESS,
    DEFENSE_EVASION,
    EXECUTION,
    EXFILTRATION,
    LATERAL_MOVEMENT,
    PRIVILEGE_ESCALATION,
    Evidence,
)
from scoring.knowledge import assess_command, location_of, option_values
from scoring.programs import (
    CGI_GATEWAYS,
    DOWNLOADERS,
    ELEVATORS,
    INLINE_CODE_FLAGS,
    INTERPRETERS,
    SCRIPT_RUNTIMES,
    SHELLS,
    WEB_SERVERS,
)
from scoring.sequences import resolve, script_evidence, script_file
from scoring.tokens import address_class, base_name, elevated_program, in_system_dot_directory, path_class

TEMP_CLASSES = frozenset({"tmp", "shm"})
WEB_PORTS = frozenset({80, 443, 8080, 8443})
# Toolchains that build into a temp directory and run what they built there (go test, isolated pip builds).
TEMP_BUILDERS = frozenset({"go", "cargo", "rustc", "pip", "pip3", "dotnet", "bazel", "tox", "nox", "pipx"})
# Programs that name files but never run them: a shell's path in their arguments starts nothing.
FILE_UTILITIES = frozenset({"cp", "mv", "ln", "install", "rm", "chmod", "chown", "chgrp", "ls", "stat", "file",
                            "touch", "useradd", "usermod", "adduser", "chsh", "which", "whereis", "readlink",
                            "realpath", "md5sum", "sha1sum", "sha256sum", "sha512sum", "du", "wc",
                            "basename", "dirname", "test", "[", "getfacl", "setfacl", "lsattr", "chattr"})
HIGH_CPU_PERCENT = 80.0
MAX_SCAN = 2048  # characters of the command line the patterns look at: bounded work on hostile argv

# Every repetition is bounded (or possessive): these run on attacker-controlled argv, so a pattern
# must not backtrack quadratically over a long argument.
_SHELL_WORD = re.compile(r"(?<![\w.-])(?:/usr)?(?:/bin/)?(?:ba|da|z|k|c|tc|a|fi|ya|mk)?sh(?![\w.-])")
_REVERSE_SHELL = re.compile(r"/dev/(?:tcp|udp)/[^\s]{1,300}?\s{0,4}(?:0>&1|<&|>&)|>&\s{0,4}/dev/(?:tcp|udp)/|"
                            r"\bexec\b.{0,20}/dev/(?:tcp|udp)/|"
                            r"\bztcp\b.{0,300}?>&\s{0,4}\$REPLY|\bmkfifo\b|\bnc\b.{0,200}?\s-[ec]\b|\bsocat\b.{0,200}?exec:|"
                            r"pty\.spawn|\bsocket\b.{0,300}?\bconnect\b|fsockopen|TCPSocket", re.IGNORECASE)
_NETWORK_DESTINATION = re.compile(
    r"\b[a-z][a-z0-9+.-]{0,15}://[^\s/]{1,255}"
    r"|\b(?:[a-z0-9-]{1,63}\.){1,8}[a-z]{2,24}:\d{2,5}\b"
    r"|\b[\w.-]{1,64}@(?:[a-z0-9-]{1,63}\.){1,8}[a-z]{2,24}\b|\b[\w.-]{1,64}@(?:\d{1,3}\.){3}\d{1,3}\b"
    r"|\btcp(?:-connect|-listen)?:|(?<!\S)(?:-connect|--host|-h)\s{1,8}[^\s.]{1,63}\.\S{1,255}", re.IGNORECASE)
# A program opening a connection itself: the shells' /dev/tcp and zsh's ztcp, awk's /inet special files.
_OWN_CONNECTION = re.compile(r"/dev/(?:tcp|udp)/|\bztcp\b|/inet[46]?/(?:tcp|udp)/")
# Inline code that connects a socket: a socket API, and a call or argument that makes it connect.
_SOCKET_API = re.compile(r"socket|fsockopen|\bnet\.(?:connect|createConnection)\b|"
                         r"require\(\s{0,3}[\"'](?:node:)?net[\"']", re.IGNORECASE)
_SOCKET_CONNECT = re.compile(r"connect|PeerAddr|fsockopen|TCPSocket\.(?:new|open)|\.tcp\(", re.IGNORECASE)
# Inline code that runs code it decodes or fetches first: an evaluating call, and a decoder or a download.
_EVALUATES = re.compile(r"\b(?:exec|eval|Function)\s{0,4}\(|\brequire\(\s{0,3}[\"']vm[\"']",
                        re.IGNORECASE)
_DECODES = re.compile(r"b64decode|base64_decode|decode_base64|decodebytes|\batob\(|['\"]base64['\"]|unhexlify|"
                      r"fromhex|decompress|gzinflate|gzuncompress|str_rot13|\bunpack\(|\.reverse\(|"
                      r"\bpack\(\s{0,3}[\"']H\*", re.IGNORECASE)
_FETCHES = re.compile(r"urlopen|urllib|requests\.get|http\.client|\bhttp\.get\(|fetch\(|LWP::|HTTP::Tiny|"
                      r"Net::HTTP|open-uri|file_get_contents\(\s{0,3}[\"']https?:|curl_exec", re.IGNORECASE)
# Absolute paths named inside inline code, up to the quote or bracket that ends them.
_CODE_PATH = re.compile(r"(?<![\w.])/(?:[\w.*+-]{1,64}/){0,12}[\w.*+-]{1,128}")
# Calls in inline code that load a native library into the interpreter.
_LOADS_LIBRARY = re.compile(r"CDLL|cdll\.|dlopen|LoadLibrary|ffi\.load|DynaLoader|System\.load|FFI::|Fiddle",
                            re.IGNORECASE)
# A socket that binds or listens (then, with _HANDS_A_SHELL, a bind shell).
_BIND_SHELL = re.compile(r"\bsocket\b.{0,300}?\b(?:bind|listen)\s{0,2}\(", re.IGNORECASE)
# `{base64,-d}`, `{bash,-i}`: a command written as a brace expansion so that it holds no blank.
_BRACE_COMMAND = re.compile(r"\{(?:echo|base64|bash|sh|curl|wget|nc|python3?|perl|cat|chmod),[^{}\s]{1,200}\}")
# Process-spawning calls in inline code (Python's own `exec(...)` runs code, not a program: left out).
_SPAWN_CALL = re.compile(r"\b(?:system|exec[lv]p?e?|popen|spawn|subprocess|os\.exec\w{0,3}|Runtime\.getRuntime|"
                         r"child_process|shell_exec|passthru|proc_open)\s*[(.]", re.IGNORECASE)


# Clients that read user@host as an account on another machine (SSH's and finger's), not an e-mail address.
_REMOTE_ACCOUNT_CLIENTS = frozenset({"ssh", "scp", "sftp", "rsync", "sshpass", "autossh", "mosh", "sshfs", "finger"})
# Clients of databases and caches: `-h 10.1.2.40` names a service on the internal network, as admins reach theirs.
_DATA_STORE_CLIENTS = frozenset({"psql", "pg_dump", "pg_dumpall", "pg_restore", "pg_isready", "mysql", "mysqldump",
                                 "mysqladmin", "mariadb", "mariadb-dump", "redis-cli", "mongo", "mongosh", "mongodump",
                                 "mongorestore", "clickhouse-client", "cqlsh", "influx", "etcdctl"})
_IPV4 = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}")
_NAMES_PEOPLE = frozenset({"mail", "mailx", "mutt", "sendmail", "msmtp", "s-nail", "git"})
# Copies to other hosts and cloud buckets (host:path, s3://): knowledge judges where they copy what.
_REMOTE_COPIERS = frozenset({"aws", "gcloud", "gsutil", "az", "azcopy", "scp", "rsync", "sftp"})
# What turns a socket or a fifo into a remote shell: a shell, stream duplication or a spawned process.
_HANDS_A_SHELL = re.compile(r"\bdup2\b|pty\.spawn|subprocess|/bin/(?:ba|da|z)?sh\b|\bsh -i\b|\bexec\b|\bnc\b|"
                            r"\btelnet\b|openssl s_client|"
                            # or runs what the peer sends as a command: backticks, popen, system, Process.run
                            r"`#\{|%x[({]|\bpopen\b|\bsystem\s{0,2}\(|Process\.(?:run|spawn)|os\.execute|"
                            r"shell_exec|passthru|proc_open|child_process", re.IGNORECASE)
# Substrings one of which each pattern needs (lowercase): a command line with none skips the pattern.
_REVERSE_SHELL_ANCHORS = ("/dev/tcp", "/dev/udp", "mkfifo", "nc", "socat", "pty", "socket", "fsockopen", "ztcp")
_SPAWN_ANCHORS = ("system", "exec", "popen", "spawn", "subprocess", "runtime", "child_process", "passthru",
                  "proc_open")
# A raw IP address, or a port other than the web's, in an endpoint: not a service people name.
_BARE_ENDPOINT = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}|:(?!(?:80|443|8080|8443)\b)\d{2,5}\b")


def is_shell(name: str) -> bool:
    return base_name(name) in SHELLS


def is_web_server(name: str) -> bool:
    return base_name(name) in WEB_SERVERS


def _server_kind(name: str) -> float:
    """Evidence weight of a shell under this parent: dedicated servers 0.7, scripting runtimes 0.4, CGI
    gateways 0.2 (starting programs for requests is what they are for)."""
    name = base_name(name)
    if name in WEB_SERVERS:
        return 0.7
    return 0.4 if name in SCRIPT_RUNTIMES else 0.2 if name in CGI_GATEWAYS else 0.0


def assess(event: ProcessEvent) -> list[Evidence]:
    """All evidence about one event on its own, strongest first: the checks below, knowledge of what its
    command (or each command of its script) does, and the sequences inside its script."""
    found: list[Evidence] = []
    for check in _CHECKS:
        found.extend(check(event))
    if event.event_name == "process.exec" and event.args:
        script = script_of(event.args)
        if script is None or base_name(event.executable_name) in SHELLS:
            found.extend(assess_command(Command(event.args[:64]), exec_itself=True))
        if script is not None:
            for command in script.commands():
                found.extend(assess_command(command))
            found.extend(script_evidence(script, event.working_directory))
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
            return [Evidence(weight, f"shell spawned by {base_name(name)}{how}", "T1505.003", EXECUTION)]
        if not is_shell(name) and not name.endswith(".cgi"):
            break  # only look through shells and CGI scripts: bash under cron under nginx is not this
    return []


def _child_of_web_server(event: ProcessEvent) -> list[Evidence]:
    parent = event.parent_name
    if event.event_name != "process.exec" or not parent or not is_web_server(parent) or is_shell(
            event.executable_name):
        return []
    if base_name(event.executable_name) == base_name(parent):
        return []  # a server re-executing itself (workers, reloads)
    return [Evidence(0.4, f"{base_name(event.executable_name)} started directly by {base_name(parent)}", "T1505.003",
                     EXECUTION)]


def _hidden_system_directory(event: ProcessEvent) -> list[Evidence]:
    """A program run from a dot-directory made inside a system directory (/var/lib/.systemd/x): a hiding place."""
    path = event.executable_path[:MAX_SCAN]
    if not in_system_dot_directory(path):
        return []
    return [Evidence(0.45, f"runs a program hidden in a system directory ({path[:80]})", "T1564.001", DEFENSE_EVASION)]


def _binary_in_temp(event: ProcessEvent) -> list[Evidence]:
    location = path_class(event.executable_path)
    if location not in TEMP_CLASSES and not (event.executable_path.startswith("./") and location == "relative"
                                             and path_class(event.working_directory + "/") in TEMP_CLASSES):
        return []
    where = "/dev/shm" if location == "shm" else "a temp directory"
    if base_name(event.parent_name) in TEMP_BUILDERS or _build_environment(event):
        return [Evidence(0.2, f"binary in {where} ({event.executable_path}), started by {event.parent_name}, a build "
                              "tool that runs what it builds there", "T1204.002", EXECUTION)]
    found = [Evidence(0.75, f"binary in {where} ({event.executable_path})", "T1204.002", EXECUTION)]
    if event.user_id == 0:
        # An aggravation of the same act, not another technique: kept apart from the one-per-technique merge.
        found.append(Evidence(0.6, "privileged process (root) running from a temp directory"))
    name = event.executable_path.rsplit("/", 1)[-1]
    if name.startswith(".") and len(name) > 1:
        found.append(Evidence(0.3, f"hidden file run from {where}", "T1564.001", DEFENSE_EVASION))
    return found


def _script_from_temp(event: ProcessEvent) -> list[Evidence]:
    """A shell or interpreter given a script kept in a temp directory, shared memory or a hidden file
    (`bash /tmp/x.sh`, `python3 /dev/shm/.a.py`): what droppers run, judged as a binary there is."""
    name = base_name(event.executable_name)
    if (name not in SHELLS and name not in INTERPRETERS) or len(event.args) < 2:
        return []
    script = script_file(Command(event.args[:64]))
    where = path_class(script)
    hidden = script.rsplit("/", 1)[-1].startswith(".")
    if where not in ("tmp", "shm", "dev") and not (hidden and where):
        return []
    if base_name(event.parent_name) in TEMP_BUILDERS or base_name(event.parent_name) in ("python", "pip"):
        return []  # build frontends run their generated scripts from temp directories
    weight = 0.3 if where == "tmp" and not hidden else 0.5
    place = "a hidden file" if hidden else {"tmp": "a temp directory", "shm": "shared memory"}.get(where, "/dev")
    return [Evidence(weight, f"{name} runs a script from {place} ({script[:80]})", "T1204.002", EXECUTION)]


def _build_environment(event: ProcessEvent) -> bool:
    """A Python interpreter of a virtual environment a build frontend made in a temp directory."""
    parts = event.executable_path.rsplit("/", 2)
    return len(parts) == 3 and parts[1] == "bin" and base_name(parts[2]) == "python" and base_name(
        event.parent_name) in ("python", "pip")


# A program run from an open file descriptor (`fexecve`, a memfd passed on): no path a scanner could read.
_DESCRIPTOR_PATH = re.compile(r"^/(?:proc/(?:self|\d{1,10})|dev)/fd/\d{1,6}$")


def _missing_executable(event: ProcessEvent) -> list[Evidence]:
    path = event.executable_path
    if event.executable_deleted or path.endswith(" (deleted)") or path.startswith("/memfd:") or \
            _DESCRIPTOR_PATH.match(path):
        return [Evidence(0.7, "no backing executable on disk (deleted or memfd)", "T1620", DEFENSE_EVASION)]
    return []


def _shell_escape(event: ProcessEvent) -> list[Evidence]:
    """Arguments that open a shell or a reverse connection: the classic 'living off the land'."""
    args = event.args[1:]
    if not args:
        return []
    text = _scan_text(args)
    lowered = text.lower()  # cheap substring guards first: most command lines need no regex at all
    name = base_name(event.executable_name)
    found: list[Evidence] = []
    if any(anchor in lowered for anchor in _REVERSE_SHELL_ANCHORS) and _reverse_shell(event, text):
        found.append(Evidence(0.8, "reverse-shell pattern in arguments", "T1059.004", EXECUTION))
    elif "bind" in lowered and _BIND_SHELL.search(text) and _HANDS_A_SHELL.search(text):
        found.append(Evidence(0.7, "bind-shell pattern in arguments (a socket that listens, handed a shell)",
                              "T1059.004", EXECUTION))
    elif ("/dev/" in text or "tcp" in text or "udp" in text) and (connection := _OWN_CONNECTION.search(text)):
        found.append(Evidence(0.3, f"{name} opens a network connection itself ({connection.group(0).rstrip('/')})",
                              "T1095", COMMAND_AND_CONTROL))
    if is_shell(name):
        if "-i" in args:
            found.append(Evidence(0.4, "interactive shell started non-interactively", "T1059.004", EXECUTION))
        if "{" in text and (brace := _BRACE_COMMAND.search(text)):
            found.append(Evidence(0.5, f"a command hidden in brace expansion ({brace.group(0)[:40]})", "T1027",
                                  DEFENSE_EVASION))
    elif (elevated_program(event) or name) not in FILE_UTILITIES and "sh" in text and _SHELL_WORD.search(text):
        found.append(Evidence(0.55, f"{name} arguments start a shell", "T1059.004", EXECUTION))
    elif any(anchor in lowered for anchor in _SPAWN_ANCHORS) and _SPAWN_CALL.search(text):
        found.append(Evidence(0.35, f"{name} arguments execute commands", "T1059", EXECUTION))
    return found


def _reverse_shell(event: ProcessEvent, text: str) -> bool:
    """A reverse-shell pattern within one command (a script's `nc -z db 5432; psql -c ...` is two commands),
    and for a socket or a fifo, something that hands it a shell."""
    script = script_of(event.args) if base_name(event.executable_name) in SHELLS else None
    pieces = [c.text()[:MAX_SCAN] for c in script.commands()] if script is not None else [text]
    for piece in pieces:
        match = _REVERSE_SHELL.search(piece)
        if match is None:
            continue
        found = match.group(0).lower()
        if ("socket" in found or "mkfifo" in found) and not _HANDS_A_SHELL.search(" ".join(pieces)):
            continue
        return True
    return False


def _privilege_elevation(event: ProcessEvent) -> list[Evidence]:
    name = base_name(event.executable_name)
    if name not in ELEVATORS:
        return []
    found = []
    if any(is_web_server(n) for n in _lineage(event)[:3]):
        found.append(Evidence(0.6, f"{name} run under a web/app server", "T1548.003", PRIVILEGE_ESCALATION))
    elif event.user_id is not None and event.user_id != 0:
        found.append(Evidence(0.3, f"privilege elevation ({name}) by uid {event.user_id}", "T1548.003",
                              PRIVILEGE_ESCALATION))
    if is_shell(elevated_program(event)):
        found.append(Evidence(0.5, f"shell started through {name}", "T1548.003", PRIVILEGE_ESCALATION))
    return found


# The socket sshd makes for a session's forwarded agent (`/tmp/ssh-XXXX/agent.PID`), set by hand (`env`, `export`, a
# prefix, found with `ls /tmp/ssh-*/agent.*`, or each tried in a loop over them): another login's keys borrowed. A
# session's own agent is inherited, never named on a command line.
_BORROWED_AGENT = re.compile(r"\bSSH_AUTH_SOCK=['\"]?(?:/tmp/ssh-[^/\s]{1,64}/agent\.|\$\([^)]{0,120}/tmp/ssh-|"
                             r"\$\{?\w{1,32})")


def _borrowed_agent(event: ProcessEvent) -> list[Evidence]:
    line = event.command_line[:MAX_SCAN]
    if "SSH_AUTH_SOCK=" in line and "/tmp/ssh-" in line and _BORROWED_AGENT.search(line):
        return [Evidence(0.5, "uses a forwarded SSH agent's socket named by hand (another session's keys)",
                         "T1563.001", LATERAL_MOVEMENT)]
    return []


# CVE-2023-22809: sudoedit reads the editor variable's own `--` as the end of its options, so
# `EDITOR='vim -- /etc/sudoers' sudoedit /etc/motd` also opens a file the sudo rules never allowed.
_EDITOR_EXTRA_FILE = re.compile(r"\b(?:SUDO_EDITOR|VISUAL|EDITOR)=['\"]?[\w./-]{1,64}\s{1,4}--\s{1,4}/")


def _sudoedit_extra_file(event: ProcessEvent) -> list[Evidence]:
    line = event.command_line[:MAX_SCAN]
    if ("sudoedit" in line or "sudo -e" in line) and _EDITOR_EXTRA_FILE.search(line):
        return [Evidence(0.6, "an editor variable names one more file for sudoedit (CVE-2023-22809)", "T1068",
                         PRIVILEGE_ESCALATION)]
    return []


def _hidden_spaces(event: ProcessEvent) -> list[Evidence]:
    """`cat${IFS}/etc/passwd`: spaces written as `$IFS`, which only a filter on the words is fooled by."""
    if spaces_hidden(event.command_line):
        return [Evidence(0.45, "spaces written as $IFS (obfuscated command)", "T1027", DEFENSE_EVASION)]
    return []


def _inline_code(event: ProcessEvent) -> list[Evidence]:
    """An interpreter given code on its command line (python -c, perl -e, node -e, ...), possibly behind sudo."""
    args = list(event.args)
    while args and base_name(args[0]) in ELEVATORS:
        args = args[1:]
    if len(args) < 3 or base_name(args[0]) not in INTERPRETERS:
        return []
    flags = set(args[1:-1])
    if not flags & INLINE_CODE_FLAGS and not any(a.startswith("-M") for a in flags):
        return []
    name = base_name(args[0])
    found = [Evidence(0.2, f"inline code run by {name}", "T1059", EXECUTION)]
    code = _scan_text(args[1:])
    if _SOCKET_API.search(code) and _SOCKET_CONNECT.search(code):
        found.append(Evidence(0.3, f"inline code run by {name} connects a network socket", "T1095",
                              COMMAND_AND_CONTROL))
    found.extend(_secrets_inline_code_opens(name, code))
    found.extend(Evidence(weight, f"inline code run by {name} {what}", technique, tactic)
                 for pattern, weight, what, technique, tactic in _INLINE_SYSTEM_CALLS if pattern.search(code))
    found.extend(_staged_code_runs(name, code))
    if _EVALUATES.search(code):
        if _FETCHES.search(code):
            found.append(Evidence(0.5, f"inline code run by {name} downloads code and runs it", "T1105",
                                  COMMAND_AND_CONTROL))
        elif _DECODES.search(code):
            found.append(Evidence(0.45, f"inline code run by {name} decodes code and runs it", "T1140",
                                  DEFENSE_EVASION))
    return found


# What inline code asks of the C library that a command would show by its files: the password hashes without
# opening /etc/shadow (`spwd.getspall()`), another process attached to (`ctypes...ptrace(16, pid)`).
_INLINE_SYSTEM_CALLS = (
    (re.compile(r"\bspwd\b|\bgetsp(?:nam|ent|all)\b"), 0.6, "reads the password hashes through the C library",
     "T1003.008", CREDENTIAL_ACCESS),
    (re.compile(r"\bptrace\s{0,4}\(|\bprocess_vm_writev\b"), 0.5, "attaches to another process (ptrace)",
     "T1055.008", DEFENSE_EVASION),
)


def _secrets_inline_code_opens(name: str, code: str) -> list[Evidence]:
    """Secrets inline code opens (`open('/etc/shadow').read()`): what `cat` of them would be."""
    found: list[Evidence] = []
    for path in dict.fromkeys(_CODE_PATH.findall(code[:MAX_SCAN])):
        location = location_of(path)
        if location is not None and location.read is not None and location.read[0] >= 0.2:
            weight, technique, tactic = location.read
            found.append(Evidence(weight, f"inline code run by {name} reads {location.name} ({path[:80]})", technique,
                                  tactic))
            break
    return found


def _staged_code_runs(name: str, code: str) -> list[Evidence]:
    """Inline code that loads a library, or runs a program, kept in a temp or hidden place:
    `ctypes.CDLL("/dev/shm/.k/l.so")`, `os.system("/tmp/.x")` (a dropper's payload, started by an interpreter)."""
    # Not knowledge's `_staged`: that counts /dev too, and code names /dev/null all the time.
    staged = [p for p in _CODE_PATH.findall(code[:MAX_SCAN])
              if path_class(p) in ("tmp", "shm") or (p.rsplit("/", 1)[-1].startswith(".") and p.count("/") > 1)]
    if not staged:
        return []
    if _LOADS_LIBRARY.search(code):
        return [Evidence(0.5, f"inline code run by {name} loads a library from a temp or hidden place "
                              f"({staged[0][:80]})", "T1129", EXECUTION)]
    if _SPAWN_CALL.search(code):
        return [Evidence(0.4, f"inline code run by {name} runs a program from a temp or hidden place "
                              f"({staged[0][:80]})", "T1204.002", EXECUTION)]
    return []


def _internal_data_store(name: str, endpoint: str) -> bool:
    """A database or cache client naming an address of the internal network (`redis-cli -h 10.1.2.40`)."""
    address = _IPV4.search(endpoint)
    return name in _DATA_STORE_CLIENTS and address is not None and address_class(address.group(0)) == "private"


def _network_destination(event: ProcessEvent) -> list[Evidence]:
    """A command line naming a remote endpoint (URL, host:port, tcp-connect): data may leave or arrive."""
    name = base_name(event.executable_name)
    if event.event_name != "process.exec" or name in DOWNLOADERS or name in _NAMES_PEOPLE or name in _REMOTE_COPIERS:
        return []  # knowledge judges downloads, uploads and remote copies (scoring/knowledge.py); mail names people
    text = _scan_text(event.args[1:])
    if ":" not in text and "@" not in text and "-h" not in text and "-connect" not in text:
        return []
    match = _NETWORK_DESTINATION.search(text)
    if match is None or "localhost" in match.group(0) or "127.0.0.1" in match.group(0):
        return []
    endpoint = match.group(0)
    if endpoint.startswith("git@"):
        return []  # a git remote over SSH
    remote_path = text[match.end():match.end() + 1] == ":"  # user@host:path, as scp, rsync, tar and sshfs name one
    if "@" in endpoint and "://" not in endpoint and not remote_path and \
            base_name(event.executable_name) not in _REMOTE_ACCOUNT_CLIENTS:
        return []  # user@domain is an e-mail address (a gpg recipient, a mail to) unless such a client reads it
    # An account at an address (ssh root@10.0.0.5) is how admins log in: weak; bare addresses and ports elsewhere
    # (nc 203.0.113.5 4444, socat tcp:...) are how implants call out.
    bare = _BARE_ENDPOINT.search(endpoint) and "@" not in endpoint and not _internal_data_store(name, endpoint)
    weight = 0.3 if bare else 0.15
    return [Evidence(weight, f"remote endpoint in arguments ({endpoint[:60]})", "T1071", COMMAND_AND_CONTROL)]


def _privileged_shell_mode(event: ProcessEvent) -> list[Evidence]:
    """`-p` keeps a setuid shell's privileges: the textbook way to keep root from a suid binary."""
    args = event.args
    if "-p" in args[1:] and (is_shell(event.executable_name) or any(is_shell(a) for a in args[:-1])):
        return [Evidence(0.4, "shell started in privileged mode (-p)", "T1548.001", PRIVILEGE_ESCALATION)]
    return []


def _high_cpu(event: ProcessEvent) -> list[Evidence]:
    if event.cpu_percent is not None and event.cpu_percent >= HIGH_CPU_PERCENT:
        return [Evidence(0.4, f"sustained high CPU ({event.cpu_percent:.0f}%)", "T1496", "impact")]
    return []


def _network(event: ProcessEvent) -> list[Evidence]:
    """Static facts of a connection; whether the port or peer is new to the workload is the engine's call."""
    if event.event_name == CONNECTION and event.remote_port not in WEB_PORTS and address_class(
            event.remote_address) == "public":
        return [Evidence(0.3, f"connection to {event.remote_address}:{event.remote_port} on a non-web port", "T1571",
                         COMMAND_AND_CONTROL)]
    return []


# Servers a single command starts on a directory: a way in for tools, and a way out for files.
_FILE_SERVER_MODULES = ("http.server", "SimpleHTTPServer", "pyftpdlib", "uploadserver", "updog")
_SYSTEM_TREES = ("/", "/home")  # these directories themselves: every account's files
_SENSITIVE_TREES = ("/etc", "/root", "/var/backups", "/var/lib/mysql", "/var/lib/postgresql")  # and below
_SECRET_DIRECTORIES = ("/.ssh", "/.aws", "/.gnupg", "/.kube", "/.docker")


def _ad_hoc_file_server(event: ProcessEvent) -> list[Evidence]:
    """`python3 -m http.server`, `php -S`, `ruby -run -e httpd`, `busybox httpd`: a directory served to the
    network by one command. Serving system or secret directories is exfiltration; elsewhere, tool transfer."""
    if event.event_name != "process.exec" or not event.args:
        return []
    command = unwrap(Command(event.args[:64]))  # `sudo -u www nohup python3 -m http.server`
    directory = _served_directory(command)
    if directory is None:
        return []
    served = _directory_of(directory, event.working_directory)
    program = base_name(command.args[0])
    if served and (served in _SYSTEM_TREES or any(served == tree or served.startswith(tree + "/")
                                                   for tree in _SENSITIVE_TREES)
                   or any(part in served for part in _SECRET_DIRECTORIES)):
        return [Evidence(0.5, f"{program} serves {served[:80]} over the network", "T1048", EXFILTRATION)]
    return [Evidence(0.2, f"{program} serves a directory over the network (an ad-hoc file server)", "T1570",
                     LATERAL_MOVEMENT)]


def _directory_of(path: str, cwd: str) -> str:
    """`path` made absolute against `cwd`, without a trailing slash; "" when that is not known."""
    if not path.startswith("/") and not cwd:
        return ""
    absolute = cwd if path in ("", ".", "./") else resolve(path, cwd)
    return absolute.rstrip("/") or "/"


def _served_directory(command: Command) -> str | None:
    """The directory an ad-hoc file server command serves ("" for its working directory), None if it is not one."""
    program, rest = base_name(command.args[0]), list(command.args[1:])
    if program in INTERPRETERS and any(module in _scan_text(rest) for module in _FILE_SERVER_MODULES):
        option = ("-d", "--directory")
    elif program.startswith("php") and "-S" in rest:
        option = ("-t",)
    elif program.startswith("ruby") and "httpd" in _scan_text(rest) and "-run" in _scan_text(rest):
        option = ("--DocumentRoot",)
    elif program == "httpd" and "-p" in rest and "-h" in rest:  # busybox's applet (Apache's -h is its help)
        option = ("-h",)
    else:
        return None
    return next(iter(option_values(command, option)), "")


_CHECKS = (
    _shell_under_web_server,
    _child_of_web_server,
    _binary_in_temp,
    _hidden_system_directory,
    _script_from_temp,
    _missing_executable,
    _shell_escape,
    _privilege_elevation,
    _inline_code,
    _hidden_spaces,
    _borrowed_agent,
    _sudoedit_extra_file,
    _network_destination,
    _privileged_shell_mode,
    _high_cpu,
    _network,
    _ad_hoc_file_server,
)
