"""Search that understands behaviour: a plain-English query ranked against stored event patterns.

A query is read two ways. Through the ATT&CK lexicon (`attack.py`) it becomes the techniques it means,
each with a weight: "persistence via cron" means T1053.003 above all, other persistence a little. Its
own words are kept for plain matching ("nginx reload"). A pattern (one distinct command line of a
workload and host) is then ranked by

- behaviour: how strongly the techniques it shows are the ones the query means. It shows a technique
  when its evidence names it (`anomaly_techniques`, the `[T…]` of its reasons) or when its command
  line and ancestry carry one of the technique's indicators (`crontab`, `/dev/tcp/`), so an event the
  scoring found unremarkable is still found;
- words: the query's words found in the command, its ancestry and its reasons ("shell spawned by
  nginx" answers "web shell"), weighted by how rare each word is among the patterns;
- meaning (optional, `procsight[neural]`): cosine similarity of sentence embeddings of the query and of
  a descriptive rendering of the pattern (`neural.py`);
- the anomaly score, which scales the match, so among equally good matches the suspicious come first.

What is derived from a pattern (words, indicated techniques, its embedding) is computed once per
distinct pattern and cached, never on the scoring path. A search derives and embeds at most a budget of
patterns it has not seen, the highest-scored first, and says how many it left out (`Ranking`): 180,000
distinct command lines made every search derive each (1.4 ms apiece, then), 240 CPU-s per search.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import numpy as np

from otlp_receiver.query.attack import (
    STOPWORDS,
    TACTICS,
    TECHNIQUES,
    Technique,
    stem,
    tactic_names,
    technique_ids,
    without_technique,
    words,
)
from otlp_receiver.query.neural import SentenceEmbedder
from scoring.commands import MAX_SCRIPT, Command, program_name
from scoring.knowledge import posts_data
from scoring.programs import DOWNLOADERS

# How well a pattern matches: behaviour and words, and with a sentence embedder meaning, which then takes
# NEURAL_SHARE while the others shrink in proportion. The match is then scaled by the anomaly score, so
# that of two equal matches the one to investigate comes first: a score of 0 keeps 1 - SCORE_SHARE of it.
BEHAVIOUR_WEIGHT = 0.65
WORDS_WEIGHT = 0.35
NEURAL_SHARE = 0.25
SCORE_SHARE = 0.5
INDICATED = 0.8  # a technique an indicator shows counts a little less than one the evidence names
TACTIC_FACTOR = 0.5  # a query naming a tactic ("credential access") means each of its techniques this much
MIN_TECHNIQUE = 0.15  # query techniques weaker than this are noise
MIN_RELEVANCE = 0.12  # patterns below this match only if they contain a word of the query
MAX_CACHED = 200_000  # patterns whose derived features (and embeddings) are kept
# New patterns a search derives (about 0.16 ms each) and embeds (about 22 ms each): a search costs a bounded
# amount however many distinct command lines a tenant stored; the rest are ranked by the searches after it.
MAX_DERIVED_PER_SEARCH = 10_000
MAX_EMBEDDED_PER_SEARCH = 64
MIN_FRAGMENT = 3  # each part of a compound query word ("port" + "scan") is a lexicon word this long at least
MIN_PREFIX = 5  # a shortened query word ("exfil") stands for the one lexicon word it starts, from this length
MIN_TYPO = 6  # a query word one letter off a lexicon word stands for it, from this length
MIN_TWO_TYPOS = 9  # and two letters off ("ransomwear"), from this length
SHORT_INDICATOR = 4  # letters up to which an indicator is a word a hyphen continues (rev, w, -p), not a name
NAMED_TOOL = 0.9  # a query naming a tool ("nmap") means what the tool typifies this much


@dataclass
class Pattern:
    """One distinct (workload, host, command line) of the table, with what ranking needs."""

    record_id: str
    workload: str
    host: str
    command_line: str
    executable: str = ""
    parent: str = ""
    ancestors: tuple[str, ...] = ()
    user: str = ""
    reasons: tuple[str, ...] = ()
    techniques: tuple[str, ...] = ()
    score: float = 0.0
    occurrences: int = 1


@dataclass
class Match:
    pattern: Pattern
    relevance: float
    techniques: list[str]  # the query's techniques this pattern shows, strongest first
    words: list[str]  # the query's words found in it
    similarity: float | None = None  # cosine to the query, with a sentence embedder


@dataclass(frozen=True)
class Meaning:
    """What a query asks for: technique id -> weight (0..1), and its own stemmed words."""

    techniques: dict[str, float]
    broader: dict[str, float]  # parent technique id -> the weight of its strongest meant sub-technique
    words: tuple[str, ...]  # stemmed
    spelled: dict[str, str]  # stemmed word -> as the query spelled it


@dataclass
class _Features:
    tokens: frozenset[str]
    shown: dict[str, float] = field(default_factory=dict)  # technique id -> how surely the pattern shows it


@dataclass
class Ranking:
    """A search's matches, and how much of the patterns it ranked: a search derives at most its budget of
    patterns it has not seen before (and embeds at most its budget), so a flood of distinct command lines
    costs each search a bounded amount; the patterns left out are ranked by later searches."""

    matches: list[Match]
    ranked: int  # patterns ranked
    left_out: int  # patterns not ranked: not derived yet, over this search's budget
    unembedded: int = 0  # ranked without similarity: not embedded yet, over this search's budget

    @property
    def complete(self) -> bool:
        return not self.left_out and not self.unembedded


class BehaviourSearch:
    """Ranks patterns for a query. What is derived from a pattern is kept (the least recently used dropped
    beyond MAX_CACHED), and each search derives and embeds at most its budget of new patterns, the
    highest-scored first. Safe to use from several threads: the caches are locked only while read or written."""

    def __init__(self, embedder: SentenceEmbedder | None = None, derive_budget: int = MAX_DERIVED_PER_SEARCH,
                 embed_budget: int = MAX_EMBEDDED_PER_SEARCH) -> None:
        self.embedder = embedder
        self.derive_budget = derive_budget
        self.embed_budget = embed_budget
        self._features: OrderedDict[bytes, _Features] = OrderedDict()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def rank(self, query: str, patterns: Sequence[Pattern], limit: int) -> Ranking:
        meaning = understand(query)
        patterns, features, left_out = self._features_within(patterns)
        # Each pattern's query words, by set intersection: its cost follows the pattern's few tokens, not the
        # query's words (a pasted 4,096-character query has hundreds, times 200,000 patterns).
        wanted = set(meaning.words)
        found_in = [feature.tokens & wanted for feature in features]
        rarity = _rarity(meaning.words, found_in)
        all_words = sum(rarity.values()) or 1.0
        in_query_order = {word: index for index, word in enumerate(meaning.words)}.__getitem__
        similarities, unembedded = self._similarities(query, patterns)
        weights = _weights(similarities is not None)
        matches = []
        for index, (pattern, feature, hits) in enumerate(zip(patterns, features, found_in, strict=True)):
            behaviour, shown = _behaviour(meaning, feature)
            found = sorted(hits, key=in_query_order) if hits else []
            word_part = sum(rarity[word] for word in found) / all_words
            similarity = None if similarities is None or math.isnan(similarities[index]) else \
                float(similarities[index])
            fit = weights[0] * behaviour + weights[1] * word_part
            if similarity is not None:
                fit += weights[2] * max(0.0, similarity)
            if fit < MIN_RELEVANCE and not found:  # a word of the query is always a match
                continue
            relevance = fit * (1.0 - SCORE_SHARE + SCORE_SHARE * pattern.score)
            matches.append(Match(pattern, round(relevance, 4), shown, [meaning.spelled[w] for w in found], similarity))
        matches.sort(key=lambda match: (-match.relevance, -match.pattern.score, match.pattern.command_line))
        return Ranking(matches[:limit], len(patterns), left_out, unembedded)

    def embed_patterns(self, patterns: Sequence[Pattern], most: int | None = None) -> int:
        """Embeds the patterns not embedded yet (in batches), at most `most` of them, the highest-scored first;
        returns how many were new. A no-op without a sentence embedder. Safe to call from a background thread
        while searches run."""
        if self.embedder is None:
            return 0
        by_score = sorted(patterns, key=lambda pattern: -pattern.score)
        with self._lock:
            missing = list(dict.fromkeys(t for t in map(rendering, by_score) if t not in self._vectors))[:most]
        if not missing:
            return 0
        vectors = self.embedder.embed(missing)
        with self._lock:
            for text, vector in zip(missing, vectors, strict=True):
                _remember(self._vectors, text, vector)
        return len(missing)

    def _similarities(self, query: str, patterns: Sequence[Pattern]) -> tuple[np.ndarray | None, int]:
        """Cosine of each pattern to the query (NaN: not embedded within the budget), and how many are NaN."""
        if self.embedder is None:
            return None, 0
        self.embed_patterns(patterns, self.embed_budget)
        query_vector = self.embedder.embed([query])[0]
        with self._lock:
            vectors = [_recall(self._vectors, rendering(p)) for p in patterns]
        unembedded = np.full_like(query_vector, np.nan)
        matrix = np.stack([unembedded if v is None else v for v in vectors]) if vectors else \
            np.zeros((0, len(query_vector)), np.float32)
        return matrix @ query_vector, sum(v is None for v in vectors)

    def _features_within(self, patterns: Sequence[Pattern]) -> tuple[list[Pattern], list[_Features], int]:
        """The patterns this search ranks, with their features: those derived before, and at most `derive_budget`
        more, the highest-scored first (a flood of routine lines must not keep an alert from being ranked);
        and how many were left out."""
        keys = [_key(pattern) for pattern in patterns]
        with self._lock:
            found = [_recall(self._features, key) for key in keys]
        missing = sorted((i for i, feature in enumerate(found) if feature is None), key=lambda i: -patterns[i].score)
        for index in missing[:self.derive_budget]:
            feature = found[index] = _derive(patterns[index])
            with self._lock:
                _remember(self._features, keys[index], feature)
        kept = [index for index, feature in enumerate(found) if feature is not None]
        return [patterns[i] for i in kept], [found[i] for i in kept], len(patterns) - len(kept)  # type: ignore[misc]


def _key(pattern: Pattern) -> bytes:
    """What a pattern's features follow, as a digest: the cache holds 16 bytes per pattern, not its texts
    (a command line alone may be 8,192 characters)."""
    fields = (pattern.command_line, pattern.executable, pattern.parent, pattern.ancestors, pattern.user,
              pattern.reasons, pattern.techniques)
    return hashlib.blake2b(repr(fields).encode(), digest_size=16).digest()


def _recall(cache: OrderedDict, key: Any) -> Any:
    """The cached value (now the most recently used), or None. Call with the cache's lock held."""
    value = cache.get(key)
    if value is not None:
        cache.move_to_end(key)
    return value


