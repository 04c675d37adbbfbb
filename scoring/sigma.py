"""A user's own Sigma rules as an optional evidence source for exec events.

`SigmaRules.load(directory)` parses every .yml/.yaml file under a directory with pySigma and keeps the rules
whose log source is `product: linux, category: process_creation`. Each kept rule's postprocessed condition
tree (pySigma has already resolved `1 of x*`/`all of them` and applied the value modifiers) is compiled once
into plain Python predicates; `match(event)` returns one `SigmaMatch` per rule that fires. A rule whose file
does not parse, whose log source is another, or that uses a field or value type this module cannot evaluate
is skipped at load time and reported with its file and the reason, never evaluated half-right.

Semantics (Sigma specification v2 and what SigmaHQ's rules expect):
* strings are matched case-insensitively (`cased` makes them case-sensitive), with `*` and `?` wildcards;
* regular expressions (`re`) are case-sensitive unless `i` is given and unanchored (a search, as the
  SigmaHQ rules written as `CommandLine|re: '-D'` assume); they run on pySigma's policy engine (RE2 by
  default, linear time, so a rule's own regex cannot backtrack catastrophically) and see at most the first
  `REGEX_SCAN_LIMIT` characters of a value;
* wildcard strings are matched by a linear-time segment search, never by a backtracking regex, and a value
  longer than `TEXT_LIMIT` is matched as its head and tail (joined by a NUL), so cost stays bounded;
* a field the event lacks (or has empty) matches nothing, so `not` of it holds; `|exists` tests presence;
* keywords (values without a field) are searched as substrings in every text field.

Field mapping onto the event: `Image` = executable_path (when only the name is known, an endswith-style
pattern is matched on the name), `CommandLine`, `ParentImage` = only the parent's name (endswith-style
patterns such as `*/java` match on the basename; startswith/exact ParentImage rules are skipped),
`ParentCommandLine` = the caller's `parent_command_line`, `User` = user_name (or "root" for uid 0),
`CurrentDirectory` = working_directory, `ProcessId`/`ParentProcessId` = pid/parent_pid.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.filters import SigmaFilter
from sigma.policy import default_policy
from sigma.policy.regex_engine import RegexPattern
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from core.event import ProcessEvent

REGEX_SCAN_LIMIT = 4096  # characters of a value a rule's regular expression may scan
TEXT_LIMIT = 65536  # a longer value is matched as its first and last TEXT_LIMIT / 2 characters
CACHE_LIMIT = 65536  # distinct matched-field tuples remembered; the oldest is dropped beyond this

# Evidence strength of one match, from Sigma's own definition of each level (not tuned to any data):
# informational is for enrichment only ("no case or alerting should be triggered"), low is "notable but
# rarely an incident", medium is "relevant, should be reviewed", high "should trigger an alert", and
# critical is used "only where probability borders certainty".
LEVEL_WEIGHT: dict[str, float] = {
    "informational": 0.0,
    "low": 0.25,
    "medium": 0.5,
    "high": 0.75,
    "critical": 1.0,
}
LEVEL_ORDER = ("informational", "low", "medium", "high", "critical")
UNSET_LEVEL = "low"  # a rule without a level counts as notable, not as an alert
_RANK = {name: i for i, name in enumerate(LEVEL_ORDER)}

_TEXT_FIELDS = ("Image", "CommandLine", "ParentImage", "ParentCommandLine", "User", "CurrentDirectory")
_NUMBER_FIELDS = ("ProcessId", "ParentProcessId")
_FIELDS = {name.lower(): name for name in _TEXT_FIELDS + _NUMBER_FIELDS}
_PATH_FIELDS = ("Image", "ParentImage")  # also matched on the basename when the path is unknown
_NAME = "@name"  # suffix of the basename entry of a path field
_TECHNIQUE = re.compile(r"t\d{4}(?:\.\d{3})?")
_REGEX_ENGINE = default_policy.regex_engine  # what pySigma validated the rules' regexes with
_REGEX_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}


class SigmaRulesError(ValueError):
    """The rules directory is missing or holds no .yml/.yaml file."""


class _Unsupported(Exception):
    """A rule uses something this evaluator does not implement: a countable reason and a detail."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SigmaMatch:
    """One rule that fired on an event: a reason for the verdict."""

    title: str
    level: str
    rule_id: str
    techniques: tuple[str, ...]

    @property
    def weight(self) -> float:
        return level_weight(self.level)


