"""Knowledge of sensitive behaviour: what a command does to credentials, persistence, logs, defences.

A baseline says what is new; this says what is sensitive. Each check looks at one `Command` (a process
or one command of a shell script, wrappers like sudo and nohup removed) and returns `Evidence` with
the ATT&CK technique it points to. Weights are evidence strengths, set from what the behaviour means:

- strong (0.35 and up): changes that attackers make and routine work rarely does, or reads of
  secrets by a tool that prints or ships them: writing cron, systemd units, authorized_keys, shell rc
  files or ld.so.preload; creating accounts or adding them to sudo; deleting security logs or shell
  history; stopping security tools or the firewall; setuid bits; kernel modules from odd places;
  reading password hashes or private keys; miners, scanners, crackers, tunnels.
- weak (0.2 and below): what people also do every day: looking around (id, uname, ps, ss), archiving,
  encoding, a plain download. Weak evidence ranks an event above bare novelty but cannot make a new
  command an alert by itself (scoring/engine.py); it counts when it piles up in one session or runs
  where people do not type (under a web server, see scoring/chains.py).

Reads are judged by what reads: `cat /etc/shadow` ships a secret, `install privkey.pem /etc/nginx/`
does not. Writes come from redirections, `tee`, `cp`/`mv`/`install` destinations, `sed -i`, `dd of=`,
`curl -o` and `wget -O`; deletions from `rm`, `unlink`, `shred`, `truncate` and `> file`.
Every pattern is bounded: these run on attacker-controlled text.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from scoring.commands import Command, is_dynamic_loader, parse_script, unwrap
from scoring.evidence import (
    COLLECTION,
    COMMAND_AND_CONTROL,
    CREDENTIAL_ACCESS,
    DEFENSE_EVASION,
    DISCOVERY,
    EXECUTION,
    EXFILTRATION,
    IMPACT,
    PERSISTENCE,
    PRIVILEGE_ESCALATION,
    Evidence,
)
from scoring.programs import DOWNLOADERS, NETCATS, SHELLS
from scoring.tokens import address_class, in_system_dot_directory, path_class

MAX_OPERAND = 512  # characters of one argument a check looks at

# -- sensitive locations ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Location:
    """What a path is, and the evidence of reading, writing or deleting it: (weight, technique, tactic)."""

    name: str
    read: tuple[float, str, str] | None = None
    write: tuple[float, str, str] | None = None
    delete: tuple[float, str, str] | None = None


_SHADOW = Location("password hashes", (0.6, "T1003.008", CREDENTIAL_ACCESS), (0.65, "T1098", PERSISTENCE),
                   (0.3, "T1531", IMPACT))
_ACCOUNTS = Location("the account list", (0.05, "T1087.001", DISCOVERY), (0.65, "T1136.001", PERSISTENCE),
                     (0.3, "T1531", IMPACT))
_SUDOERS = Location("sudo rules", (0.15, "T1069.001", DISCOVERY), (0.6, "T1548.003", PRIVILEGE_ESCALATION))
_PRIVATE_KEY = Location("a private SSH key", (0.5, "T1552.004", CREDENTIAL_ACCESS), (0.2, "T1552.004", PERSISTENCE))
_AUTHORIZED_KEYS = Location("SSH authorized_keys", (0.05, "T1098.004", DISCOVERY), (0.55, "T1098.004", PERSISTENCE),
                            (0.15, "T1531", IMPACT))
_CREDENTIALS = Location("a credentials file", (0.4, "T1552.001", CREDENTIAL_ACCESS))
_TLS_KEY = Location("a TLS private key", (0.25, "T1552.004", CREDENTIAL_ACCESS))
_HISTORY = Location("shell history", (0.3, "T1552.003", CREDENTIAL_ACCESS), (0.4, "T1070.003", DEFENSE_EVASION),
                    (0.5, "T1070.003", DEFENSE_EVASION))
_LOGS = Location("security logs", None, (0.45, "T1070.002", DEFENSE_EVASION), (0.55, "T1070.002", DEFENSE_EVASION))
_CRON = Location("cron", (0.05, "T1053.003", DISCOVERY), (0.5, "T1053.003", PERSISTENCE))
_SYSTEMD = Location("a systemd unit", None, (0.45, "T1543.002", PERSISTENCE))
_TIMER = Location("a systemd timer", None, (0.45, "T1053.006", PERSISTENCE))
_SHELL_RC = Location("a shell start-up file", None, (0.45, "T1546.004", PERSISTENCE))
_PRELOAD = Location("the dynamic loader's preload list", (0.2, "T1574.006", DISCOVERY),
                    (0.65, "T1574.006", PERSISTENCE))
_LOADER_CONF = Location("the dynamic loader's configuration", None, (0.4, "T1574.006", PERSISTENCE))
_INIT = Location("boot scripts", None, (0.45, "T1037.004", PERSISTENCE))
_PAM = Location("PAM authentication", None, (0.55, "T1556.003", CREDENTIAL_ACCESS))
_UDEV = Location("udev rules", None, (0.4, "T1546", PERSISTENCE))
_AUTOSTART = Location("desktop autostart", None, (0.4, "T1547.013", PERSISTENCE))
_MOTD = Location("login message scripts", None, (0.4, "T1546", PERSISTENCE))
_SSHD = Location("the SSH server configuration", None, (0.1, "T1098.004", PERSISTENCE))
_MODULES = Location("kernel modules loaded at boot", None, (0.45, "T1547.006", PERSISTENCE))
_BINARIES = Location("system binaries", None, (0.25, "T1554", PERSISTENCE), (0.2, "T1485", IMPACT))
_LIBRARIES = Location("system libraries", None, (0.25, "T1574.006", PERSISTENCE))
_MEMORY = Location("another process's memory", (0.5, "T1003.007", CREDENTIAL_ACCESS), (0.6, "T1055", DEFENSE_EVASION))
_ENVIRON = Location("another process's environment", (0.25, "T1552", CREDENTIAL_ACCESS))
_ALL_ENVIRONS = Location("every process's environment", (0.45, "T1552", CREDENTIAL_ACCESS))
_ALL_COMMAND_LINES = Location("every process's command line", (0.3, "T1552", CREDENTIAL_ACCESS))
_DOCKER = Location("the Docker socket", (0.4, "T1611", PRIVILEGE_ESCALATION), (0.4, "T1611", PRIVILEGE_ESCALATION))
_AUDIT_RULES = Location("audit rules", None, (0.5, "T1562.012", DEFENSE_EVASION), (0.5, "T1562.012", DEFENSE_EVASION))
_CA_TRUST = Location("trusted root certificates", None, (0.35, "T1553.004", DEFENSE_EVASION))
_SECURITY_CONFIG = Location("security configuration", None, (0.45, "T1562.001", DEFENSE_EVASION))
# Deployments write web roots all day: a web shell is told apart by who writes it (scoring/engine.py raises this
# below a server).
_WEB_SCRIPT = Location("a script in a web root", None, (0.25, "T1505.003", PERSISTENCE))
_KERNEL_TUNABLES = Location("kernel protections", None, (0.45, "T1562.001", DEFENSE_EVASION))
_GIT_HOOKS = Location("git hooks", None, (0.4, "T1546", PERSISTENCE))
_SYSRQ = Location("the kernel's emergency keys", None, (0.4, "T1529", IMPACT))
_GENERATORS = Location("systemd generators", None, (0.45, "T1543.002", PERSISTENCE))
_SSH_RC = Location("the SSH login script", None, (0.45, "T1546", PERSISTENCE))
_MODULE_FILES = Location("the kernel's module tree", None, (0.4, "T1547.006", PERSISTENCE))
# Written into by a container that can reach the host's cgroups, the release agent runs on the host as root.
_RELEASE_AGENT = Location("a cgroup release agent", None, (0.6, "T1611", PRIVILEGE_ESCALATION))
# `.pth` files and sitecustomize run code at every Python start; pip writes them itself, not through a shell.
_PYTHON_HOOKS = Location("Python start-up hooks", None, (0.4, "T1546.018", PERSISTENCE))
_KERBEROS = Location("Kerberos tickets or keys", (0.45, "T1558.005", CREDENTIAL_ACCESS))

_EXACT = {
    "/etc/shadow": _SHADOW, "/etc/gshadow": _SHADOW, "/etc/shadow-": _SHADOW, "/etc/gshadow-": _SHADOW,
    "/etc/security/opasswd": _SHADOW, "/etc/master.passwd": _SHADOW,
    "/etc/passwd": _ACCOUNTS, "/etc/group": _ACCOUNTS, "/etc/passwd-": _ACCOUNTS,
    "/etc/sudoers": _SUDOERS, "/etc/crontab": _CRON, "/etc/anacrontab": _CRON,
    "/etc/ld.so.preload": _PRELOAD, "/etc/ld.so.conf": _LOADER_CONF, "/etc/rc.local": _INIT,
    "/etc/profile": _SHELL_RC, "/etc/bash.bashrc": _SHELL_RC, "/etc/environment": _SHELL_RC,
    "/etc/zsh/zshrc": _SHELL_RC, "/etc/zshrc": _SHELL_RC, "/etc/ssh/sshd_config": _SSHD,
    "/etc/modules": _MODULES, "/var/run/docker.sock": _DOCKER, "/run/docker.sock": _DOCKER,
    "/etc/audit/audit.rules": _AUDIT_RULES, "/etc/selinux/config": _SECURITY_CONFIG,
    "/etc/audit/auditd.conf": _AUDIT_RULES, "/etc/rsyslog.conf": _SECURITY_CONFIG, "/var/run/utmp": _LOGS,
    "/run/utmp": _LOGS, "/proc/sysrq-trigger": _SYSRQ,
}
_PREFIXES = (
    ("/proc/sys/kernel/", _KERNEL_TUNABLES),
    ("/etc/sudoers", _SUDOERS), ("/etc/cron.", _CRON), ("/var/spool/cron", _CRON), ("/var/spool/at", _CRON),
    ("/etc/profile.d/", _SHELL_RC), ("/etc/ld.so.conf.d/", _LOADER_CONF), ("/etc/init.d/", _INIT),
    ("/etc/rc", _INIT), ("/etc/pam.d/", _PAM), ("/etc/udev/rules.d/", _UDEV), ("/lib/udev/rules.d/", _UDEV),
    ("/etc/xdg/autostart/", _AUTOSTART), ("/etc/update-motd.d/", _MOTD), ("/etc/modules-load.d/", _MODULES),
    ("/etc/audit/rules.d/", _AUDIT_RULES), ("/usr/local/share/ca-certificates/", _CA_TRUST),
    ("/etc/pki/ca-trust/source/anchors/", _CA_TRUST), ("/etc/ssl/private/", _TLS_KEY),
    ("/var/log/", _LOGS), ("/etc/systemd/system/", _SYSTEMD), ("/lib/systemd/system/", _SYSTEMD),
    ("/usr/lib/systemd/system/", _SYSTEMD), ("/run/systemd/system/", _SYSTEMD), ("/etc/ssh/ssh_host_", _PRIVATE_KEY),
    ("/etc/systemd/system-generators/", _GENERATORS), ("/usr/lib/systemd/system-generators/", _GENERATORS),
    ("/lib/systemd/system-generators/", _GENERATORS), ("/usr/local/lib/systemd/system-generators/", _GENERATORS),
    ("/etc/ssh/sshrc", _SSH_RC), ("/etc/rsyslog.d/", _SECURITY_CONFIG), ("/lib/modules/", _MODULE_FILES),
    ("/usr/lib/modules/", _MODULE_FILES),
    ("/var/run/secrets/", _CREDENTIALS), ("/run/secrets/", _CREDENTIALS),
    ("/bin/", _BINARIES), ("/sbin/", _BINARIES), ("/usr/bin/", _BINARIES), ("/usr/sbin/", _BINARIES),
    ("/lib/security/", _PAM), ("/lib/x86_64-linux-gnu/security/", _PAM), ("/usr/lib/x86_64-linux-gnu/security/", _PAM),
    # after the PAM modules' directories, which lie inside these
    ("/lib/x86_64-linux-gnu/", _LIBRARIES), ("/usr/lib/x86_64-linux-gnu/", _LIBRARIES), ("/lib64/", _LIBRARIES),
    ("/usr/lib64/", _LIBRARIES), ("/lib/aarch64-linux-gnu/", _LIBRARIES), ("/usr/lib/aarch64-linux-gnu/", _LIBRARIES),
)
# Names (before the first dot) of the logs that record logins, privilege use and the system's own events.
_PREFIX_TEXTS = tuple(prefix for prefix, _ in _PREFIXES)
_ROTATED = re.compile(r"(?:\.\d{1,3}|-\d{8})(?:\.(?:gz|bz2|xz|zst))?$|\.(?:gz|bz2|xz|zst)$")
_LOG_FILES = frozenset({"auth", "secure", "syslog", "messages", "kern", "wtmp", "btmp", "lastlog", "utmp", "faillog",
                        "audit", "daemon", "user", "mail", "maillog", "cron", "sudo", "boot"})
_RC_FILES = frozenset({".bashrc", ".bash_profile", ".profile", ".bash_login", ".bash_logout", ".bash_aliases", ".zshrc",
                       ".zprofile", ".zlogin", ".zshenv", ".cshrc", ".tcshrc", ".kshrc", ".config/fish/config.fish"})
_HISTORY_FILES = frozenset({".bash_history", ".zsh_history", ".history", ".sh_history", ".mysql_history",
                            ".psql_history", ".python_history", ".node_repl_history", ".lesshst", ".viminfo"})
_CREDENTIAL_FILES = frozenset({".netrc", ".pgpass", ".my.cnf", ".git-credentials", ".npmrc", ".pypirc",
                               "credentials", "wp-config.php", ".env", "credentials.json", "secrets.yaml",
                               "secrets.yml", ".htpasswd", ".vault-token", "id_token", "kubeconfig",
                               "credentials.xml", "logins.json", "key4.db", "Login Data", "tomcat-users.xml",
                               "admin.conf"})
_CREDENTIAL_DIRS = ("/.aws/", "/.azure/", "/.config/gcloud/", "/.kube/", "/.docker/config.json", "/.gnupg/",
                    "/.password-store/", "/.mozilla/firefox/", "/.config/google-chrome/", "/.config/chromium/",
                    "/jenkins/secrets/", "/etc/kubernetes/pki/")
_WEB_ROOTS = ("/var/www/", "/srv/www/", "/usr/share/nginx/html/", "/htdocs/", "/webapps/", "/public_html/")
_WEB_SCRIPT_SUFFIXES = (".php", ".phtml", ".jsp", ".jspx", ".asp", ".aspx", ".cgi", ".pl", ".py", ".sh")
# Per-directory server settings that can make any file a script (`AddType application/x-httpd-php .jpg`,
# `auto_prepend_file`): written into a web root, as much a web shell's first step as a script is.
_WEB_CONFIGS = frozenset({".htaccess", ".user.ini"})
_PRIVATE_KEY_NAME = re.compile(r"(?:^|/)(?:id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?|identity)$")
_PRIVATE_KEY_NAMES = ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "identity")  # what a glob (`id_*`) may cover
_GLOB = re.compile(r"[*?\[]")


def _covers_private_keys(pattern: str) -> bool:
    """A file name glob that SSH private keys' names match (`id_*`, `*`)."""
    return any(fnmatch.fnmatchcase(key, pattern) for key in _PRIVATE_KEY_NAMES)


_PROC_FILE = re.compile(r"^/proc/(?:\d{1,8}|self|\*|\$\([^)]{1,80}\)|\$\{?\w{1,32}\}?)/(mem|maps|environ|cmdline)$")


@lru_cache(maxsize=1 << 13)
def location_of(path: str) -> Location | None:
    """What a path is, when it is one of the locations above; None for ordinary files."""
    if not path or len(path) > MAX_OPERAND:
        return None
    path = path.strip("'\"")
    found = _EXACT.get(path)
    if found is not None:
        return found
    name = path.rsplit("/", 1)[-1]
    if "/.ssh/" in path or path.startswith(".ssh/") or path.startswith("~/.ssh/"):
        if name.startswith("authorized_keys"):
            return _AUTHORIZED_KEYS
        if _PRIVATE_KEY_NAME.search(path) or (_GLOB.search(name) and _covers_private_keys(name)):
            return _PRIVATE_KEY
        if name == "rc":
            return _SSH_RC
    if name in _HISTORY_FILES:
        return _HISTORY
    if name.startswith("krb5cc_") or name.endswith(".keytab"):
        return _KERBEROS
    if name in _RC_FILES or path.endswith("/.config/fish/config.fish"):
        return _SHELL_RC
    if name in _CREDENTIAL_FILES or any(d in path for d in _CREDENTIAL_DIRS):
        return _CREDENTIALS
    if (memory := _PROC_FILE.match(path)) is not None:
        if memory.group(1) != "mem" and path.startswith("/proc/self/"):
            return None  # the reader's own environment or memory map: what `env` shows
        if memory.group(1) == "environ":
            return _ALL_ENVIRONS if "*" in path else _ENVIRON
        if memory.group(1) == "cmdline":  # one process's is what ps shows; every one's, searched, is a hunt
            return _ALL_COMMAND_LINES if "*" in path else None
        return _MEMORY
    if path in ("/dev/mem", "/dev/kmem", "/proc/kcore"):
        return _MEMORY
    if "/.config/systemd/user/" in path:
        return _TIMER if name.endswith(".timer") else _SYSTEMD
    if "/.config/autostart/" in path:
        return _AUTOSTART
    if "/.git/hooks/" in path or path.startswith(".git/hooks/"):
        return _GIT_HOOKS
    if name in ("release_agent", "notify_on_release"):
        return _RELEASE_AGENT
    if (name.endswith(".pth") and "-packages/" in path) or name in ("sitecustomize.py", "usercustomize.py"):
        return _PYTHON_HOOKS
    if any(root in path for root in _WEB_ROOTS) and (name.endswith(_WEB_SCRIPT_SUFFIXES) or name in _WEB_CONFIGS):
        return _WEB_SCRIPT
    if name.endswith((".pem", ".key")) and ("private" in path or "privkey" in name or name.endswith(".key")):
        return _TLS_KEY
    if path.rstrip("/*") in ("/var/log", "/var/log/audit", "/var/log/journal") or _covers_security_logs(path):
        return _LOGS
    if not path.startswith(_PREFIX_TEXTS):
        return None
    for prefix, location in _PREFIXES:
        if path.startswith(prefix):
            if location is _LOGS and (name.split(".", 1)[0] not in _LOG_FILES or _ROTATED.search(name)) and \
                    not _is_log_dir(path):
                return None  # application logs, and rotated copies: cleaned routinely
            if location is _SYSTEMD and name.endswith(".timer"):
                return _TIMER
            return location
    return None