def _remember(cache: OrderedDict, key: Any, value: Any) -> None:
    """Caches the value, dropping the least recently used beyond MAX_CACHED. Call with the cache's lock held."""
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > MAX_CACHED:
        cache.popitem(last=False)


def _weights(neural: bool) -> tuple[float, float, float]:
    """(behaviour, words, meaning)."""
    if not neural:
        return BEHAVIOUR_WEIGHT, WORDS_WEIGHT, 0.0
    rest = 1.0 - NEURAL_SHARE
    return BEHAVIOUR_WEIGHT * rest, WORDS_WEIGHT * rest, NEURAL_SHARE


def _behaviour(meaning: Meaning, feature: _Features) -> tuple[float, list[str]]:
    """The best product of what the query means and what the pattern shows, and the techniques matched.
    A shown sub-technique of a meant technique counts 0.8 of it; a shown parent of one, 0.6."""
    scored: dict[str, float] = {}
    for shown, sureness in feature.shown.items():
        wanted = max(meaning.techniques.get(shown, 0.0), 0.8 * meaning.techniques.get(shown.split(".")[0], 0.0)
                     if "." in shown else 0.6 * meaning.broader.get(shown, 0.0))
        if wanted:
            scored[shown] = wanted * sureness
    if not scored:
        return 0.0, []
    ranked = sorted(scored, key=lambda technique: -scored[technique])
    return scored[ranked[0]], ranked


