"""The C scanner of volatile values (_volatile.c) gives what tokens.py's _VOLATILE regex gives, on every ASCII
string: on hand-picked corner cases of the regex, on many random strings and on every argument of the
evaluation data. Its output is in pattern keys and stored baselines, so any difference changes behaviour."""

from __future__ import annotations

import json
from collections import Counter
from random import Random

import pytest

from core import semconv
from scoring._volatile import volatile_placeholders
from scoring.tokens import _VOLATILE, _normalise_value, _placeholder
from testing import EVAL_DIR, EVAL_MISSING

EVAL_FILES = ("benign_web", "benign_ci", "benign_admin", "chains_dev", "gtfobins_attacks")
UUID = "abcdefab-abcd-abcd-abcd-abcdefabcdef"


def regex(value: str) -> str:
    return _VOLATILE.sub(_placeholder, value)


# Corner cases of the regex, with what it makes of them where that is not obvious.
TRICKY = {
    "": "",
    UUID: "<uuid>",
    "x" + UUID: "x<uuid>",  # no boundary checks: a uuid can start inside a word
    UUID + "12345678": "<uuid><n>",  # the hex after it has an alnum before it: not <hex>
    UUID + "abcdef12": "<uuid><rand>",  # rand has no lookbehind
    UUID.upper(): "<uuid>",
    UUID[:-1] + "g": None,
    "0x1234": "<rand>",  # too short for hex, but 6 letters and digits
    "0xdeadbeef": "<hex>",
    "0Xdeadbeef": "<hex>",
    "0xdeadbeefg": "<rand>",
    "x0xdeadbeef": "<rand>",
    "-0xdeadbee": "-<rand>",  # 0x and 7 hex digits
    "deadbeef": "<hex>",
    "DEADBEEF": "<hex>",
    "deadbee": "deadbee",  # 7: not hex, and no digit for rand
    "1eadbee": "<rand>",
    "12345678": "<hex>",  # 8 digits are a hex id before they are a number
    "1234567": "<n>",
    "deadbeef12g": "<rand>",
    "g12345678": "<rand>",
    "_12345678_": "_<hex>_",  # _ is not alnum
    "a.12345678": "a.<hex>",
    "1a2": "<n>a<n>",
    "ab1cd": "ab<n>cd",  # a run of 5
    "ab1cde": "<rand>",  # of 6
    "ab1cdef": "<rand>",  # of 7
    "abcdef": "abcdef",
    "123456": "<n>",
    "tmp.abc": "tmp.abc",
    "tmp.abc123": "<rand>",
    "TMP.Abc123": "<rand>",
    "TmP.abc123": "<rand>",
    "xtmp.abc123": "x<rand>",  # the tmp. makes rand match inside a word
    "tmp.tmp.abc123": "tmp.<rand>",
    "tmp.abcdef": "tmp.abcdef",
    "tmp.12345": "tmp.<n>",
    "tmp.x1": "tmp.x<n>",
    "tmp.": "tmp.",
    "/tmp/tmp.892f902bZq": "/tmp/<rand>",
    "/srv/mike/data/file.51750": "/srv/mike/data/file.<n>",
    "--pid=405055": "--pid=<n>",
    "g" * 300: "g" * 300,  # rand looks to the end of the run at every position
    "g" * 300 + "1": "<rand>",
    "a" * 300 + "1" + "a" * 300: "<hex>",
    "a" * 300 + "g1": "<rand>",
    "0x" + "f" * 500: "<hex>",
    ("1-" * 200): "<n>-" * 200,
    UUID * 3 + "-" + UUID: "<uuid><uuid><uuid>-<uuid>",
    "a-" + "f" * 8 + "-" + "9" * 8: "a-<hex>-<hex>",
}


@pytest.mark.parametrize("value", list(TRICKY), ids=lambda v: repr(v[:40]))
def test_corner_cases_give_what_the_regex_gives(value: str) -> None:
    assert volatile_placeholders(value) == regex(value)
    if TRICKY[value] is not None:
        assert regex(value) == TRICKY[value]


def _random_value(random: Random) -> str:
    # Weighted toward what the alternatives turn on: hex digits, x, tmp., dashes and other separators; with
    # whole and nearly whole uuids and 0x prefixes, which single characters would almost never make.
    pieces = ("0123456789" * 3 + "abcdefABCDEF" * 2 + "xXtTmMpP" * 2 + ".-/_=:" * 2 + "ghijklnoqrsuvwyzGKQZ ")
    target = random.randint(0, 40) if random.random() < 0.9 else random.randint(36, 60)  # room for a uuid
    value = ""
    while len(value) < target:
        roll = random.random()
        if roll < 0.04 or (target >= 36 and not value and roll < 0.5):
            value += "".join(random.choice(pieces) for _ in range(random.randint(0, max(target - 36, 0))))
            uuid = "".join(random.choice("0123456789abcdefABCDEF") for _ in range(32))
            uuid = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}"
            cut = random.randrange(len(uuid))
            value += uuid if random.random() < 0.6 else uuid[:cut] + random.choice(pieces) + uuid[cut + 1:]
        elif roll < 0.07:
            value += random.choice(("tmp.", "TMP.", "Tmp.", "0x", "0X"))
        else:
            value += random.choice(pieces)
    return value[:target]


def test_random_strings_give_what_the_regex_gives() -> None:
    random = Random(20261201)
    kinds: Counter[str] = Counter()
    for _ in range(100_000):
        value = _random_value(random)
        expected = regex(value)
        assert volatile_placeholders(value) == expected, value
        kinds.update(kind for kind in ("<uuid>", "<hex>", "<rand>", "<n>") if kind in expected)
        kinds["unchanged"] += expected == value
    # Every alternative was exercised, on thousands of strings.
    assert min(kinds.values()) > 2000, kinds


@pytest.mark.skipif(not EVAL_DIR.is_dir(), reason=EVAL_MISSING)
def test_every_argument_of_the_evaluation_data_gives_what_the_regex_gives() -> None:
    compared = 0
    for name in EVAL_FILES:
        for line in (EVAL_DIR / f"{name}.jsonl").open():
            event = semconv.event_from_attributes(json.loads(line))
            for value in (*event.args, *event.command_line.split()):
                if value.isascii():
                    assert volatile_placeholders(value) == regex(value), value
                    compared += 1
    assert compared > 10_000


def test_other_strings_go_through_the_regex() -> None:
    with pytest.raises(ValueError):
        volatile_placeholders("--pid=\u0664\u0660\u0665")
    with pytest.raises(TypeError):
        volatile_placeholders(b"405")  # type: ignore[arg-type]
    # \d takes every decimal digit, IGNORECASE's [a-z] also the Kelvin sign: the regex decides these.
    assert _normalise_value("--pid=\u0664\u0660\u0665") == ("--pid=<n>",)
    assert _normalise_value("/tmp/abc12\u212a") == ("/tmp/<rand>", "pathclass:tmp")
    assert _normalise_value("/tmp/abc12\u00e9") == ("/tmp/abc<n>\u00e9", "pathclass:tmp")