# What a glob in a log directory must match for it to stand for the security logs (`/var/log/*.log`: auth.log).
_SECURITY_LOG_NAMES = ("auth.log", "syslog", "kern.log", "secure", "messages", "wtmp", "btmp", "lastlog", "audit.log")


def _covers_security_logs(path: str) -> bool:
    """A glob directly in a log directory that matches the security logs: `/var/log/*.log`, not `/var/log/*.gz`."""
    folder, _, name = path.rpartition("/")
    return _GLOB.search(name) is not None and folder in ("/var/log", "/var/log/audit") and any(
        fnmatch.fnmatchcase(log, name) for log in _SECURITY_LOG_NAMES)


def _is_log_dir(path: str) -> bool:
    return path.rstrip("/*") in ("/var/log", "/var/log/audit", "/var/log/journal") or path.startswith(
        ("/var/log/audit/", "/var/log/journal/"))


# -- what a command does to files -------------------------------------------------------------------------

# Programs that print, encode, pack or ship what they read: reading a secret with these exposes it.
_CONTENT_READERS = frozenset({
    "cat", "head", "tail", "less", "more", "strings", "xxd", "od", "hexdump", "base64", "base32", "basenc",
    "tac", "nl", "grep", "egrep", "fgrep", "zgrep", "rg", "awk", "gawk", "mawk", "sed", "cut", "sort", "uniq",
    "tar", "zip", "7z", "7za", "rar", "gzip", "bzip2", "xz", "zstd", "scp", "rsync", "nc", "ncat", "netcat",
    "socat", "dd", "gpg", "openssl", "python", "perl", "ruby", "php", "vi", "vim", "nano",
    "view", "ed", "emacs", "unshadow", "john", "hashcat", "mail", "mutt", "sendmail", "split",
    "busybox", "diff", "cmp", "paste", "column", "jq", "fold", "rev", "iconv", "uuencode", "sqlite3",
})
_COPIERS = frozenset({"cp", "mv", "install", "rsync", "scp", "ln", "dd"})
_DELETERS = frozenset({"rm", "unlink", "shred", "srm", "wipe", "truncate"})
_STAGING = frozenset({"tmp", "shm", "home", "www", "relative"})


_DEBUGFS_READ = re.compile(r"^\s{0,4}(?:cat|dump|rdump|stat)\s{1,4}(\S{1,512})")


def reads_of(command: Command) -> tuple[str, ...]:
    """Files whose contents the command reads."""
    program, operands = command.program, _operands(command)
    found = [r.target for r in command.redirects if r.operator == "<"]
    if program in ("grep", "egrep", "fgrep", "zgrep", "rg", "awk", "gawk", "mawk", "sed") and operands:
        operands = operands[1:]  # the pattern or program comes first
    if program in _CONTENT_READERS or program in _COPIERS:
        found.extend(operands[:-1] if program in _COPIERS and len(operands) > 1 else operands)
    if program == "dd":
        found.extend(option_values(command, ("if=",)))
    if program == "socat":  # FILE:/etc/shadow TCP:host:port sends the file; -u reads only the first address
        files = [m.group(1) for a in command.args[1:] if (m := _SOCAT_FILE.match(a))]
        addresses = [a for a in command.args[1:] if not a.startswith("-")]
        found.extend(f for f in files if "-u" not in command.args or (addresses and addresses[0].endswith(f)))
    if program == "smbclient":  # -c 'put LOCAL [REMOTE]'
        found.extend(words[1] for value in option_values(command, ("-c", "--command")) for request in value.split(";")
                     if len(words := request.split()) > 1 and words[0] == "put")
    if program == "debugfs":  # reads files off the raw device, past their permissions: -R 'cat /etc/shadow'
        found.extend(m.group(1) for v in option_values(command, ("-R", "--request")) if (m := _DEBUGFS_READ.match(v)))
    if program in ("curl", "wget", "openssl"):
        for option, value in _option_pairs(command, ("-d", "--data", "--data-binary", "-F", "--form", "-T",
                                                     "--upload-file", "--post-file", "-in")):
            if option in ("-T", "--upload-file", "--post-file", "-in"):
                found.append(value)
            elif "@" in value:
                found.append(value.split("@", 1)[1].split(";", 1)[0])
    return tuple(_clean(p) for p in found if p and p != "-")


def writes_of(command: Command, after_url: bool = True) -> tuple[str, ...]:
    """Files the command creates or changes; with `after_url` False, only those it names (a download's
    output named after its URL, wget's default and `curl -O`, left out)."""
    program, operands = command.program, _operands(command)
    found = list(command.writes_to())
    if program == "tee":
        found.extend(operands)
    elif program in ("cp", "mv", "install", "ln", "rsync", "scp") and len(operands) >= 2 and operands[0] != "/dev/null":
        found.append(_destination(operands[-1], operands[0]))
    elif program == "sed" and any(a == "-i" or a.startswith(("-i", "--in-place")) for a in command.args[1:]):
        found.extend(operands[1:])
    elif program in ("touch", "truncate", "chattr") and operands:
        found.extend(operands)
    if program == "dd":
        found.extend(option_values(command, ("of=",)))
    if program in ("curl", "wget"):
        named, url_named = _downloads_of(command)
        found.extend((*named, *url_named) if after_url else named)
    elif program in ("aria2c", "fetch", "axel"):
        directory = next(iter(option_values(command, ("-d", "--dir"))), "")
        found.extend(f"{directory.rstrip('/')}/{name}" if directory and not name.startswith("/") else name
                     for name in option_values(command, ("-o", "--out", "--output")))
    elif program in ("tftp", "atftp", "smbclient"):
        found.extend(_fetched_by_file_clients(command))
    elif program == "lwp-download" and operands:  # lwp-download URL [FILE]: else named after the URL
        found.append(operands[1] if len(operands) > 1 else _url_file_name(operands[0], "") if after_url else "")
    return tuple(_clean(p) for p in found if p and p not in ("-", "/dev/null", "&1", "&2"))


def _fetched_by_file_clients(command: Command) -> list[str]:
    """Local files that tftp, atftp and smbclient fetch into: `tftp HOST -c get REMOTE [LOCAL]`,
    `tftp -g -r REMOTE -l LOCAL HOST` (busybox, atftp) and smbclient's `-c 'get REMOTE [LOCAL]'`; a fetch
    that names no local file lands in the working directory under the remote name."""
    args = command.args
    local = option_values(command, ("-l", "--local-file"))
    if local:
        return local
    if {"-g", "--get"} & set(args):  # busybox and atftp: `-g -r REMOTE HOST` saves under the remote name
        return [remote.rsplit("/", 1)[-1] for remote in option_values(command, ("-r", "--remote-file"))]
    if command.program == "smbclient":
        requests = [r.split() for value in option_values(command, ("-c", "--command")) for r in value.split(";")]
    else:
        requests = [list(args[i:i + 3]) for i, arg in enumerate(args) if arg == "get"]
    return [words[2] if len(words) > 2 else words[1].replace("\\", "/").rsplit("/", 1)[-1]
            for words in requests if len(words) > 1 and words[0] == "get"]


@dataclass(frozen=True, slots=True)
class _Downloader:
    """How one downloader's arguments name what it saves."""

    short_values: frozenset[str]  # short options that take a value (the rest of the cluster, or the next argument)
    long_values: frozenset[str]
    output: tuple[str, ...]  # options naming the saved file
    directory: tuple[str, ...]  # options naming the directory URL-named files go to
    remote_name: tuple[str, ...]  # curl: options saving the next URL under its own name
    saves_by_default: bool  # wget: every URL is saved under its own name unless an output is named


_DOWNLOADERS = {
    "curl": _Downloader(
        frozenset("oHdeuXAxwmTFbcrKECYyzUQtP"),
        frozenset({"--output", "--output-dir", "--header", "--data", "--data-binary", "--data-raw", "--data-urlencode",
                   "--user", "--request", "--user-agent", "--referer", "--proxy", "--write-out", "--max-time",
                   "--connect-timeout", "--upload-file", "--form", "--cookie", "--cookie-jar", "--range", "--config",
                   "--cert", "--cacert", "--key", "--retry", "--limit-rate", "--resolve", "--url"}),
        ("-o", "--output"), ("--output-dir",), ("-O", "--remote-name"), saves_by_default=False),
    "wget": _Downloader(
        frozenset("OoPaieTtwQUlARDIXB"),
        frozenset({"--output-document", "--directory-prefix", "--output-file", "--append-output", "--input-file",
                   "--user-agent", "--header", "--post-data", "--post-file", "--user", "--password", "--tries",
                   "--timeout", "--wait", "--quota", "--level", "--execute", "--referer", "--accept", "--reject",
                   "--domains", "--base", "--bind-address", "--limit-rate"}),
        ("-O", "--output-document"), ("-P", "--directory-prefix"), (), saves_by_default=True),
}


def _downloads_of(command: Command) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(files named on the command line, files named after their URL) that curl or wget saves: `curl -o f`,
    `wget -qO /tmp/x`, `curl -sO URL` (the URL's last segment), `wget -P /tmp URL` (in that directory)."""
    downloader = _DOWNLOADERS.get(command.program)
    if downloader is None or any(a in ("--spider", "--delete-after") for a in command.args[1:64]):
        return (), ()  # a health check or a cache warm-up: nothing stays on disk
    options, urls, remote_names = _download_arguments(command.args[1:64], downloader)
    named = tuple(value for name, value in options if name in downloader.output and value and value != "-")
    if any(name in downloader.output for name, _ in options) or not (downloader.saves_by_default or remote_names):
        return named, ()
    directory = next((value for name, value in options if name in downloader.directory and value), "")
    saved = urls if downloader.saves_by_default else urls[:remote_names]
    after_url = (_url_file_name(url, "index.html" if downloader.saves_by_default else "") for url in saved)
    return named, tuple(f"{directory.rstrip('/')}/{name}" if directory else name for name in after_url if name)


def _download_arguments(args: tuple[str, ...], downloader: _Downloader) -> tuple[list[tuple[str, str]], list[str], int]:
    """(options with their values, URLs, how many URLs are saved under their own name) of a download."""
    options: list[tuple[str, str]] = []
    urls: list[str] = []
    remote_names = 0
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            name, equals, value = arg.partition("=")
            if name in downloader.long_values and not equals and i + 1 < len(args):
                i, value = i + 1, args[i + 1]
            options.append((name, value))
            if name in downloader.remote_name:
                remote_names += 1
            elif name == "--remote-name-all" and downloader.remote_name:
                remote_names = len(args)
        elif arg.startswith("-") and len(arg) > 1:
            for at, letter in enumerate(arg[1:16], start=2):  # a cluster of options is short
                if letter not in downloader.short_values:
                    remote_names += f"-{letter}" in downloader.remote_name  # -O in a cluster: `curl -fsSLO`
                    continue
                value = arg[at:]
                if not value and i + 1 < len(args):
                    i, value = i + 1, args[i + 1]
                options.append((f"-{letter}", value))
                break
        elif "://" in arg:
            urls.append(arg)
        i += 1
    return options, urls + [value for name, value in options if name == "--url"], remote_names


def _url_file_name(url: str, default: str) -> str:
    """The last path segment of a URL (what `curl -O` and `wget` name the file), `default` when it has none."""
    rest = url.split("://", 1)[-1][:MAX_OPERAND]
    path = rest.split("/", 1)[1] if "/" in rest else ""
    return path.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1] or default


def deletes_of(command: Command) -> tuple[str, ...]:
    """Files the command removes or empties."""
    program = command.program
    found: list[str] = []
    if program in _DELETERS:
        found.extend(_operands(command))
    elif program == "ln" and "/dev/null" in command.args:
        found.extend(o for o in _operands(command) if o != "/dev/null")  # history pointed at nothing
    elif program == "cp" and (operands := _operands(command))[:1] == ("/dev/null",) and len(operands) == 2:
        found.append(operands[1])  # emptied: `cp /dev/null /var/log/lastlog`
    if program in (":", "true", "echo", "printf") or (program == "cat" and "/dev/null" in command.args):
        found.extend(r.target for r in command.redirects if r.operator == ">")
    return tuple(_clean(p) for p in found if p)


# Options that take a value, per program, so the value is not mistaken for a file operand.
_VALUE_OPTIONS: dict[str, frozenset[str]] = {name: frozenset(options.split()) for name, options in {
    "curl": "-o --output -d --data --data-binary --data-raw --data-urlencode -H --header -u --user -X --request "
            "-A --user-agent -e --referer -F --form -T --upload-file -x --proxy -m --max-time -b --cookie "
            "-c --cookie-jar -w --write-out --connect-timeout --retry --cacert --cert --key --resolve",
    "wget": "-O --output-document -P --directory-prefix -o --output-file -a -U --user-agent --header "
            "--post-file --post-data --user --password -t --tries -T --timeout -e",
    "grep": "-e -f -m -A -B -C --include --exclude", "egrep": "-e -f -m -A -B -C", "rg": "-e -g -t -m",
    "tar": "-f --file -C --directory --exclude -T", "find": "-name -iname -path -perm -type -user -group -mtime "
            "-mmin -newer -maxdepth -mindepth -size -exec -execdir -regex",
    "useradd": "-s -d -g -G -c -u -k -e -f -p -b -K", "usermod": "-s -d -g -G -c -u -e -f -p -l",
    "adduser": "--shell --home --gid --uid --gecos --ingroup", "crontab": "-u", "openssl": "-in -out -k -pass "
            "-passin -passout -key -keyout -subj -days -config -CAfile",
    "gpg": "-o --output -r --recipient -u --local-user --passphrase", "zip": "-P --password",
    "install": "-m --mode -o --owner -g --group -t -S", "cp": "-t --target-directory -S", "mv": "-t -S",
    "ssh": "-i -p -o -l -L -R -D -F -J -W -b -c -E -m", "scp": "-i -P -o -l -F -S -c", "rsync": "-e --rsh",
    "nc": "-p -w -s -i -x -X -q", "ncat": "-p -w -s -i -e -c --exec --sh-exec", "sed": "-e -f",
    "awk": "-F -v -f", "gawk": "-F -v -f", "head": "-n -c", "tail": "-n -c -s", "touch": "-r -d -t --date "
            "--reference", "journalctl": "-u --unit -p --since --until -n -o -t -b", "ps": "-o -p -u -U -C -G -t",
    "systemctl": "-H -M --type -t --state -p --property -n", "chown": "--reference", "chmod": "--reference",
    "dd": "", "sudo": "-u -g -C -h -p -U -r -t", "timeout": "-s -k", "nice": "-n", "ln": "-t -S",
    "xargs": "-I -n -P -d -a -E -L -s", "tcpdump": "-i -c -w -r -s -C -W -G -F", "nmap": "-p -oN -oX -oG -oA -iL",
    "7z": "-o",
}.items()}


def _operands(command: Command) -> tuple[str, ...]:
    """Arguments that are not options or option values."""
    takes_value = _VALUE_OPTIONS.get(command.program, frozenset())
    operands, skip = [], False
    for arg in command.args[1:]:
        if skip:
            skip = False
        elif arg.startswith("-") and len(arg) > 1:
            skip = arg in takes_value
        else:
            operands.append(arg[:MAX_OPERAND])
    return tuple(operands)


def _option_pairs(command: Command, names: tuple[str, ...]) -> list[tuple[str, str]]:
    args, pairs = command.args, []
    for i, arg in enumerate(args[1:], start=1):
        name, equals, value = arg.partition("=")
        if equals and name in names and name.startswith("--"):
            pairs.append((name, value[:MAX_OPERAND]))
        elif arg in names and i + 1 < len(args):
            pairs.append((arg, args[i + 1][:MAX_OPERAND]))
    return pairs


def option_values(command: Command, names: tuple[str, ...]) -> list[str]:
    values = []
    args = command.args
    for i, arg in enumerate(args[1:], start=1):
        for name in names:
            if name.endswith("="):
                if arg.startswith(name):
                    values.append(arg[len(name):])
            elif arg == name and i + 1 < len(args):
                values.append(args[i + 1])
            elif arg.startswith(name + "=") and name.startswith("--"):
                values.append(arg[len(name) + 1:])
    return [v[:MAX_OPERAND] for v in values]


def _destination(target: str, source: str) -> str:
    return target.rstrip("/") + "/" + source.rstrip("/").rsplit("/", 1)[-1] if target.endswith("/") else target


def _clean(path: str) -> str:
    return path.strip("'\"")[:MAX_OPERAND]


# -- the checks -------------------------------------------------------------------------------------------


def _evidence(spec: tuple[float, str, str], reason: str) -> Evidence:
    weight, technique, tactic = spec
    return Evidence(weight, reason, technique, tactic)


_WEAK_SSHD = re.compile(r"PermitRootLogin\s{0,4}yes|PasswordAuthentication\s{0,4}yes|PermitEmptyPasswords\s{0,4}yes|"
                        r"AuthorizedKeysFile|AuthorizedKeysCommand|PubkeyAuthentication", re.IGNORECASE)