@dataclass(frozen=True, slots=True)
class SkippedRule:
    file: str
    title: str  # empty when the file did not parse
    reason: str  # a short, countable category
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LoadReport:
    directory: str
    files: int
    loaded: int
    skipped: tuple[SkippedRule, ...]
    filters: int = 0  # Sigma meta filters found and applied to the rules they name

    def reasons(self) -> Counter[str]:
        return Counter(s.reason for s in self.skipped)

    def summary(self) -> str:
        lines = [
            f"{self.loaded} rules loaded from {self.files} files in {self.directory} ({self.filters} filters applied),"
            f" {len(self.skipped)} skipped"
        ]
        lines += [f"  {n:4d}  {reason}" for reason, n in self.reasons().most_common()]
        return "\n".join(lines)


def level_weight(level: str) -> float:
    return LEVEL_WEIGHT.get(level, LEVEL_WEIGHT[UNSET_LEVEL])


def level_at_least(level: str, floor: str) -> bool:
    return _RANK.get(level, _RANK[UNSET_LEVEL]) >= _RANK[floor]


# --- the event as Sigma fields ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Values:
    raw: dict[str, str]  # present, non-empty text per field (path fields also as field + "@name")
    low: dict[str, str]  # the same, lowercased
    num: dict[str, int]


def _raw_fields(event: ProcessEvent, parent_command_line: str) -> dict[str, str]:
    name = event.executable_name or event.executable_path.rstrip("/").rsplit("/", 1)[-1]
    user = event.user_name or ("root" if event.user_id == 0 else "")
    pairs = (
        ("Image", event.executable_path),
        ("Image" + _NAME, name),
        ("CommandLine", event.command_line),
        ("ParentImage" + _NAME, event.parent_name),
        ("ParentCommandLine", parent_command_line),
        ("User", user),
        ("CurrentDirectory", event.working_directory),
        ("ProcessId", "" if event.pid is None else str(event.pid)),
        ("ParentProcessId", "" if event.parent_pid is None else str(event.parent_pid)),
    )
    return {key: _clip(value) for key, value in pairs if value}


def _clip(value: str) -> str:
    """Bounds the work on a hostile value; startswith/endswith still see the real ends."""
    if len(value) <= TEXT_LIMIT:
        return value
    half = TEXT_LIMIT // 2
    return value[:half] + "\0" + value[-half:]


def _values(raw: dict[str, str]) -> _Values:
    num = {f: int(raw[f]) for f in _NUMBER_FIELDS if f in raw}
    return _Values(raw, {k: v.lower() for k, v in raw.items()}, num)


# --- wildcard strings --------------------------------------------------------------------------------------

StrTest = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class _Segment:
    """A run of pattern characters between `*`s; `?` matches any one character."""

    text: str
    regex: re.Pattern[str] | None  # set when the segment holds a `?`

    def at(self, s: str, i: int) -> bool:
        if self.regex is None:
            return s.startswith(self.text, i)
        return self.regex.match(s, i) is not None

    def find(self, s: str, start: int, end: int) -> int:
        if self.regex is None:
            return s.find(self.text, start, end)
        found = self.regex.search(s, start, end)
        return -1 if found is None else found.start()


def _segments(parts: list[Any], lower: bool) -> list[_Segment | None]:
    """The pattern as segments, None standing for each `*`."""
    out: list[_Segment | None] = []
    run: list[str | None] = []  # None is `?`

    def flush() -> None:
        if run:
            text = "".join("?" if c is None else c for c in run)
            has_single = any(c is None for c in run)
            regex = re.compile("".join("." if c is None else re.escape(c) for c in run), re.DOTALL)
            out.append(_Segment(text, regex if has_single else None))
            run.clear()

    for part in parts:
        if isinstance(part, str):
            run.extend(part.lower() if lower else part)
        elif part is SpecialChars.WILDCARD_SINGLE:
            run.append(None)
        elif part is SpecialChars.WILDCARD_MULTI:
            flush()
            if not out or out[-1] is not None:
                out.append(None)
        else:
            raise _Unsupported("placeholder (expand) needs a processing pipeline", f"%{part.name}%")
    flush()
    return out