def _rarity(query_words: Sequence[str], found_in: Sequence[frozenset[str]]) -> dict[str, float]:
    """Inverse document frequency of each query word over the patterns, given the query words each pattern
    has (a word in none counts as rarest)."""
    total = len(found_in)
    containing = Counter(word for found in found_in for word in found)
    return {word: math.log(1.0 + (total + 1) / (containing[word] + 1)) for word in query_words}


# -- the query ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def understand(query: str) -> Meaning:
    query = tactic_names(without_exclusions(query))
    spelled = {stem(word): word for word in reversed(_TOKEN.findall(query.lower()))}
    query_words = tuple(dict.fromkeys(words(query)))
    techniques: dict[str, float] = {}
    for technique_id in technique_ids([query]):  # "T1059.004" typed as such
        techniques[technique_id] = 1.0
    for word in spelled.values():  # a tool named in the query ("nmap", "insmod"): what it typifies
        for technique_id in _INDICATOR_WORDS.get(word, ()):
            techniques[technique_id] = NAMED_TOOL
    for technique_id in _quoted_commands(query):
        techniques[technique_id] = NAMED_TOOL
    if query_words:
        # A word the lexicon lacks is read as the lexicon words it stands for, if any, in its place.
        wanted: set[str] = set()
        for word in query_words:
            wanted |= _lexicon_parts(spelled.get(word, word)) or {word}
        matched = {technique.id: _phrase_match(wanted, technique) for technique in TECHNIQUES.values()}
        best = max(matched.values())
        for technique_id, weight in matched.items():
            # What the query says best counts in full; what it also touches, in proportion to how close
            # it comes to that ("privilege escalation through sudo" is about sudo, a little about setuid).
            weight *= weight / best if best else 0.0
            if weight >= MIN_TECHNIQUE:
                techniques[technique_id] = max(weight, techniques.get(technique_id, 0.0))
    broader: dict[str, float] = {}
    for technique_id, weight in techniques.items():
        if "." in technique_id:
            parent = technique_id.split(".")[0]
            broader[parent] = max(weight, broader.get(parent, 0.0))
    return Meaning(techniques, broader, query_words, spelled)