# Settings that make a program run code of the writer's choosing, in configuration files that are otherwise
# edited routinely (a proxy for APT, a memory limit for PHP): (where, the setting, what it does, technique).
_CODE_DIRECTIVES = (
    (lambda path: path.startswith("/etc/apt/apt.conf.d/"), re.compile(r"(?:Pre|Post)-Invoke", re.IGNORECASE),
     "APT is told to run a command at every update or install", "T1546.016"),
    (lambda path: path.endswith(("php.ini", ".user.ini")) or ("/php/" in path and path.endswith(".ini")),
     re.compile(r"auto_(?:prepend|append)_file", re.IGNORECASE), "PHP is told to run a file with every script",
     "T1505.003"),
    # An upload directory's images run as PHP: the way an uploaded picture becomes a web shell.
    (lambda path: path.endswith("/.htaccess"),
     re.compile(r"(?:AddType|AddHandler)\s{1,4}\S{0,40}(?:php|cgi)[^\n]{0,120}?\.(?:jpe?g|png|gif|bmp|ico|svg|webp|txt|"
                r"css|js|pdf|zip|xml|json)\b|SetHandler\s{1,4}\S{0,40}(?:php|cgi)|auto_(?:prepend|append)_file",
                re.IGNORECASE), "the web server is told to run other files as scripts", "T1505.003"),
    (lambda path: path.startswith(("/etc/pacman.d/hooks/", "/usr/share/libalpm/hooks/")),
     re.compile(r"Exec\s{0,4}=", re.IGNORECASE), "pacman is told to run a command at every transaction",
     "T1546.016"),
)


# Server-side code that runs what a request sends: the classic one-line web shell.
_WEB_SHELL_CODE = re.compile(r"\b(?:system|exec|passthru|shell_exec|popen|proc_open|eval|assert)\s{0,4}\(\s{0,4}"
                             r"(?:base64_decode\(\s{0,4})?\$_(?:GET|POST|REQUEST|COOKIE|SERVER)|"
                             r"(?:getRuntime\(\)\s{0,4}\.\s{0,4}exec|new\s{1,4}ProcessBuilder)\s{0,4}\(\s{0,4}"
                             r"(?:new\s{1,4}String\[\]\s{0,4}\{[^}]{0,60})?request\.getParameter", re.IGNORECASE)
# What a ransom note says; written to a file, it is the note (T1486), wherever it is left.
_RANSOM_NOTE = re.compile(r"\b(?:files?|data(?:bases?)?)\s{1,4}(?:are|were|have\s{1,4}been|has\s{1,4}been)\s{1,4}"
                          r"(?:encrypted|locked|stolen)|\bdecrypt(?:ion|or)?\s{1,4}(?:key|tool|software)|"
                          r"\b(?:pay|send|transfer)\b.{0,40}\b(?:btc|bitcoins?|monero|xmr|ransom)\b|\bransom\b",
                          re.IGNORECASE)
_HOME_PAGE = re.compile(r"/index\.(?:html?|php|jsp)$")
# Programs an intruder replaces to hide or to catch passwords (trojanized binaries).
_TROJANED = frozenset({"sshd", "ssh", "sudo", "su", "login", "passwd", "ps", "ls", "netstat", "ss", "top", "lsof",
                       "find", "who", "w", "last", "cron", "crond", "bash", "sh"})


def _planted(command: Command, location: Location, path: str) -> list[Evidence]:
    """What is written, where it tells more than the place: a web shell's code, a staged file copied over a
    program intruders replace."""
    if location is _WEB_SCRIPT and _WEB_SHELL_CODE.search(command.text()[:MAX_OPERAND * 2]):
        return [Evidence(0.6, f"{command.program} writes a web shell: code that runs request input ({path[:80]})",
                         "T1505.003", PERSISTENCE)]
    if command.program not in _COPIERS:
        return []
    sources = [(path_class(source), _hidden(source)) for source in reads_of(command)]
    if location is _BINARIES and path.rsplit("/", 1)[-1] in _TROJANED and any(
            where in _STAGING or hidden for where, hidden in sources):
        return [Evidence(0.55, f"{command.program} replaces {path[:80]} with a staged file", "T1554", PERSISTENCE)]
    # Packages install libraries, builds into /usr/local; one copied in from temp or a hidden place is planted.
    if location is _LIBRARIES and any(where in ("tmp", "shm", "dev") or hidden for where, hidden in sources):
        return [Evidence(0.45, f"{command.program} puts a staged file among the system libraries ({path[:80]})",
                         "T1574.006", PERSISTENCE)]
    return []


WRITTEN_CODE_WEIGHT = 0.55  # at most: code written is not yet run, but a script is written to be


def _written_code(command: Command) -> list[Evidence]:
    """`echo 'cp /bin/bash /tmp/rb; chmod +xs /tmp/rb' >> /usr/local/bin/backup.sh`: text written to a file, read
    as the shell code it is, and what that code would do when the file runs (strong evidence only)."""
    text = " ".join(a for a in command.args[1:] if a not in ("-e", "-n", "-E", "-en", "-ne"))[:MAX_OPERAND]
    if len(text) < 8 or not any(c in text for c in " ;|&"):
        return []
    inner = [e for c in parse_script(text).commands()[:8] for e in assess_command(c) if e.weight >= 0.45]
    if not inner:
        return []
    strongest = max(inner, key=lambda e: e.weight)
    path = command.writes_to()[0]
    return [Evidence(min(strongest.weight, WRITTEN_CODE_WEIGHT), f"{command.program} writes code into {path[:60]} "
                     f"that would do this: {strongest.reason[:80]}", strongest.technique, strongest.tactic)]


def _code_directives(command: Command, path: str) -> list[Evidence]:
    text = command.text()[:MAX_OPERAND * 2]
    return [Evidence(0.5, f"{what} ({path[:80]})", technique, PERSISTENCE)
            for applies, setting, what, technique in _CODE_DIRECTIVES if applies(path) and setting.search(text)]


def _copied_from_system(command: Command) -> bool:
    """A copy whose sources all lie outside the places droppers stage files (temp, home, web roots, the
    working directory): /srv/app/deploy/app.service, /usr/share/doc/..."""
    sources = reads_of(command)
    return bool(sources) and all(p.startswith("/") and path_class(p) not in _STAGING and "/." not in p
                                 for p in sources)


def _notes_and_defacement(command: Command) -> list[Evidence]:
    """A ransom note written anywhere, a web root's home page overwritten by hand (`echo ... > index.html`)."""
    written = writes_of(command)
    if not written or command.program not in ("echo", "printf", "tee", "cat"):  # by hand: a deployment copies
        return []
    if command.program in ("echo", "printf") and _RANSOM_NOTE.search(command.text()[:MAX_OPERAND * 2]):
        return [Evidence(0.5, f"{command.program} writes a ransom note ({written[0][:80]})", "T1486", IMPACT)]
    if any(p.startswith(_WEB_ROOTS) and _HOME_PAGE.search(p) for p in written):
        return [Evidence(0.2, f"{command.program} overwrites a web site's home page by hand", "T1491.001", IMPACT)]
    return []


def _file_effects(command: Command) -> list[Evidence]:
    found: list[Evidence] = _notes_and_defacement(command)
    program = command.program
    for path in reads_of(command):
        location = location_of(path)
        if location is None or location.read is None:
            continue
        weight, technique, tactic = location.read
        if program in _COPIERS and weight >= 0.2:
            destination = writes_of(command)
            staged = destination and path_class(destination[0]) in _STAGING
            if not staged:
                weight *= 0.3  # a copy between system locations: deployment, not collection
        found.append(Evidence(weight, f"{program} reads {location.name} ({path[:80]})", technique, tactic))
    deployed = program in _COPIERS and _copied_from_system(command)
    for path in writes_of(command):
        location = location_of(path)
        if location is not None and location.write is not None:
            weight, technique, tactic = location.write
            if deployed:  # a unit or key file installed from a package or a release tree: deployment's shape
                weight *= 0.5
            found.append(Evidence(weight, f"{program} writes {location.name} ({path[:80]})", technique, tactic))
            found.extend(_planted(command, location, path))
            if location is _SSHD and _WEAK_SSHD.search(command.text()[:MAX_OPERAND * 2]):
                found.append(Evidence(0.4, "the SSH server is told to let more in (keys, root, passwords)",
                                      "T1098.004", PERSISTENCE))
        found.extend(_code_directives(command, path))
    for path in deletes_of(command):
        location = location_of(path)
        if location is not None and location.delete is not None:
            found.append(_evidence(location.delete, f"{program} deletes or empties {location.name} ({path[:80]})"))
    return found


_PRIVILEGED_GROUPS = frozenset({"sudo", "wheel", "admin", "root", "adm", "docker", "lxd", "disk", "shadow",
                                "systemd-journal", "libvirt", "kvm"})


def _accounts(command: Command) -> list[Evidence]:
    program, args = command.program, command.args
    if program in ("useradd", "adduser", "newusers"):
        if "-o" in args or ("-u" in args and args[args.index("-u") + 1:args.index("-u") + 2] == ("0",)):
            return [Evidence(0.7, f"{program} creates an account with uid 0", "T1136.001", PERSISTENCE)]
        shells = option_values(command, ("-s", "--shell"))
        if shells and all(shell.rsplit("/", 1)[-1] in ("nologin", "false") for shell in shells):
            # A service account nobody can log in as: what packages and exporters create, not a way back in.
            return [Evidence(0.15, f"{program} creates an account that cannot log in", "T1136.001", PERSISTENCE)]
        return [Evidence(0.4, f"{program} creates an account", "T1136.001", PERSISTENCE)]
    if program in ("usermod", "gpasswd", "adduser", "addgroup"):
        groups = {g for a in args[1:] for g in a.split(",")}
        if groups & _PRIVILEGED_GROUPS:
            group = sorted(groups & _PRIVILEGED_GROUPS)[0]
            return [Evidence(0.5, f"{program} adds an account to the {group} group", "T1098", PRIVILEGE_ESCALATION)]
        if program == "usermod" and ("-o" in args or ("-u" in args and "0" in args)):
            return [Evidence(0.7, "usermod gives an account uid 0", "T1098", PRIVILEGE_ESCALATION)]
        if program == "usermod" and ({"-L", "--lock", "-e", "--expiredate"} & set(args) or "nologin" in " ".join(args)):
            return [Evidence(0.1, "usermod locks an account", "T1531", IMPACT)]
        return [Evidence(0.2, f"{program} changes an account", "T1098", PERSISTENCE)]
    if program == "chpasswd":
        return [Evidence(0.35, "chpasswd sets passwords", "T1098", PERSISTENCE)]
    if program == "passwd":
        if {"-d", "--delete"} & set(args):
            return [Evidence(0.45, "passwd removes a password", "T1098", PERSISTENCE)]
        if {"-l", "--lock", "-S", "--status", "-e"} & set(args):
            return [Evidence(0.05, "passwd locks or inspects an account", "T1531", IMPACT)]
        if _operands(command):
            return [Evidence(0.25, "passwd sets another account's password", "T1098", PERSISTENCE)]
    if program in ("userdel", "deluser", "groupdel"):
        return [Evidence(0.15, f"{program} removes an account", "T1531", IMPACT)]
    if program in ("groupadd", "addgroup"):
        return [Evidence(0.1, f"{program} creates a group", "T1136.001", PERSISTENCE)]
    if program in ("vipw", "vigr", "visudo") and "-c" not in args:
        return [Evidence(0.25, f"{program} edits accounts or sudo rules", "T1098", PERSISTENCE)]
    return []


def _scheduling(command: Command) -> list[Evidence]:
    program, args = command.program, command.args
    if program == "crontab":
        if {"-l", "-r", "-i"} & set(args) and not _operands(command):
            return [Evidence(0.05, "crontab lists or removes a schedule", "T1053.003", DISCOVERY)] if "-l" in args \
                else []
        if "-e" in args:
            return [Evidence(0.15, "crontab edits a schedule", "T1053.003", PERSISTENCE)]
        return [Evidence(0.45, "crontab installs a schedule from a file or stdin", "T1053.003", PERSISTENCE)]
    if program in ("at", "batch") and not ({"-l", "-d", "-r"} & set(args)):
        return [Evidence(0.4, f"{program} schedules a command", "T1053.002", PERSISTENCE)]
    if program == "systemd-run" and any(a.startswith(("--on-", "--timer-property")) for a in args):
        return [Evidence(0.4, "systemd-run schedules a transient timer", "T1053.006", PERSISTENCE)]
    if program in ("systemctl", "update-rc.d", "chkconfig", "rc-update") and {"enable", "defaults", "on", "add"} & set(
            args):
        return [Evidence(0.15, f"{program} enables a service at boot", "T1543.002", PERSISTENCE)]
    return []


_SECURITY_SERVICES = re.compile(
    r"^(?:auditd?|apparmor|selinux|falco\S{0,20}|tetragon|osqueryd?|wazuh\S{0,20}|ossec\S{0,20}|clamav\S{0,20}|"
    r"clamd|freshclam|falcon-sensor|cbagent|cbdaemon|sentinel\S{0,20}|mdatp|sysmon\S{0,10}|aide|snort|suricata|"
    r"fail2ban|sshguard|crowdstrike|elastic-agent|auditbeat|filebeat|rsyslog|syslog-ng|systemd-journald|"
    r"sysdig|tracee|qualys\S{0,20}|nessus\S{0,10}|splunkd?|td-agent|fluentd|fluent-bit|otelcol\S{0,20}|"
    r"procsight\S{0,20}|datadog-agent|newrelic\S{0,20}|"
    # cloud providers' host-security and monitoring agents, the first thing a miner's script kills
    r"aliyun\S{0,20}|aegis\S{0,20}|qcloud\S{0,20}|yunjing|ydservice|bcm-agent|barad_agent|cloudmonitor|"
    r"hostguard\S{0,20}|uniagent)(?:\.service)?$", re.IGNORECASE)
_IPTABLES = frozenset({"iptables", "ip6tables", "iptables-legacy", "iptables-nft"})
_ROOTKIT_SIGNALS = frozenset({"-31", "-63", "-64", "-SIGSYS", "-SYS"})
_MANY_SERVICES = 3
_SERVICE_VERBS = frozenset({"stop", "disable", "mask", "kill", "off", "remove", "start", "restart", "reload",
                            "enable", "status", "--now"})
_FIREWALLS = frozenset({"ufw", "firewalld", "nftables", "iptables", "ip6tables", "netfilter-persistent",
                        "shorewall", "csf"})


def names_security_tool(text: str) -> bool:
    """Whether a name in `text` (a pattern like `aliyun|qcloud`, or plain names) is a security or logging tool."""
    return any(_SECURITY_SERVICES.match(name) for name in _PATTERN_NAMES.findall(text[:MAX_OPERAND]))


def _defenses(command: Command) -> list[Evidence]:
    program, args = command.program, command.args
    found: list[Evidence] = []
    if program in ("systemctl", "service", "update-rc.d", "chkconfig", "rc-service", "invoke-rc.d"):
        verbs = {"stop", "disable", "mask", "kill", "off", "remove"} & set(args)
        if verbs:
            for unit in (o for o in _operands(command) if o not in _SERVICE_VERBS):
                if _SECURITY_SERVICES.match(unit):
                    found.append(Evidence(0.6, f"{program} {sorted(verbs)[0]}s {unit}, a security or logging "
                                               "service", "T1562.001", DEFENSE_EVASION))
                elif unit.removesuffix(".service") in _FIREWALLS:
                    found.append(Evidence(0.5, f"{program} {sorted(verbs)[0]}s the firewall ({unit})", "T1562.004",
                                          DEFENSE_EVASION))
                elif {"disable", "mask"} & verbs:
                    found.append(Evidence(0.15, f"{program} {sorted(verbs)[0]}s {unit}", "T1489", IMPACT))
            units = [o for o in _operands(command) if o not in _SERVICE_VERBS]
            if "stop" in verbs and len(units) >= _MANY_SERVICES and not found:
                # What ransomware does before it encrypts: databases and services let go of their files.
                found.append(Evidence(0.35, f"{program} stops {len(units)} services at once", "T1489", IMPACT))
    elif program in ("kill", "pkill", "killall"):
        if program == "kill" and "-1" in args[1:] and (args[1] != "-1" or len(args) == 2 or "--" in args):
            return [Evidence(0.4, "kill signals every process it may (pid -1)", "T1489", IMPACT)]
        if program == "kill" and (_ROOTKIT_SIGNALS & set(args[1:2]) or any(_pair(args, "-s", signal[1:])
                                                                             for signal in _ROOTKIT_SIGNALS)):
            return [Evidence(0.5, "kill sends a signal kernel rootkits take as commands (Diamorphine's 31, 63, 64)",
                             "T1014", DEFENSE_EVASION)]
        targets = [a for a in args[1:] if not a.startswith("-") and not a.isdigit()]
        if names_security_tool(" ".join(targets)):
            found.append(Evidence(0.5, f"{program} stops a security tool", "T1562.001", DEFENSE_EVASION))
        elif any(_TOOLS.get(name, _NO_TOOL)[2] == "T1496" or name in _RIVAL_MINERS
                 for target in targets for name in _PATTERN_NAMES.findall(target)):  # `pkill -f 'kinsing|xmrig'`
            # What a cryptojacking script does first: the host's cores for itself alone.
            found.append(Evidence(0.4, f"{program} stops cryptocurrency miners by name", "T1496", IMPACT))
    elif program in ("pgrep", "pidof") and names_security_tool(" ".join(args[1:])):
        found.append(Evidence(0.3, f"{program} looks for security tools by name", "T1518.001", DISCOVERY))
    elif program == "setenforce" and "0" in args[1:]:
        found.append(Evidence(0.6, "setenforce turns SELinux off", "T1562.001", DEFENSE_EVASION))
    elif program in ("aa-disable", "aa-complain", "aa-teardown") or (program == "apparmor_parser" and "-R" in args):
        found.append(Evidence(0.5, f"{program} weakens AppArmor", "T1562.001", DEFENSE_EVASION))
    elif program == "auditctl" and ("-D" in args or "-e0" in args or _pair(args, "-e", "0")):
        found.append(Evidence(0.6, "auditctl removes audit rules or turns auditing off", "T1562.012", DEFENSE_EVASION))
    elif program in _IPTABLES and {"-F", "--flush", "-X"} & set(args):
        found.append(Evidence(0.5, f"{program} flushes the firewall", "T1562.004", DEFENSE_EVASION))
    elif program in _IPTABLES and ("-P" in args or "--policy" in args) and "ACCEPT" in args:
        found.append(Evidence(0.2, f"{program} sets a chain to accept by default", "T1562.004", DEFENSE_EVASION))
    elif (program == "ufw" and "disable" in args) or (program == "nft" and "flush" in args):
        found.append(Evidence(0.5, f"{program} turns the firewall off", "T1562.004", DEFENSE_EVASION))
    elif program == "journalctl" and any(_SHORT_RETENTION.match(a) for a in args):
        found.append(Evidence(0.3, "journalctl discards nearly all journal entries", "T1070.002", DEFENSE_EVASION))
    elif program == "sysctl" and any(a.startswith(_WEAKENED_KERNEL) for a in args):
        found.append(Evidence(0.4, "sysctl weakens kernel protections", "T1562.001", DEFENSE_EVASION))
    return found


