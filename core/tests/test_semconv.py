"""One vocabulary, both directions: an event survives the trip to attributes and back."""

from __future__ import annotations

import json

import pytest

from core import semconv
from core.event import CONNECTION, MAX_ARGS, MAX_COMMAND_LINE, InvalidEvent, ProcessEvent
from core.semconv import event_from_attributes, event_to_attributes

EVENTS = [
    ProcessEvent(executable_name="bash", command_line="bash -c id", command_args=("bash", "-c", "id"),
                 executable_path="/usr/bin/bash", parent_name="nginx", pid=42, parent_pid=7, user_id=33,
                 user_name="www-data", working_directory="/var/www", container_id="c" * 64,
                 command_args_truncated=True, executable_deleted=True),
    ProcessEvent(executable_name="nc", command_line="nc 203.0.113.9 4444", event_name=CONNECTION, pid=9,
                 transport="tcp", local_address="10.0.0.2", local_port=50000, remote_address="203.0.113.9",
                 remote_port=4444, cpu_percent=12.5),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event_name)
def test_an_event_survives_attributes_and_json(event: ProcessEvent) -> None:
    attributes = event_to_attributes(event)
    assert event_from_attributes(attributes) == event
    as_json = json.loads(json.dumps(attributes))  # lists instead of tuples, as a JSONL line has them
    assert event_from_attributes(as_json) == event


def test_empty_fields_are_left_out() -> None:
    attributes = event_to_attributes(ProcessEvent(executable_name="ls", command_line="ls"))
    assert attributes == {semconv.EVENT_NAME: "process.exec", semconv.PROCESS_EXECUTABLE_NAME: "ls",
                          semconv.PROCESS_COMMAND_LINE: "ls"}


def test_reading_accepts_what_senders_send() -> None:
    event = event_from_attributes({"process.command_args": ["/usr/bin/curl", "-s", "x"], "process.pid": "77",
                                   "process.user.id": True, "ts": "1700000000.5", "host.name": "web-1"})
    assert (event.executable_name, event.command_line, event.pid) == ("curl", "/usr/bin/curl -s x", 77)
    assert event.user_id is None and event.timestamp == 1_700_000_000.5 and event.host == "web-1"
    with pytest.raises(InvalidEvent, match=r"process\.executable\.name"):
        event_from_attributes({"process.pid": 5})


def test_an_exec_without_arguments_is_read_as_its_executable() -> None:
    """argc 0 (pwnkit's way to start a program): the event is what ran, not an invalid record."""
    event = event_from_attributes({"process.executable.path": "/dev/shm/.x", "process.command_line": "",
                                   "process.command_args": []})
    assert (event.executable_name, event.command_line, event.command_args) == (".x", "/dev/shm/.x", ())


@pytest.mark.parametrize(("args", "first"), [
    (["sudo"] * 100_000 + ["id"], "sudo"),  # a list, as OTLP arrays and JSON give argv
    (" ".join(["sudo"] * 100_000 + ["id"]), "sudo"),  # a string, split on whitespace
    (["x" * 100_000, "y"], "x" * MAX_COMMAND_LINE),  # few arguments, too many characters
], ids=["many arguments", "a string of many", "long arguments"])
def test_argv_is_bounded_and_flagged_whoever_sent_it(args: list[str] | str, first: str) -> None:
    event = event_from_attributes({"process.executable.name": "sudo", "process.command_args": args,
                                   "process.ancestors": ["sh"] * 100_000})
    assert len(event.command_args) <= MAX_ARGS and sum(map(len, event.command_args)) <= MAX_COMMAND_LINE
    assert len(event.command_line) <= MAX_COMMAND_LINE and len(event.ancestors) == MAX_ARGS
    assert event.command_args_truncated and event.command_args[0] == first


def test_argv_within_the_bounds_is_kept_whole() -> None:
    args = ["a" * 100] * (MAX_COMMAND_LINE // 100)
    event = event_from_attributes({"process.command_args": args})
    assert event.command_args == tuple(args) and event.command_line == " ".join(args)
    assert not event.command_args_truncated


@pytest.mark.parametrize("time", [float("inf"), float("nan"), "1e999", -5, 10**400, 1e300, "soon"])
def test_a_time_that_is_no_time_is_unknown(time: object) -> None:
    """Unknown (0.0): scoring takes the time it sees the event. An infinite one kept a chain open for ever."""
    assert event_from_attributes({"process.command_args": ["ls"], "ts": time}).timestamp == 0.0
