"""OpenTelemetry tracing and metrics (DESIGN §3 "Telemetry").

Every model traces and measures itself through the OpenTelemetry API when a provider is
installed (its own ``tracer_provider=`` / ``meter_provider=``, a test scope's, or the
globals), and does nothing at all otherwise. prodwrap never installs a provider, except
through :func:`configure`, the explicit one-line SDK set-up (the SDK and the exporters load
when it runs, never on import).
"""

from prodwrap.telemetry._buckets import DURATION, GENAI_DURATION, GENAI_TOKENS
from prodwrap.telemetry._configure import Telemetry, configure

__all__ = ["DURATION", "GENAI_DURATION", "GENAI_TOKENS", "Telemetry", "configure"]