_PATTERN_NAMES = re.compile(r"[\w.-]{2,40}")  # the names in a pgrep/pkill pattern: `aliyun|qcloud|bcm-agent`
_NO_TOOL = (0.0, "", "", "")
_RIVAL_MINERS = frozenset({"kinsing", "kdevtmpfsi", "kthreaddi", "watchbog", "sysupdate", "networkservice"})

# Journal retention of seconds, minutes or a few kilobytes: not a retention policy, a wipe.
_SHORT_RETENTION = re.compile(r"--vacuum-(?:time=\d{1,4}(?:s|sec|m|min|us|ms)?$|size=\d{1,4}[KkBb]?$|files=[01]$)")
_WEAKENED_KERNEL = ("kernel.randomize_va_space=0", "kernel.yama", "kernel.kptr")


def _short_flags(args: tuple[str, ...]) -> set[str]:
    """Every option as written, plus each letter of combined short flags (`-zu` is `-z` and `-u`)."""
    flags = {a for a in args[1:] if a.startswith("-")}
    for arg in list(flags):
        if not arg.startswith("--") and 2 < len(arg) <= 6 and arg[1:].isalpha():
            flags.update(f"-{letter}" for letter in arg[1:])
    return flags


def _pair(args: tuple[str, ...], flag: str, value: str) -> bool:
    return any(a == flag and b == value for a, b in itertools.pairwise(args))


_HISTORY_TRICKS = re.compile(r"\bHISTFILE=/dev/null|\bHISTFILESIZE=0\b|\bHISTSIZE=0\b|\bunset\s{1,8}HISTFILE\b|"
                             r"\b(?:set|bash|sh|zsh|ksh)\s{1,8}\+o\s{1,8}history\b|\bhistory\s{1,8}-[cw]\b|"
                             r"\bHISTCONTROL=ignore")


def _history_tampering(command: Command) -> list[Evidence]:
    text = command.text()[:MAX_OPERAND * 2]
    if ("HIST" in text or "history" in text) and _HISTORY_TRICKS.search(text):
        return [Evidence(0.5, "shell history turned off or cleared", "T1070.003", DEFENSE_EVASION)]
    return []


_SETUID_MODE = re.compile(r"^(?:[ugoa]*\+[rwxXt]*s[rwxXt]*|[0-7]?[2467][0-7]{3})$")


def _permissions(command: Command) -> list[Evidence]:
    program, args = command.program, command.args
    operands = [o for o in _operands(command)]
    if program == "chmod" and operands:
        mode, targets = operands[0], operands[1:]
        if _SETUID_MODE.match(mode):
            return [Evidence(0.55, f"chmod sets the setuid/setgid bit ({mode} {' '.join(targets)[:80]})",
                             "T1548.001", PRIVILEGE_ESCALATION)]
        if ("x" in mode or (mode[-3:].isdigit() and int(mode[-3:][0]) & 1)) and any(
                path_class(t) in ("tmp", "shm", "dev") for t in targets):
            return [Evidence(0.3, f"chmod makes a file in a temp or hidden location executable ({targets[0][:80]})",
                             "T1222.002", DEFENSE_EVASION)]
        if mode.endswith("777") and any(t.startswith("/etc") for t in targets):
            return [Evidence(0.3, "chmod makes system configuration writable by everyone", "T1222.002",
                             DEFENSE_EVASION)]
    if program in ("chown", "chgrp", "setfacl") and len(operands) >= 2 and (given := _sensitive_given_away(command)):
        return [Evidence(0.45, f"{program} lets another user at {given}", "T1222.002", DEFENSE_EVASION)]
    if program in ("chown", "chgrp") and len(operands) >= 2 and operands[0].split(":")[0] in ("root", "0") and any(
            path_class(t) in ("tmp", "shm") for t in operands[1:]):
        return [Evidence(0.35, f"{program} gives a temp file to root (setuid preparation)", "T1222.002",
                         DEFENSE_EVASION)]
    if program == "chattr" and any(a.startswith(("+i", "-i", "+a")) for a in args[1:]):
        return [Evidence(0.3, "chattr changes a file's immutable flag", "T1222.002", DEFENSE_EVASION)]
    if program == "setcap" and any(c in " ".join(args).lower() for c in ("cap_setuid", "cap_sys_admin", "cap_dac_",
                                                                          "cap_sys_ptrace", "cap_chown")):
        return [Evidence(0.55, "setcap grants a powerful capability", "T1548.001", PRIVILEGE_ESCALATION)]
    if program == "touch" and any(a in ("-r", "-d", "-t", "--date", "--reference") or a.startswith(
            ("--date=", "--reference=")) for a in args[1:]):
        return [Evidence(0.35, "touch sets a file's timestamps (timestomping)", "T1070.006", DEFENSE_EVASION)]
    return []


# Files whose owner or ACL decides who may become root or read every password.
_GUARDED = frozenset({"password hashes", "sudo rules", "the account list", "PAM authentication", "cron",
                      "a systemd unit", "the dynamic loader's preload list"})


def _sensitive_given_away(command: Command) -> str:
    """What a chown/chgrp to someone other than root, or a setfacl granting rights, opens up ("" for none)."""
    owner_or_acl, *targets = _operands(command)
    if command.program == "setfacl" and not {"-m", "--modify", "-M"} & set(command.args):
        return ""
    if command.program != "setfacl" and owner_or_acl.split(":")[0].split(".")[0] in ("root", "0", ""):
        return ""
    for target in targets:
        # A drop-in directory (`/etc/sudoers.d`) is judged by what a file in it is.
        location = location_of(target.rstrip("/") + ("/x" if target.rstrip("/").endswith(".d") else ""))
        if location is not None and location.name in _GUARDED:
            return f"{location.name} ({target[:80]})"
    return ""


def _hidden(path: str) -> bool:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name.startswith(".") and name not in (".", "..")


_FORCED = frozenset({"--force", "--force-vermagic", "--force-modversion"})


def _module_builds(command: Command) -> list[Evidence]:
    """`make -C /lib/modules/$(uname -r)/build M=/dev/shm/.r modules`: a kernel module built from where droppers
    stage files (a driver's source lives in a source tree, DKMS's under /var/lib/dkms)."""
    sources = [a.split("=", 1)[1] for a in command.args[1:] if a.startswith(("M=", "SUBDIRS="))]
    if sources and _staged(sources[0]) and any("/lib/modules/" in a or "linux-headers" in a for a in command.args):
        return [Evidence(0.5, f"builds a kernel module from a temp or hidden directory ({sources[0][:60]})",
                         "T1547.006", PERSISTENCE)]
    return []


# D-Bus calls that make an account or set its password through the accounts service (how the polkit flaw
# CVE-2021-3560 was used); admins use useradd and passwd.
_ACCOUNT_CALLS = re.compile(r"org\.freedesktop\.Accounts(?:\.User)?\.(?:CreateUser|SetPassword)\b")


def _account_calls(command: Command) -> list[Evidence]:
    if _ACCOUNT_CALLS.search(" ".join(command.args)[:MAX_OPERAND * 4]):
        return [Evidence(0.55, f"{command.program} creates an account or sets a password over D-Bus", "T1136.001",
                         PERSISTENCE)]
    return []


def _remote_display(command: Command) -> list[Evidence]:
    """`xterm -display 203.0.113.10:1`: a terminal opened on someone else's X server, a shell handed over the
    network (an X11 reverse shell). SSH's forwarding shows as localhost:10."""
    displays = option_values(command, ("-display", "--display"))
    host = displays[0].rpartition(":")[0] if displays else ""
    if host and host != "unix" and address_class(host) not in ("loopback", ""):
        return [Evidence(0.6, f"{command.program} opens a terminal on a remote display ({displays[0][:60]})",
                         "T1059.004", EXECUTION)]
    return []


def _password_prompts(command: Command) -> list[Evidence]:
    """`read -s -p '[sudo] password for admin: '`: a prompt made to look like sudo's or su's, reading silently."""
    prompt = " ".join(option_values(command, ("-p",))).lower()
    if "-s" in command.args and "password" in prompt and ("sudo" in prompt or "password for" in prompt):
        return [Evidence(0.6, "a fake password prompt (sudo's, read silently)", "T1056.002", CREDENTIAL_ACCESS)]
    return []


def _sshd_by_hand(command: Command) -> list[Evidence]:
    """An SSH server started by hand and told to let more in: a second door beside the system's own."""
    if _WEAK_SSHD_OPTION.search(" ".join(option_values(command, ("-o",)))[:MAX_OPERAND * 2]):
        return [Evidence(0.5, "an SSH server started by hand lets more in (root, passwords, other keys)",
                         "T1098.004", PERSISTENCE)]
    return []


_WEAK_SSHD_OPTION = re.compile(r"(?:PermitRootLogin|PasswordAuthentication|PermitEmptyPasswords)\s{0,4}=?\s{0,4}yes|"
                               r"AuthorizedKeys(?:File|Command)", re.IGNORECASE)


def _sudoedit_overflow(command: Command) -> list[Evidence]:
    """`sudoedit -s '\\' AAAA...`: an argument ending in a backslash in shell mode, the heap overflow of
    CVE-2021-3156 (Baron Samedit). `sudoedit -s /`, the check for it, has none."""
    args = command.args[1:]
    if {"-s", "--shell"} & set(args) and any(a.endswith("\\") for a in args):
        return [Evidence(0.6, f"{command.program} shell mode with an argument ending in a backslash (CVE-2021-3156)",
                         "T1068", PRIVILEGE_ESCALATION)]
    return []


def _kernel_modules(command: Command) -> list[Evidence]:
    program, operands = command.program, _operands(command)
    if program == "insmod" and operands:
        odd = path_class(operands[0]) in ("tmp", "shm", "home", "relative") or _hidden(operands[0])
        return [Evidence(0.7 if odd else 0.5, f"insmod loads a kernel module ({operands[0][:80]})", "T1547.006",
                         PERSISTENCE)]
    if program == "modprobe" and operands and operands[0] == "msr" and "allow_writes=on" in command.args:
        # What xmrig's RandomX set-up does: CPU prefetchers turned off through model-specific registers.
        return [Evidence(0.4, "modprobe lets programs write the CPU's model-specific registers (a miner's tuning)",
                         "T1496", IMPACT)]
    if program == "modprobe" and operands and "-r" not in command.args:
        if _FORCED & set(command.args) or any(a.startswith("-") and not a.startswith("--") and "f" in a
                                               for a in command.args[1:]):
            # Past the kernel's version checks: a module built elsewhere, what rootkits are dropped as.
            return [Evidence(0.45, f"modprobe forces a module past the kernel's version checks ({operands[0][:60]})",
                             "T1547.006", PERSISTENCE)]
        return [Evidence(0.15, f"modprobe loads a kernel module ({operands[0][:60]})", "T1547.006", PERSISTENCE)]
    if program in ("rmmod",) or (program == "modprobe" and "-r" in command.args):
        return [Evidence(0.2, f"{program} unloads a kernel module", "T1547.006", DEFENSE_EVASION)]
    return []


_KERNEL_THREAD = re.compile(r"^\[?(?:kworker|kthreadd|ksoftirqd|kswapd\d?|migration|rcu_\w{1,10}|watchdog|"
                            r"kdevtmpfs|jbd2|kauditd|khugepaged|irq/\d{1,4})[\]/:\w-]{0,20}$")
_DAEMON_NAMES = frozenset({"sshd", "systemd", "cron", "crond", "dbus-daemon", "rsyslogd", "init", "agetty",
                           "systemd-journald", "systemd-logind", "polkitd", "nginx", "apache2", "httpd", "mysqld",
                           "postgres", "containerd", "dockerd", "kubelet", "atd", "udevd", "auditd"})


def _masquerading(command: Command) -> list[Evidence]:
    if not command.args:
        return []
    path = command.args[0]
    name = path.strip("[]") if path.startswith("[") else path.rsplit("/", 1)[-1].lstrip(".")
    where = path_class(path)
    if _KERNEL_THREAD.match(name):
        return [Evidence(0.5, f"program named like a kernel thread ({path[:80]})", "T1036.004", DEFENSE_EVASION)]
    if name in _DAEMON_NAMES and where in ("tmp", "shm", "home", "relative", "dev", "var", "other"):
        return [Evidence(0.45, f"system daemon name run from an unusual place ({path[:80]})", "T1036.005",
                         DEFENSE_EVASION)]
    if command.program in ("cp", "mv", "ln", "install") and len(ops := _operands(command)) >= 2:
        return _copied_into_hiding(command.program, ops[0], _destination(ops[-1], ops[0]))
    return []


def _copied_into_hiding(program: str, source: str, destination: str) -> list[Evidence]:
    """A file put where or as what droppers hide it: a system program renamed into temp, a kernel thread's or
    a daemon's name outside the system, a dot-name in temp or a dot-directory of a system directory; or a
    staged file put in a web root as a script (a deployment copies from its release, not from temp)."""
    name = destination.rsplit("/", 1)[-1]
    if _staged(source) and location_of(destination) is _WEB_SCRIPT:
        return [Evidence(0.5, f"{program} puts a file from a temp or hidden place in a web root ({destination[:80]})",
                         "T1505.003", PERSISTENCE)]
    where = path_class(destination)
    if path_class(source) == "system" and where in ("tmp", "shm", "dev") and name != source.rsplit("/", 1)[-1]:
        return [Evidence(0.4, f"{program} copies a system program to {destination[:80]} under another name",
                         "T1036.003", DEFENSE_EVASION)]
    staged = where in ("tmp", "shm", "dev")
    # `[kthreadd]` is what ps shows for a kernel thread, and no file's name anywhere; a bare `migration` or a
    # daemon's name is a disguise only in temp places.
    bracketed = name.startswith("[") and bool(_KERNEL_THREAD.match(name))
    if bracketed or (staged and (_KERNEL_THREAD.match(name.lstrip(".")) or name.lstrip(".") in _DAEMON_NAMES)):
        return [Evidence(0.45, f"{program} names a file like a kernel thread or a daemon ({destination[:80]})",
                         "T1036.005", DEFENSE_EVASION)]
    if (staged and _hidden(destination)) or in_system_dot_directory(destination[:MAX_OPERAND]):
        return [Evidence(0.3, f"{program} hides a file ({destination[:80]})", "T1564.001", DEFENSE_EVASION)]
    data = source.rstrip("/")
    if staged and (data in _DATA_ROOTS or any(data == d or data.startswith(d + "/") for d in _DATABASE_FILES)):
        return [Evidence(0.3, f"{program} copies {data[:80]} into a temp place", "T1074.001", COLLECTION)]
    return []


_URL = re.compile(r"^([a-z][a-z0-9+.-]{1,15})://([^/\s:]{1,255})(?::(\d{1,5}))?", re.IGNORECASE)
# URL schemes of protocols older than the web that let a client speak raw bytes to a port (SSRF, smuggling).
# `curl -X DELETE host:9200/_all` (Elasticsearch), `.../*`: every index of a data store's REST API at once.
_WHOLESALE_DELETE = re.compile(r"(?:-X\s{0,4}|--request\s{1,4})DELETE\b.{0,200}?/(?:_all|\*)(?:[/?\s'\"]|$)",
                               re.IGNORECASE)
_RAW_SCHEMES = frozenset({"gopher", "dict", "telnet", "ldap", "tftp"})
_METADATA_HOSTS = ("169.254.169.254", "metadata.google.internal", "100.100.100.200", "fd00:ec2::254")

def _transfers(command: Command) -> list[Evidence]:
    program = command.program
    if program not in DOWNLOADERS:
        return []
    text = command.text()[:MAX_OPERAND * 2]
    if any(host in text for host in _METADATA_HOSTS):
        return [Evidence(0.5, f"{program} queries the cloud metadata service", "T1552.005", CREDENTIAL_ACCESS)]
    if "--unix-socket" in text and "docker.sock" in text:
        return [Evidence(0.45, f"{program} talks to the Docker socket", "T1611", PRIVILEGE_ESCALATION)]
    if _WHOLESALE_DELETE.search(text):
        return [Evidence(0.45, f"{program} deletes every index or database of a data store's API", "T1485", IMPACT)]
    if _RANSOM_NOTE.search(text):
        return [Evidence(0.45, f"{program} sends a ransom note", "T1486", IMPACT)]
    found: list[Evidence] = []
    sent = [p for p in reads_of(command) if p]
    if sent:
        sensitive = [p for p in sent if location_of(p) is not None and (location_of(p).read or (0, "", ""))[0] >= 0.2]
        if sensitive:
            found.append(Evidence(0.55, f"{program} uploads {sensitive[0][:80]}", "T1048", EXFILTRATION))
        elif any(_staged(p) for p in sent):
            found.append(Evidence(0.4, f"{program} uploads a file from a temp or hidden place ({sent[0][:80]})",
                                  "T1048", EXFILTRATION))
        elif system := [p for p in sent if location_of(p) is not None or p in _SYSTEM_FILES]:
            found.append(Evidence(0.4, f"{program} uploads a system file ({system[0][:80]})", "T1048", EXFILTRATION))
        else:
            found.append(Evidence(0.15, f"{program} uploads {sent[0][:80]}", "T1048", EXFILTRATION))
    saved = writes_of(command)
    if saved and any(path_class(p) in ("tmp", "shm", "dev") or _hidden(p) for p in saved):
        found.append(Evidence(0.35, f"{program} downloads into a temp or hidden file ({saved[0][:80]})", "T1105",
                              COMMAND_AND_CONTROL))
    elif not sent:
        url = next((m for a in command.args[1:] if (m := _URL.match(a[:MAX_OPERAND]))), None)
        where = address_class(url.group(2)) if url is not None else ""
        raw_ip = where == "public"
        odd_port = where in ("public", "name") and url.group(3) not in (None, "80", "443", "8080", "8443")
        raw_scheme = url is not None and url.group(1).lower() in _RAW_SCHEMES
        if url is None and _tftp_from_internet(command):
            found.append(Evidence(0.3, f"{program} fetches from an internet address (TFTP serves local networks)",
                                  "T1105", COMMAND_AND_CONTROL))
        elif raw_ip or odd_port or raw_scheme:
            found.append(Evidence(0.3, f"{program} talks to a bare address, an unusual port or a raw protocol "
                                       f"({url.group(0)[:80]})", "T1105", COMMAND_AND_CONTROL))
        elif url is not None and where != "loopback" and posts_data(command):  # wget saves the reply, too
            found.append(Evidence(0.2, f"{program} sends data to {url.group(2)[:60]}", "T1048", EXFILTRATION))
        elif saved:
            found.append(Evidence(0.15, f"{program} downloads a file", "T1105", COMMAND_AND_CONTROL))
    return found


