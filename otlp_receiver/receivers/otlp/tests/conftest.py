"""Fixtures of the otlp receiver's tests."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest


@pytest.fixture
def exported(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """Lines the debug exporter logged, i.e. what came out of the pipeline."""
    caplog.set_level(logging.INFO, logger="procsight.debug")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "procsight.debug"]
