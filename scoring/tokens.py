"""Turning a process event into field-tagged, normalised tokens (the input of hash128-v2).

Why each normalisation (measured on the evaluation data with bench/detect.py, see scoring/README.md):
- volatile values (numbers, pids, hex and uuid ids, temp file names) become placeholders, so the same
  command run again with a new pid or temp file is the same pattern rather than a near-miss;
- IP addresses become their class (loopback, private, public) and ports well-known/registered/ephemeral,
  so a new ephemeral port is not novelty but a new well-known one is;
- paths also yield a path-class token (tmp, shm, home, system...), which carries the "runs from /tmp"
  signal into the vector even when the exact path is new;
- tokens are tagged with their field ("exe:", "arg:", "parent:") instead of their position, so one extra
  argument does not shift every following token into a different hash bucket.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from core.event import CONNECTION, LISTEN, ProcessEvent
from scoring._volatile import volatile_placeholders
from scoring.programs import ELEVATORS

MAX_ARG_TOKENS = 24  # argv beyond this adds little and costs time; truncation is itself a token
MAX_TOKEN_LENGTH = 64
MAX_ARG_SCAN = 256  # only this much of an argument is normalised: bounded regex work on hostile argv

_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(r"\d+")
_IPV4 = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$")
_HOST_PORT = re.compile(r"^([A-Za-z0-9.-]+):(\d{1,5})$")
_URL = re.compile(r"^([a-z][a-z0-9+.-]*)://([^/:]*)(?::(\d+))?", re.IGNORECASE)
# One pass over an argument, in order of precedence: uuids, hex ids, mktemp-style random names
# (tmp.XXXXXXXXXX, 6+ mixed letters and digits), then plain numbers. This is the specification: for ASCII
# values the C scanner volatile_placeholders (_volatile.c) computes the same result, 5-13 us faster per
# argument; other values go through the regex (its IGNORECASE and \d take some non-ASCII characters).
_VOLATILE = re.compile(
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"|(?P<hex>(?<![0-9a-z])(?:0x)?[0-9a-f]{8,}(?![0-9a-z]))"
    r"|(?P<rand>(?:tmp\.)?(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{6,})"
    r"|(?P<n>\d+)",
    re.IGNORECASE,
)

# Programs whose numeric arguments are file modes, kept as they are rather than normalised like pids.
_MODE_SETTERS = frozenset({"chmod", "install", "mkdir", "umask"})
_OCTAL_MODE = re.compile(r"[0-7]{3,4}")
_VERSION_SUFFIX = re.compile(r"[\d.]+$")

# Most specific first; each alternative ends at a path separator (or the end), like a directory prefix.
_PATH_CLASSES = (
    ("/dev/shm", "shm"), ("/tmp", "tmp"), ("/var/tmp", "tmp"), ("/run/user", "tmp"), ("/dev", "dev"),
    ("/proc", "proc"), ("/memfd:", "memfd"), ("/home", "home"), ("/root", "home"), ("/usr/local", "local"),
    ("/usr", "system"), ("/bin", "system"), ("/sbin", "system"), ("/lib", "system"), ("/etc", "etc"),
    ("/opt", "opt"), ("/srv", "srv"), ("/var/www", "www"), ("/var", "var"),
)
_PATH_CLASS = re.compile("|".join(
    f"(?P<c{i}>{re.escape(prefix)}{'' if prefix.endswith(':') or prefix == '/lib' else '(?:/|$)'})"
    for i, (prefix, _) in enumerate(_PATH_CLASSES)))


# Directories that packages own: nothing installed puts a dot-directory right inside them (a project's .venv
# or a service account's .cache sit deeper), droppers do (/var/lib/.systemd/).
_PACKAGE_DIRECTORIES = frozenset({
    "/usr", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/share", "/usr/local", "/usr/local/lib", "/usr/local/bin",
    "/usr/local/share", "/usr/bin", "/usr/sbin", "/var", "/var/lib", "/var/cache", "/var/log", "/var/spool",
    "/var/opt", "/var/run", "/run", "/etc", "/lib", "/lib64", "/opt", "/boot", "/bin", "/sbin", "/srv",
})


def in_system_dot_directory(path: str) -> bool:
    """Whether `path` lies in (or is) a dot-name made right inside a directory packages own: /var/lib/.x/y."""
    start = path.find("/.")
    while start > 0:
        if path[:start] in _PACKAGE_DIRECTORIES and path[start + 2:start + 3] not in ("", "/", ".") and \
                not path.startswith(".venv/", start + 1):  # a project's virtual environment at /srv or /opt
            return True
        start = path.find("/.", start + 1)
    return False


def path_class(path: str) -> str:
    """The class of a file location: tmp, shm, home, system, ... ('relative' or 'other' otherwise)."""
    if not path:
        return ""
    if path[0] != "/":
        return "relative" if "/" in path else ""
    match = _PATH_CLASS.match(path)
    return _PATH_CLASSES[int(match.lastgroup[1:])][1] if match else "other"


def port_class(port: int | None) -> str:
    if port is None or port <= 0:
        return ""
    if port < 1024:
        return f"wk{port}"  # well-known ports are identities (22, 80, 443), keep them
    if port < 49152:
        return "registered"
    return "ephemeral"


_DOCUMENTATION_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
                                                                    "2001:db8::/32"))


def address_class(address: str) -> str:
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        name = address.lower().rstrip(".")
        return "loopback" if name in ("localhost", "ip6-localhost") or name.endswith(".localhost") else "name"
    if ip.is_loopback:
        return "loopback"
    if any(ip in network for network in _DOCUMENTATION_NETWORKS):
        return "public"  # RFC 5737/3849 addresses stand for hosts on the internet (ipaddress calls them private)
    if ip.is_private or ip.is_link_local:
        return "private"
    if ip.is_multicast or ip.is_unspecified:
        return "special"
    return "public"


def user_class(uid: int | None) -> str:
    if uid is None:
        return ""
    if uid == 0:
        return "root"
    return "system" if uid < 1000 else "human"


@lru_cache(maxsize=1 << 16)
def base_name(name: str) -> str:
    """nginx: worker process -> nginx; php-fpm8.2 -> php-fpm; python3.11 -> python."""
    name = name.split(":", 1)[0].strip().rsplit("/", 1)[-1]
    return _VERSION_SUFFIX.sub("", name) or name


def elevated_program(event: ProcessEvent) -> str:
    """For sudo/doas/su-style launchers, the program they run ('' otherwise)."""
    args = event.args
    launcher = base_name(event.executable_name)
    if not args or launcher not in ELEVATORS:
        return ""
    return _elevated_in(launcher, args)


@lru_cache(maxsize=1 << 12)  # asked several times of each event (tokens, "never run here"); sudo lines repeat
def _elevated_in(launcher: str, args: tuple[str, ...]) -> str:
    takes_value = _ELEVATOR_VALUE_OPTIONS.get(launcher, frozenset())
    skip = False
    for arg in args[1:]:
        if skip:
            skip = False
        elif arg in takes_value:
            skip = True  # `sudo -u postgres psql`: postgres is who, psql is what
        elif not arg.startswith("-") and "=" not in arg:
            return base_name(arg)
    return ""


# Options of the launchers that take the next argument as their value.
_ELEVATOR_VALUE_OPTIONS = {"sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "-R"}),
                           "doas": frozenset({"-u", "-C"}), "pkexec": frozenset({"--user"})}


@lru_cache(maxsize=1 << 16)
def normalise_name(name: str) -> str:
    """Executable names without version digits: python3.11 -> python#, php-fpm8.2 -> php-fpm#."""
    return _NUMBER.sub("#", name)[:MAX_TOKEN_LENGTH]


