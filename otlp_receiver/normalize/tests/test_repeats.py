"""Repeats of a record normalise from the cache (repeats.py) exactly as the record would in full: checked on
every event of the evaluation data, as the agent sends it, and on keys built from hostile bytes."""

from __future__ import annotations

import json
from random import Random
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core import semconv
from otlp_receiver.normalize import Normalizer
from otlp_receiver.normalize.repeats import record_key
from testing import EVAL_DIR, EVAL_MISSING
from testing.otlp_values import any_value, key_values

AGENT = {"service.name": "procsight-agent", "host.name": "web-1"}
EVAL_FILES = ("benign_web", "benign_ci", "benign_admin", "chains_dev", "gtfobins_attacks")
NOT_ATTRIBUTES = ("ts", "host.name", "workload", "label", "source", "technique", "scenario")


def agent_record(attributes: dict[str, Any], time_ns: int, observed_ns: int) -> LogRecord:
    record = LogRecord(time_unix_nano=time_ns, observed_time_unix_nano=observed_ns, event_name="process.exec",
                       severity_number=9)
    record.body.string_value = str(attributes.get(semconv.PROCESS_COMMAND_LINE, ""))
    record.attributes.extend(key_values(attributes))
    return record


def eval_attributes() -> list[dict[str, Any]]:
    """Every event of the evaluation data, twice: as the agent sends it (core/semconv.py's attributes of the
    event) and with the attributes as the data has them."""
    found = []
    for name in EVAL_FILES:
        for line in (EVAL_DIR / f"{name}.jsonl").open():
            data = json.loads(line)
            found.append(semconv.event_to_attributes(semconv.event_from_attributes(data)))
            found.append({key: value for key, value in data.items() if key not in NOT_ATTRIBUTES and value is not None})
    return found


def twin(attributes: dict[str, Any]) -> dict[str, Any]:
    """The same event from another process at another time: other ids, one of them no id at all."""
    other = dict(attributes)
    if semconv.PROCESS_PID in other:
        other[semconv.PROCESS_PID] = int(other[semconv.PROCESS_PID]) + 7919
    if semconv.PROCESS_PARENT_PID in other:
        other[semconv.PROCESS_PARENT_PID] = -1  # not an id: dropped from the event, kept in the attributes
    return other


@pytest.mark.skipif(not (EVAL_DIR / "gtfobins_attacks.jsonl").exists(), reason=f"NOT CHECKED: {EVAL_MISSING}")
def test_a_repeat_normalises_as_the_record_would_in_full() -> None:
    cached = Normalizer()
    for index, attributes in enumerate(eval_attributes()):
        first = agent_record(attributes, 1_795_000_000_000_000_000 + index, 1_800_000_000_000_000_000)
        repeat = agent_record(twin(attributes), 0, 1_800_000_000_123_456_789 + index)  # no Timestamp: observed
        cached.normalize("default", AGENT, first)
        before = cached.repeats
        from_cache = cached.normalize("default", AGENT, repeat)
        assert cached.repeats == before + 1  # from the cache
        in_full = Normalizer().normalize("default", AGENT, repeat)
        assert from_cache == in_full, attributes
        assert from_cache.event is not None and from_cache.kind == "agent"


def test_what_a_repeat_takes_from_its_own_record() -> None:
    normalizer = Normalizer()
    attributes = {"process.executable.name": "sh", "process.command_line": "sh -c id", "process.pid": 10,
                  "process.parent_pid": 1, "process.user.id": 0}
    normalizer.normalize("default", AGENT, agent_record(attributes, 5_000_000_000, 6_000_000_000))
    event = normalizer.normalize("default", AGENT, agent_record({**attributes, "process.pid": 11},
                                                                7_000_000_000, 8_000_000_000)).event
    assert normalizer.repeats == 1
    assert (event.pid, event.parent_pid, event.timestamp) == (11, 1, 7.0)
    # The resource is part of what is normalised: another host is another event, the host's own name.
    other_host = normalizer.normalize("default", {**AGENT, "host.name": "web-2"}, agent_record(attributes, 1, 1))
    assert normalizer.repeats == 1 and other_host.event.host == "web-2"
    # Each repeat is a new event: the engine writes the ancestry into it.
    again = normalizer.normalize("default", AGENT, agent_record(attributes, 1, 1)).event
    assert again is not event and again.ancestors == ()


