"""Legitimate new activity, as process trees: what a workload does that its baseline has not seen and
that must not alert (new CI steps, certificate renewals, an admin investigating an incident, a planned
change).

Written by hand as realistic process trees (a session or job root, its commands, the pipelines and
children each command really starts), expanded into exec events in the shape of the evaluation files.
bench/detect.py appends them to each chain scenario of their workload to count false alerts on
new-but-legitimate work. They measure; no weight was set from them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Proc:
    command: str
    children: list[Proc | Pipe] = field(default_factory=list)
    uid: int | None = None
    cwd: str | None = None
    path: str | None = None  # executable path when not /usr/bin/<name>
    gap: float = 0.8  # seconds after the previous sibling (think time of a person, step time of a job)


@dataclass
class Pipe:
    """Commands joined by `|` in one shell: siblings started within a millisecond of each other."""

    commands: list[str]
    gap: float = 1.5


@dataclass
class Scenario:
    name: str
    workload: str
    root: Proc
    uid: int
    cwd: str
    root_parent: str = "sshd"


def P(command: str, *children: Proc | Pipe, **kw: Any) -> Proc:
    return Proc(command, list(children), **kw)


def _exe_path(name: str) -> str:
    sbin = {"useradd", "userdel", "usermod", "iptables", "nft", "sshd", "nginx", "ip", "ss", "lsof",
            "tcpdump", "chpasswd", "runuser", "modprobe", "lsmod", "auditctl", "ausearch", "aureport",
            "ufw", "debsums", "service", "fdisk", "blkid", "getcap"}
    if name.startswith("/"):
        return name
    return f"/usr/sbin/{name}" if name in sbin else f"/usr/bin/{name}"


class _Builder:
    def __init__(self, scenario: Scenario, start: float, first_pid: int) -> None:
        self.scenario = scenario
        self.now = start
        self.pid = first_pid
        self.events: list[dict[str, Any]] = []

    def emit(self, command: str, parent_pid: int, parent_name: str, uid: int, cwd: str, path: str | None,
             delay: float) -> tuple[int, str]:
        self.now += delay
        self.pid += 1 + (self.pid % 3)
        args = shlex.split(command)
        exe = path or _exe_path(args[0])
        name = exe.rsplit("/", 1)[-1]
        self.events.append({
            "ts": round(self.now, 6), "host.name": "vm", "workload": self.scenario.workload,
            "process.pid": self.pid, "process.parent_pid": parent_pid, "process.executable.name": name[:15],
            "process.executable.path": exe, "process.command_line": " ".join(args), "process.command_args": args,
            "process.user.id": uid, "process.parent.executable.name": parent_name,
            "process.working_directory": cwd, "label": "benign", "source": f"legit:{self.scenario.name}",
            "technique": None, "scenario": self.scenario.name,
        })
        return self.pid, name[:15]

    def walk(self, node: Proc | Pipe, parent_pid: int, parent_name: str, uid: int, cwd: str) -> None:
        if isinstance(node, Pipe):
            self.now += node.gap
            for i, command in enumerate(node.commands):
                self.emit(command, parent_pid, parent_name, uid, cwd, None, 0.0005 * (i + 1))
            return
        uid = node.uid if node.uid is not None else uid
        cwd = node.cwd or cwd
        pid, name = self.emit(node.command, parent_pid, parent_name, uid, cwd, node.path, node.gap)
        for child in node.children:
            self.walk(child, pid, name, uid, cwd)


def expand(scenario: Scenario, start: float = 1_800_000_000.0, first_pid: int = 40_000) -> list[dict[str, Any]]:
    builder = _Builder(scenario, start, first_pid)
    builder.walk(scenario.root, first_pid - 7, scenario.root_parent, scenario.uid, scenario.cwd)
    return builder.events


# -- the scenarios ----------------------------------------------------------------------------------------

def _admin_investigation() -> Scenario:
    """An admin paged at night: who logged in, what runs, what listens, what changed, then cleans up."""
    return Scenario("admin-investigates-incident", "admin", P(
        "bash",
        P("last -n 20"), P("lastlog"), P("who"), P("w"),
        Pipe(["journalctl -u ssh --since -2h --no-pager", "tail -n 50"]),
        Pipe(["grep -i failed /var/log/auth.log", "tail -n 30"]),
        Pipe(["grep -c Accepted /var/log/auth.log"]),
        Pipe(["ps auxf", "less"]),
        Pipe(["ps -eo pid,ppid,user,lstart,cmd --sort=start_time", "tail -n 40"]),
        P("ss -tnp"), P("ss -tulpn"), P("lsof -i -P -n"),
        P("ls -la /tmp /var/tmp /dev/shm"),
        Pipe(["find / -xdev -type f -mmin -120 -not -path /proc/*", "head -n 100"]),
        P("find / -xdev -perm -4000 -type f"),
        Pipe(["awk -F: $3==0 {print $1} /etc/passwd"]),
        P("cat /etc/passwd"),
        P("crontab -l -u www-data"), P("ls -la /etc/cron.d /etc/cron.daily /var/spool/cron/crontabs"),
        P("systemctl list-timers --all"), P("systemctl list-units --type=service --state=running"),
        P("cat /root/.ssh/authorized_keys"), P("ls -la /home/deploy/.ssh"),
        P("sha256sum /usr/sbin/sshd /usr/bin/sudo"), P("dpkg --verify openssh-server"),
        P("file /tmp/.cache-x"), Pipe(["strings /tmp/.cache-x", "head -n 40"]),
        P("ls -l /proc/31337/exe"), Pipe(["cat /proc/31337/cmdline", "tr \\0 \\040"]),
        P("mkdir -p /root/evidence"), P("cp -a /tmp/.cache-x /root/evidence/"),
        P("tar czf /root/evidence/logs.tgz /var/log/auth.log /var/log/syslog"),
        P("kill -9 31337"), P("rm -f /tmp/.cache-x"),
        P("iptables -L -n -v"), P("tcpdump -nn -c 50 -i any port 4444"),
        P("passwd -l sysupd"), P("usermod -s /usr/sbin/nologin sysupd"),
        P("journalctl --since -30min --no-pager -p warning"),
    ), uid=0, cwd="/root")


def _cert_renewal() -> Scenario:
    """certbot's renewal timer with a deploy hook that installs the certificate for nginx and reloads it."""
    return Scenario("certificate-renewal", "web", P(
        "certbot -q renew --deploy-hook /etc/letsencrypt/renewal-hooks/deploy/nginx.sh",
        P("/bin/sh -c /etc/letsencrypt/renewal-hooks/deploy/nginx.sh", P(
            "/bin/sh /etc/letsencrypt/renewal-hooks/deploy/nginx.sh",
            P("install -m 0644 /etc/letsencrypt/live/example.org/fullchain.pem /etc/nginx/tls/fullchain.pem"),
            P("install -m 0600 /etc/letsencrypt/live/example.org/privkey.pem /etc/nginx/tls/privkey.pem"),
            P("openssl x509 -in /etc/nginx/tls/fullchain.pem -noout -enddate -subject"),
            P("nginx -t", P("nginx -t", gap=0.01)),
            P("systemctl reload nginx"),
            P("logger -t certbot-deploy renewed example.org"),
        ), path="/bin/sh"), path="/usr/bin/certbot",
    ), uid=0, cwd="/", root_parent="systemd")