# What a query asks to leave out, to the end of its clause: "..., not the CI pipeline pulling npm packages",
# "don't show me ordinary login shells; ...", "not interested in cron or logs, just show me ...". Its words would
# otherwise be read as what is wanted (cron, package installs).
_EXCLUSION = re.compile(r"\b(?:(?:do not|don'?t|doesn'?t) (?:show|want|care|need|include|mean)|but not|"
                        r"not (?:the|interested|including|counting|any)|(?:please )?(?:skip|ignore|exclude|excluding|"
                        r"leave out|except|other than)\b)[^;.!?]{0,300}?(?=[;.!?]|\bbut\b|\bjust\b|\bonly\b|$)",
                        re.IGNORECASE)


def without_exclusions(query: str) -> str:
    """The query without what it asks to leave out (`_EXCLUSION`); the query itself when that is all it says."""
    kept = _EXCLUSION.sub(" ", query)
    return kept if kept.strip() else query


def _quoted_commands(query: str) -> set[str]:
    """Techniques a command quoted in the query shows by its strong indicators of more than a word (`chmod u+s`,
    `/dev/tcp/`, `pty.spawn`), read as in a command line: a tool's bare name is read by _INDICATOR_WORDS."""
    text = " " + " ".join(query.lower().split()) + " "
    return {technique_id for indicator, technique_ids in _QUOTABLE.items() if _contains(text, indicator)
            for technique_id in technique_ids}


