"""OpenTelemetry for prodwrap: spans and metrics through the API, and the one-line SDK set-up.

``configure()`` is the one place prodwrap installs OpenTelemetry providers, and only because
the application calls it; ``import prodwrap.telemetry`` imports the OpenTelemetry API alone
(the SDK and the exporters load when ``configure()`` runs).
"""

from prodwrap.telemetry._configure import Telemetry, configure

__all__ = ["Telemetry", "configure"]