def _acme_sh_renewal() -> Scenario:
    """acme.sh's cron job: a shell script that talks to the CA with curl and builds keys with openssl."""
    return Scenario("acme-sh-renewal", "web", P(
        "/bin/sh -c \"/root/.acme.sh\"/acme.sh --cron --home \"/root/.acme.sh\" > /dev/null", P(
            "bash /root/.acme.sh/acme.sh --cron --home /root/.acme.sh",
            P("date +%s"), P("openssl version"),
            Pipe(["curl --silent --dump-header /root/.acme.sh/http.header -g https://acme-v02.api.letsencrypt.org/directory",
                  "tr -d \\r\\n"]),
            P("openssl genrsa 2048"),
            P("openssl req -new -sha256 -key /root/.acme.sh/example.org/example.org.key -subj /CN=example.org"),
            Pipe(["openssl dgst -sha256 -binary", "openssl base64 -e", "tr -d \\r\\n="]),
            P("curl --silent -X POST -H Content-Type: application/jose+json --data @/root/.acme.sh/req.json "
              "https://acme-v02.api.letsencrypt.org/acme/new-order"),
            P("cp /root/.acme.sh/example.org/fullchain.cer /etc/nginx/tls/fullchain.pem"),
            P("sh -c systemctl reload nginx", P("systemctl reload nginx")),
            path="/usr/bin/bash"),
        path="/bin/sh"),
        uid=0, cwd="/root", root_parent="cron")