@dataclass(frozen=True, slots=True)
class _Shape:
    """One wildcard pattern, classified so that an OR of many becomes one cheap test."""

    kind: str  # "any", "eq", "start", "end", "in" (all with a literal text) or "glob"
    text: str = ""
    test: StrTest | None = None


def _shape(parts: list[Any], lower: bool) -> _Shape:
    segs = _segments(parts, lower)
    if not segs:
        return _Shape("eq", "")
    if segs == [None]:
        return _Shape("any")
    if all(seg is None or seg.regex is None for seg in segs):
        texts = [seg.text if seg is not None else None for seg in segs]  # None: a `*`
        if len(texts) == 1:
            return _Shape("eq", texts[0] or "")
        if len(texts) == 2:
            return _Shape("end", texts[1] or "") if texts[0] is None else _Shape("start", texts[0])
        if len(texts) == 3 and texts[0] is None and texts[2] is None:
            return _Shape("in", texts[1] or "")
    return _Shape("glob", test=_general_glob(segs))


def _glob(parts: list[Any], lower: bool) -> StrTest:
    return _matcher([_shape(parts, lower)])


def _matcher(shapes: list[_Shape]) -> StrTest:
    """A test for "any of these patterns": a set for equality, tuples for start/end, one loop for contains."""
    if any(s.kind == "any" for s in shapes):
        return lambda s: True
    tests: list[StrTest] = []
    equal = frozenset(s.text for s in shapes if s.kind == "eq")
    starts = tuple(s.text for s in shapes if s.kind == "start")
    ends = tuple(s.text for s in shapes if s.kind == "end")
    inside = tuple(s.text for s in shapes if s.kind == "in")
    if equal:
        tests.append(equal.__contains__)
    if starts:
        tests.append(lambda s: s.startswith(starts))
    if ends:
        tests.append(lambda s: s.endswith(ends))
    if inside:
        tests.append(_contains_any(inside))
    tests += [s.test for s in shapes if s.test is not None]
    return tests[0] if len(tests) == 1 else _first_true(tests)


def _contains_any(texts: tuple[str, ...]) -> StrTest:
    if len(texts) == 1:
        text = texts[0]
        return lambda s: text in s

    def test(s: str) -> bool:
        for text in texts:  # noqa: SIM110 - a plain loop, no generator per call: this is the hot path
            if text in s:
                return True
        return False

    return test


def _first_true(tests: list[StrTest]) -> StrTest:
    def test(s: str) -> bool:
        for t in tests:  # noqa: SIM110 - hot path, as above
            if t(s):
                return True
        return False

    return test


def _general_glob(segs: list[_Segment | None]) -> StrTest:
    """Linear time: anchored head and tail, then each middle segment at its leftmost place."""
    if len(segs) == 1:
        only = segs[0]
        assert only is not None
        return lambda s: len(s) == len(only.text) and only.at(s, 0)
    head, tail = segs[0], segs[-1]
    middles = [seg for seg in segs[1:-1] if seg is not None]

    def test(s: str) -> bool:
        pos, end = 0, len(s)
        if head is not None:
            if not head.at(s, 0):
                return False
            pos = len(head.text)
        if tail is not None:
            end -= len(tail.text)
            if end < pos or not tail.at(s, end):
                return False
        for seg in middles:
            found = seg.find(s, pos, end)
            if found < 0:
                return False
            pos = found + len(seg.text)
        return True

    return test


def _basename_parts(parts: list[Any]) -> list[Any] | None:
    """The part of an endswith-style path pattern that a basename must match; None if it cannot be decided."""
    if not parts or parts[0] is not SpecialChars.WILDCARD_MULTI:
        return None
    for i in range(len(parts) - 1, -1, -1):
        part = parts[i]
        if isinstance(part, str) and "/" in part:
            rest = part.rsplit("/", 1)[1]
            return ([rest] if rest else []) + list(parts[i + 1 :])
    return list(parts)


# --- leaves: one field against one value -------------------------------------------------------------------

Pred = Callable[[_Values], bool]


def _on_text(key: str, test: StrTest, cased: bool) -> Pred:
    if cased:
        return lambda v: (s := v.raw.get(key)) is not None and test(s)
    return lambda v: (s := v.low.get(key)) is not None and test(s)


