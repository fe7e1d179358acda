"""The arguments of ``configure()``, validated once: what a second call is compared with."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal
from urllib.parse import urlsplit

from prodwrap.errors import ConfigurationError

_SIGNAL_PATHS = ("/v1/traces", "/v1/metrics")


def _endpoint(value: str | None) -> str | None:
    """The OTLP/HTTP base URL, without a trailing slash or a signal's path (both are added per signal)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"otlp_endpoint must be a URL such as 'http://localhost:4318', got {value!r}")
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigurationError(
            f"otlp_endpoint must be an http:// or https:// URL such as 'http://localhost:4318' "
            f"(OTLP over HTTP/protobuf), got {value!r}"
        )
    base = value.strip().rstrip("/")
    for path in _SIGNAL_PATHS:
        base = base.removesuffix(path)
    return base


@dataclass(frozen=True, slots=True)
class Settings:
    """What ``configure()`` was asked for (see its docstring for each field)."""

    console: bool | Literal["summary", "raw"] = False
    otlp_endpoint: str | None = None
    prometheus_port: int | None = None
    service_name: str | None = None
    tracing: bool = True
    metrics: bool = True
    export_interval: float | None = None
    prometheus_addr: str = "0.0.0.0"

    def __post_init__(self) -> None:
        if not (isinstance(self.console, bool) or self.console in {"summary", "raw"}):
            raise ConfigurationError(f"console must be True, False, 'summary' or 'raw', got {self.console!r}")
        if self.console == "summary":
            object.__setattr__(self, "console", True)
        object.__setattr__(self, "otlp_endpoint", _endpoint(self.otlp_endpoint))
        port = self.prometheus_port
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
            raise ConfigurationError(
                f"prometheus_port must be a port number from 0 to 65535 (0: any free one), got {port!r}"
            )
        if self.service_name is not None and (not isinstance(self.service_name, str) or not self.service_name.strip()):
            raise ConfigurationError(f"service_name must be a non-empty string, got {self.service_name!r}")
        for name in ("tracing", "metrics"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"{name} must be True or False, got {getattr(self, name)!r}")
        interval = self.export_interval
        if interval is not None and (
            isinstance(interval, bool)
            or not isinstance(interval, int | float)
            or not math.isfinite(interval)
            or interval <= 0
        ):
            raise ConfigurationError(f"export_interval must be a positive number of seconds, got {interval!r}")
        if port is not None and not self.metrics:
            raise ConfigurationError(f"prometheus_port={port} serves metrics, but metrics=False: drop one of them")
        if not isinstance(self.prometheus_addr, str):
            raise ConfigurationError(f"prometheus_addr must be a host address string, got {self.prometheus_addr!r}")

    @property
    def spans_go_somewhere(self) -> bool:
        """A ``TracerProvider`` is worth installing: tracing is on and spans have an exporter."""
        return self.tracing and (bool(self.console) or self.otlp_endpoint is not None)

    @property
    def metrics_go_somewhere(self) -> bool:
        """A ``MeterProvider`` is worth installing: metrics are on and have a reader."""
        return self.metrics and (
            bool(self.console) or self.otlp_endpoint is not None or self.prometheus_port is not None
        )

    def differences(self, other: Settings) -> list[str]:
        """``name=this (configured: other)`` for every setting that differs."""
        return [
            f"{f.name}={getattr(self, f.name)!r} (configured: {getattr(other, f.name)!r})"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]

    def describe(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
