"""configure()'s settings: nonsense is a ConfigurationError naming the setting; what a second call is compared with."""

from __future__ import annotations

from typing import Any

import pytest

import prodwrap as pw
from prodwrap.telemetry._settings import Settings


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"console": "loud"}, "console"),
        ({"console": 1}, "console"),
        ({"otlp_endpoint": "localhost:4318"}, "otlp_endpoint"),
        ({"otlp_endpoint": "grpc://collector:4317"}, "otlp_endpoint"),
        ({"otlp_endpoint": 4318}, "otlp_endpoint"),
        ({"prometheus_port": -1}, "prometheus_port"),
        ({"prometheus_port": 70000}, "prometheus_port"),
        ({"prometheus_port": True}, "prometheus_port"),
        ({"prometheus_port": "9464"}, "prometheus_port"),
        ({"service_name": ""}, "service_name"),
        ({"service_name": "  "}, "service_name"),
        ({"tracing": "yes"}, "tracing"),
        ({"metrics": None}, "metrics"),
        ({"export_interval": 0}, "export_interval"),
        ({"export_interval": float("inf")}, "export_interval"),
        ({"export_interval": True}, "export_interval"),
        ({"prometheus_port": 9464, "metrics": False}, "prometheus_port=9464"),
        ({"prometheus_addr": None}, "prometheus_addr"),
    ],
)
def test_nonsense_names_the_setting(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=named):
        Settings(**kwargs)


def test_configure_validates_before_touching_anything() -> None:
    from opentelemetry import trace

    with pytest.raises(pw.ConfigurationError, match="prometheus_port"):
        pw.telemetry.configure(prometheus_port=-5)
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


@pytest.mark.parametrize(
    "given",
    [
        "http://localhost:4318",
        "http://localhost:4318/",
        " http://localhost:4318/v1/traces",
        "http://localhost:4318/v1/metrics/",
    ],
)
def test_the_otlp_endpoint_is_the_base_url(given: str) -> None:
    assert Settings(otlp_endpoint=given).otlp_endpoint == "http://localhost:4318"


def test_a_path_prefix_of_the_receiver_is_kept() -> None:
    assert Settings(otlp_endpoint="https://gw.example/otlp/").otlp_endpoint == "https://gw.example/otlp"


def test_console_summary_is_console_true() -> None:
    assert Settings(console="summary") == Settings(console=True)
    assert Settings(console="raw") != Settings(console=True)


@pytest.mark.parametrize(
    ("kwargs", "spans", "metrics"),
    [
        ({}, False, False),
        ({"console": True}, True, True),
        ({"console": True, "tracing": False}, False, True),
        ({"console": True, "metrics": False}, True, False),
        ({"otlp_endpoint": "http://h:4318"}, True, True),
        ({"prometheus_port": 0}, False, True),
    ],
)
def test_a_provider_is_wanted_only_where_its_signal_has_somewhere_to_go(
    kwargs: dict[str, Any], spans: bool, metrics: bool
) -> None:
    settings = Settings(**kwargs)
    assert (settings.spans_go_somewhere, settings.metrics_go_somewhere) == (spans, metrics)


def test_differences_name_each_setting_with_both_values() -> None:
    configured = Settings(console=True, prometheus_port=9464)
    asked = Settings(console=True, prometheus_port=9000, service_name="api")
    assert asked.differences(configured) == [
        "prometheus_port=9000 (configured: 9464)",
        "service_name='api' (configured: None)",
    ]
    assert configured.differences(configured) == []
    assert configured.describe()["prometheus_port"] == 9464