@lru_cache(maxsize=4096)
def _lexicon_parts(word: str) -> frozenset[str]:
    """The lexicon words a query word the lexicon lacks stands for: a compound of two ("cryptominer",
    "portscan", "reverseshell") or the start of one ("exfil"). Empty for a word it knows, and when
    nothing fits exactly."""
    if len(word) > _MAX_COMPOUND or stem(word) in _LEXICON_RARITY or len(word) < MIN_FRAGMENT + 2:
        return frozenset()
    for cut in range(MIN_FRAGMENT, len(word) - MIN_FRAGMENT + 1):
        head, tail = stem(word[:cut]), stem(word[cut:])
        if head in _LEXICON_RARITY and tail in _LEXICON_RARITY:
            return frozenset((head, tail))
    completions = [known for known in _LEXICON_RARITY if known.startswith(word)]
    if len(completions) == 1 and len(word) >= MIN_PREFIX:
        return frozenset(completions)
    return _misspelled(word)


def _misspelled(word: str) -> frozenset[str]:
    """The lexicon word a long query word misspells by one letter (added, dropped, changed or two swapped:
    "exfiltraiton"), or a longer one by two ("ransomwear"), when exactly one fits at the fewest edits."""
    if len(word) < MIN_TYPO:
        return frozenset()
    allowed = 2 if len(word) >= MIN_TWO_TYPOS else 1
    letters = set(word)
    by_edits: dict[int, set[str]] = {}
    for spelling, stemmed in _LEXICON_SPELLINGS.items():
        # An edit adds or removes at most one letter on each side of the two words' letter sets: a cheap
        # bound first, so a query of hundreds of unknown words costs milliseconds, not seconds.
        if abs(len(spelling) - len(word)) > allowed or len(letters ^ set(spelling)) > 2 * allowed:
            continue
        if 0 < (edits := _edits_apart(word, spelling)) <= allowed:
            by_edits.setdefault(edits, set()).add(stemmed)
    fits = by_edits[min(by_edits)] if by_edits else set()
    return frozenset(fits) if len(fits) == 1 else frozenset()


def _edits_apart(one: str, other: str) -> int:
    """Letters added, dropped, changed or swapped with a neighbour to turn one word into the other."""
    previous, before = list(range(len(other) + 1)), []
    for i, a in enumerate(one, start=1):
        current = [i] + [0] * len(other)
        for j, b in enumerate(other, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b))
            if i > 1 and j > 1 and a == other[j - 2] and one[i - 2] == b:
                current[j] = min(current[j], before[j - 2] + 1)
        before, previous = previous, current
    return previous[-1]


def _phrase_match(wanted: set[str], technique: Technique) -> float:
    """How well the query's words say one of the technique's phrases (or its name, or a tactic of it):
    the share of the query's (rarity-weighted) words the phrase covers, times the share of the phrase
    the query covers, softened."""
    best = 0.0
    total = sum(_LEXICON_RARITY.get(word, _UNKNOWN_RARITY) for word in wanted)
    candidates = [(phrase, 1.0) for phrase in _phrase_words(technique)]
    for index, tactic in enumerate(technique.tactics):
        for phrase in _tactic_words(tactic):
            # A query that is just the name of a technique's own (first) tactic ("c2", "persistence") means it in
            # full; a tactic it also serves, or a tactic named among other words, only in part.
            whole = index == 0 and phrase == wanted
            candidates.append((phrase, 1.0 if whole else TACTIC_FACTOR))
    for phrase, factor in candidates:
        overlap = wanted & phrase
        if not overlap:
            continue
        covered = sum(_LEXICON_RARITY.get(word, _UNKNOWN_RARITY) for word in overlap) / total
        best = max(best, factor * covered * math.sqrt(len(overlap) / len(phrase)))
    return best


@cache
def _phrase_words(technique: Technique) -> tuple[frozenset[str], ...]:
    phrases = [technique.name, *technique.phrases]
    return tuple(frozenset(found) for found in (words(phrase) for phrase in phrases) if found)


@cache
def _tactic_words(tactic: str) -> tuple[frozenset[str], ...]:
    """The words of each way to say a tactic (`TACTICS`)."""
    return tuple(frozenset(words(phrase)) for phrase in TACTICS.get(tactic, tactic).split(";") if words(phrase))


