"""``pw.telemetry.configure()``: the one-line OpenTelemetry SDK set-up for scripts, notebooks and the quickstart.

The rest of prodwrap uses the OpenTelemetry API only and never installs a provider; this is
the one place that does, because the user asked for it by calling it::

    telemetry = pw.telemetry.configure(prometheus_port=9464, otlp_endpoint="http://localhost:4318")
    ...
    telemetry.shutdown()  # flushes spans and metrics, stops the /metrics server

It builds an SDK ``TracerProvider`` and ``MeterProvider`` with a ``Resource`` carrying
``service.name`` and installs them as the OTel globals, which every model reads at call
time. The SDK is imported when ``configure()`` runs, never by ``import prodwrap``.

A provider is built only for a signal that has somewhere to go: spans for ``console`` or
``otlp_endpoint``, metrics for those or ``prometheus_port``. ``configure(console=False)``
(the quickstart without its flag) installs nothing, and models then create no spans at all.

OpenTelemetry's globals can be set once per process, so ``configure()`` is idempotent
rather than re-entrant: the same arguments return the same open handle; other arguments,
a call after ``shutdown()``, or a global provider the application installed itself raise
:class:`~prodwrap.errors.ConfigurationError` naming the conflict. Nothing is built or
started when it raises.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace

from prodwrap._log import Throttle, logger
from prodwrap.errors import ConfigurationError
from prodwrap.telemetry._settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["Telemetry", "configure", "default_service_name"]

_log = logger("telemetry")
_faults = Throttle(_log)


class _Process:
    """What configure() did in this process (OpenTelemetry's globals are per process)."""

    __slots__ = ("current", "installed", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current: Telemetry | None = None  # the handle configure() returned last
        self.installed = False  # configure() installed a global provider (one that cannot be replaced)


_PROCESS = _Process()


def default_service_name() -> str:
    """``service.name`` when none is given: ``OTEL_SERVICE_NAME``, else the script's name, else "prodwrap".

    The script's name is the stem of ``sys.argv[0]`` (``python train.py`` -> "train"), or the
    module run with ``python -m pkg`` ("pkg"); ``python -c``, a REPL and a Jupyter kernel have
    none.
    """
    env = os.environ.get("OTEL_SERVICE_NAME", "").strip()
    if env:
        return env
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        name = str(spec.name).removesuffix(".__main__")
    else:
        argv0 = sys.argv[0] if sys.argv else ""
        name = "" if argv0 in {"", "-c", "-"} else Path(argv0).stem
    return "prodwrap" if name in {"", "ipykernel_launcher"} else name


def _is_default_meter_provider(provider: object) -> bool:
    """The API's proxy, which stands in until someone installs a meter provider (the API has no public name for it)."""
    return type(provider).__name__ == "_ProxyMeterProvider"


def _check_conflicts(settings: Settings) -> None:
    current = _PROCESS.current
    if current is not None and not current.closed:
        differ = ", ".join(settings.differences(current.settings))
        raise ConfigurationError(
            f"telemetry is already configured, with other settings ({differ}). OpenTelemetry's global providers "
            "can be set once per process: keep one configure() call, or pass tracer_provider=/meter_provider= "
            "to the models that need other providers"
        )
    if _PROCESS.installed and (settings.spans_go_somewhere or settings.metrics_go_somewhere):
        raise ConfigurationError(
            "telemetry was configured and shut down in this process, and OpenTelemetry's global providers can be "
            "set once per process: configure() once and shut down when the process ends (or pass "
            "tracer_provider=/meter_provider= to the models)"
        )
    if settings.spans_go_somewhere and not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        raise _taken("TracerProvider", trace.get_tracer_provider(), "tracing")
    if settings.metrics_go_somewhere and not _is_default_meter_provider(otel_metrics.get_meter_provider()):
        raise _taken("MeterProvider", otel_metrics.get_meter_provider(), "metrics")


def _taken(kind: str, installed: object, flag: str) -> ConfigurationError:
    return ConfigurationError(
        f"a global {kind} is already installed ({type(installed).__name__}), and OpenTelemetry's globals can be "
        f"set once per process: add exporters to that provider, or call configure({flag}=False)"
    )


def _install(handle: Telemetry) -> None:
    """Set the handle's providers as the globals, and check they took (the API ignores a second set)."""
    if handle.tracer_provider is not None:
        trace.set_tracer_provider(handle.tracer_provider)
        if trace.get_tracer_provider() is not handle.tracer_provider:
            raise _taken("TracerProvider", trace.get_tracer_provider(), "tracing")
    if handle.meter_provider is not None:
        otel_metrics.set_meter_provider(handle.meter_provider)
        if otel_metrics.get_meter_provider() is not handle.meter_provider:
            raise _taken("MeterProvider", otel_metrics.get_meter_provider(), "metrics")


def configure(
    console: bool | Literal["summary", "raw"] = False,
    otlp_endpoint: str | None = None,
    prometheus_port: int | None = None,
    service_name: str | None = None,
    *,
    tracing: bool = True,
    metrics: bool = True,
    export_interval: float | None = None,
    prometheus_addr: str = "0.0.0.0",
) -> Telemetry:
    """Install OpenTelemetry SDK providers as the globals, exporting where asked.

    Args:
        console: ``True`` (or ``"summary"``): a line per finished prediction and a metrics
            summary per export on stdout; ``"raw"``: the SDK's own JSON dump of every span and
            metric. ``False``: nothing on the console.
        otlp_endpoint: the base URL of an OTLP/HTTP receiver (``http://localhost:4318``); spans
            go to ``/v1/traces`` (batched) and metrics to ``/v1/metrics`` every
            ``export_interval``, as protobuf. Needs ``pip install "prodwrap[otlp]"``.
        prometheus_port: serve ``/metrics`` for Prometheus to scrape on this port (0: a free
            port, read it from ``.prometheus_port``). Needs ``pip install "prodwrap[prometheus]"``.
        service_name: ``service.name`` on every span and metric (default
            :func:`default_service_name`: ``OTEL_SERVICE_NAME``, the script's name, "prodwrap").
        tracing: install a ``TracerProvider`` (when spans have somewhere to go).
        metrics: install a ``MeterProvider`` (when metrics have somewhere to go).
        export_interval: seconds between two pushes of metrics to the console and OTLP
            (default: ``OTEL_METRIC_EXPORT_INTERVAL``, else 60 s). Prometheus pulls instead.
        prometheus_addr: the address the ``/metrics`` server listens on (all interfaces by
            default, as a scraper on another host needs; ``"127.0.0.1"`` keeps it local).

    Returns:
        The :class:`Telemetry` handle; the same one for a second call with the same arguments.

    Raises:
        ConfigurationError: a setting makes no sense, an extra is missing, the port cannot be
            bound, or the globals are already taken (by an earlier, different call or by the
            application).
    """
    settings = Settings(
        console=console,
        otlp_endpoint=otlp_endpoint,
        prometheus_port=prometheus_port,
        service_name=service_name,
        tracing=tracing,
        metrics=metrics,
        export_interval=export_interval,
        prometheus_addr=prometheus_addr,
    )
    with _PROCESS.lock:
        current = _PROCESS.current
        if current is not None and not current.closed and current.settings == settings:
            return current
        _check_conflicts(settings)
        handle = Telemetry(settings)
        try:
            _install(handle)
        except BaseException:
            handle.shutdown()
            raise
        finally:
            # A provider may have taken even when the other did not: either way it cannot be replaced.
            _PROCESS.installed = _PROCESS.installed or handle.installed_any()
        _PROCESS.current = handle
    _log.info(
        "telemetry configured for %s: %s",
        handle.service_name,
        handle.destinations() or "no destination, nothing installed",
    )
    return handle


class _Step(NamedTuple):
    """One step of :meth:`Telemetry.shutdown`, running: what it is, its thread, what it raised."""

    what: str
    worker: threading.Thread
    failure: list[BaseException]


class Telemetry:
    """What :func:`configure` set up: the SDK providers and the exporters behind them.

    Attributes:
        settings: the arguments it was configured with.
        service_name: the ``service.name`` resource attribute.
        tracer_provider: the SDK ``TracerProvider`` installed as the global (None: not installed).
        meter_provider: the SDK ``MeterProvider`` installed as the global (None: not installed).
        prometheus_port: the port ``/metrics`` is served on (the bound one for port 0), or None.
        errors: faults met while shutting down (each logged).

    ``shutdown()`` (also ``close()``, and the end of a ``with`` block) flushes what is
    buffered and stops the ``/metrics`` server; it runs at interpreter exit if not called.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service_name = settings.service_name or default_service_name()
        self.tracer_provider: TracerProvider | None = None
        self.meter_provider: MeterProvider | None = None
        self.prometheus_port: int | None = None
        self.errors = 0
        self._closed = False
        self._close_lock = threading.Lock()
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._pushing: list[PeriodicExportingMetricReader] = []  # the metric readers a flush pushes
        if not (settings.spans_go_somewhere or settings.metrics_go_somewhere):
            return  # nothing to export to: nothing built, nothing installed, the SDK not even imported
        from prodwrap.telemetry import _sdk

        for extra, wanted in (("otlp", settings.otlp_endpoint), ("prometheus", settings.prometheus_port is not None)):
            if wanted:
                _sdk.require(extra)
        if settings.prometheus_port is not None:
            self._server, self._server_thread = _sdk.serve_metrics(settings.prometheus_port, settings.prometheus_addr)
            self.prometheus_port = int(self._server.server_address[1])
        try:
            where = _sdk.resource(self.service_name)
            if settings.spans_go_somewhere:
                self.tracer_provider = _sdk.tracer_provider(settings, where)
            if settings.metrics_go_somewhere:
                self.meter_provider, self._pushing = _sdk.meter_provider(settings, where, self.service_name)
        except BaseException:
            self.shutdown()
            raise
        atexit.register(self.shutdown)

    @property
    def closed(self) -> bool:
        return self._closed

    def installed_any(self) -> bool:
        """Whether one of the handle's providers is a global now."""
        return trace.get_tracer_provider() is self.tracer_provider or (
            otel_metrics.get_meter_provider() is self.meter_provider
        )

    @property
    def prometheus_url(self) -> str | None:
        """Where ``/metrics`` answers on this host (None without ``prometheus_port=``)."""
        if self.prometheus_port is None:
            return None
        host = self.settings.prometheus_addr
        host = "localhost" if host in {"", "0.0.0.0", "::"} else (f"[{host}]" if ":" in host else host)
        return f"http://{host}:{self.prometheus_port}/metrics"

    def destinations(self) -> list[str]:
        """Where spans and metrics go, for a person: ``["console", "otlp http://...", "prometheus :9464"]``."""
        found = []
        if self.settings.console:
            found.append("console" if self.settings.console is True else f"console ({self.settings.console})")
        if self.settings.otlp_endpoint is not None:
            found.append(f"otlp {self.settings.otlp_endpoint}")
        if self.prometheus_port is not None:
            found.append(f"prometheus {self.prometheus_url}")
        return found

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Export buffered spans and push metrics (console, OTLP) now; False if an exporter did not finish in time.

        Prometheus is not flushed: it pulls. (Call this rather than ``meter_provider.force_flush()``,
        which also collects for the Prometheus exporter, and the next scrape then shows every
        sample twice.)
        """
        millis = int(timeout * 1000)
        ok = True
        if self.tracer_provider is not None:
            ok = bool(self.tracer_provider.force_flush(millis))
        for reader in self._pushing:
            ok = bool(reader.force_flush(millis)) and ok
        return ok

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the ``/metrics`` server (freeing its port), then flush and shut down both providers.

        The providers shut down at once, side by side, within one budget of ``timeout``
        seconds for every step: an OTLP receiver that hangs costs the exporter's own timeout
        (10 s) once, not once per provider. A step still running at the end of the budget is
        logged and left to its daemon thread, which ends when the SDK's export in flight does.

        Idempotent; never raises (a fault is logged and counted in ``errors``). The providers
        stay installed as the globals, shut down: OpenTelemetry cannot uninstall them.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.shutdown)
        deadline = time.monotonic() + max(0.0, timeout)  # one budget for every step
        if self._server is not None:
            self._wait(self._start("the /metrics server", self._stop_server, deadline), deadline)
        tracer_provider, meter_provider = self.tracer_provider, self.meter_provider
        started = []
        if tracer_provider is not None:
            started.append(self._start("the tracer provider", lambda _: tracer_provider.shutdown(), deadline))
        if meter_provider is not None:
            started.append(
                self._start("the meter provider", lambda t: meter_provider.shutdown(int(t * 1000)), deadline)
            )
        for step in started:
            self._wait(step, deadline)

    close = shutdown

    def _stop_server(self, timeout: float) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._server_thread is not None:
            self._server_thread.join(timeout)

    def _start(self, what: str, step: Callable[[float], object], deadline: float) -> _Step:
        """Start one step of the shutdown on a daemon thread (given the seconds left)."""
        failure: list[BaseException] = []
        left = max(0.0, deadline - time.monotonic())

        def run() -> None:
            try:
                step(left)
            except Exception as exc:
                failure.append(exc)

        worker = threading.Thread(target=run, name=f"prodwrap-shutdown-{what}", daemon=True)
        worker.start()
        return _Step(what, worker, failure)

    def _wait(self, step: _Step, deadline: float) -> None:
        """Wait for ``step`` no later than ``deadline`` (an exporter stuck on a hung receiver
        is left to its thread); a fault or an overrun is counted and logged."""
        step.worker.join(max(0.0, deadline - time.monotonic()))
        if step.worker.is_alive():
            step.failure.append(TimeoutError("still running at the end of the shutdown's timeout"))
        if step.failure:
            self.errors += 1
            _faults.warning(f"shutdown:{step.what}", "shutting down %s failed: %r", step.what, step.failure[0])

    def describe(self) -> dict[str, Any]:
        """The set-up, JSON-able."""
        return {
            "service_name": self.service_name,
            "tracing": self.tracer_provider is not None,
            "metrics": self.meter_provider is not None,
            "destinations": self.destinations(),
            "export_interval": self.settings.export_interval,
            "closed": self._closed,
        }

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ", ".join(self.destinations()) or "nothing installed"
        return f"<Telemetry {self.service_name!r}: {state}>"
