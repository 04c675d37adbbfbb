"""Commands as a shell sees them: program, arguments, redirections, and the pipelines of a script.

A process event is one exec, but its command line can hold more: `sh -c "curl -s URL | sh"` runs a
pipeline, `cp /bin/sleep /tmp/.x; chmod 755 /tmp/.x; /tmp/.x` a whole drop-and-run sequence, and a
command line copied from a terminal (`cat /etc/shadow > /tmp/s`) keeps its shell operators. This module
turns such text into `Command`s joined into `Pipeline`s, so the same knowledge and chain rules judge a
script's commands and real processes alike.

The tokenizer is a single bounded pass (one bounded pattern first reads `$IFS` as the space it stands for), and
scripts are cut at `MAX_SCRIPT` characters and `MAX_COMMANDS` commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from scoring.programs import SHELLS, WRAPPERS
from scoring.tokens import base_name

MAX_SCRIPT = 4096
MAX_COMMANDS = 64
MAX_DEPTH = 3  # nested $(...) levels followed

_OPERATORS = ("&&", "||", ";;", ">>", "&>", ">&", "<<", "|&", "|", ";", "&", ">", "<", "\n", "(", ")")
_SEPARATORS = frozenset({"&&", "||", ";", "&", "\n", ";;", "(", ")"})
_REDIRECTS = frozenset({">", ">>", "<", "&>", ">&", "<<"})
_KEYWORDS = frozenset({"then", "do", "else", "elif", "if", "while", "until", "!", "{", "}", "done", "fi", "esac"})


@dataclass(frozen=True, slots=True)
class Redirect:
    operator: str  # > >> < &> >&
    target: str

    @property
    def writes(self) -> bool:
        return self.operator in (">", ">>", "&>", ">&") and not self.target.startswith("&")


@dataclass(frozen=True, slots=True)
class Command:
    """One simple command: `args[0]` as written, `program` its base name (version digits removed)."""

    args: tuple[str, ...]
    redirects: tuple[Redirect, ...] = ()
    program: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "program", program_name(self.args[0]) if self.args else "")

    @property
    def operands(self) -> tuple[str, ...]:
        """Arguments that are not options."""
        return tuple(a for a in self.args[1:] if not a.startswith("-"))

    def writes_to(self) -> tuple[str, ...]:
        return tuple(r.target for r in self.redirects if r.writes)

    def text(self) -> str:
        """The command as a shell would show it, redirections included (`bash -i >& /dev/tcp/...`)."""
        if not self.redirects:
            return " ".join(self.args)
        return " ".join((*self.args, *(f"{r.operator} {r.target}" for r in self.redirects)))


@dataclass(frozen=True, slots=True)
class Pipeline:
    commands: tuple[Command, ...]  # joined by |: each feeds the next


@dataclass(frozen=True, slots=True)
class Script:
    pipelines: tuple[Pipeline, ...]  # in the order the shell runs them

    def commands(self) -> tuple[Command, ...]:
        return tuple(c for p in self.pipelines for c in p.commands)


# Families whose names carry a version (python3.11, php8.2, php-fpm8.2): judged by the family name.
_VERSIONED = frozenset({"python", "pypy", "php", "php-fpm", "perl", "ruby", "pip", "node", "nodejs", "lua", "luajit",
                        "tclsh", "wish", "gcc", "g++", "clang", "java", "postgres", "psql", "idle", "pydoc", "irb"})


@lru_cache(maxsize=1 << 14)
def program_name(path: str) -> str:
    """`/usr/bin/python3.11` -> `python`, `base64` stays `base64`: version digits go only for families
    that put their version in the name."""
    name = path.rsplit("/", 1)[-1]
    family = base_name(name)
    return family if family in _VERSIONED else name


# The dynamic loader run as a program: `/lib64/ld-linux-x86-64.so.2 /tmp/x` runs x (ld.so, ld-musl-*.so.1, ...).
_DYNAMIC_LOADER = re.compile(r"^ld(?:-linux(?:-[a-z0-9_-]{1,16})?|-musl-[a-z0-9_]{1,16})?\.so(?:\.\d{1,3})?$")


def is_dynamic_loader(program: str) -> bool:
    return _DYNAMIC_LOADER.match(program) is not None


def unwrap(command: Command) -> Command:
    """The command a wrapper runs: `sudo -u x env A=1 nohup curl ...` -> `curl ...` (bounded)."""
    for _ in range(4):
        wrapper = "ld.so" if is_dynamic_loader(command.program) else command.program
        if wrapper not in WRAPPERS or len(command.args) < 2:
            return command
        rest = _after_wrapper_options(wrapper, command.args[1:])
        if not rest:
            return command
        command = Command(rest, command.redirects)
    return command


def _after_wrapper_options(wrapper: str, args: tuple[str, ...]) -> tuple[str, ...]:
    """Skips a wrapper's own options and values (`timeout 5`, `sudo -u root`, `env A=1`, `runuser -u x --`)."""
    takes_value = {"-u", "-g", "-n", "-c", "-p", "-C", "-U", "-t", "-s", "-w", "-o", "-e", "-k", "-D", "-h", "-r",
                   *_LONG_VALUES.get(wrapper, ())}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return args[i + 1:]
        if "=" in arg and not arg.startswith("-") and wrapper in ("env", "sudo", "doas", "run0"):
            i += 1
            continue
        if arg.startswith("-"):
            if wrapper in ("su",) and arg == "-c":
                return ()  # su -c runs a script: the caller parses it
            plain = wrapper in ("nohup", "setsid", "time", "exec")
            i += 2 if (arg in takes_value and not plain) or (wrapper, arg) == ("exec", "-a") else 1
            continue
        if wrapper in ("timeout", "nice", "chrt", "taskset", "flock", "watch") and _numberish(arg):
            i += 1
            continue
        if wrapper == "su":
            return ()  # `su user`: an interactive login, nothing to unwrap
        return args[i:]
    return ()