def _ci_new_go_steps() -> Scenario:
    """A CI job that gains a Go service: module download, build, a smoke run of the binary, tests."""
    return Scenario("ci-new-go-steps", "ci", P(
        "bash /opt/jobs/ci_job.sh",
        P("go version"), P("go env GOPATH"),
        P("go mod download", P("git ls-remote -q https://github.com/example/lib", gap=0.2)),
        P("go vet ./...", P("/usr/lib/go-1.19/pkg/tool/linux_amd64/vet -V=full",
                            path="/usr/lib/go-1.19/pkg/tool/linux_amd64/vet")),
        P("go build -o bin/app ./cmd/app",
          P("/usr/lib/go-1.19/pkg/tool/linux_amd64/compile -o /tmp/go-build3391/b001/_pkg_.a -p main",
            path="/usr/lib/go-1.19/pkg/tool/linux_amd64/compile", gap=0.3),
          P("/usr/lib/go-1.19/pkg/tool/linux_amd64/link -o /tmp/go-build3391/b001/exe/a.out",
            path="/usr/lib/go-1.19/pkg/tool/linux_amd64/link", gap=0.5)),
        P("./bin/app --version", path="/srv/work/ci/ws.k2J9aa/repo/bin/app"),
        P("go test -count=1 ./...",
          P("/tmp/go-build1187/b001/app.test -test.paniconexit0 -test.timeout=10m0s -test.count=1",
            path="/tmp/go-build1187/b001/app.test", gap=2.0)),
        P("tar czf app.tgz bin/app"), P("sha256sum app.tgz"),
        P("curl -sSf -u ci:token -T app.tgz https://artifacts.example.org/repository/builds/app.tgz"),
    ), uid=1001, cwd="/srv/work/ci/ws.k2J9aa/repo", root_parent="runuser")


def _ci_new_node_steps() -> Scenario:
    """A CI job that adds a front-end build: npm ci (with an install script), lint, tests, bundle upload."""
    return Scenario("ci-new-node-steps", "ci", P(
        "bash /opt/jobs/ci_job.sh",
        P("node --version"), P("npm --version", path="/usr/bin/npm"),
        P("npm ci --no-audit",
          P("sh -c node install.js", P("node install.js"), path="/bin/sh"),
          P("sh -c husky install", P("node /srv/work/ci/ws.x8P2qd/repo/node_modules/.bin/husky install",
                                     path="/usr/bin/node"), path="/bin/sh"),
          path="/usr/bin/npm"),
        P("npx eslint src", P("node /srv/work/ci/ws.x8P2qd/repo/node_modules/.bin/eslint src", path="/usr/bin/node"),
          path="/usr/bin/npx"),
        P("npm test", P("sh -c jest --ci", P("node node_modules/.bin/jest --ci", path="/usr/bin/node"),
                        path="/bin/sh"), path="/usr/bin/npm"),
        P("npm run build", P("sh -c vite build", P("node node_modules/.bin/vite build", path="/usr/bin/node"),
                             path="/bin/sh"), path="/usr/bin/npm"),
        P("tar czf dist.tgz dist"),
        P("curl -sSf -H Authorization: Bearer ${CI_TOKEN} --upload-file dist.tgz https://artifacts.example.org/web/dist.tgz"),
    ), uid=1001, cwd="/srv/work/ci/ws.x8P2qd/repo", root_parent="runuser")


