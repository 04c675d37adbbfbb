"""Small synthetic workloads for tests: repeated routine commands with varying pids and temp names."""

from __future__ import annotations

from core.event import ProcessEvent


def nginx_restart(pid: int) -> ProcessEvent:
    return ProcessEvent(executable_name="nginx", executable_path="/usr/sbin/nginx",
                        command_line="nginx -g daemon on; master_process on;",
                        command_args=("nginx", "-g", "daemon on; master_process on;"),
                        parent_name="systemd", user_id=0, pid=pid, parent_pid=1)


def web_workload(n: int) -> list[ProcessEvent]:
    """A web server's routine: CGI shells, reloads, log rotation and backups, with varying pids."""
    routine = [
        ("sh", "/usr/bin/sh", ("sh", "-c", "/var/www/cgi-bin/status.sh"), "fcgiwrap", 33),
        ("date", "/usr/bin/date", ("date", "+%s"), "sh", 33),
        ("uptime", "/usr/bin/uptime", ("uptime",), "sh", 33),
        ("gzip", "/usr/bin/gzip", ("gzip", "-9", "/var/log/nginx/access.log.{n}"), "logrotate", 0),
        ("mv", "/usr/bin/mv", ("mv", "/var/log/nginx/access.log", "/var/log/nginx/access.log.{n}"), "logrotate", 0),
        ("tar", "/usr/bin/tar", ("tar", "czf", "/srv/backup/www-{n}.tgz", "/var/www"), "bash", 0),
        ("find", "/usr/bin/find", ("find", "/srv/backup", "-mtime", "+7", "-delete"), "bash", 0),
    ]
    events = []
    for i in range(n):
        name, path, args, parent, uid = routine[i % len(routine)]
        argv = tuple(a.replace("{n}", str(1000 + i)) for a in args)
        events.append(ProcessEvent(executable_name=name, executable_path=path, command_line=" ".join(argv),
                                   command_args=argv, parent_name=parent, user_id=uid, pid=5000 + i,
                                   timestamp=1_000.0 + i))
    events.extend(nginx_restart(pid=7000 + i) for i in range(5))
    return events


def ci_job(run: int) -> list[ProcessEvent]:
    """One CI pipeline run: checkout, venv, install, test, build; temp dirs differ per run."""
    workspace = f"/srv/ci/ws.{run}a8F3kq"
    steps = [
        ("git", ("git", "clone", "-q", "/srv/repos/app.git", workspace)),
        ("python3", ("python3", "-m", "venv", f"{workspace}/.venv")),
        ("pip", ("pip", "install", "-q", "-r", "requirements.txt")),
        ("pytest", ("pytest", "-q", "tests")),
        ("make", ("make", "-j2", "build")),
        ("gcc", ("gcc", "-O2", "-o", "build/app", "src/main.c")),
        ("rm", ("rm", "-rf", workspace)),
    ]
    return [ProcessEvent(executable_name=name, command_line=" ".join(args), command_args=args,
                         parent_name="bash", user_id=1001, pid=3000 + 10 * run + i, timestamp=float(run * 600 + i))
            for i, (name, args) in enumerate(steps)]