def _tftp_from_internet(command: Command) -> bool:
    """tftp or atftp naming a public address (TFTP serves local networks: PXE boot, switch firmware)."""
    return command.program in ("tftp", "atftp") and any(address_class(o) == "public" for o in _operands(command))


def posts_data(command: Command) -> bool:
    """A downloader sending data rather than fetching it (curl -d/-F/-T/-X POST, wget --post-data/--body-file)."""
    args = command.args
    if any(a.startswith(_SENDS_DATA) for a in args[1:]):
        return True
    methods = [value for option, value in itertools.pairwise(args) if option in ("-X", "--request", "--method")]
    methods += [a.split("=", 1)[1] for a in args[1:] if a.startswith(("--request=", "--method="))]
    methods += [a[2:] for a in args[1:] if a.startswith("-X") and len(a) > 2]
    return any(method.upper() in ("POST", "PUT") for method in methods)


_SENDS_DATA = ("-d", "--data", "-F", "--form", "-T", "--upload-file", "--post-data", "--post-file", "--body-data",
               "--body-file")


_TOOLS: dict[str, tuple[float, str, str, str]] = {}
for _names, _spec in (
    (("nmap", "masscan", "zmap", "rustscan", "arp-scan", "netdiscover", "nbtscan", "unicornscan", "naabu"),
     (0.5, "network scanner", "T1046", DISCOVERY)),
    (("hydra", "medusa", "ncrack", "john", "hashcat", "unshadow", "crackmapexec", "patator", "netexec", "kerbrute"),
     (0.65, "password cracking tool", "T1110", CREDENTIAL_ACCESS)),
    (("pwnkit", "dirtypipe", "dirty_pipe", "dirtycow", "dirtyc0w", "exploit", "exploit.sh", "exploit.py"),
     (0.6, "exploit", "T1068", PRIVILEGE_ESCALATION)),
    (("linpeas", "linpeas.sh", "linenum", "linenum.sh", "lse", "lse.sh", "linux-exploit-suggester",
      "linux-exploit-suggester.sh", "les.sh", "pspy", "pspy64", "pspy32", "unix-privesc-check", "traitor", "peass",
      "deepce", "deepce.sh", "gtfonow", "sudo_killer"),
     (0.7, "privilege-escalation reconnaissance tool", "T1068", PRIVILEGE_ESCALATION)),
    (("mimipenguin", "mimipenguin.sh", "lazagne", "laZagne", "3snake", "swap_digger"),
     (0.75, "credential dumping tool", "T1003", CREDENTIAL_ACCESS)),
    (("xmrig", "xmr-stak", "minerd", "cpuminer", "ccminer", "ethminer", "t-rex", "nbminer", "lolminer", "nanominer",
      "xmrig-notls", "srbminer", "teamredminer", "bminer", "phoenixminer"),
     (0.75, "cryptocurrency miner", "T1496", IMPACT)),
    (("cloudflared", "gs-netcat", "gsocket", "zrok"),
     (0.35, "client of a tunnelling service", "T1572", COMMAND_AND_CONTROL)),
    (("chisel", "ngrok", "frpc", "frps", "gost", "iodine", "iodined", "dnscat", "dnscat2", "ptunnel", "ptunnel-ng",
      "ligolo", "ligolo-ng", "rathole", "bore", "revsocks", "sshuttle"),
     (0.6, "tunnelling tool", "T1572", COMMAND_AND_CONTROL)),
    (("ettercap", "bettercap", "dsniff", "responder", "arpspoof", "mitm6"),
     (0.65, "traffic interception tool", "T1557", CREDENTIAL_ACCESS)),
    (("tcpdump", "tshark", "tcpflow", "ngrep", "dumpcap"), (0.2, "packet capture", "T1040", CREDENTIAL_ACCESS)),
    (("proxychains", "proxychains4", "tsocks"), (0.4, "traffic proxied through a chain", "T1090", COMMAND_AND_CONTROL)),
    (("tor", "torsocks", "torify"), (0.4, "traffic routed through Tor", "T1090.003", COMMAND_AND_CONTROL)),
    (("sshpass",), (0.35, "SSH with a password on the command line", "T1021.004", "lateral-movement")),
    (("xclip", "xsel"), (0.3, "clipboard access", "T1115", COLLECTION)),
    (("xwd", "scrot", "gnome-screenshot", "import"), (0.3, "screen capture", "T1113", COLLECTION)),
    (("arecord", "parecord", "pw-record"), (0.35, "audio recording", "T1123", COLLECTION)),
    (("fswebcam", "streamer"), (0.35, "webcam capture", "T1125", COLLECTION)),
    (("logkeys", "pykeylogger"), (0.7, "keylogger", "T1056.001", COLLECTION)),
    (("upx",), (0.4, "executable packer", "T1027.002", DEFENSE_EVASION)),
    (("gcore",), (0.45, "core dump of a running process", "T1003.007", CREDENTIAL_ACCESS)),
    (("hping3", "slowhttptest", "t50"), (0.5, "flood tool", "T1498", IMPACT)),
    (("ldapsearch", "smbclient", "showmount", "rpcclient", "enum4linux", "smbmap"),
     (0.2, "network share or directory lookup", "T1135", DISCOVERY)),
    (("rclone", "megacmd", "mega-put", "gdrive"), (0.2, "cloud storage sync tool", "T1567.002", EXFILTRATION)),
    (("tmate", "anydesk", "rustdesk", "teamviewer", "x11vnc", "meshagent"),
     (0.5, "remote access tool", "T1219", COMMAND_AND_CONTROL)),
):
    for _name in _names:
        _TOOLS[_name] = (_spec[0], _spec[1], _spec[2], _spec[3])

# A capture filter naming a protocol that sends passwords in the clear (ftp, telnet, pop3, imap, ldap, rlogin):
# what a sniffer is set up for, where a debugging capture names the service it debugs.
_CLEARTEXT_LOGIN_PORTS = re.compile(r"\bport\s{1,4}(21|23|110|143|389|513)\b")
_SCRIPT_RUNNERS = frozenset({"sh", "bash", "dash", "zsh", "python", "perl", "ruby", "php", "node"})
_MINER_ARGS = re.compile(r"stratum\+(?:tcp|ssl|tls)://|--donate-level|--cpu-max-threads-hint|\bcryptonight\b|"
                         r"\brandomx\b|--coin[= ]", re.IGNORECASE)


_CVE_NAME = re.compile(r"^(?:cve|CVE)[-_]?\d{4}[-_]\d{4,7}")


# What a capture keeps of credentials: login headers and cookies pulled out as fields or filtered for.
_CREDENTIAL_FIELDS = re.compile(r"\b(?:http\.authorization|authorization|http\.cookie|cookie|password|passwd|"
                                r"pop\.request|imap\.request|ftp\.request\.arg|ntlmssp|kerberos)\b", re.IGNORECASE)


def _capture_strength(command: Command, weight: float, what: str) -> tuple[float, str]:
    """A packet capture is an investigator's routine; one of logins, written where droppers hide files, or
    filtered for credentials is theft of them."""
    text = " ".join(command.args)[:MAX_OPERAND]
    written = option_values(command, ("-w",))
    if _CREDENTIAL_FIELDS.search(text):
        return 0.45, f"{what} filtered for credentials"
    if written and (_hidden(written[0]) or path_class(written[0]) in ("shm", "dev")):  # /tmp is an admin's too
        return 0.45, f"{what} written to a hidden or shared-memory file ({written[0][:60]})"
    if ports := _CLEARTEXT_LOGIN_PORTS.findall(text):
        return 0.35, f"{what} of cleartext logins (port {', '.join(sorted(set(ports), key=int))})"
    return weight, what


def _tools(command: Command) -> list[Evidence]:
    name = command.args[0].rsplit("/", 1)[-1] if command.args else ""
    spec = _TOOLS.get(name) or _TOOLS.get(command.program) or _TOOLS.get(name.lower())  # LinEnum.sh
    if spec is None and _CVE_NAME.match(name):
        spec = (0.6, "program named after a vulnerability (an exploit)", "T1068", PRIVILEGE_ESCALATION)
    if spec is None and len(command.args) > 1 and command.program in _SCRIPT_RUNNERS:
        name = command.args[1].rsplit("/", 1)[-1].lower()  # `python3 mimipenguin.py`, `bash LinEnum.sh`
        spec = _TOOLS.get(name) or _TOOLS.get(name.rsplit(".", 1)[0])
    found = []
    if spec is not None:
        weight, what, technique, tactic = spec
        if technique == "T1040":
            weight, what = _capture_strength(command, weight, what)
        found.append(Evidence(weight, f"{what} ({name[:40]})", technique, tactic))
    if spec is None or spec[2] != "T1496":
        text = command.text()[:MAX_OPERAND * 2]
        if ("stratum" in text or "--donate" in text or "--coin" in text or "random" in text) and _MINER_ARGS.search(
                text):
            found.append(Evidence(0.75, "cryptocurrency mining arguments", "T1496", IMPACT))
    return found


def _network_tools(command: Command) -> list[Evidence]:
    program, args = command.program, command.args
    if received := _fetched_into_staging(command):
        return received
    if program in NETCATS:
        if "-l" in args or any(a.startswith("-l") and len(a) <= 4 for a in args[1:]):
            return [Evidence(0.35, f"{program} listens for connections", "T1095", COMMAND_AND_CONTROL)]
        if any(r.operator == "<" for r in command.redirects):
            return [Evidence(0.4, f"{program} sends a file to a remote host", "T1048", EXFILTRATION)]
        if any(a[:1] == "-" and a[1:2] != "-" and "z" in a for a in args[1:]) and (
                any(_PORT_RANGE.match(o) for o in _operands(command)) or len(_operands(command)) > 3):
            return [Evidence(0.35, f"{program} scans a range of ports", "T1046", DISCOVERY)]
        return [Evidence(0.2, f"{program} opens a raw connection", "T1095", COMMAND_AND_CONTROL)]
    if program == "socat" and any("listen" in a.lower() for a in args[1:]):
        return [Evidence(0.35, "socat listens for connections", "T1095", COMMAND_AND_CONTROL)]
    if program == "ssh" and ({"-R", "-L", "-D", "-w"} & _short_flags(args) or any(a.startswith(("-R", "-D"))
                                                                                  for a in args[1:])):
        return [Evidence(0.3, "ssh opens a tunnel", "T1572", COMMAND_AND_CONTROL)]
    if program in ("ssh", "scp", "sftp") and any(_staged(key) for key in option_values(command, ("-i",))):
        return [Evidence(0.35, f"{program} logs in with a key kept in a temp or hidden place", "T1021.004",
                         "lateral-movement")]
    if program not in ("scp", "rsync", "sftp", "smbclient"):
        return []
    sent = reads_of(command)
    if sent if program == "smbclient" else any("@" in a or ":" in a for a in _operands(command)[-1:]):
        sensitive = [p for p in sent if location_of(p) is not None]
        if sensitive:
            return [Evidence(0.5, f"{program} copies {sensitive[0][:80]} to another host", "T1048", EXFILTRATION)]
        public = any(address_class(_remote_host(o)) == "public" for o in _operands(command)[-1:])
        staged = [p for p in sent if _staged(p) or any(p.rstrip("/").endswith(d) for d in _SENSITIVE_DIRS) or (
            public and any(p.startswith(d + "/") for d in _SENSITIVE_DIRS if d.startswith("/")))]
        if staged:
            return [Evidence(0.4, f"{program} copies {staged[0][:80]} to another host", "T1048", EXFILTRATION)]
        return [Evidence(0.15, f"{program} copies files to another host", "T1570", "lateral-movement")]
    return []


# Clients whose output is what a peer sent: redirected into a file, that file came over the network.
_PEER_OUTPUT_CLIENTS = frozenset({*NETCATS, "socat", "telnet", "finger", "whois", "openssl"})
# socat addresses that write a file, and those that reach the network.
_SOCAT_FILE = re.compile(r"^(?:OPEN|CREATE|CREAT|GOPEN|FILE):([^,]{1,512})", re.IGNORECASE)
_SOCAT_NETWORK = re.compile(r"^(?:TCP|TCP4|TCP6|UDP|SSL|OPENSSL|TCP-CONNECT|TCP-LISTEN|UDP-LISTEN|SSL-LISTEN)\b",
                            re.IGNORECASE)


def _fetched_into_staging(command: Command) -> list[Evidence]:
    """A file brought from another host into a temp or hidden place, by a client other than curl and wget
    (scoring/knowledge.py's _transfers judges those): `scp host:kit.tgz /tmp/`, `rsync rsync://host/x /dev/shm/`,
    smbclient's `get`, `nc -l 9001 > /tmp/x`, socat into OPEN:/tmp/x: where droppers stage what they fetch."""
    program = command.program
    if program in ("scp", "rsync", "sftp"):
        operands = _operands(command)
        remote = len(operands) >= 2 and any(_remote_path(o) for o in operands[:-1]) and not _remote_path(operands[-1])
        saved = writes_of(command) if remote else ()
    elif program == "smbclient":
        saved = writes_of(command)
    elif program == "git" and "clone" in command.args[1:3]:
        operands = _operands(command)
        saved = (operands[-1],) if len(operands) >= 3 else ()
    elif program == "socat":
        args = command.args[1:]
        files = [m.group(1) for a in args if (m := _SOCAT_FILE.match(a))]
        saved = tuple(files) if files and any(_SOCAT_NETWORK.match(a) for a in args) else ()
    elif program in _PEER_OUTPUT_CLIENTS and (program != "openssl" or "s_client" in command.args):
        saved = command.writes_to()
    else:
        return []
    staged = [p for p in saved if _staged(p)]
    if not staged:
        return []
    return [Evidence(0.35, f"{program} fetches a file from another host into a temp or hidden place "
                           f"({staged[0][:80]})", "T1105", COMMAND_AND_CONTROL)]


def _remote_host(operand: str) -> str:
    """The host of scp's and rsync's `[user@]host:path` (IPv6 in brackets included)."""
    host = operand.split("://", 1)[-1].split("/", 1)[0] if "://" in operand[:12] else operand.rpartition(":")[0]
    return host.rsplit("@", 1)[-1].strip("[]")


def _remote_path(operand: str) -> bool:
    """scp's and rsync's `[user@]host:path` and `rsync://`, `scp://` URLs (not `./a:b`, not `/x:y`)."""
    if "://" in operand[:12]:
        return True
    host, colon, _ = operand.partition(":")
    return bool(colon) and bool(host) and "/" not in host


_PORT_RANGE = re.compile(r"^\d{1,5}-\d{1,5}$")
_SENSITIVE_DIRS = ("/etc", "/home", "/root", "/.ssh", "/var/www", "/var/lib/mysql", "/var/lib/postgresql", "/opt",
                   "/srv", "/var/backups")


_SECRET_DIRS = ("/.ssh", "/.aws", "/.gnupg", "/.kube", "/.docker", "/.password-store", "/.config/gcloud", ".ssh",
                ".aws", ".gnupg", ".kube")
_ARCHIVERS = frozenset({"tar", "zip", "7z", "7za", "rar"})


def _collection(command: Command) -> list[Evidence]:
    program, args = command.program, command.args
    flags = _short_flags(args)
    if program == "gpg" and ({"-c", "--symmetric"} & flags or any(a.startswith("--passphrase") for a in args)):
        return [Evidence(0.35, "gpg encrypts with a passphrase (no recipient key)", "T1560.001", COLLECTION)]
    if program == "gpg" and ({"-e", "--encrypt"} & flags):
        return [Evidence(0.15, "gpg encrypts for a recipient", "T1560.001", COLLECTION)]
    if program == "openssl" and len(args) > 1 and (args[1] == "enc" or args[1].startswith("aes")) and "-d" not in args:
        on_line = "-k" in args or any(a.startswith("pass:") for a in args)
        return [Evidence(0.35 if on_line else 0.2, "openssl encrypts files" + (" with the key on the command line"
                                                                             if on_line else ""), "T1560.001",
                         COLLECTION)]
    if (program == "zip" and {"-P", "--password"} & set(args)) or (program in ("7z", "7za") and any(
            a.startswith("-p") and len(a) > 2 for a in args)):
        return [Evidence(0.35, f"{program} encrypts an archive with the password on the command line", "T1560.001",
                         COLLECTION)]
    if program == "zip" and {"-e", "--encrypt"} & flags:
        return [Evidence(0.2, "zip encrypts an archive", "T1560.001", COLLECTION)]
    if program in _FILE_ENCRYPTERS and not {"-d", "--decrypt", "-c", "--cat"} & set(args):
        roots = [o.rstrip("/") for o in _operands(command) if o.rstrip("/") in _DATA_ROOTS]
        if roots and {"-r", "-R", "--recursive"} & set(args):
            return [Evidence(0.5, f"{program} encrypts every file in {roots[0][:80]} in place", "T1486", IMPACT)]
        return [Evidence(0.2, f"{program} encrypts files", "T1560.001", COLLECTION)]
    if program in _ARCHIVERS and not (program == "tar" and not _tar_creates(args)):
        return _archive(command)
    decoding = bool({"-d", "--decode", "-D", "-r"} & set(args))
    if program in ("base64", "base32", "basenc", "xxd", "uuencode") and not decoding:
        return [Evidence(0.1, f"{program} encodes data", "T1132.001", COMMAND_AND_CONTROL)]
    if program in ("base64", "base32", "basenc", "xxd") or (program == "openssl" and "-d" in args and "base64" in args):
        return [Evidence(0.1, f"{program} decodes data", "T1140", DEFENSE_EVASION)]
    if program == "redis-cli" and _REDIS_FILE_SETTING.search(" ".join(args)[:MAX_OPERAND * 4]):
        return [_redis_writes_elsewhere(" ".join(args)[:MAX_OPERAND * 4])]
    if program in _DUMPERS or (program == "redis-cli" and "--rdb" in args):
        outputs = option_values(command, ("-f", "--file", "--out", "-r", "--result-file", "--rdb"))
        if any(_staged(p) for p in writes_of(command) + tuple(outputs)):
            return [Evidence(0.3, f"{program} dumps a database into a temp or hidden file", "T1074.001", COLLECTION)]
        return [Evidence(0.1, f"{program} dumps a database", "T1005", COLLECTION)]
    if program in _SQL_CLIENTS and _DESTRUCTIVE_SQL.search(" ".join(args)[:MAX_OPERAND * 4]):
        return [Evidence(0.35, f"{program} drops or empties databases", "T1485", IMPACT)]
    return []


