"""OpenTelemetry tracing and metrics (DESIGN §3 "Telemetry").

Every model traces and measures itself through the OpenTelemetry API when a provider is
installed (its own ``tracer_provider=`` / ``meter_provider=``, a test scope's, or the
globals), and does nothing at all otherwise. prodwrap never installs a provider, except
through :func:`configure`, the explicit one-line SDK set-up.
"""

from prodwrap.telemetry._buckets import DURATION, GENAI_DURATION, GENAI_TOKENS

__all__ = ["DURATION", "GENAI_DURATION", "GENAI_TOKENS"]