@lru_cache(maxsize=1 << 14)
def normalise_arg(arg: str) -> tuple[str, ...]:
    """Tokens for one argument ("arg:" + normalised value), plus class tokens for paths, addresses, URLs."""
    if arg.isalpha() or (arg.startswith("-") and arg[1:].replace("-", "").isalpha()):
        return ("arg:" + arg[:MAX_TOKEN_LENGTH],)  # the common case: plain words and flags
    return tuple("arg:" + token for token in _normalise_value(arg))


def _normalise_value(arg: str) -> tuple[str, ...]:
    extra: list[str] = []
    value = arg
    # Cheap guards first: URLs and host:port need a colon, an IPv4 address starts with a digit.
    has_colon = ":" in arg
    if has_colon and (url := _URL.match(arg)) is not None:
        extra.append(f"url:{url.group(1).lower()}:{address_class(url.group(2)) or 'name'}")
        value = f"{url.group(1).lower()}://<{address_class(url.group(2)) or 'host'}>"
    elif arg[:1].isdigit() and (ip := _IPV4.match(arg)) is not None:
        port = int(ip.group(2)) if ip.group(2) else None
        value = f"<ip:{address_class(ip.group(1))}>" + (f":<port:{port_class(port)}>" if port else "")
    elif has_colon and (host_port := _HOST_PORT.match(arg)) is not None and not host_port.group(1).isdigit():
        value = f"<host>:<port:{port_class(int(host_port.group(2)))}>"
    else:
        if "/" in arg:
            cls = path_class(arg)
            if cls:
                extra.append(f"pathclass:{cls}")
        if _DIGIT.search(value):  # numbers and random names have one; a digitless hex id stays (stored keys)
            value = volatile_placeholders(value) if value.isascii() else _VOLATILE.sub(_placeholder, value)
    return (value[:MAX_TOKEN_LENGTH], *extra)


