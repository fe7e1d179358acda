"""Histogram bucket boundaries (DESIGN §3 "Telemetry"; the GenAI semantic conventions')."""

from __future__ import annotations

from collections.abc import Mapping

DURATION = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""``prodwrap.prediction.duration`` (seconds)."""

GENAI_TOKENS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
"""``gen_ai.client.token.usage`` ({token})."""

GENAI_DURATION = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
"""``gen_ai.client.operation.duration`` (seconds)."""

BY_INSTRUMENT: Mapping[str, tuple[float, ...]] = {
    "prodwrap.prediction.duration": DURATION,
    "gen_ai.client.token.usage": GENAI_TOKENS,
    "gen_ai.client.operation.duration": GENAI_DURATION,
}
"""Instrument name -> its boundaries: the ``View`` s ``configure()`` installs where the SDK ignores the advisory."""
