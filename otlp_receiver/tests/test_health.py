"""`/healthz` tells the truth: a dead pipeline worker, a processor stuck on a batch and a full spool make
it answer 503 `unhealthy` naming the problem, and show in `/metrics`; a failing exporter is `degraded`."""

from __future__ import annotations

import threading

import requests

from otlp_receiver.component import LogBatch
from otlp_receiver.receivers.otlp.tests import test_otlp_receiver
from otlp_receiver.receivers.otlp.tests.test_otlp_receiver import PROTOBUF, request_of
from otlp_receiver.service import Service
from testing import wait_until

start_service = test_otlp_receiver.start_service  # the receiver tests' fixture: a Service from their testdata


def health(service: Service) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = requests.get(f"http://{service.http_endpoint()}/healthz", timeout=10)
    return response.status_code, response.json()


def metrics(service: Service) -> str:
    return requests.get(f"http://{service.http_endpoint()}/metrics", timeout=10).text


def test_a_dead_pipeline_worker_is_unhealthy(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    assert health(service)[0] == 200 and 'procsight_pipeline_up{pipeline="logs"} 1' in metrics(service)
    service.pipelines["logs"].drain(0)  # the worker thread ends while the service still accepts records
    status, body = health(service)
    assert status == 503 and body["status"] == "unhealthy"
    assert body["problems"] == ["pipeline logs: the pipeline worker is not running"]
    text = metrics(service)
    assert 'procsight_pipeline_up{pipeline="logs"} 0' in text and "procsight_healthy 0" in text


def test_a_processor_stuck_on_a_batch_is_unhealthy_until_it_finishes(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    pipeline = service.pipelines["logs"]
    pipeline.stuck_after = 0.5
    processor = pipeline.processors[0]
    gate = threading.Event()
    real_process = processor.process

    def hanging(batch: LogBatch) -> LogBatch:  # stands in for a scorer stuck on a hostile record in-process
        gate.wait(30)
        return real_process(batch)

    processor.process = hanging  # type: ignore[method-assign]
    try:
        response = requests.post(f"http://{service.http_endpoint()}/v1/logs",
                                 data=request_of("hostile").SerializeToString(), headers=PROTOBUF, timeout=10)
        assert response.status_code == 200
        wait_until(lambda: health(service)[0] == 503, what="/healthz to see the stuck processor")
        assert "has been on one batch" in health(service)[1]["problems"][0]
        assert 'procsight_pipeline_processing_seconds{pipeline="logs"} 0\n' not in metrics(service)
    finally:
        gate.set()
    wait_until(lambda: health(service)[0] == 200, what="/healthz to recover")
    assert pipeline.spool.uncommitted_entries() == 0


def test_a_full_spool_is_unhealthy(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("tiny_spool.yaml")  # a 1 MiB spool
    big = request_of("y" * 1_200_000).SerializeToString()
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=big, headers=PROTOBUF, timeout=10)
    assert response.status_code == 429
    status, body = health(service)
    assert status == 503 and body["problems"] == ["pipeline logs: the spool is full: new records are refused"]
    assert 'procsight_spool_full{pipeline="logs"} 1' in metrics(service)


def test_a_worker_that_fails_on_a_group_keeps_running_and_says_so(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    pipeline = service.pipelines["logs"]

    def failing(*_args: object) -> None:  # stands in for a bug on some group of records
        raise RuntimeError("a bug")

    pipeline._handle = failing  # type: ignore[method-assign]
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs",
                             data=request_of("x").SerializeToString(), headers=PROTOBUF, timeout=10)
    assert response.status_code == 200
    wait_until(lambda: health(service)[0] == 503, what="/healthz to report the failure")
    assert health(service)[1]["problems"] == [
        "pipeline logs: the worker failed on 1 groups of records, which wait for a restart (see the log)"]
    assert 'procsight_pipeline_up{pipeline="logs"} 1' in metrics(service)  # the worker goes on
