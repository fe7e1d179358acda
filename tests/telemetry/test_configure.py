"""pw.telemetry.configure(): globals, idempotency, the Prometheus endpoint, OTLP, the console, missing extras.

Everything that installs OpenTelemetry's globals runs in a fresh interpreter (tests.telemetry.support.run):
the globals are set-once per process and the rest of the suite must not see them.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.telemetry.support import environment, run, script

RECORD = """
from opentelemetry import metrics, trace
from prodwrap.telemetry._buckets import DURATION
meter = metrics.get_meter("prodwrap")
meter.create_counter("prodwrap.predictions", unit="{prediction}").add(3, {"prodwrap.outcome": "ok"})
duration = meter.create_histogram(
    "prodwrap.prediction.duration", unit="s", explicit_bucket_boundaries_advisory=DURATION
)
duration.record(0.003, {"prodwrap.outcome": "ok"})
"""


def last_json(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- Prometheus ---------------------------------------------------------------------------------


def test_prometheus_port_serves_metrics_a_scraper_can_read() -> None:
    done = run(
        script(
            """
        import json, urllib.request
        import prodwrap as pw
        telemetry = pw.telemetry.configure(prometheus_port=0, prometheus_addr="127.0.0.1", service_name="svc")
        """,
            RECORD,
            """
        with urllib.request.urlopen(telemetry.prometheus_url, timeout=10) as response:
            body, kind = response.read().decode(), response.headers["Content-Type"]
        telemetry.shutdown()
        port, url = telemetry.prometheus_port, telemetry.prometheus_url
        print(json.dumps({"body": body, "type": kind, "port": port, "url": url}))
        """,
        )
    )
    got = last_json(done)
    body = str(got["body"])
    assert str(got["type"]).startswith("text/plain")
    assert got["url"] == f"http://127.0.0.1:{got['port']}/metrics" and int(str(got["port"])) > 0
    lines = body.splitlines()

    def sample(prefix: str) -> float:
        (line,) = [line for line in lines if line.startswith(prefix)]
        return float(line.rsplit(" ", 1)[1])

    assert "# TYPE prodwrap_predictions_total counter" in lines
    assert sample("prodwrap_predictions_total{") == 3.0
    assert "# TYPE prodwrap_prediction_duration_seconds histogram" in lines
    # Seconds with prodwrap's boundaries, not the SDK's millisecond defaults (0, 5, 10, 25, ...).
    assert sample('prodwrap_prediction_duration_seconds_bucket{le="0.001"') == 0.0
    assert sample('prodwrap_prediction_duration_seconds_bucket{le="0.005"') == 1.0
    assert sample('prodwrap_prediction_duration_seconds_bucket{le="10.0"') == 1.0
    assert sample("prodwrap_prediction_duration_seconds_sum{") == pytest.approx(0.003)
    les = [line.split('le="')[1].split('"')[0] for line in lines if "_duration_seconds_bucket" in line]
    assert les == ["0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"]
    assert 'service_name="svc"' in next(line for line in lines if line.startswith("target_info{"))


def test_shutdown_stops_the_metrics_server_and_frees_its_port() -> None:
    done = run(
        """
        import json, socket, urllib.error, urllib.request
        import prodwrap as pw
        from prometheus_client import start_http_server

        def bindable(port):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as every server, prometheus_client's too
                try:
                    s.bind(("127.0.0.1", port))
                    s.listen()
                except OSError:
                    return False
                return True

        telemetry = pw.telemetry.configure(prometheus_port=0, prometheus_addr="127.0.0.1")
        port, url = telemetry.prometheus_port, telemetry.prometheus_url
        urllib.request.urlopen(url, timeout=10).read()
        before = bindable(port)
        telemetry.shutdown()
        telemetry.shutdown()  # idempotent
        after = bindable(port)
        try:
            urllib.request.urlopen(url, timeout=10)
            refused = False
        except urllib.error.URLError:
            refused = True
        server, thread = start_http_server(port, addr="127.0.0.1")  # the port is anyone's again
        server.shutdown()
        server.server_close()
        print(json.dumps({"before": before, "after": after, "refused": refused, "closed": telemetry.closed}))
        """
    )
    assert last_json(done) == {"before": False, "after": True, "refused": True, "closed": True}


def test_a_taken_port_is_a_configuration_error_and_leaves_nothing_installed() -> None:
    done = run(
        """
        import json, socket
        import prodwrap as pw
        from opentelemetry import metrics, trace
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            pw.telemetry.configure(console=True, prometheus_port=port, prometheus_addr="127.0.0.1")
        except pw.ConfigurationError as exc:
            message = str(exc)
        taken.close()
        print(json.dumps({
            "message": message,
            "port": port,
            "tracer": type(trace.get_tracer_provider()).__name__,
            "meter": type(metrics.get_meter_provider()).__name__,
        }))
        """
    )
    got = last_json(done)
    assert str(got["message"]).startswith(f"prometheus_port={got['port']}: cannot listen on 127.0.0.1:")
    assert got["tracer"] == "ProxyTracerProvider" and got["meter"] == "_ProxyMeterProvider"


@pytest.mark.parametrize(
    ("blocked", "setting", "extra"),
    [
        ("opentelemetry.exporter.prometheus", "prometheus_port=0", "prometheus"),
        ("prometheus_client", "prometheus_port=0", "prometheus"),
        ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "otlp_endpoint='http://127.0.0.1:9'", "otlp"),
        ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "otlp_endpoint='http://127.0.0.1:9'", "otlp"),
    ],
)
def test_a_missing_extra_says_what_to_install(blocked: str, setting: str, extra: str) -> None:
    done = run(
        f"""
        import json, sys
        sys.modules[{blocked!r}] = None  # as if the extra were not installed
        import prodwrap as pw
        from opentelemetry import trace
        try:
            pw.telemetry.configure({setting})
        except pw.ConfigurationError as exc:
            message = str(exc)
        untouched = type(trace.get_tracer_provider()).__name__
        with pw.telemetry.configure(console=True) as telemetry:  # the failed call left nothing behind
            installed = trace.get_tracer_provider() is telemetry.tracer_provider
        print(json.dumps({{"message": message, "untouched": untouched, "installed": installed}}))
        """
    )
    got = last_json(done)
    assert f'pip install "prodwrap[{extra}]"' in str(got["message"])
    assert blocked in str(got["message"]) and str(got["message"]).startswith(setting.split("=", maxsplit=1)[0] + "=")
    assert got["untouched"] == "ProxyTracerProvider" and got["installed"] is True


# --- OTLP ---------------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A local OTLP/HTTP receiver that records every POST (path, content type, body)."""

    port: int = 0
    posts: list[tuple[str, str, bytes]] = field(default_factory=list)
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    got = Receiver()
    hold = bool(getattr(request, "param", False))  # hold every request until the test releases it
    if not hold:
        got.release.set()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.posts.append((self.path, self.headers["Content-Type"], body))
            got.entered.set()
            got.release.wait(60)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    got.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        got.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_otlp_exports_spans_and_metrics_as_protobuf_over_http(receiver: Receiver) -> None:
    run(
        script(
            f"""
            import prodwrap as pw
            from opentelemetry import trace
            endpoint = "http://127.0.0.1:{receiver.port}/"
            telemetry = pw.telemetry.configure(otlp_endpoint=endpoint, service_name="otlp-svc")
            with trace.get_tracer("prodwrap").start_as_current_span("predict credit-risk"):
                pass
            """,
            RECORD,
            "telemetry.shutdown()  # flushes the batched span and the last metrics",
        )
    )
    paths = sorted(path for path, _, _ in receiver.posts)
    assert paths == ["/v1/metrics", "/v1/traces"]
    assert {kind for _, kind, _ in receiver.posts} == {"application/x-protobuf"}
    bodies = {path: body for path, _, body in receiver.posts}
    spans = ExportTraceServiceRequest.FromString(bodies["/v1/traces"])
    (resource_spans,) = spans.resource_spans
    assert [s.name for ss in resource_spans.scope_spans for s in ss.spans] == ["predict credit-risk"]
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
    assert service == "otlp-svc"
    sent = ExportMetricsServiceRequest.FromString(bodies["/v1/metrics"])
    by_name = {m.name: m for rm in sent.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert by_name["prodwrap.predictions"].sum.data_points[0].as_int == 3
    histogram = by_name["prodwrap.prediction.duration"].histogram.data_points[0]
    assert list(histogram.explicit_bounds) == [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]


@pytest.mark.parametrize("receiver", [True], indirect=True)
def test_a_hanging_otlp_receiver_does_not_hold_up_spans(receiver: Receiver) -> None:
    """While the exporter waits on a receiver that does not answer, spans still end at once."""
    code = f"""
        import sys
        import prodwrap as pw
        from opentelemetry import trace
        telemetry = pw.telemetry.configure(otlp_endpoint="http://127.0.0.1:{receiver.port}", metrics=False)
        tracer = trace.get_tracer("prodwrap")
        for _ in range(600):  # more than one batch (512): the exporter starts a POST now
            tracer.start_span("predict m").end()
        sys.stdin.readline()  # the test says the POST is being held
        for _ in range(1000):
            tracer.start_span("predict m").end()
        print("ended", flush=True)
        sys.stdin.readline()  # released
        telemetry.shutdown()
    """
    child = subprocess.Popen(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert receiver.entered.wait(60), "the exporter never posted"
        child.stdin.write("held\n")
        child.stdin.flush()
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(child.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(60)
        assert line == ["ended\n"], "ending spans waited for the held export"
        assert not receiver.release.is_set()  # still held when they ended
    finally:
        receiver.release.set()
        _, err = child.communicate("go\n", timeout=60)
    assert child.returncode == 0, err


# --- idempotency and conflicts -----------------------------------------------------------------


def test_same_arguments_return_the_same_handle_and_others_name_the_conflict() -> None:
    done = run(
        """
        import json
        import prodwrap as pw
        from opentelemetry import metrics, trace
        first = pw.telemetry.configure(console=True, service_name="x")
        same = pw.telemetry.configure(console="summary", service_name="x") is first
        try:
            pw.telemetry.configure(console=True, service_name="y")
        except pw.ConfigurationError as exc:
            conflict = str(exc)
        globals_ = (trace.get_tracer_provider() is first.tracer_provider,
                    metrics.get_meter_provider() is first.meter_provider)
        with first:
            pass
        try:
            pw.telemetry.configure(console=True, service_name="x")
        except pw.ConfigurationError as exc:
            after = str(exc)
        print(json.dumps({"same": same, "conflict": conflict, "globals": globals_, "closed": first.closed,
                          "after": after}))
        """
    )
    got = last_json(done)
    assert got["same"] is True and got["globals"] == [True, True] and got["closed"] is True
    assert "service_name='y' (configured: 'x')" in str(got["conflict"])
    assert "once per process" in str(got["conflict"])
    assert "shut down" in str(got["after"])


def test_nothing_to_export_installs_nothing() -> None:
    done = run(
        """
        import json, sys
        import prodwrap as pw
        from opentelemetry import trace
        quiet = pw.telemetry.configure()  # the quickstart without --telemetry
        state = {"tracer": quiet.tracer_provider, "meter": quiet.meter_provider,
                 "global": type(trace.get_tracer_provider()).__name__, "sdk": "opentelemetry.sdk" in sys.modules,
                 "repr": repr(quiet)}
        quiet.shutdown()
        later = pw.telemetry.configure(console=True)  # nothing was installed, so this may still install
        state["later"] = trace.get_tracer_provider() is later.tracer_provider
        later.shutdown()
        print(json.dumps(state))
        """
    )
    assert last_json(done) == {
        "tracer": None,
        "meter": None,
        "global": "ProxyTracerProvider",
        "sdk": False,
        "repr": "<Telemetry 'prodwrap': nothing installed>",
        "later": True,
    }


def test_a_provider_the_application_installed_is_not_overridden() -> None:
    done = run(
        """
        import json
        import prodwrap as pw
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.trace import TracerProvider
        own = TracerProvider()
        trace.set_tracer_provider(own)
        try:
            pw.telemetry.configure(console=True)
        except pw.ConfigurationError as exc:
            message = str(exc)
        kept = trace.get_tracer_provider() is own
        telemetry = pw.telemetry.configure(console=True, tracing=False)
        print(json.dumps({"message": message, "kept": kept, "tracer": telemetry.tracer_provider,
                          "meter": metrics.get_meter_provider() is telemetry.meter_provider}))
        telemetry.shutdown()
        """
    )
    got = last_json(done)
    assert "a global TracerProvider is already installed (TracerProvider)" in str(got["message"])
    assert "configure(tracing=False)" in str(got["message"])
    assert got["kept"] is True and got["tracer"] is None and got["meter"] is True


# --- console ------------------------------------------------------------------------------------

CONSOLE_RUN = """
import prodwrap as pw
from opentelemetry import metrics, trace
telemetry = pw.telemetry.configure(console={console!r}, service_name="demo")
tracer = trace.get_tracer("prodwrap")
attrs = {{"prodwrap.model.version": "1.4.0", "prodwrap.outcome": "ok", "prodwrap.served_by": "primary",
         "prodwrap.attempts": 1, "prodwrap.cost.usd": 0.00012}}
with tracer.start_as_current_span("predict credit-risk", attributes=attrs):
    with tracer.start_as_current_span("attempt credit-risk"):
        pass
with tracer.start_as_current_span("handle request"):
    pass
metrics.get_meter("prodwrap").create_counter("prodwrap.predictions").add(2, {{"prodwrap.outcome": "ok"}})
telemetry.force_flush()
print("flushed")
telemetry.shutdown()
"""


def test_console_prints_a_line_per_prediction_and_a_metrics_summary() -> None:
    lines = run(CONSOLE_RUN.format(console=True)).stdout.splitlines()
    flushed = lines.index("flushed")
    head, tail = lines[:flushed], lines[flushed + 1 :]
    (prediction,) = [line for line in head if line.startswith("predict ")]
    assert prediction.startswith("predict credit-risk 1.4.0  ok  ")
    assert "served_by=primary attempts=1 cost=$0.00012  trace=" in prediction
    assert not any("attempt credit-risk" in line or "handle request" in line for line in lines)
    assert head[-2:] == ["metrics for demo:", "  prodwrap.predictions{outcome=ok} 2"]
    assert tail == ["metrics for demo:", "  prodwrap.predictions{outcome=ok} 2"]  # the last export, at shutdown


def test_console_raw_prints_the_sdk_json() -> None:
    out = run(CONSOLE_RUN.format(console="raw")).stdout
    assert '"name": "predict credit-risk"' in out and '"name": "attempt credit-risk"' in out
    assert '"name": "prodwrap.predictions"' in out


def test_metrics_are_pushed_every_export_interval() -> None:
    done = run(
        """
        import sys, threading
        import prodwrap as pw
        from opentelemetry import metrics

        class Watch:
            def __init__(self, out):
                self.out, self.seen = out, threading.Event()
            def write(self, text):
                if "prodwrap.predictions" in text:
                    self.seen.set()
                return self.out.write(text)
            def flush(self):
                self.out.flush()

        sys.stdout = Watch(sys.stdout)
        telemetry = pw.telemetry.configure(console=True, export_interval=0.05)
        metrics.get_meter("prodwrap").create_counter("prodwrap.predictions").add(1)
        print("pushed before shutdown:", sys.stdout.seen.wait(30))
        telemetry.shutdown()
        """
    )
    assert "pushed before shutdown: True" in done.stdout.splitlines()


# --- service name -------------------------------------------------------------------------------

SERVICE = """
import prodwrap as pw
with pw.telemetry.configure(console=True) as telemetry:
    print("service:", telemetry.tracer_provider.resource.attributes["service.name"])
"""


def test_service_name_defaults_to_the_environment_then_the_script_then_prodwrap(tmp_path: Path) -> None:
    def service(done: subprocess.CompletedProcess[str]) -> str:
        return next(line for line in done.stdout.splitlines() if line.startswith("service:")).split(": ", 1)[1]

    script = tmp_path / "train_model.py"
    script.write_text(textwrap.dedent(SERVICE), encoding="utf-8")
    (tmp_path / "scoring").mkdir()
    (tmp_path / "scoring" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "scoring" / "__main__.py").write_text(textwrap.dedent(SERVICE), encoding="utf-8")
    assert service(run(SERVICE)) == "prodwrap"  # python -c
    assert service(run("", args=(str(script),))) == "train_model"
    assert service(run("", args=("-m", "scoring"), cwd=tmp_path)) == "scoring"
    assert service(run("", args=(str(script),), env={"OTEL_SERVICE_NAME": "from-env"})) == "from-env"
    explicit = SERVICE.replace("configure(console=True)", "configure(console=True, service_name='given')")
    assert service(run(explicit, env={"OTEL_SERVICE_NAME": "from-env"})) == "given"


def test_import_prodwrap_telemetry_imports_no_sdk() -> None:
    done = run(
        """
        import sys
        import prodwrap as pw
        assert "prodwrap.telemetry" not in sys.modules  # loaded on first use
        assert pw.telemetry.configure is pw.telemetry.configure
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")))
        """
    )
    assert done.stdout.strip() == "[]"


def test_real_models_show_on_the_console_and_in_the_scrape() -> None:
    """End to end with the instrumentation: the globals configure() installs are what models read at call time."""
    done = run(
        """
        import json, urllib.request
        import prodwrap as pw
        telemetry = pw.telemetry.configure(console=True, prometheus_port=0, prometheus_addr="127.0.0.1")
        model = pw.ProductionModel(lambda x: x * 2, name="double", version="1.0")
        broken = pw.ProductionModel(lambda x: 1 / 0, name="broken", fallback=pw.Constant(0))
        model(21), model(1), broken(1)
        telemetry.force_flush()  # before a scrape: every sample must still appear once in it
        body = urllib.request.urlopen(telemetry.prometheus_url, timeout=10).read().decode()
        telemetry.shutdown()
        print(json.dumps({"body": body}))
        """
    )
    console = done.stdout.splitlines()[:-1]
    assert [line.split("  ")[:2] for line in console if line.startswith("predict ")] == [
        ["predict double 1.0", "ok"],
        ["predict double 1.0", "ok"],
        ["predict broken", "fallback"],
    ]
    scraped = str(last_json(done)["body"]).splitlines()

    def total(model: str, outcome: str) -> float:
        (line,) = [
            line
            for line in scraped
            if line.startswith("prodwrap_predictions_total{")
            and f'prodwrap_model_name="{model}"' in line
            and f'prodwrap_outcome="{outcome}"' in line
        ]
        return float(line.rsplit(" ", 1)[1])

    assert total("double", "ok") == 2.0 and total("broken", "fallback") == 1.0
    assert any(line.startswith('prodwrap_prediction_duration_seconds_bucket{le="0.005"') for line in scraped)


# The child's lines before each hung-receiver test's own: an OTLP receiver that accepts
# connections and never answers, the SDK configured to export to it, and a model.
_HUNG_RECEIVER = """
        import json, socket, threading, time
        import prodwrap as pw

        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        held = []

        def accept():
            while True:
                connection, _ = server.accept()
                held.append(connection)  # never answers

        threading.Thread(target=accept, daemon=True).start()
        port = server.getsockname()[1]
        telemetry = pw.telemetry.configure(otlp_endpoint=f"http://127.0.0.1:{port}", service_name="hang")
        model = pw.ProductionModel(lambda x: x, name="m")
"""


def test_shutdown_keeps_to_its_timeout_when_the_otlp_receiver_hangs() -> None:
    done = run(
        _HUNG_RECEIVER
        + """
        for i in range(100):
            model(i)
        began = time.monotonic()
        telemetry.shutdown(timeout=1.0)
        print(f"{time.monotonic() - began:.1f}")
        """,
        quiet=False,
    )
    assert float(done.stdout.strip().splitlines()[-1]) < 3.0


def test_shutdown_waits_for_a_hanging_otlp_receiver_once_not_once_per_provider() -> None:
    """Real time: each export gives up after the exporter's timeout (1 s here)."""
    done = run(
        _HUNG_RECEIVER
        + """
        for i in range(10):
            model(i)
        times = {}

        def timed(name, shutdown):
            def wrapper(*args, **kwargs):
                times[name + " began"] = time.monotonic()
                try:
                    return shutdown(*args, **kwargs)
                finally:
                    times[name + " ended"] = time.monotonic()
            return wrapper

        for name in ("tracer", "meter"):
            provider = getattr(telemetry, name + "_provider")
            provider.shutdown = timed(name, provider.shutdown)
        began = time.monotonic()
        telemetry.shutdown()
        times["took"] = time.monotonic() - began
        print(json.dumps(times))
        """,
        env={"OTEL_EXPORTER_OTLP_TIMEOUT": "1"},
        quiet=False,
    )
    times = last_json(done)
    assert times["tracer ended"] - times["tracer began"] >= 0.9  # (each waited on the hung receiver)
    assert times["meter ended"] - times["meter began"] >= 0.9
    assert times["meter began"] < times["tracer ended"] and times["tracer began"] < times["meter ended"]  # side by side
    assert times["took"] < 1.9  # one exporter timeout, not two