def _on_path(name: str, full: StrTest, base: StrTest | None, cased: bool) -> Pred:
    on_full = _on_text(name, full, cased)
    if base is None:
        return on_full
    on_base = _on_text(name + _NAME, base, cased)
    return lambda v: on_full(v) if name in v.raw else on_base(v)


def _strings_leaf(name: str, values: list[SigmaString]) -> Pred:
    """Field matches any of these strings (all cased or all not)."""
    cased = isinstance(values[0], SigmaCasedString)
    full = _matcher([_shape(v.s, lower=not cased) for v in values])
    if name not in _PATH_FIELDS:
        return _on_text(name, full, cased)
    base_parts = [_basename_parts(v.s) for v in values]
    if name == "ParentImage" and any(p is None for p in base_parts):
        raise _Unsupported("ParentImage startswith/exact (the event has only the parent's name)")
    decidable = [_shape(p, lower=not cased) for p in base_parts if p is not None]
    return _on_path(name, full, _matcher(decidable) if decidable else None, cased)


def _regex(value: SigmaRegularExpression) -> RegexPattern:
    """Compiled by pySigma's policy engine (RE2 by default: linear time, no catastrophic backtracking)."""
    if any(isinstance(p, Placeholder) for p in value.regexp.s):
        raise _Unsupported("placeholder (expand) needs a processing pipeline", str(value.regexp))
    pattern = str(value.regexp)
    if pattern.startswith(".*") and pattern[2:3] not in ("?", "+", "*", "{"):
        pattern = pattern[2:]  # a leading .* changes nothing in a search, but costs time
    flags = 0
    for flag in value.flags:
        flags |= _REGEX_FLAGS[flag]
    try:
        return _REGEX_ENGINE.compile(pattern, flags)
    except _REGEX_ENGINE.error as error:
        raise _Unsupported(f"regex not accepted by {type(_REGEX_ENGINE).__name__}", f"{pattern}: {error}") from error


def _regex_leaf(name: str, value: SigmaRegularExpression) -> Pred:
    if name == "ParentImage":
        raise _Unsupported("ParentImage regex (the event has only the parent's name)")
    search = _regex(value).search
    return lambda v: (s := v.raw.get(name)) is not None and search(s, 0, REGEX_SCAN_LIMIT) is not None


def _present(name: str) -> Pred:
    if name in _PATH_FIELDS:
        return lambda v: name in v.raw or name + _NAME in v.raw
    return lambda v: name in v.raw


def _number_leaf(name: str, value: SigmaNumber) -> Pred:
    number = value.number
    if name in _NUMBER_FIELDS:
        return lambda v: v.num.get(name) == number
    text = str(number).lower()
    return _on_text(name, lambda s: s == text, cased=False)


_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
}


def _compare_leaf(name: str, value: SigmaCompareExpression) -> Pred:
    if name not in _NUMBER_FIELDS:
        raise _Unsupported(f"numeric comparison on text field {name}")
    op = _COMPARE.get(value.op)
    if op is None:
        if value.op.name != "NEQ":
            raise _Unsupported(f"comparison {value.op.name}")
        number = value.number.number
        return lambda v: name in v.num and v.num[name] != number
    limit = value.number.number
    return lambda v: name in v.num and op(v.num[name], limit)


def _cidr_leaf(name: str, value: SigmaCIDRExpression) -> Pred:
    network = value.network

    def test(s: str) -> bool:
        try:
            return ipaddress.ip_address(s.strip()) in network
        except ValueError:
            return False

    if name in _PATH_FIELDS:
        raise _Unsupported(f"cidr on {name}")
    return _on_text(name, test, cased=True)


def _fieldref_leaf(name: str, value: SigmaFieldReference) -> Pred:
    other = _field(value.field)
    if "ParentImage" in (name, other):
        raise _Unsupported("field reference to ParentImage (the event has only the parent's name)")
    if value.starts_with and value.ends_with:
        rel: Callable[[str, str], bool] = lambda a, b: b in a  # noqa: E731
    elif value.starts_with:
        rel = str.startswith
    elif value.ends_with:
        rel = str.endswith
    else:
        rel = str.__eq__
    return lambda v: name in v.low and other in v.low and rel(v.low[name], v.low[other])


def _field(name: str) -> str:
    canonical = _FIELDS.get(name.lower())
    if canonical is None:
        raise _Unsupported(f"field {name} not on the event")  # counted per field name
    return canonical