_DUMPERS = frozenset({"pg_dump", "pg_dumpall", "mysqldump", "mongodump", "mariadb-dump"})
# `CONFIG SET dir /root/.ssh` then `dbfilename authorized_keys`: redis writes its dump, holding what the client
# stored, wherever it is told, as the redis user (keys, a cron file, a web shell).
_REDIS_FILE_SETTING = re.compile(r"\bconfig\s{1,4}set\s{1,4}(?:dir|dbfilename)\b", re.IGNORECASE)


def _redis_writes_elsewhere(text: str) -> Evidence:
    lowered = text.lower()
    technique = "T1098.004" if ".ssh" in lowered or "authorized_keys" in lowered else \
        "T1053.003" if "cron" in lowered else "T1505.003"
    return Evidence(0.5, "redis-cli sets where the server writes its dump file (a file written as the server)",
                    technique, PERSISTENCE)


_FILE_ENCRYPTERS = frozenset({"ccrypt", "ccencrypt", "mcrypt", "aescrypt"})  # files replaced by their ciphertext
_SQL_CLIENTS = frozenset({"mysql", "mariadb", "psql", "sqlite3", "mongo", "mongosh", "redis-cli"})
_DESTRUCTIVE_SQL = re.compile(r"\bDROP\s{1,4}(?:DATABASE|SCHEMA)\b|\bDROP\s{1,4}TABLE\b|\bTRUNCATE\b|\bFLUSHALL\b|"
                              r"\bFLUSHDB\b|dropDatabase\(", re.IGNORECASE)


def _archive(command: Command) -> list[Evidence]:
    """Secrets packed up (keys, cloud credentials), sensitive trees archived, archives staged out of sight."""
    operands = _operands(command)
    found: list[Evidence] = []
    sensitive = any(o.rstrip("/").endswith(_SENSITIVE_DIRS) for o in operands)
    if any(any(d in o for d in _SECRET_DIRS) for o in operands):
        found.append(Evidence(0.5, f"{command.program} packs up private keys or credentials", "T1552.004",
                              CREDENTIAL_ACCESS))
    elif sensitive:
        found.append(Evidence(0.15, f"{command.program} archives a sensitive directory", "T1560.001", COLLECTION))
    outputs = [*writes_of(command), *option_values(command, ("-f", "--file"))]
    if command.program == "zip" and operands:
        outputs.append(operands[0])
    if command.program == "tar":
        outputs.extend(_tar_archive(command.args))
    if any(_staged(o) for o in outputs):
        found.append(Evidence(0.3, f"{command.program} writes an archive into a temp or hidden place", "T1074.001",
                              COLLECTION))
    elif any(o.startswith(_WEB_ROOTS) for o in outputs):  # staged where a browser fetches it: exfiltration's door
        found.append(Evidence(0.45 if sensitive else 0.25, f"{command.program} writes an archive"
                              f"{' of a sensitive directory' if sensitive else ''} into a web root", "T1074.001",
                              COLLECTION))
    return found


_TAR_CREATING = frozenset({"--create", "--append", "--update", "--concatenate"})


def _tar_creates(args: tuple[str, ...]) -> bool:
    """Whether tar writes an archive (`c`, `r`, `u`, `A` in its bundled letters), rather than extracting or
    listing one (`tar xzf /tmp/gh.tgz -C /tmp` unpacks a download: what runs from it is judged when it runs)."""
    # Letters come bundled first (`tar czf`) or as options (`tar -c -z -f`); later bare words are operands.
    bundles = [arg[1:] for arg in args[1:] if arg.startswith("-") and not arg.startswith("--")]
    if len(args) > 1 and not args[1].startswith("-"):
        bundles.append(args[1])
    return any(arg in _TAR_CREATING for arg in args[1:]) or any(
        0 < len(bundle) <= 8 and bundle.isalpha() and bool(set(bundle) & set("cruA")) for bundle in bundles)


def _tar_archive(args: tuple[str, ...]) -> list[str]:
    """The archive of `tar czf X ...` or `tar -czf X ...`: the word after bundled letters holding `f`."""
    for i, arg in enumerate(args[1:-1], start=1):
        letters = arg.lstrip("-")
        if 0 < len(letters) <= 8 and letters.isalpha() and "f" in letters and not arg.startswith("--"):
            return [args[i + 1]]
    return []


def _staged(path: str) -> bool:
    return path_class(path) in ("tmp", "shm", "dev") or _hidden(path)


_DISK_DEVICE = re.compile(r"^/dev/(?:sd[a-z]|nvme\d|vd[a-z]|xvd[a-z]|hd[a-z]|mmcblk\d|dm-\d|mapper/|root\b)")
_DISKS = re.compile(r"^of=/dev/(?:sd[a-z]|nvme\d|vd[a-z]|xvd[a-z]|hd[a-z]|mmcblk\d|dm-\d|mapper/)")


# Data whose deletion is the attack (T1485): a database's files at any depth, or a whole web root, home,
# service tree or system directory (deleting inside them is housekeeping: `rm -rf /srv/ci/ws.1`).
_DATABASE_FILES = ("/var/lib/mysql", "/var/lib/mariadb", "/var/lib/postgresql", "/var/lib/pgsql", "/var/lib/mongodb",
                   "/var/lib/redis", "/var/lib/elasticsearch", "/var/lib/clickhouse", "/var/lib/etcd",
                   "/var/lib/docker/volumes")
_DATA_ROOTS = frozenset({"/var/www", "/var/www/html", "/srv", "/home", "/root", "/etc", "/opt", "/var/lib",
                         "/var/backups", "/boot", "/usr", "/var"})


def _destroyed_data(command: Command) -> str:
    """The data store a recursive rm deletes ("" for none). One user's home is left out: removing it is how
    an account is retired."""
    flags = [a for a in command.args[1:] if a[:1] == "-"]
    if not any(a == "--recursive" or (a[1:2] != "-" and ("r" in a or "R" in a)) for a in flags):
        return ""
    for operand in _operands(command):
        path = operand.strip("'\"").removesuffix("/*").rstrip("/")
        if path in _DATA_ROOTS or any(path == d or path.startswith(d + "/") for d in _DATABASE_FILES):
            return path
    return ""


# Database and backup files by name (`-name '*.sql'`): deleting them wherever they are is the attack.
_DATA_FILE_NAME = re.compile(r"^['\"]?\*\.(?:sql|db|sqlite3?|bak|dump|mdb|ibd|myd|frm|dbf|mdf|ldf|backup)['\"]?$",
                             re.IGNORECASE)
# What narrows a `find ... -delete` to some files (old logs, temp files): without one, it deletes the tree.
_FIND_TESTS = frozenset({"-name", "-iname", "-mtime", "-mmin", "-atime", "-amin", "-ctime", "-cmin", "-newer", "-size",
                         "-path", "-ipath", "-regex", "-iregex", "-user", "-group", "-empty", "-perm"})


def _find_deletes_data(command: Command) -> str:
    """The data store a `find -delete` (or `-exec rm`, `-exec shred`) empties whole, or the database and backup
    files it deletes wherever they are ("" for none)."""
    args = command.args
    deletes = "-delete" in args or ("-exec" in args and bool({"rm", "shred"} & set(args)))
    if command.program != "find" or not deletes:
        return ""
    names = option_values(command, ("-name", "-iname"))
    narrowed = _FIND_TESTS - {"-name", "-iname"}
    # From the root and by name alone; by age or size, or below a backup directory, it is rotation.
    if args[1:2] == ("/",) and names and all(_DATA_FILE_NAME.search(n) for n in names) and not narrowed & set(args):
        return f"{', '.join(names)[:60]} files everywhere"
    if _FIND_TESTS & set(args):
        return ""
    for start in itertools.takewhile(lambda a: not a.startswith(("-", "(", "!")), args[1:]):
        path = start.rstrip("/")
        if path in _DATA_ROOTS or any(path == d or path.startswith(d + "/") for d in _DATABASE_FILES):
            return path
    return ""


def _impact(command: Command) -> list[Evidence]:
    program, args = command.program, command.args
    if destroyed := _find_deletes_data(command):
        what = destroyed if destroyed.endswith(" everywhere") else f"every file in {destroyed[:80]}"
        return [Evidence(0.35, f"find deletes {what}", "T1485", IMPACT)]
    if program == "rm" and any(a in ("/", "/*", "--no-preserve-root") for a in args[1:]):
        return [Evidence(0.7, "rm deletes the whole file system", "T1485", IMPACT)]
    if program == "rm" and (destroyed := _destroyed_data(command)):
        return [Evidence(0.35, f"rm deletes {destroyed[:80]} and everything in it", "T1485", IMPACT)]
    if program == "dd" and any(_DISKS.match(a) for a in args[1:]):
        return [Evidence(0.65, "dd overwrites a disk", "T1561.001", IMPACT)]
    if program in ("shred", "wipefs", "blkdiscard") and any(a.startswith("/dev/") for a in args[1:]):
        return [Evidence(0.6, f"{program} wipes a disk", "T1561.001", IMPACT)]
    if program in ("sgdisk", "sfdisk") and any(a in ("--zap-all", "-Z", "--delete") for a in args[1:]):
        return [Evidence(0.6, f"{program} erases a disk's partition table", "T1561.002", IMPACT)]
    if program.startswith("mkfs") and any(a.startswith("/dev/") for a in args[1:]):
        return [Evidence(0.3, f"{program} formats a disk", "T1561.002", IMPACT)]
    if program in ("shutdown", "reboot", "halt", "poweroff") or (program in ("init", "telinit") and
                                                                  {"0", "6"} & set(args)) or (
            program == "systemctl" and {"poweroff", "reboot", "halt", "kexec"} & set(args[1:3])):
        return [Evidence(0.2, f"{program} stops the host", "T1529", IMPACT)]
    return []


_FILE_DROP_HOSTS = ("transfer.sh", "file.io", "0x0.st", "termbin.com", "paste.ee", "pastebin.com", "webhook.site",
                    "requestbin", "anonfiles", "gofile.io", "temp.sh", "bashupload.com", "oshi.at")


# An IPv4 address with shell variables for some octets (10.0.0.$i, ${NET}.1.$h; a variable may hold several):
# one address per turn of a loop. A number among the parts tells it from a host name ($host.$domain).
_SWEPT_ADDRESS = re.compile(r"(?:(?:\d{1,3}|\$\{?\w{1,32}\}?)\.){1,3}(?:\d{1,3}|\$\{?\w{1,32}\}?)(?::\S{1,16})?")
_OCTET = re.compile(r"(?:^|\.)\d{1,3}(?=[.:]|$)")
# A name whose first label is a shell variable under a fixed domain ($x.exfil.example.com): one lookup per
# value, the way data leaves through DNS.
_VARIABLE_LABEL = re.compile(r"\$\{?\w{1,32}\}?\.(?:[a-z0-9-]{1,63}\.){1,8}[a-z]{2,24}\.?$", re.IGNORECASE)
_ADDRESS_PROBES = frozenset({"ping", "fping", "arping", "hping3", "nping", "traceroute", "nc", "ncat", "netcat", "nmap",
                             "telnet", "ssh", "curl", "wget"})


def _swept(arg: str) -> bool:
    return "$" in arg and bool(_SWEPT_ADDRESS.fullmatch(arg[:MAX_OPERAND])) and bool(_OCTET.search(arg))


def _remote_services(command: Command) -> list[Evidence]:
    """Clients of remote services whose use is itself a technique: file-drop sites, DNS lookups carrying
    data, TLS tunnels by hand, cloud and cluster credentials, address sweeps."""
    program, args = command.program, command.args
    text = " ".join(args)[:MAX_OPERAND * 4]
    found: list[Evidence] = []
    if program in _ADDRESS_PROBES and any(_swept(a) for a in args[1:]):
        found.append(Evidence(0.3, f"{program} sweeps addresses from a loop variable", "T1018", DISCOVERY))
    if any(host in text for host in _FILE_DROP_HOSTS) and program in DOWNLOADERS | {"nc", "ncat", "wget"}:
        found.append(Evidence(0.5, f"{program} talks to a file-drop or paste service", "T1567", EXFILTRATION))
    if program in ("dig", "nslookup", "host", "drill", "kdig", "delv") and any(
            "$(...)" in a or _VARIABLE_LABEL.match(a) or any(len(label) > 40 or _HEX_LABEL.match(label)
                                                             for label in a.split("."))
            for a in args[1:]):
        found.append(Evidence(0.45, f"{program} sends data inside a DNS name", "T1048.003", EXFILTRATION))
    if program == "openssl" and "s_client" in args:
        # Carrying data (quiet, or with a redirection) it is a tunnel; printing the handshake, a TLS check.
        if "-quiet" in args or "-ign_eof" in args or command.redirects:
            found.append(Evidence(0.3, "openssl carries data over a TLS connection by hand", "T1573",
                                  COMMAND_AND_CONTROL))
        else:
            found.append(Evidence(0.1, "openssl opens a TLS connection by hand", "T1573", COMMAND_AND_CONTROL))
    cloud_client = program in ("aws", "gcloud", "az", "gsutil", "vault")
    if cloud_client and (cloud := _cloud_data(args) or _cloud_control(command)):
        found.append(cloud)
    elif program in ("aws", "gcloud", "az"):
        if any(a in ("create-access-key", "create-login-profile", "update-login-profile", "attach-user-policy",
                     "put-user-policy", "add-user-to-group") for a in args):
            found.append(Evidence(0.45, f"{program} creates cloud credentials or grants rights", "T1098.001",
                                  PERSISTENCE))
        elif any(a in ("get-caller-identity", "list-users", "list-roles", "get-secret-value", "list-secrets",
                     "print-access-token", "get-account-authorization-details") for a in args):
            found.append(Evidence(0.35, f"{program} reads cloud identities or secrets", "T1552.001",
                                  CREDENTIAL_ACCESS))
        elif "s3" in args and ("cp" in args or "sync" in args) and any(a.startswith("s3://") for a in args[-3:]):
            if "--no-sign-request" in args:  # unsigned: into a bucket anyone may write, not this account's
                found.append(Evidence(0.45, f"{program} copies files anonymously to a bucket open to anyone",
                                      "T1567.002", EXFILTRATION))
            else:
                found.append(_to_cloud_storage(program, args))
        else:
            found.append(Evidence(0.1, f"{program}: cloud account discovery", "T1580", DISCOVERY))
    if program in DOWNLOADERS and ":10250/" in text:  # the kubelet's API, past the cluster's own
        if "/run/" in text or "/exec/" in text:
            found.append(Evidence(0.5, f"{program} asks a kubelet to run a command in a container", "T1609",
                                  "execution"))
        else:
            found.append(Evidence(0.2, f"{program} queries a kubelet's API", "T1613", DISCOVERY))
    if program == "rclone" and _CONSUMER_STORAGE.search(text):
        found.append(Evidence(0.45, "rclone set up for, or copying to, a consumer file-sharing service", "T1567.002",
                              EXFILTRATION))
    if program == "ping" and "-p" in args:
        found.append(Evidence(0.35, "ping carries chosen bytes in its packets (-p)", "T1048.003", EXFILTRATION))
    if program == "kubectl":
        found.extend(_kubectl(args, text))
    return found


# A DNS label of 24 or more hex digits: 12 bytes of data, not a name people give a host.
_HEX_LABEL = re.compile(r"^[0-9a-fA-F]{24,63}$")


# git settings that name a program git runs by itself (on status, diff, fetch, commit): set to a temp or hidden
# place, or to shell code, they run the attacker's code whenever someone uses git.
_GIT_PROGRAM_SETTINGS = frozenset({"core.hookspath", "core.fsmonitor", "core.sshcommand", "core.pager",
                                   "core.editor", "core.gitproxy", "core.askpass", "diff.external",
                                   "credential.helper", "sequence.editor", "gpg.program", "pager.log",
                                   "pager.diff", "uploadpack.packobjectshook"})


def _git_settings(command: Command) -> list[Evidence]:
    """`git config [--global] core.fsmonitor /tmp/.x`, `git -c core.pager='sh -c ...' log`."""
    args = command.args
    settings = [(key, value) for key, value in itertools.pairwise(args[1:]) if key.lower() in _GIT_PROGRAM_SETTINGS]
    settings += [tuple(value.split("=", 1)) for value in option_values(command, ("-c",)) if "=" in value]
    for key, value in settings:
        if key.lower() not in _GIT_PROGRAM_SETTINGS:
            continue
        program = value.split()[0] if value.split() else ""
        if _staged(program) or (program.rsplit("/", 1)[-1] in SHELLS and " -c" in value):
            return [Evidence(0.45, f"git set to run {value[:60]} by itself ({key})", "T1546", PERSISTENCE)]
    return []


