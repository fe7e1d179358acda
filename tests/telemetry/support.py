"""Running code that sets OpenTelemetry's globals in a fresh interpreter (they are set-once per process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This tree first on the path; no OTEL_* settings leaking in from the caller's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def script(*parts: str) -> str:
    """Source parts, each dedented on its own, one after the other."""
    return "\n".join(textwrap.dedent(part) for part in parts)


def run(
    code: str,
    *,
    env: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
    cwd: Path | None = None,
    quiet: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``python -W error -c`` and return what it printed; it must exit 0.

    ``quiet``: the child must also write nothing to stderr (OpenTelemetry's own warnings,
    "Overriding of current TracerProvider is not allowed" among them, go there).
    """
    command = [sys.executable, "-W", "error", *(args or ("-c", textwrap.dedent(code)))]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=environment(env), cwd=cwd, check=False
    )
    assert done.returncode == 0, f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    if quiet:
        assert done.stderr == "", done.stderr
    return done