# Options of a wrapper that take a value in the next argument, besides the short ones above.
_LONG_VALUES = {
    "systemd-run": ("--unit", "--property", "--description", "--slice", "--uid", "--gid", "--nice", "--setenv",
                    "--working-directory", "--on-active", "--on-boot", "--on-startup", "--on-unit-active",
                    "--on-unit-inactive", "--on-calendar", "--timer-property", "--path-property",
                    "--socket-property", "--machine", "--host", "-H", "-M", "-E"),
    "ld.so": ("--library-path", "--preload", "--argv0", "--audit", "--glibc-hwcaps-prepend", "--glibc-hwcaps-mask"),
}


def _numberish(arg: str) -> bool:
    return bool(arg) and (arg[0].isdigit() or arg[0] == ".")


def script_of(args: tuple[str, ...]) -> Script | None:
    """The script an exec runs, if any: a shell's `-c` argument (also behind wrappers and `su -c`), or a
    command line that kept its shell operators as arguments. None for a plain command."""
    if not args:
        return None
    inner = unwrap(Command(args))
    program = inner.program
    text = ""
    if program in SHELLS or program in ("su", "runuser"):
        text = _dash_c_argument(inner.args)
    if not text and any(a in ("|", "||", "&&", ";", ">", ">>", "<", "&>") for a in args[1:]):
        text = " ".join(args)
    if not text:
        return None
    return parse_script(text[:MAX_SCRIPT])


def _dash_c_argument(args: tuple[str, ...]) -> str:
    """The script of `sh -c SCRIPT [NAME ARGS...]`. When the words after the script carry shell operators,
    the script was split on spaces on its way here (quotes lost): rejoin it."""
    for i, arg in enumerate(args[1:-1], start=1):
        if arg == "-c" or arg == "--command" or (arg.startswith("-") and not arg.startswith("--") and "c" in arg):
            rest = args[i + 2:]
            if any(op in word for word in rest for op in _SPLIT_SIGNS):
                return " ".join(args[i + 1:])
            return args[i + 1]
    return ""


_SPLIT_SIGNS = (";", "|", "&&", ">", "<")
# `$IFS` (also `${IFS}`, `${IFS%??}`) expands to white space: `cat${IFS}/etc/passwd` is `cat /etc/passwd`.
_IFS = re.compile(r"\$(?:\{IFS[^}]{0,8}\}|IFS\b)")
# ... written inside a word, in place of a space: what no one types but to hide the words from a filter.
_IFS_AS_SPACE = re.compile(r"[\w/.-]\$(?:\{IFS[^}]{0,8}\}|IFS\b)|\$(?:\{IFS[^}]{0,8}\}|IFS\b)[\w/.$-]")


def spaces_hidden(text: str) -> bool:
    """Whether shell text writes `$IFS` where a space goes (`cat${IFS}/etc/passwd`)."""
    return "IFS" in text and bool(_IFS_AS_SPACE.search(text[:MAX_SCRIPT]))


@lru_cache(maxsize=1 << 12)
def parse_script(text: str) -> Script:
    """Parses shell text into pipelines of simple commands; `$(...)` and backquotes are parsed too, and `$IFS`
    is the space it stands for."""
    pipelines: list[Pipeline] = []
    text = text[:MAX_SCRIPT]
    _parse_into(_IFS.sub(" ", text) if "IFS" in text else text, pipelines, 0)
    return Script(tuple(pipelines[:MAX_COMMANDS]))