def _placeholder(match: re.Match[str]) -> str:
    return f"<{match.lastgroup}>"


def event_tokens(event: ProcessEvent) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(identity tokens, argument tokens) of an event, tagged by field.

    Identity tokens say what ran, where from, under whom; argument tokens say how. The featurizer
    weighs the two groups separately so a long argv cannot drown out the executable's identity.
    """
    identity = _identity_tokens(
        event.event_name, event.executable_name, event.parent_name, user_class(event.user_id),
        event.executable_path, event.ancestors[1:4], elevated_program(event), event.executable_deleted,
        *network_tokens(event))
    args = event.args
    truncated = len(args) > MAX_ARG_TOKENS + 1 or event.command_args_truncated
    keeps_modes = base_name(event.executable_name) in _MODE_SETTERS
    return identity, _argument_tokens(args[1 : MAX_ARG_TOKENS + 1], keeps_modes, truncated)


# Most execs repeat an argv seen before (a key holds at most MAX_COMMAND_LINE characters of arguments).
@lru_cache(maxsize=1 << 12)
def _argument_tokens(args: tuple[str, ...], keeps_modes: bool, truncated: bool) -> tuple[str, ...]:
    arguments: list[str] = []
    for arg in args:
        if keeps_modes and _OCTAL_MODE.fullmatch(arg):
            arguments.append("arg:" + arg)  # 4755 is not 0755: the setuid bit is the point
        else:
            arguments.extend(normalise_arg(arg[:MAX_ARG_SCAN]))
    if truncated:
        arguments.append("arg:<truncated>")
    return tuple(arguments)


@lru_cache(maxsize=1 << 16)
def _identity_tokens(event_name: str, executable: str, parent: str, user: str, executable_path: str,
                     ancestors: tuple[str, ...], inner: str, deleted: bool, local_port: str, remote_port: str,
                     remote_address: str) -> tuple[str, ...]:
    identity = [f"event:{event_name}", f"exe:{normalise_name(executable)}", f"parent:{normalise_name(parent)}",
                f"user:{user}"]
    exe_class = path_class(executable_path)
    if exe_class:
        identity.append(f"execlass:{exe_class}")
    identity.extend(f"anc:{normalise_name(name)}" for name in ancestors)
    if inner:
        identity.append(f"exe:{normalise_name(inner)}")  # `sudo fish` runs fish: that is its identity too
    if deleted:
        identity.append("exe:deleted")
    identity.extend(t for t in (local_port, remote_port, remote_address) if t)
    return tuple(identity)


def network_tokens(event: ProcessEvent) -> tuple[str, str, str]:
    """(local port, remote port, remote address) tokens of a network event; empty for an exec.

    A listening port is an identity (a new one is news), so it is kept exactly; so is the remote
    endpoint of a connection (a new peer is news), except ephemeral remote ports. The local port of
    an outbound connection is the kernel's pick: noise, left out.
    """
    if event.event_name == LISTEN:
        return f"lport:{event.local_port}", "", ""
    if event.event_name == CONNECTION:
        remote_port = port_class(event.remote_port)
        exact_port = remote_port if remote_port in ("", "ephemeral") else str(event.remote_port)
        return "", f"rport:{exact_port}", f"raddr:{address_class(event.remote_address)}:{event.remote_address[:64]}"
    return "", "", ""