def _field_leaf(name: str, value: Any) -> Pred:
    if isinstance(value, SigmaTimestampPart):
        raise _Unsupported("timestamp part modifier")
    if isinstance(value, SigmaExpansion):
        return _any([_field_leaf(name, v) for v in value.values])
    if isinstance(value, SigmaString):
        return _strings_leaf(name, [value])
    if isinstance(value, SigmaRegularExpression):
        return _regex_leaf(name, value)
    if isinstance(value, SigmaNull):
        present = _present(name)
        return lambda v: not present(v)
    if isinstance(value, SigmaExists):
        present, wanted = _present(name), bool(value)
        return lambda v: present(v) is wanted
    if isinstance(value, SigmaCompareExpression):
        return _compare_leaf(name, value)
    if isinstance(value, SigmaNumber):
        if name == "ParentImage":
            raise _Unsupported("number on ParentImage")
        return _number_leaf(name, value)
    if isinstance(value, SigmaCIDRExpression):
        return _cidr_leaf(name, value)
    if isinstance(value, SigmaFieldReference):
        return _fieldref_leaf(name, value)
    raise _Unsupported(f"value type {type(value).__name__}")


_KEYWORD_KEYS = (
    "Image",
    "Image" + _NAME,
    "CommandLine",
    "ParentImage" + _NAME,
    "ParentCommandLine",
    "User",
    "CurrentDirectory",
)


def _keyword_leaf(value: Any) -> Pred:
    """A value without a field: a substring (or regex) search in every text field."""
    if isinstance(value, SigmaExpansion):
        return _any([_keyword_leaf(v) for v in value.values])
    if isinstance(value, SigmaString):
        parts = list(value.s)
        if not parts or parts[0] is not SpecialChars.WILDCARD_MULTI:
            parts.insert(0, SpecialChars.WILDCARD_MULTI)
        if parts[-1] is not SpecialChars.WILDCARD_MULTI:
            parts.append(SpecialChars.WILDCARD_MULTI)
        cased = isinstance(value, SigmaCasedString)
        tests = [_on_text(k, _glob(parts, lower=not cased), cased) for k in _KEYWORD_KEYS]
        return _any(tests)
    if isinstance(value, SigmaRegularExpression):
        search = _regex(value).search
        return lambda v: any(search(v.raw[k], 0, REGEX_SCAN_LIMIT) for k in _KEYWORD_KEYS if k in v.raw)
    raise _Unsupported(f"keyword of type {type(value).__name__}")


# --- the condition tree ------------------------------------------------------------------------------------


