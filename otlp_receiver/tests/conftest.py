"""The receiver's `start_service` fixture (a Service from its testdata, stopped after the test) serves
the service-level tests here too."""

from otlp_receiver.receivers.otlp.tests.test_otlp_receiver import start_service  # noqa: F401 - a fixture