def _lexicon_rarity() -> dict[str, float]:
    """How rare each word is among the techniques' phrases: 'cron' says more than 'shell'."""
    documents = [frozenset().union(*_phrase_words(t)) for t in TECHNIQUES.values()]
    documents += [frozenset().union(*_tactic_words(tactic)) for tactic in TACTICS]
    counts: dict[str, int] = {}
    for document in documents:
        for word in document:
            counts[word] = counts.get(word, 0) + 1
    return {word: math.log(1.0 + len(documents) / count) for word, count in counts.items()}


_LEXICON_RARITY = _lexicon_rarity()
_TOKEN = re.compile(r"[a-z0-9]+")
# The lexicon's words as spelled (long enough to tell a misspelling from another word), with their stems.
_LEXICON_SPELLINGS = {word: stem(word) for technique in TECHNIQUES.values()
                      for phrase in (technique.name, *technique.phrases)
                      for word in _TOKEN.findall(phrase.lower()) if len(word) >= MIN_TYPO and word not in STOPWORDS}


def _indicator_words() -> dict[str, tuple[str, ...]]:
    """Tools and files whose name alone says a technique (nmap, insmod, setcap), by name: the strong one-word
    indicators the phrases lack (a phrase word, "exploit", is read through the phrases)."""
    found: dict[str, list[str]] = {}
    for technique in TECHNIQUES.values():
        for indicator, weight in technique.indicators:
            if weight == 1.0 and _TOKEN.fullmatch(indicator) and len(indicator) >= 3 and \
                    stem(indicator) not in _LEXICON_RARITY and indicator not in STOPWORDS:
                found.setdefault(indicator, []).append(technique.id)
    return {word: tuple(ids) for word, ids in found.items()}


_INDICATOR_WORDS = _indicator_words()


def _quotable_indicators() -> dict[str, tuple[str, ...]]:
    """The strong indicators of more than a word or with punctuation (`chmod u+s`, `/dev/tcp/`), by text: what a
    command pasted into a query is read by (a one-word one is in _INDICATOR_WORDS)."""
    found: dict[str, list[str]] = {}
    for technique in TECHNIQUES.values():
        for indicator, weight in technique.indicators:
            if weight == 1.0 and not _TOKEN.fullmatch(indicator) and len(indicator.strip("-~@ /.")) >= 3:
                found.setdefault(indicator, []).append(technique.id)
    return {text: tuple(ids) for text, ids in found.items()}


_QUOTABLE = _quotable_indicators()
_UNKNOWN_RARITY = max(_LEXICON_RARITY.values())
# No longer word is two lexicon words, nor the start of one: the English stemmer takes fewer than 30 letters
# off a word (each of its steps removes one suffix). _lexicon_parts tries every cut, and before this bound a
# query of one 4,096-letter word took 9 s of the receiver's CPU.
_MAX_COMPOUND = 2 * (max(map(len, _LEXICON_RARITY)) + 30)


# -- the pattern -------------------------------------------------------------------------------------------

_WORDISH = re.compile(r"[a-z0-9_]")
_IN_WORD = re.compile(r"[a-z0-9_-]")  # what continues a word next to an indicator's word character


# Reasons about an event's surroundings: the other programs they name ("follows 3 other sensitive commands in
# this session (insmod, nmap)") are not what the pattern does, so their words do not match a query.
_CONTEXT_REASONS = ("follows ", "runs below ", "a behaviour this workload has not shown", "seen ",
                    "close to a known pattern", "new on this workload", "nothing like it seen", "no history",
                    "workload in warm-up")