# sed scripts that delete lines (`/1.2.3.4/d`, `10,20d`): rotation and clean-up never edit a log in place.
_DELETES_LINES = re.compile(r"(?:^|;)\s{0,4}(?:/[^/]{1,200}/|\d{1,9}(?:,\d{1,9})?|\$)\s{0,4}d\s{0,4}(?:;|$)")


def _log_lines_removed(command: Command) -> list[Evidence]:
    """`sed -i '/203.0.113.9/d' /var/log/nginx/access.log`: one's own traces cut out of a log (any log: the
    access log is where a web intrusion shows)."""
    edited = [p for p in writes_of(command) if p.startswith("/var/log/")]
    script = next((a for a in command.args[1:] if not a.startswith("-")), "")
    if edited and _DELETES_LINES.search(script[:MAX_OPERAND]):
        return [Evidence(0.45, f"sed deletes lines from a log ({edited[0][:80]})", "T1070.002", DEFENSE_EVASION)]
    return []


def _staged_packages(command: Command) -> list[Evidence]:
    """`pip install /tmp/pkg`, `npm install /dev/shm/.x.tgz`: a package whose install scripts run code, taken
    from where droppers stage files, not from an index."""
    installs = "install" in command.args[1:3] or (command.program in ("dpkg", "rpm") and any(
        a in ("-i", "--install", "-U", "--upgrade") or (a[:2] in ("-i", "-U") and a[1:].isalpha())
        for a in command.args[1:3]))
    if not installs:
        return []
    staged = [o for o in _operands(command) if o != "install" and _staged(o)]
    if not staged:
        return []
    # A system package fetched into /tmp and installed is how admins add a vendor's .deb; hidden, it is not.
    weight = 0.2 if command.program in _SYSTEM_PACKAGERS and path_class(staged[0]) == "tmp" and not _hidden(
        staged[0]) else 0.35
    return [Evidence(weight, f"{command.program} installs a package from a temp or hidden place ({staged[0][:80]})",
                     "T1546.016", PERSISTENCE)]


_SYSTEM_PACKAGERS = frozenset({"dpkg", "rpm", "apt", "apt-get", "yum", "dnf", "zypper"})


def _container_images(command: Command) -> list[Evidence]:
    """A container of a known attack tool or miner: `docker run -d metal3d/xmrig` is xmrig running."""
    if not {"run", "create"} & set(command.args[1:4]):
        return []
    for arg in command.args[2:]:
        name = arg.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0].lower()
        spec = _TOOLS.get(name)
        if spec is not None and spec[0] >= 0.5:
            weight, what, technique, tactic = spec
            return [Evidence(weight, f"{command.program} runs a container of a {what} ({arg[:60]})", technique, tactic)]
        if "/" in arg and _MINER_IMAGE.search(name):
            return [Evidence(0.5, f"{command.program} runs a container image named for mining ({arg[:60]})", "T1496",
                             IMPACT)]
    return []


_MINER_IMAGE = re.compile(r"xmr|monero|miner|cryptonight|nicehash")


# Consumer file-sharing services as an rclone backend (`config create NAME mega`) or remote (`mega:`):
# where stolen data goes; companies back up to their own buckets.
_CONSUMER_STORAGE = re.compile(r"\bconfig\s{1,4}create\s{1,4}\S{1,64}\s{1,4}(?:mega|pcloud|opendrive|fichier|"
                               r"putio|koofr)\b|(?:^|\s)(?:mega|pcloud|1fichier):", re.IGNORECASE)
_SECRET_OUTPUT = re.compile(r"(?:^|\s)(?:-o|--output)[= ]?\s?(?:yaml|json|jsonpath|go-template|custom-columns)|"
                            r"--template|view-secret")


_CLOUD_DELETES = frozenset({"delete-db-instance", "delete-db-cluster", "delete-bucket", "delete-snapshot",
                            "delete-db-snapshot", "delete-backup", "delete-backup-vault", "delete-file-system",
                            "terminate-instances", "delete-volume"})


def _cloud_data(args: tuple[str, ...]) -> Evidence | None:
    """A bucket emptied or removed, databases, backups and machines deleted; secrets read from a vault."""
    flags = set(args)
    if "rb" in args[1:3] and "--force" in flags:
        return Evidence(0.45, f"{args[0]} removes a bucket with everything in it", "T1485", IMPACT)
    if ("rm" in args[1:4] and ({"--recursive", "-r", "-R"} & flags or any(a.endswith("/**") for a in args))) or (
            "delete" in args[1:4] and "container" in args[1:4]):
        return Evidence(0.35, f"{args[0]} deletes stored data in bulk", "T1485", IMPACT)
    if _CLOUD_DELETES & flags:
        return Evidence(0.35, f"{args[0]} deletes {sorted(_CLOUD_DELETES & flags)[0].split('-', 1)[1]}", "T1485",
                        IMPACT)
    secret = ("--with-decryption" in flags and bool({"get-parameter", "get-parameters", "get-parameters-by-path"}
                                                  & flags)) or (
        args[0] == "vault" and bool({"read", "get"} & set(args[1:3]))) or (
        args[0] == "gcloud" and "secrets" in args and "access" in args) or (
        args[0] == "az" and "keyvault" in args and "secret" in args and "show" in args)
    if secret:
        return Evidence(0.35, f"{args[0]} reads secrets from the cloud's secret store", "T1555.006",
                        CREDENTIAL_ACCESS)
    return None


# Switching off what records a cloud account's activity: its trail, flow logs, log sinks, threat detection.
_CLOUD_LOGGING_OFF = frozenset({"stop-logging", "delete-trail", "delete-flow-logs", "delete-detector",
                                "disassociate-members", "delete-log-group"})
# Keys and credentials made for a service identity: a way back in that outlives a reset password.
_CLOUD_IDENTITY_KEYS = (("service-accounts", "keys", "create"), ("hmac", "create"), ("ad", "sp", "create-for-rbac"),
                        ("ad", "sp", "credential"), ("ad", "app", "credential"))
_CLOUD_OWNER_ROLES = ("roles/owner", "roles/editor", "Owner", "Contributor", "AdministratorAccess",
                      "User Access Administrator")
_CLOUD_UPLOADS = (("storage", "blob", "upload"), ("storage", "blob", "upload-batch"), ("storage", "cp"),
                  ("cp",))


def _cloud_control(command: Command) -> Evidence | None:
    """The cloud account's own defences and doors: its activity logs switched off, keys made for a service
    identity, owner rights granted, local files sent to a bucket (all but the last are rare by hand)."""
    args = command.args
    program, words = args[0], [a for a in args[1:8] if not a.startswith("-")]
    if _CLOUD_LOGGING_OFF & set(words) or (program == "gcloud" and words[:3] == ["logging", "sinks", "delete"]) or (
            program == "az" and words[:3] == ["monitor", "diagnostic-settings", "delete"]):
        return Evidence(0.5, f"{program} switches off the cloud account's activity logs", "T1562.008",
                        DEFENSE_EVASION)
    if any(_words_in_order(words, key) for key in _CLOUD_IDENTITY_KEYS):
        return Evidence(0.45, f"{program} makes keys for a service identity", "T1098.001", PERSISTENCE)
    granted = option_values(command, ("--role",))
    if ("add-iam-policy-binding" in words or _words_in_order(words, ("role", "assignment", "create")) or
            "create-for-rbac" in words) and any(role.strip("'\"") in _CLOUD_OWNER_ROLES for role in granted):
        return Evidence(0.45, f"{program} grants owner rights in the cloud account", "T1098.003", PERSISTENCE)
    if (program in ("az", "gcloud", "gsutil") and any(_words_in_order(words, key) for key in _CLOUD_UPLOADS)
            and any(a.startswith(("gs://", "https://")) or a == "-f" for a in args)):
        return _to_cloud_storage(program, args)
    return None


def _to_cloud_storage(program: str, args: tuple[str, ...]) -> Evidence:
    """Files copied to a bucket: a backup, or from a temp or hidden place, data staged to leave."""
    staged = any(_hidden(a) or path_class(a) in ("tmp", "shm") for a in args[1:] if a.startswith(("/", "./")))
    return Evidence(0.35 if staged else 0.2, f"{program} copies {'staged ' if staged else ''}files to cloud storage",
                    "T1567.002", EXFILTRATION)


def _words_in_order(words: list[str], key: tuple[str, ...]) -> bool:
    """`key` appears in `words` as consecutive words."""
    return any(tuple(words[i:i + len(key)]) == key for i in range(len(words) - len(key) + 1))


def _containers_removed(command: Command) -> list[Evidence]:
    """`docker rm -f $(docker ps -aq)`, `docker kill $(docker ps -q)`: every container the host runs."""
    args = command.args
    if {"rm", "kill", "stop"} & set(args[1:3]) and "$(...)" in args:
        return [Evidence(0.35, f"{command.program} stops or removes every container", "T1489", IMPACT)]
    return []


def _kubectl(args: tuple[str, ...], text: str) -> list[Evidence]:
    """Reading secrets' values (listing them shows names only), granting cluster-admin, running in containers."""
    if "secret" in text or "secrets" in args:
        if _SECRET_OUTPUT.search(text) or "view-secret" in args:
            return [Evidence(0.4, "kubectl reads cluster secrets", "T1552.007", CREDENTIAL_ACCESS)]
        if {"get", "describe"} & set(args):
            return [Evidence(0.15, "kubectl lists cluster secrets", "T1552.007", CREDENTIAL_ACCESS)]
        return []
    if "cluster-admin" in text and ("clusterrolebinding" in args or "rolebinding" in args):
        return [Evidence(0.5, "kubectl grants cluster-admin", "T1098.006", PRIVILEGE_ESCALATION)]
    if "exec" in args:
        return [Evidence(0.2, "kubectl runs a command in a container", "T1609", "execution")]
    if "delete" in args[1:3] and ({"namespace", "ns", "namespaces", "--all", "-A", "--all-namespaces", "pv",
                                   "pvc", "persistentvolume", "persistentvolumeclaim"} & set(args)):
        return [Evidence(0.4, "kubectl deletes a namespace or everything of a kind", "T1485", IMPACT)]
    if "run" in args[1:3] and _PRIVILEGED_POD.search(text):
        return [Evidence(0.5, "kubectl runs a pod with the host's namespaces or full privileges", "T1611",
                         PRIVILEGE_ESCALATION)]
    return []


_PRIVILEGED_POD = re.compile(r"\b(?:hostPID|hostNetwork|hostIPC|privileged)\"?\s{0,4}:\s{0,4}true")


def _compiling(command: Command) -> list[Evidence]:
    output = option_values(command, ("-o",))
    if output and _staged(output[0]):
        return [Evidence(0.3, f"{command.program} compiles into a temp or hidden file ({output[0][:80]})",
                          "T1027.004", DEFENSE_EVASION)]
    return []


def _capsh(command: Command) -> list[Evidence]:
    if any(a.startswith(("--uid=", "--gid=", "--caps=", "--inh=")) for a in command.args[1:]) or "--" in command.args:
        return [Evidence(0.4, "capsh starts a shell with chosen ids or capabilities", "T1548", PRIVILEGE_ESCALATION)]
    return []


def _hiding(command: Command) -> list[Evidence]:
    """Search paths hijacked, commands trapped on shell events, files wiped past recovery, hidden files
    and directories made in temp places."""
    program, args = command.program, command.args
    text = " ".join(args)[:MAX_OPERAND * 4]
    found: list[Evidence] = []
    if "PATH=" in text and any(p in text for p in ("PATH=/tmp", "PATH=/dev/shm", "PATH=/var/tmp", "PATH=.:")):
        found.append(Evidence(0.35, "the command search path starts in a writable directory", "T1574.007",
                              PERSISTENCE))
    if program == "trap" and len(args) >= 3:
        found.append(Evidence(0.3, "a command trapped on a shell event", "T1546.005", PERSISTENCE))
    if program in ("shred", "srm", "wipe") and ({"-u", "-z", "--remove"} & _short_flags(args) or program != "shred"):
        found.append(Evidence(0.3, f"{program} deletes files past recovery", "T1070.004", DEFENSE_EVASION))
    hidden = [o for o in _operands(command) if path_class(o) in ("tmp", "shm") and _hidden(o)]
    if program in ("mkdir", "touch", "mv", "cp") and any(_looks_like_a_dot_entry(o) for o in _operands(command)):
        found.append(Evidence(0.45, f"{program} names a file to pass for . or .. in a listing", "T1564.001",
                              DEFENSE_EVASION))
    elif program in ("mkdir", "touch") and hidden:
        found.append(Evidence(0.2, f"{program} makes a hidden file or directory in a temp place", "T1564.001",
                              DEFENSE_EVASION))
    return found


_PROCESS_DIRECTORY = re.compile(r"^/proc/\d{1,8}/?$")


def _looks_like_a_dot_entry(path: str) -> bool:
    """`/tmp/. `, `...`, `.. `: a name made of dots and blanks, which a listing shows as `.` or `..`."""
    name = path.rstrip("/").rsplit("/", 1)[-1] if path.rstrip("/") else ""
    return name not in ("", ".", "..") and not name.strip(". \t")


def _mounts_host_root(args: tuple[str, ...]) -> bool:
    """`-v /:/host`, `--volume=/:/mnt`, `--mount type=bind,source=/,...`: the host's root inside a container."""
    for i, arg in enumerate(args):
        value = args[i + 1] if arg in ("-v", "--volume", "--mount") and i + 1 < len(args) else arg.split("=", 1)[-1] \
            if arg.startswith(("--volume=", "--mount=")) else ""
        if value.startswith("/:") or "source=/," in value or "src=/," in value or value.endswith(("source=/", "src=/")):
            return True
    return False


def _system_containers(command: Command) -> list[Evidence]:
    """LXD/Incus containers made privileged or given the host's root: root on the host for whoever is in the
    `lxd` group (the group is the way in)."""
    text = " ".join(command.args[1:])[:MAX_OPERAND * 4]
    if _PRIVILEGED_SYSTEM_CONTAINER.search(text) or ("disk" in command.args and _HOST_ROOT_SOURCE.search(text)):
        return [Evidence(0.5, f"{command.program} gives a container the host's root or its privileges", "T1611",
                         PRIVILEGE_ESCALATION)]
    return []


_PRIVILEGED_SYSTEM_CONTAINER = re.compile(r"security\.privileged[= ]{1,3}true|raw\.lxc")
_HOST_ROOT_SOURCE = re.compile(r"(?:^|\s)source=/(?:\s|$)")


def _escapes_and_injection(command: Command) -> list[Evidence]:
    program, args = command.program, command.args
    text = command.text()[:MAX_OPERAND * 2]
    if program == "debugfs" and any(_DISK_DEVICE.match(o) for o in _operands(command)):
        # The file system read, or written (-w), off the device: past permissions, locks and audit rules.
        written = "-w" in args
        return [Evidence(0.45 if written else 0.3, f"debugfs opens a disk{' for writing' if written else ''}, past "
                                                   "file permissions", "T1006", DEFENSE_EVASION)]
    if program == "nsenter" and (("-t" in args and "1" in args) or "--target=1" in args):
        return [Evidence(0.55, "nsenter enters the host's namespaces", "T1611", PRIVILEGE_ESCALATION)]
    if program in ("docker", "podman", "nerdctl", "ctr") and ("--privileged" in args or "--pid=host" in args or
                                                             _mounts_host_root(args)):
        return [Evidence(0.5, f"{program} starts a container with host access", "T1611", PRIVILEGE_ESCALATION)]
    if program in ("docker", "podman", "nerdctl") and "docker.sock" in text:
        # Docker-in-Docker CI does this too; in a container the socket is root on the host all the same.
        return [Evidence(0.3, f"{program} hands a container the Docker socket", "T1611", PRIVILEGE_ESCALATION)]
    if program in ("gdb", "pyrasite") and ({"-p", "--pid", "attach"} & set(args) or any(
            a.startswith("--pid=") for a in args)):
        if "dlopen" in text:
            return [Evidence(0.55, f"{program} loads a library into a running process", "T1055.009",
                             DEFENSE_EVASION)]
        if "dump memory" in text or "dump binary memory" in text or "generate-core-file" in text or "gcore" in text:
            return [Evidence(0.5, f"{program} dumps a running process's memory", "T1003.007", CREDENTIAL_ACCESS)]
        return [Evidence(0.2, f"{program} attaches to a running process", "T1055", DEFENSE_EVASION)]
    if program == "openssl" and any(_staged(v) for v in option_values(command, ("-engine",))):
        return [Evidence(0.5, "openssl loads an engine library from a temp or hidden place", "T1129", "execution")]
    if program == "mount" and any(_PROCESS_DIRECTORY.match(o) for o in _operands(command)[1:]):
        return [Evidence(0.5, "mount covers a process's /proc entry (hides it)", "T1564", DEFENSE_EVASION)]
    if program == "strace" and ("-p" in args or any(a.startswith("-p") for a in args[1:])) and "read" in text:
        # Debugging looks the same; reading what a login or sudo types is what an attacker wants from it,
        # kept in a hidden or temp file to read later (`-o /var/tmp/.sshd.log`).
        if any(_staged(o) for o in option_values(command, ("-o",))):
            return [Evidence(0.45, "strace records another process's input into a temp or hidden file", "T1056.001",
                             COLLECTION)]
        return [Evidence(0.2, "strace reads another process's input", "T1056.001", COLLECTION)]
    if "LD_PRELOAD=" in text:
        return [Evidence(0.45, "a library is preloaded into a program", "T1574.006", DEFENSE_EVASION)]
    if "GCONV_PATH" in text:  # glibc loads a charset module from it: pkexec's CVE-2021-4034 and its kin
        return [Evidence(0.6, "GCONV_PATH set for a program (how pkexec exploits load their code)", "T1068",
                         PRIVILEGE_ESCALATION)]
    return []