def serialized(record: LogRecord) -> bytes:
    return LogRecord.FromString(record.SerializeToString()).SerializeToString()  # upb's canonical bytes


def test_the_key_leaves_out_times_and_ids_only() -> None:
    attributes = {"process.executable.name": "sh", "process.command_line": "sh", "process.pid": 10,
                  "process.parent_pid": 2**40}
    key, pid, parent_pid = record_key(serialized(agent_record(attributes, 1, 2)))
    assert (pid, parent_pid) == (10, 2**40)
    assert record_key(serialized(agent_record({**attributes, "process.pid": 99}, 3, 4)))[0] == key
    assert record_key(serialized(agent_record({**attributes, "process.pid": -5}, 3, 4)))[1] == -5
    without_pid = {key: value for key, value in attributes.items() if key != "process.pid"}
    assert record_key(serialized(agent_record(without_pid, 1, 2)))[0] != key
    assert record_key(serialized(agent_record({**attributes, "process.user.id": 1}, 1, 2)))[0] != key


def test_bytes_that_only_look_like_an_id_stay_in_the_key() -> None:
    # A command line holding the bytes of a pid attribute: text, not a field of the record.
    forged = b"2\x12\n\x0bprocess.pid\x12\x03\x18\x85\x01"
    attributes = {"process.executable.name": "sh", "process.command_line": "sh " + forged.decode("latin-1")}
    key = record_key(serialized(agent_record(attributes, 1, 2)))
    other = {**attributes, "process.command_line": attributes["process.command_line"].replace("\x85", "\x86")}
    assert key is not None and key[1] is None
    assert record_key(serialized(agent_record(other, 1, 2)))[0] != key[0]


@pytest.mark.parametrize("extra", [
    [KeyValue(key="process.pid", value=any_value("10"))],  # an id as text
    [KeyValue(key="process.pid", value=any_value(1)), KeyValue(key="process.pid", value=any_value(2))],  # twice
])
def test_ids_of_another_shape_give_no_key(extra: list[KeyValue]) -> None:
    record = agent_record({"process.executable.name": "sh", "process.command_line": "sh"}, 1, 2)
    record.attributes.extend(extra)
    assert record_key(serialized(record)) is None
    normalizer = Normalizer()
    for _ in range(2):  # normalised in full, every time
        assert normalizer.normalize("default", AGENT, record).kind == "agent"
    assert normalizer.repeats == 0


def test_unknown_fields_and_cut_bytes() -> None:
    record = agent_record({"process.executable.name": "sh", "process.command_line": "sh"}, 1, 2)
    data = serialized(record)
    unknown = b"\xa0\x06\x01"  # field 100, varint 1: what a newer sender's schema might add
    assert record_key(data + unknown)[0] == record_key(data)[0] + unknown
    assert record_key(data[:-3]) is None


def test_every_cut_and_corruption_of_a_record_is_a_key_or_none() -> None:
    # The walk is C (_repeats.c): it must never read past the bytes it is given, whatever they are.
    attributes = {"process.executable.name": "sh", "process.command_line": "sh -c 'id'", "process.pid": 4242,
                  "process.parent_pid": 1, "process.user.id": 0, "process.working_directory": "/srv"}
    data = serialized(agent_record(attributes, 1_795_000_000_000_000_000, 1_800_000_000_000_000_000))
    random = Random(11)
    candidates = [data[:cut] for cut in range(len(data))]
    for _ in range(3000):
        mutated = bytearray(data)
        for _ in range(random.randint(1, 3)):
            mutated[random.randrange(len(mutated))] = random.randrange(256)
        candidates.append(bytes(mutated))
    kinds = {"key": 0, "none": 0}
    for candidate in candidates:
        found = record_key(candidate)
        if found is None:
            kinds["none"] += 1
            continue
        key, pid, parent_pid = found
        assert len(key) <= len(candidate) and all(i is None or isinstance(i, int) for i in (pid, parent_pid))
        kinds["key"] += 1
    assert kinds["key"] > 100 and kinds["none"] > 100, kinds