def _derive(pattern: Pattern) -> _Features:
    command = " " + " ".join(pattern.command_line.lower().split()) + " "
    ancestry = " " + " ".join([pattern.parent, *pattern.ancestors, pattern.user]).lower() + " "
    reason_text = " ".join(without_technique(reason) for reason in pattern.reasons
                           if not reason.startswith(_CONTEXT_REASONS)).lower()
    tokens = {stem(token) for token in _TOKEN.findall(" ".join((command, pattern.executable.lower(), ancestry,
                                                                reason_text)))}
    shown: dict[str, float] = {}
    for technique_id in (*pattern.techniques, *technique_ids(pattern.reasons)):
        shown[technique_id] = 1.0
    sends = _sends_data(pattern.command_line)
    possible = _possible(command, _COMMAND_INDICATORS) | _possible(ancestry, _ANCESTRY_INDICATORS)
    for technique in TECHNIQUES.values():
        if technique.id not in possible:
            continue
        if sends and technique.id == INGRESS_TRANSFER:
            continue  # `wget --post-data=...`, `curl -d @-`: a downloader's name, data going the other way
        sureness = INDICATED * max(_strongest(command, technique.all_of or (technique.indicators,)),
                                   _strongest(ancestry, (technique.ancestry,)))
        if sureness > shown.get(technique.id, 0.0):
            shown[technique.id] = sureness
    return _Features(frozenset(tokens), shown)


INGRESS_TRANSFER = "T1105"


def _by_indicator(command: bool) -> dict[str, frozenset[str]]:
    """Each indicator's text -> the techniques it may show, in a command line or (not `command`) an ancestry."""
    found: dict[str, set[str]] = {}
    for technique in TECHNIQUES.values():
        groups = (technique.all_of or (technique.indicators,)) if command else (technique.ancestry,)
        for group in groups:
            for indicator, _weight in group:
                found.setdefault(indicator, set()).add(technique.id)
    return {indicator: frozenset(ids) for indicator, ids in found.items()}


_COMMAND_INDICATORS = _by_indicator(command=True)
_ANCESTRY_INDICATORS = _by_indicator(command=False)


def _possible(text: str, by_indicator: dict[str, frozenset[str]]) -> set[str]:
    """The techniques with an indicator somewhere in `text`, as a substring: only those can be shown. One `in`
    per indicator, where checking every technique's groups as words cost 1.4 ms per pattern."""
    return {technique for indicator, ids in by_indicator.items() if indicator in text for technique in ids}


def _sends_data(command_line: str) -> bool:
    """A downloader named in the command line with options that send data (`wget --post-data=...`, `curl -d @-`,
    also inside `sh -c ...`): a download tool's name, but the data goes the other way."""
    words = tuple(command_line[:MAX_SCRIPT].split())
    return any(program_name(word) in DOWNLOADERS for word in words) and posts_data(Command(words))


def _strongest(text: str, groups: tuple[tuple[tuple[str, float], ...], ...]) -> float:
    """The weakest group's strongest indicator found in `text` (0 when a group has none there)."""
    return min(max((weight for indicator, weight in group if _contains(text, indicator)), default=0.0)
               for group in groups) if any(groups) else 0.0


def _contains(text: str, indicator: str) -> bool:
    """`indicator` in `text` as whole words: a word character at either end of the indicator must not
    continue a word of the text ('nc' is not in 'sync', 'rev' not in 'rev-parse', 'w' not in '-w'; '/tmp/.'
    is in '/tmp/.x', 'clamav' in 'clamav-daemon')."""
    # A hyphen continues a short word (`rev` is not in `rev-parse`), not a name (`clamav` is in `clamav-daemon`).
    joined = _IN_WORD if len(indicator.strip("-~@ ")) <= SHORT_INDICATOR else _WORDISH
    start = text.find(indicator)
    while start >= 0:
        end = start + len(indicator)
        left_ok = not _WORDISH.match(indicator[0]) or not joined.match(text[start - 1])
        right_ok = not _WORDISH.match(indicator[-1]) or end >= len(text) or not joined.match(text[end])
        if left_ok and right_ok:
            return True
        start = text.find(indicator, start + 1)
    return False


def rendering(pattern: Pattern) -> str:
    """A pattern in words, for a sentence embedder: who ran what under whom, and why it stood out."""
    parent = f" started by {pattern.parent}" if pattern.parent else ""
    user = f" as {pattern.user}" if pattern.user else ""
    reasons = "; ".join(without_technique(reason) for reason in pattern.reasons[:4])
    return f"{pattern.executable or 'a process'}{parent}{user}: {pattern.command_line[:300]}" + (
        f". {reasons}" if reasons else "")