# Discovery: what people also do every day, weak alone (scoring/chains.py raises it where people do not type).
_DISCOVERY: dict[str, tuple[str, str]] = {}
for _names, _what in (
    (("id", "whoami", "who", "w", "users", "logname", "last", "lastlog", "lastb"), ("T1033", "who is on the host")),
    (("uname", "hostnamectl", "lsb_release", "lscpu", "dmidecode", "systemd-detect-virt", "arch", "virt-what"),
     ("T1082", "system information")),
    (("getent", "lslogins"), ("T1087.001", "account list")),
    (("groups",), ("T1069.001", "group memberships")),
    (("ps", "pstree", "top", "htop"), ("T1057", "running processes")),
    (("ss", "netstat", "lsof"), ("T1049", "network connections")),
    (("ip", "ifconfig", "route", "arp", "iwconfig", "nmcli"), ("T1016", "network configuration")),
    (("env", "printenv"), ("T1082", "environment variables")),
    (("mount",), ("T1082", "mounted file systems")),
    (("lsmod",), ("T1082", "kernel modules")),
    (("getcap",), ("T1548.001", "file capabilities")),
):
    for _name in _names:
        _DISCOVERY[_name] = _what
_SYSTEM_FILES = frozenset({"/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf", "/etc/issue",
                           "/etc/os-release", "/proc/version", "/etc/lsb-release", "/proc/cpuinfo", "/etc/hostname",
                           "/etc/network/interfaces", "/proc/net/tcp", "/proc/net/arp", "/etc/login.defs",
                           "/proc/1/cgroup", "/etc/exports", "/etc/fstab"})
_SUID_SEARCH = re.compile(r"^[-/+]?(?:[ug]=s|[ug]\+s|[246]000|6000)$")
_HASH_DATABASES = frozenset({"shadow", "gshadow"})  # getent's databases of password hashes


def _names_private_keys(patterns: list[str]) -> bool:
    """A name pattern of `find` for SSH private keys by their own names (`id_*`, `identity*`; not `*id*`)."""
    return any(p.lstrip("*?").startswith(("id_", "identity")) and _covers_private_keys(p) for p in patterns)


def _discovery(command: Command) -> list[Evidence]:
    program, args = command.program, command.args
    found = []
    what = _DISCOVERY.get(program)
    if program == "getent" and _HASH_DATABASES & set(args[1:2]):  # the hashes /etc/shadow holds, through NSS
        return [Evidence(_SHADOW.read[0], f"getent reads the password hashes ({args[1]})", _SHADOW.read[1],
                         _SHADOW.read[2])]
    if what is not None and not (program == "ip" and {"add", "del", "set", "flush", "replace"} & set(args)):
        found.append(Evidence(0.05, f"{program}: {what[1]}", what[0], DISCOVERY))
    if program in ("cat", "head", "tail", "less", "more", "grep", "awk", "cut") and any(
            o in _SYSTEM_FILES or (o.startswith("/etc/") and o.endswith("-release")) for o in _operands(command)):
        found.append(Evidence(0.05, f"{program} reads system configuration", "T1082", DISCOVERY))
    if program == "find":
        perm = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-perm"]
        if any(_SUID_SEARCH.match(p) for p in perm):
            found.append(Evidence(0.15, "find searches for setuid/setgid programs", "T1083", DISCOVERY))
        elif "-writable" in args or any(p in ("-o+w", "-0002", "-2", "/o+w") for p in perm):
            found.append(Evidence(0.1, "find searches for writable files", "T1083", DISCOVERY))
        elif any(n in " ".join(args) for n in ("id_rsa", "id_ed25519", "*pass*", "*.kdbx", "wp-config", ".env",
                                                "credentials", ".git-credentials", "authorized_keys")) or \
                _names_private_keys(option_values(command, ("-name", "-iname"))):
            found.append(Evidence(0.35, "find searches for keys or passwords", "T1552.001", CREDENTIAL_ACCESS))
        elif any(n in " ".join(args) for n in ("*.pem", "*.key", "*.p12", "*.pfx")):
            found.append(Evidence(0.2, "find searches for certificates and keys", "T1552.004", CREDENTIAL_ACCESS))
    if program == "sudo" and ("-l" in args or "--list" in args):
        found.append(Evidence(0.15, "sudo lists what this user may run", "T1069.001", DISCOVERY))
    if program in ("which", "command", "type", "whereis") and len(
            set(args[1:]) & {"nc", "ncat", "netcat", "socat", "python", "python3", "perl", "gcc", "wget", "curl",
                             "nmap", "ruby", "php", "tftp"}) >= 2:
        found.append(Evidence(0.15, "looks for tools on the host", "T1518", DISCOVERY))
    if program in ("grep", "egrep", "ps") and any(_SECURITY_SERVICES.match(a) for a in args[1:]):
        found.append(Evidence(0.15, "looks for security tools", "T1518.001", DISCOVERY))
    if program in ("grep", "egrep", "rg"):
        found += _secret_searches(command)
    return found


def _secret_searches(command: Command) -> list[Evidence]:
    """grep for secrets: in processes' environments or command lines, or recursively through files."""
    program, args = command.program, command.args
    names_a_secret = any(_SECRET_WORDS & set(_WORDS.findall(a[:MAX_OPERAND].lower())) for a in args[1:])
    if names_a_secret and any(location_of(p) in (_ENVIRON, _ALL_ENVIRONS, _ALL_COMMAND_LINES)
                              for p in reads_of(command)):
        return [Evidence(0.45, f"{program} searches processes' environments or command lines for secrets", "T1552",
                         CREDENTIAL_ACCESS)]
    if not _recursive_search(args):
        return []
    if any(_SECRET_FORMATS.search(a[:MAX_OPERAND]) for a in args[1:]):
        return [Evidence(0.4, f"{program} searches files for access keys or private keys", "T1552.001",
                         CREDENTIAL_ACCESS)]
    if names_a_secret:
        return [Evidence(0.3, f"{program} searches files for passwords", "T1552.001", CREDENTIAL_ACCESS)]
    return []


_SECRET_WORDS = frozenset({"password", "passwd", "pass", "secret", "token", "api_key", "apikey", "pwd"})
_WORDS = re.compile(r"[a-z_]{1,32}")  # the words of a pattern, alternations included: 'password|api_key'

# What secrets look like inside files: cloud access keys, key headers, service tokens.
_SECRET_FORMATS = re.compile(r"AKIA|aws_secret_access_key|aws_access_key_id|PRIVATE KEY|private_key|client_secret|"
                             r"\bghp_|\bxox[abp]-|\bsk_live_|\bglpat-", re.IGNORECASE)


def _recursive_search(args: tuple[str, ...]) -> bool:
    """grep -r/-R (also inside a cluster such as -rEo), or rg, which searches directories by default."""
    return args[0].rsplit("/", 1)[-1] == "rg" or "--recursive" in args or any(
        a[:1] == "-" and a[1:2] != "-" and ("r" in a or "R" in a) for a in args[1:])


# Where databases keep their accounts' password hashes: a query naming them is a hash dump, not an app's query.
_DATABASE_PASSWORDS = re.compile(r"\bmysql\.user\b.{0,200}|\bauthentication_string\b|\bpg_shadow\b|\bpg_authid\b|"
                                 r"\brolpassword\b|\bsystem\.users\b", re.IGNORECASE)
# A Kubernetes API path to secrets' values, asked for by hand (kubectl's own reads are `_kubectl`'s).
_KUBE_SECRETS_PATH = re.compile(r"/api/v1/(?:namespaces/[\w.-]{1,63}/)?secrets\b")


def _stored_credentials(command: Command) -> list[Evidence]:
    """Credentials taken from where services keep them: a database's own password hashes, a cluster's secrets
    through its API by hand, a desktop keyring."""
    program, text = command.program, " ".join(command.args[1:])[:MAX_OPERAND * 4]
    if program in _SQL_CLIENTS and _DATABASE_PASSWORDS.search(text):
        return [Evidence(0.45, f"{program} reads the database's password hashes", "T1555", CREDENTIAL_ACCESS)]
    if program in DOWNLOADERS and "secrets" in text and _KUBE_SECRETS_PATH.search(text):
        return [Evidence(0.45, f"{program} reads secrets from the Kubernetes API", "T1552.007", CREDENTIAL_ACCESS)]
    if program == "secret-tool" and {"search", "lookup"} & set(command.args[1:3]):
        return [Evidence(0.35, "secret-tool reads passwords from the keyring", "T1555", CREDENTIAL_ACCESS)]
    return []


# Which checks can say anything about a program: most commands meet only the checks every command meets.
_CHECKS_BY_PROGRAM: dict[str, tuple[Callable[[Command], list[Evidence]], ...]] = {}
for _check, _programs in (
    (_accounts, ("useradd", "adduser", "newusers", "usermod", "gpasswd", "addgroup", "chpasswd", "passwd",
                 "userdel", "deluser", "groupdel", "groupadd", "vipw", "vigr", "visudo")),
    (_scheduling, ("crontab", "at", "batch", "systemd-run", "systemctl", "update-rc.d", "chkconfig", "rc-update")),
    (_defenses, ("systemctl", "service", "update-rc.d", "chkconfig", "rc-service", "invoke-rc.d", "kill", "pkill",
                 "killall", "setenforce", "aa-disable", "aa-complain", "aa-teardown", "apparmor_parser", "auditctl",
                 "iptables", "ip6tables", "iptables-legacy", "iptables-nft", "ufw", "nft", "journalctl", "sysctl",
                 "pgrep", "pidof")),
    (_permissions, ("chmod", "chown", "chgrp", "chattr", "setcap", "touch", "setfacl")),
    (_kernel_modules, ("insmod", "modprobe", "rmmod")),
    (_transfers, tuple(DOWNLOADERS)),
    (_network_tools, (*NETCATS, "socat", "ssh", "scp", "rsync", "sftp", "smbclient", "telnet", "finger", "whois",
                      "openssl", "git")),
    (_collection, ("zip", "7z", "7za", "gpg", "openssl", "tar", "rar", "base64", "base32", "basenc", "xxd",
                   "uuencode", *_DUMPERS, *_SQL_CLIENTS, *_FILE_ENCRYPTERS)),
    (_impact, ("rm", "dd", "shred", "wipefs", "blkdiscard", "sgdisk", "sfdisk", "mkfs", "shutdown", "reboot", "halt",
               "poweroff", "init", "telinit", "systemctl",
               "find")),
    (_escapes_and_injection, ("nsenter", "docker", "podman", "nerdctl", "ctr", "gdb", "pyrasite", "strace", "mount",
                              "debugfs", "openssl")),
    (_discovery, (*_DISCOVERY, "cat", "head", "tail", "less", "more", "grep", "egrep", "rg", "awk", "cut", "find",
                  "sudo", "which", "command", "type", "whereis")),
    (_remote_services, (*DOWNLOADERS, *_ADDRESS_PROBES, "dig", "nslookup", "host", "drill", "openssl", "aws",
                        "gcloud", "az", "gsutil", "vault", "kubectl", "rclone")),
    (_hiding, ("trap", "shred", "srm", "wipe", "mkdir", "touch", "mv", "cp")),
    (_compiling, ("gcc", "cc", "clang", "tcc", "g++", "go", "rustc")),
    (_capsh, ("capsh",)),
    (_git_settings, ("git",)),
    (_staged_packages, ("pip", "pip3", "npm", "gem", "pipx", "dpkg", "rpm", "apt", "apt-get", "yum", "dnf", "zypper")),
    (_log_lines_removed, ("sed",)),
    (_container_images, ("docker", "podman", "nerdctl", "kubectl")),
    (_containers_removed, ("docker", "podman", "nerdctl")),
    (_stored_credentials, (*_SQL_CLIENTS, *DOWNLOADERS, "secret-tool")),
    (_system_containers, ("lxc", "incus")),
    (_module_builds, ("make",)),
    (_account_calls, ("dbus-send", "gdbus", "busctl", "qdbus")),
    (_password_prompts, ("read",)),
    (_sshd_by_hand, ("sshd",)),
    (_sudoedit_overflow, ("sudoedit",)),
    (_remote_display, ("xterm", "uxterm", "rxvt", "urxvt", "xfce4-terminal", "gnome-terminal", "konsole")),
):
    for _program in dict.fromkeys(_programs):  # a program named twice (curl: downloader, address probe) checked once
        _CHECKS_BY_PROGRAM[_program] = (*_CHECKS_BY_PROGRAM.get(_program, ()), _check)
_FILE_PROGRAMS = frozenset({*_CONTENT_READERS, *_COPIERS, *_DELETERS, *DOWNLOADERS, "tee", "sed", "touch",
                            "truncate", "chattr", "openssl", ":", "true", "echo", "printf", "debugfs"})


def _renamed(wrapped: Command) -> list[Evidence]:
    """`exec -a '/usr/sbin/cron -f' /var/tmp/.c/c`: a program started under a name of the caller's choosing, which
    is what ps then shows (admins have no use for it; a dropper hides behind a daemon's name)."""
    args = wrapped.args
    for i, arg in enumerate(args[:6]):
        if arg == "exec" and i + 2 < len(args) and args[i + 1] == "-a":
            return [Evidence(0.5, f"exec -a starts a program under another name ({args[i + 2][:60]})", "T1036",
                             DEFENSE_EVASION)]
    return []


def _through_the_loader(wrapped: Command, runs: Command) -> list[Evidence]:
    """`/lib64/ld-linux-x86-64.so.2 /tmp/.bin`: the dynamic loader runs a file itself, so a mount's noexec and
    the file's missing execute bit do not stop it. `ldd` runs it on system programs: those are routine."""
    if is_dynamic_loader(wrapped.program) and path_class(runs.args[0]) != "system":
        return [Evidence(0.45, f"the dynamic loader runs {runs.args[0][:80]} directly (past noexec and file modes)",
                         "T1218", DEFENSE_EVASION)]
    return []


def _runs_from_hideout(command: Command) -> list[Evidence]:
    """A program run from a temp or shared-memory place (inside a script, or behind nohup and the like; the
    exec itself is judged on its path by scoring/heuristics.py)."""
    path = command.args[0]
    if path_class(path) in ("tmp", "shm", "dev"):
        return [Evidence(0.5, f"runs a program from a temp directory ({path[:80]})", "T1204.002", "execution")]
    return []


def _every_command(command: Command) -> list[Evidence]:
    """What any program can do: touch sensitive files, hide in history or names, be a known tool, preload."""
    found = _tools(command) + _masquerading(command)
    program = command.program
    joined = " ".join(command.args)[:MAX_OPERAND * 8]
    if command.redirects or program in _FILE_PROGRAMS or "if=" in joined or "of=" in joined:
        found += _file_effects(command)
    if "HIST" in joined or "history" in joined:
        found += _history_tampering(command)
    if program in ("echo", "printf") and command.writes_to():
        found += _written_code(command)
    if ("LD_PRELOAD=" in joined or "GCONV_PATH" in joined) and program not in _CHECKS_BY_PROGRAM:
        found += _escapes_and_injection(command)
    if "PATH=" in joined and program not in _CHECKS_BY_PROGRAM:
        found += _hiding(command)
    if "(){" in joined and ":(){" in joined.replace(" ", ""):
        found.append(Evidence(0.6, "fork bomb", "T1499", IMPACT))
    return found


@lru_cache(maxsize=1 << 13)
def assess_command(command: Command, exec_itself: bool = False) -> tuple[Evidence, ...]:
    """All knowledge evidence about one command (wrappers removed), strongest first. `exec_itself`: the
    command is the exec being judged, whose own path scoring/heuristics.py weighs (build tools included)."""
    wrapped = command
    command = unwrap(command)
    if not command.args:
        return ()
    found = _every_command(command)
    if command is not wrapped and any(v in " ".join(wrapped.args)[:MAX_OPERAND * 8] for v in ("LD_PRELOAD=",
                                                                                           "GCONV_PATH")):
        found += _escapes_and_injection(wrapped)  # `env LD_PRELOAD=/tmp/x.so ls`: unwrapping drops the assignment
    if command is not wrapped:
        found += _renamed(wrapped) + _through_the_loader(wrapped, command)
        if wrapped.program == "systemd-run":  # what it runs is judged below; how (a timer) is its own
            found += _scheduling(wrapped)
    if not exec_itself or command is not wrapped:
        found += _runs_from_hideout(command)
    program = command.program
    checks = _CHECKS_BY_PROGRAM.get("mkfs" if program.startswith("mkfs") else program, ())
    for check in checks:
        found.extend(check(command))
    for inner in _find_actions(command):
        found.extend(assess_command(inner))
    found.sort(key=lambda e: -e.weight)
    return tuple(found)


_FIND_ACTIONS = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def _find_actions(command: Command) -> tuple[Command, ...]:
    """The commands find runs on what it finds (`-exec CMD {} ;`): each is judged as if typed, since
    `find /srv -type f -exec openssl enc ... ;` encrypts as much as a loop does."""
    if command.program != "find":
        return ()
    actions: list[Command] = []
    args = command.args
    # Not narrowed by age or size, `{}` is every file below where find starts (of a name, if one is given):
    # `-exec truncate -s 0 {}` in /var/log empties every log, as `truncate -s 0 /var/log/*` would, and `-delete`
    # with `-name '*.log'` deletes them as `rm /var/log/*.log` would.
    start = next(itertools.takewhile(lambda a: not a.startswith(("-", "(", "!")), args[1:2]), "")
    tests, names = _FIND_TESTS & set(args), option_values(command, ("-name", "-iname"))
    every = "{}"
    if start.startswith("/") and not tests:
        every = start.rstrip("/") + "/*"
    elif start.startswith("/") and tests <= {"-name", "-iname"} and len(names) == 1:
        every = start.rstrip("/") + "/" + names[0].strip("'\"")
    for i, arg in enumerate(args):
        if arg in _FIND_ACTIONS:
            inner = list(itertools.takewhile(lambda a: a not in (";", "\\;", "+"), args[i + 1:]))
            if inner:
                actions.append(Command(tuple(every if a == "{}" else a for a in inner)))
    if "-delete" in args and every != "{}":
        actions.append(Command(("rm", every)))
    return tuple(actions[:4])
