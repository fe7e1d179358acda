"""``describe()``, ``report()`` and the notebook view of a model."""

from __future__ import annotations

import html as _html
from typing import TYPE_CHECKING, Any

from prodwrap.policies.validation import describe_spec

if TYPE_CHECKING:
    from prodwrap._engine import Engine
    from prodwrap._record import Stats

# The fixed order of the stages a call flows through (outermost first), as in DESIGN §1.
STAGES = (
    "input validation",
    "fallback chain",
    "total deadline",
    "retry",
    "attempt timeout",
    "predict",
    "output validation",
    "drift monitor",
)


def describe(engine: Engine, options: dict[str, Any]) -> dict[str, Any]:
    policies = engine.describe()
    checks = options["check"]
    if checks is not None and not isinstance(checks, list | tuple):
        checks = [checks]
    info: dict[str, Any] = {
        "name": options["name"],
        "version": options["version"],
        "async": engine.is_async,
        "batch": options["batch"],
        "input": describe_spec(options["input"]),
        "output": describe_spec(options["output"]),
        "check": None if checks is None else [getattr(c, "__qualname__", repr(c)) for c in checks],
        **policies,
        "drift": None if options["drift"] is None else options["drift"].describe(),
    }
    active = {
        "input validation": info["input"] is not None,
        "fallback chain": bool(info["fallback"]),
        "total deadline": engine.total_timeout is not None,
        "retry": info["retry"] is not None,
        "attempt timeout": engine.attempt_timeout is not None,
        "predict": True,
        "output validation": info["output"] is not None or info["check"] is not None,
        "drift monitor": info["drift"] is not None,
    }
    info["stages"] = [stage for stage in STAGES if active[stage]]
    return info


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f} ms"


def _rows(info: dict[str, Any], stats: Stats) -> list[tuple[str, str]]:
    rows = [
        ("model", f"{info['name']}" + (f" {info['version']}" if info["version"] else "")),
        ("pipeline", " -> ".join(info["stages"])),
        ("calls", str(stats.calls)),
    ]
    order = {"ok": 0, "cached": 1, "fallback": 2, "error": 3}
    for outcome, n in sorted(stats.outcomes.items(), key=lambda item: order.get(item[0], 4)):
        share = n / stats.calls if stats.calls else 0.0
        rows.append((f"  {outcome}", f"{n} ({share:.1%})"))
    for name, n in stats.served_by.items():
        rows.append((f"  served by {name}", str(n)))
    for reason, n in stats.failures.items():
        rows.append((f"  failures: {reason}", str(n)))
    rows += [
        ("abandoned attempts", str(stats.abandoned)),
        ("latency p50 / p95 / p99", f"{_ms(stats.latency_p50)} / {_ms(stats.latency_p95)} / {_ms(stats.latency_p99)}"),
    ]
    return rows


def report(info: dict[str, Any], stats: Stats, *, html: bool = False, fragment: bool = False) -> str:
    rows = _rows(info, stats)
    if not html:
        width = max(len(key) for key, _ in rows)
        return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)
    body = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{_html.escape(k.strip())}</th>"
        f"<td>{_html.escape(v)}</td></tr>"
        for k, v in rows
    )
    table = f"<table class='prodwrap-report'>{body}</table>"
    if fragment:
        return table
    title = _html.escape(f"prodwrap report: {info['name']}")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body><h1>{title}</h1>{table}</body></html>"
    )
