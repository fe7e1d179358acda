"""Histogram bucket boundaries shared by the instrumentation and ``configure()`` (DESIGN §3, Telemetry).

The instrumentation passes them as ``explicit_bucket_boundaries_advisory`` when it creates its
histograms; ``configure()`` installs the same boundaries as SDK ``View`` s when the installed
SDK ignores the advisory, so the exported buckets are these and not the SDK's millisecond
defaults (0, 5, 10, 25, ... 10000).
"""

from __future__ import annotations

from collections.abc import Mapping

# prodwrap.prediction.duration (seconds): 1 ms to 10 s.
DURATION: tuple[float, ...] = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# gen_ai.client.token.usage ({token}): powers of 4 from 1 to 4**13, as the GenAI conventions recommend.
GENAI_TOKENS: tuple[float, ...] = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip

# gen_ai.client.operation.duration (seconds): 0.01 doubling to 81.92, as the GenAI conventions recommend.
GENAI_DURATION: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip

# Instrument name -> its boundaries: what configure() turns into Views where the SDK needs them.
BY_INSTRUMENT: Mapping[str, tuple[float, ...]] = {
    "prodwrap.prediction.duration": DURATION,
    "gen_ai.client.token.usage": GENAI_TOKENS,
    "gen_ai.client.operation.duration": GENAI_DURATION,
}

__all__ = ["BY_INSTRUMENT", "DURATION", "GENAI_DURATION", "GENAI_TOKENS"]