def _all(preds: list[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]

    def test(v: _Values) -> bool:
        for p in preds:  # noqa: SIM110 - hot path, as above
            if not p(v):
                return False
        return True

    return test


def _any(preds: list[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]

    def test(v: _Values) -> bool:
        for p in preds:  # noqa: SIM110 - hot path, as above
            if p(v):
                return True
        return False

    return test


def _compile(node: Any, fields: set[str]) -> Pred:
    """A predicate for one node of pySigma's postprocessed condition tree; records the fields it reads."""
    if isinstance(node, ConditionAND):
        return _all([_compile(arg, fields) for arg in node.args])
    if isinstance(node, ConditionOR):
        return _compile_or(node.args, fields)
    if isinstance(node, ConditionNOT):
        inner = _compile(node.args[0], fields)
        return lambda v: not inner(v)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        name = _note_field(node.field, fields)
        if isinstance(node.value, SigmaFieldReference):
            _note_field(node.value.field, fields)
        return _field_leaf(name, node.value)
    if isinstance(node, ConditionValueExpression):
        fields.update(_KEYWORD_KEYS)
        return _keyword_leaf(node.value)
    raise _Unsupported(f"condition node {type(node).__name__}")


def _compile_or(args: list[Any], fields: set[str]) -> Pred:
    """Strings on the same field are merged into one test (tuple endswith, set lookup, one contains loop)."""
    strings: dict[tuple[str, bool], list[SigmaString]] = {}
    preds: list[Pred] = []
    for arg in args:
        if isinstance(arg, ConditionFieldEqualsValueExpression) and isinstance(arg.value, SigmaString):
            key = (_note_field(arg.field, fields), isinstance(arg.value, SigmaCasedString))
            strings.setdefault(key, []).append(arg.value)
        else:
            preds.append(_compile(arg, fields))
    return _any([_strings_leaf(name, values) for (name, _), values in strings.items()] + preds)


def _note_field(name: str, fields: set[str]) -> str:
    canonical = _field(name)
    fields.update((canonical, canonical + _NAME) if canonical in _PATH_FIELDS else (canonical,))
    return canonical


def _image_names(node: Any) -> frozenset[str] | None:
    """Executable names (lowercased) one of which the event must have for the rule to fire; None: any."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _image_name(node)
    if isinstance(node, ConditionOR):
        return _union([_image_names(arg) for arg in node.args])
    if isinstance(node, ConditionAND):
        known = [s for s in map(_image_names, node.args) if s is not None]
        return min(known, key=len) if known else None
    return None


def _union(sets: list[frozenset[str] | None]) -> frozenset[str] | None:
    known = [s for s in sets if s is not None]
    return frozenset().union(*known) if len(known) == len(sets) else None


def _image_name(node: ConditionFieldEqualsValueExpression) -> frozenset[str] | None:
    """`Image|endswith: /dir/name` or `Image: /dir/name` needs the basename `name`."""
    value = node.value
    if _FIELDS.get(node.field.lower()) != "Image" or not isinstance(value, SigmaString):
        return None
    parts = value.s
    if len(parts) == 2 and parts[0] is SpecialChars.WILDCARD_MULTI:
        parts = parts[1:]
    if len(parts) != 1 or not isinstance(parts[0], str) or "/" not in parts[0]:
        return None
    name = parts[0].rsplit("/", 1)[1].lower()
    return frozenset((name,)) if name else None


# --- rules -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    match: SigmaMatch
    test: Pred
    fields: frozenset[str]  # the event fields the rule reads (the cache key is made of these)
    image_names: frozenset[str] | None  # executable names it can fire on; None: any
    order: int = 0


def _techniques(rule: SigmaRule) -> tuple[str, ...]:
    found = [t.name.upper() for t in rule.tags if t.namespace == "attack" and _TECHNIQUE.fullmatch(t.name)]
    return tuple(dict.fromkeys(found))


def _describe(rule: SigmaRule) -> SigmaMatch:
    level = str(rule.level) if rule.level is not None else ""
    return SigmaMatch(rule.title, level, str(rule.id) if rule.id else "", _techniques(rule))


def _compile_rule(rule: SigmaRule, order: int) -> _Rule:
    fields: set[str] = set()
    trees = [condition.parsed for condition in rule.detection.parsed_condition]  # SigmaError: invalid rule
    trees = [tree for tree in trees if tree is not None]
    if not trees:
        raise _Unsupported("empty condition")
    test = _any([_compile(tree, fields) for tree in trees])
    image_names = _union([_image_names(tree) for tree in trees])
    return _Rule(_describe(rule), test, frozenset(fields), image_names, order)


def _file_of(rule: SigmaRule | SigmaCorrelationRule | SigmaFilter) -> str:
    return str(rule.source.path) if rule.source is not None else ""


def _logsource_reason(rule: SigmaRule) -> str | None:
    source = rule.logsource
    if source.product == "linux" and source.category == "process_creation":
        return None
    return f"logsource {source.product or '-'}/{source.category or '-'}/{source.service or '-'}"


def _status_reason(rule: SigmaRule) -> str | None:
    status = str(rule.status) if rule.status is not None else ""
    return f"status {status}" if status in ("deprecated", "unsupported") else None


def _rule_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise SigmaRulesError(f"Sigma rules directory {directory} does not exist or is not a directory")
    files = sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    if not files:
        raise SigmaRulesError(f"no Sigma rule files (.yml/.yaml) under {directory}")
    return files


def _parse_files(
    files: Iterable[Path], skipped: list[SkippedRule]
) -> list[SigmaRule | SigmaCorrelationRule | SigmaFilter]:
    items: list[SigmaRule | SigmaCorrelationRule | SigmaFilter] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            collection = SigmaCollection.from_yaml(
                text, source=SigmaRuleLocation(path), collect_filters=True, resolve_references=False
            )
        except Exception as error:  # a broken file of any kind is reported, never fatal
            skipped.append(SkippedRule(str(path), "", "parse error", f"{type(error).__name__}: {error}"))
            continue
        items.extend(collection.rules)
        items.extend(collection.filters)
    return items


def _apply_filters(items: list[Any], skipped: list[SkippedRule]) -> list[Any]:
    """Sigma filter documents (meta filters) among the files are applied to the rules they name."""
    rules = [item for item in items if not isinstance(item, SigmaFilter)]
    filters = [item for item in items if isinstance(item, SigmaFilter)]
    if not filters:
        return rules
    try:
        return SigmaCollection(rules + filters, resolve_references=False).rules
    except Exception as error:  # a broken filter must not take the rules with it
        for f in filters:
            skipped.append(SkippedRule(_file_of(f), f.title, "filter error", f"{type(error).__name__}: {error}"))
        return rules


def _select(item: Any) -> str | None:
    """Why a parsed item is not evaluated, or None."""
    if isinstance(item, SigmaCorrelationRule):
        return "correlation rule (needs aggregation over events)"
    if not isinstance(item, SigmaRule):
        return f"not a detection rule ({type(item).__name__})"
    return _logsource_reason(item) or _status_reason(item)


# --- the public face ---------------------------------------------------------------------------------------


@dataclass
class SigmaRules:
    """Compiled Linux process_creation Sigma rules with a cache keyed on the fields they read."""

    rules: tuple[_Rule, ...]
    report: LoadReport
    cache_limit: int = CACHE_LIMIT
    _key_fields: tuple[str, ...] = field(init=False)
    _any_image: tuple[_Rule, ...] = field(init=False)  # rules to try on every event
    _by_image: dict[str, tuple[_Rule, ...]] = field(init=False)  # rules to try only for this executable name
    _cache: dict[tuple[str | None, ...], tuple[SigmaMatch, ...]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        used: set[str] = set().union(*(r.fields for r in self.rules))
        self._key_fields = tuple(sorted(used))
        self._any_image = tuple(r for r in self.rules if r.image_names is None)
        by_image: dict[str, list[_Rule]] = {}
        for rule in self.rules:
            for name in rule.image_names or ():
                by_image.setdefault(name, []).append(rule)
        self._by_image = {name: tuple(rules) for name, rules in by_image.items()}

    @classmethod
    def load(cls, directory: Path) -> SigmaRules:
        skipped: list[SkippedRule] = []
        files = _rule_files(Path(directory))
        compiled: list[_Rule] = []
        parsed = _parse_files(files, skipped)
        filters = sum(isinstance(item, SigmaFilter) for item in parsed)
        for item in _apply_filters(parsed, skipped):
            reason, detail = _select(item), ""
            if reason is None:
                try:
                    compiled.append(_compile_rule(item, len(compiled)))
                    continue
                except _Unsupported as error:
                    reason, detail = f"unsupported: {error.reason}", error.detail
                except (SigmaError, re.error) as error:
                    reason, detail = "invalid rule", f"{type(error).__name__}: {error}"
            skipped.append(SkippedRule(_file_of(item), getattr(item, "title", ""), reason, detail))
        report = LoadReport(str(directory), len(files), len(compiled), tuple(skipped), filters)
        return cls(tuple(compiled), report)

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, event: ProcessEvent, parent_command_line: str = "") -> list[SigmaMatch]:
        """The rules that fire on one exec event; `parent_command_line` comes from a chain tracker."""
        raw = _raw_fields(event, parent_command_line)
        key = tuple(raw.get(f) for f in self._key_fields)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._evaluate(raw)
            self._remember(key, hit)
        return list(hit)

    def _remember(self, key: tuple[str | None, ...], hit: tuple[SigmaMatch, ...]) -> None:
        if self.cache_limit <= 0:
            return
        if len(self._cache) >= self.cache_limit:
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):  # another thread got there first
                del self._cache[next(iter(self._cache))]  # the oldest entry
        self._cache[key] = hit

    def _evaluate(self, raw: dict[str, str]) -> tuple[SigmaMatch, ...]:
        values = _values(raw)
        path = values.low.get("Image")
        name = path.rsplit("/", 1)[-1] if path is not None else values.low.get("Image" + _NAME, "")
        fired = [r for r in self._any_image if r.test(values)]
        fired += [r for r in self._by_image.get(name, ()) if r.test(values)]
        fired.sort(key=lambda r: r.order)
        return tuple(r.match for r in fired)

    def clear_cache(self) -> None:
        self._cache.clear()