def _ci_new_tool_install() -> Scenario:
    """A CI step that installs a pinned CLI release into the workspace and uses it."""
    return Scenario("ci-install-tool", "ci", P(
        "bash /opt/jobs/ci_job.sh",
        P("mkdir -p .tools"),
        P("curl -sSfL -o .tools/shellcheck.tar.xz "
          "https://github.com/koalaman/shellcheck/releases/download/v0.9.0/shellcheck-v0.9.0.linux.x86_64.tar.xz"),
        Pipe(["sha256sum .tools/shellcheck.tar.xz",
              "grep -q 700324c6dd0ebea0117591c6cc9d7350d9c7c5c287acbad7630fa17b1d4d9e2f"]),
        P("tar -xJf .tools/shellcheck.tar.xz -C .tools", P("xz -d", gap=0.01)),
        P("./.tools/shellcheck-v0.9.0/shellcheck scripts/deploy.sh scripts/ci.sh",
          path="/srv/work/ci/ws.Tq1o3Z/repo/.tools/shellcheck-v0.9.0/shellcheck"),
        P("python3 -m build --wheel",
          P("/tmp/build-env-v7q2m1aa/bin/python -m pip install setuptools>=68 wheel",
            path="/tmp/build-env-v7q2m1aa/bin/python", gap=1.0),
          P("/tmp/build-env-v7q2m1aa/bin/python "
            "/usr/lib/python3/dist-packages/pyproject_hooks/_in_process/_in_process.py build_wheel /tmp/tmpq0x9",
            path="/tmp/build-env-v7q2m1aa/bin/python", gap=2.0)),
        P("twine check dist/app-1.4.0-py3-none-any.whl", path="/usr/bin/twine"),
    ), uid=1001, cwd="/srv/work/ci/ws.Tq1o3Z/repo", root_parent="runuser")


def _admin_routine_change() -> Scenario:
    """A planned change: add a deploy user with a key, a log rotation tweak, a package update."""
    return Scenario("admin-planned-change", "admin", P(
        "bash",
        P("apt-get update", P("/usr/lib/apt/methods/http", path="/usr/lib/apt/methods/http", gap=0.1)),
        P("apt-get install -y --only-upgrade openssl",
          P("dpkg --status-fd 24 --configure --pending", path="/usr/bin/dpkg", gap=3.0)),
        P("openssl version"),
        P("cp /etc/logrotate.d/nginx /root/nginx.logrotate.bak"),
        P("sed -i s/rotate 14/rotate 30/ /etc/logrotate.d/nginx"),
        P("logrotate -d /etc/logrotate.d/nginx"),
        P("systemctl restart cron"),
        P("df -h"), P("du -sh /var/log"),
    ), uid=0, cwd="/root")


SCENARIOS = (_admin_investigation, _cert_renewal, _acme_sh_renewal, _ci_new_go_steps, _ci_new_node_steps,
             _ci_new_tool_install, _admin_routine_change)


def for_workload(workload: str, after: float) -> list[dict[str, Any]]:
    """The workload's legitimate new activity, timed to start a minute after `after` (epoch seconds)."""
    events: list[dict[str, Any]] = []
    for i, make in enumerate(SCENARIOS):
        scenario = make()
        if scenario.workload == workload:
            events.extend(expand(scenario, start=after + 60 + 5_000 * i, first_pid=40_000 + 1_000 * i))
    return events