def _parse_into(text: str, pipelines: list[Pipeline], depth: int) -> None:
    tokens, nested = _tokenize(text)
    commands: list[Command] = []
    words: list[str] = []
    redirects: list[Redirect] = []
    pending_redirect = ""

    def end_command() -> None:
        nonlocal words, redirects
        cleaned = _strip_keywords(words)
        if cleaned:
            commands.append(Command(tuple(cleaned), tuple(redirects)))
        elif redirects:  # `> /var/log/wtmp` alone empties the file, as the no-op `:` with it would
            commands.append(Command((":",), tuple(redirects)))
        words, redirects = [], []

    def end_pipeline() -> None:
        nonlocal commands
        end_command()
        if commands:
            pipelines.append(Pipeline(tuple(commands)))
        commands = []

    group_closed = False  # the last token closed a `( ... )` group
    for kind, value in tokens:
        if len(pipelines) >= MAX_COMMANDS:
            return
        if value in ("|", "|&") and group_closed and pipelines and not commands and not words:
            # `(curl URL || wget -O- URL) | sh`: the group's output feeds the pipe; its last pipeline stands for it
            commands = list(pipelines.pop().commands)
        group_closed = kind == "op" and value == ")"
        if kind == "word":
            if pending_redirect:
                redirects.append(Redirect(pending_redirect, value))
                pending_redirect = ""
            else:
                words.append(value)
        elif value in _REDIRECTS:
            pending_redirect = value
        elif value in ("|", "|&"):
            end_command()
        elif value in _SEPARATORS:
            end_pipeline()
    end_pipeline()
    if depth < MAX_DEPTH:
        for inner in nested:
            _parse_into(inner, pipelines, depth + 1)


def _strip_keywords(words: list[str]) -> list[str]:
    i = 0
    while i < len(words) and words[i] in _KEYWORDS:
        i += 1
    if i < len(words) and words[i] in ("for", "case", "select"):
        return []  # the loop header itself runs nothing; its body follows `do`
    # Leading assignments (`A=1 cmd`) set the environment of the command.
    while i < len(words) - 1 and "=" in words[i] and words[i].split("=", 1)[0].isidentifier():
        i += 1
    rest = words[i:]
    if len(rest) == 1 and "=" in rest[0] and rest[0].split("=", 1)[0].isidentifier():
        return []  # a bare assignment
    return rest


def _tokenize(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(tokens, nested command-substitution texts). One pass; quotes group, operators split."""
    tokens: list[tuple[str, str]] = []
    nested: list[str] = []
    word: list[str] = []
    in_word = False
    i, n = 0, len(text)

    def flush() -> None:
        nonlocal word, in_word
        if in_word:
            tokens.append(("word", "".join(word)))
        word, in_word = [], False

    while i < n:
        ch = text[i]
        if ch in " \t\r":
            flush()
            i += 1
        elif ch == "'":
            end = text.find("'", i + 1)
            end = n if end < 0 else end
            word.append(text[i + 1:end])
            in_word = True
            i = end + 1
        elif ch == '"':
            i = _double_quoted(text, i + 1, word, nested)
            in_word = True
        elif ch == "\\" and i + 1 < n:
            word.append(text[i + 1] if text[i + 1] != "\n" else "")
            in_word = True
            i += 2
        elif (ch == "$" and text.startswith("$(", i) and not text.startswith("$((", i)) or (
                ch in "<>" and text.startswith("(", i + 1)):
            end = _matching_paren(text, i + 2)
            nested.append(text[i + 2:end])
            word.append("$(...)" if ch == "$" else f"{ch}(...)")
            in_word = True
            i = end + 1
        elif ch == "`":
            end = text.find("`", i + 1)
            end = n if end < 0 else end
            nested.append(text[i + 1:end])
            word.append("$(...)")
            in_word = True
            i = end + 1
        elif ch == "#" and not in_word:
            end = text.find("\n", i)
            i = n if end < 0 else end
        else:
            operator = _operator_at(text, i)
            if operator:
                if operator in (">", ">>", "<", ">&") and in_word and "".join(word).isdigit():
                    word, in_word = [], False  # 2> file: the fd number belongs to the redirection
                flush()
                tokens.append(("op", operator))
                i += len(operator)
                if operator in (">&", "&>") and i < n and text[i].isdigit():
                    tokens.append(("word", "&" + text[i]))  # 2>&1: a dup, not a file
                    i += 1
            else:
                word.append(ch)
                in_word = True
                i += 1
    flush()
    return tokens, nested


def _double_quoted(text: str, i: int, word: list[str], nested: list[str]) -> int:
    n = len(text)
    while i < n and text[i] != '"':
        if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\$`':
            word.append(text[i + 1])
            i += 2
        elif text.startswith("$(", i) and not text.startswith("$((", i):
            end = _matching_paren(text, i + 2)
            nested.append(text[i + 2:end])
            word.append("$(...)")
            i = end + 1
        else:
            word.append(text[i])
            i += 1
    return i + 1


def _matching_paren(text: str, i: int) -> int:
    depth, n = 1, len(text)
    while i < n:
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return n


def _operator_at(text: str, i: int) -> str:
    for operator in _OPERATORS:
        if text.startswith(operator, i):
            return operator
    return ""
