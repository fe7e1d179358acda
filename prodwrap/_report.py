"""``describe()``, ``report()`` and the notebook view of a model."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prodwrap._engine import Engine
    from prodwrap._options import Settings
    from prodwrap._record import Stats

# The fixed order of the stages a call flows through (outermost first), as in DESIGN §1;
# a stage is listed by its ``name``, and a stage not built yet has its place kept here.
STAGES = (
    "input validation",
    "cache",
    "budget",
    "canary",
    "fallback chain",
    "total deadline",
    "bulkhead",
    "retry",
    "retry budget",
    "circuit breaker",
    "hedge",
    "rate limit",
    "attempt timeout",
    "predict",
    "output validation",
    "cost",
    "drift monitor",
    "shadow",
    "escalation",
    "metrics",
    "audit",
    "observers",
)


def describe(engine: Engine, settings: Settings) -> dict[str, Any]:
    info: dict[str, Any] = {"name": engine.name, "version": engine.version, "async": engine.is_async}
    info.update(settings.describe())
    for stage in engine.stages:
        described = getattr(stage, "describe", None)
        if described is not None and stage.section is not None:
            info[stage.section] = described()
    active = {
        "input validation": engine.validate_input is not None,
        "fallback chain": bool(engine.fallbacks),
        "total deadline": engine.total_timeout is not None,
        "retry": engine.retry is not None,
        "attempt timeout": engine.attempt_timeout is not None,
        "predict": True,
        "output validation": engine.validate_output is not None,
    }
    # (telemetry is decided per call, by the providers installed: described apart, not listed)
    active.update(dict.fromkeys((stage.name for stage in engine.stages if stage.name != "telemetry"), True))
    unknown = [name for name in active if name not in STAGES]
    info["stages"] = [stage for stage in STAGES if active.get(stage)] + unknown
    return info


def _usd(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('1E-12')).normalize():f}" if amount else "0"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f} ms"


def _rows(info: dict[str, Any], stats: Stats) -> list[tuple[str, str]]:
    rows = [
        ("model", f"{info['name']}" + (f" {info['version']}" if info["version"] else "")),
        ("pipeline", " -> ".join(info["stages"])),
        ("calls", f"{stats.calls}  (outcomes below count calls)"),
    ]
    order = {"ok": 0, "cached": 1, "fallback": 2, "error": 3}
    for outcome, n in sorted(stats.outcomes.items(), key=lambda item: order.get(item[0], 4)):
        share = n / stats.calls if stats.calls else 0.0
        rows.append((f"  {outcome}", f"{n} ({share:.1%})"))
    for name, n in stats.served_by.items():
        rows.append((f"  served by {name}", str(n)))
    if stats.failures:
        total = sum(stats.failures.values())
        rows.append(("failures", f"{total}  (by reason: one per failed attempt or rejected input)"))
    for reason, n in stats.failures.items():
        rows.append((f"  {reason}", f"{n}  ({_REASONS[reason]})" if reason in _REASONS else str(n)))
    rows += [
        ("abandoned attempts", f"{stats.abandoned}  (timed out, left to finish on their threads; results discarded)"),
        ("latency p50 / p95 / p99", f"{_ms(stats.latency_p50)} / {_ms(stats.latency_p95)} / {_ms(stats.latency_p99)}"),
    ]
    if "cost" in info["stages"]:
        per_call = stats.cost / stats.calls if stats.calls else None
        mean = "" if per_call is None else f", {_usd(per_call)} USD per call"
        rows.append(("cost", f"{_usd(stats.cost)} USD{mean}"))
        rows.append(
            ("  unpriced", f"{stats.unpriced}  (calls whose cost is not known in full: no token usage reported)")
        )
    for budget in stats.budget or ():
        window = "lifetime" if budget.per is None else f"per {budget.per}"
        scope = "" if budget.by is None else f" by {budget.by}"
        resets = "" if budget.resets_at is None else f", resets {budget.resets_at:%Y-%m-%d %H:%M} UTC"
        rows.append(
            (
                f"  budget {window}{scope}",
                f"{budget.spent} of {budget.limit} USD ({budget.reserved} of it reserved by calls in flight){resets}; "
                + (f"{budget.warnings} over it (warned)" if budget.action == "warn" else f"{budget.refusals} refused"),
            )
        )
    rows += _resilience(stats)
    if stats.observer_errors:
        rows.append(("observer errors", f"{stats.observer_errors}  (observers that raised; logged, never raised)"))
    if stats.telemetry_errors:
        rows.append(("telemetry errors", f"{stats.telemetry_errors}  (telemetry that raised; logged, never raised)"))
    if stats.late_errors:
        rows.append(("late errors", f"{stats.late_errors}  (abandoned attempts that raised after their deadline)"))
    drift = stats.drift
    if drift is not None:
        rows.append(("drift", f"{drift.observed} observed, {drift.checks} checks, {drift.alerts} alerts"))
        for feature, result in drift.latest.items():
            verdict = "DRIFTED" if result.drifted else "ok"
            p = "" if result.p_value is None else f", p={result.p_value:.3g}"
            rows.append((f"  {feature}", f"{verdict}: {result.detector} {result.statistic:.3g}{p}"))
        if drift.failures:
            rows.append(("  drift failures", f"{drift.failures}  (detector, callback or metric faults; logged)"))
    audit = stats.audit
    if audit is not None:
        rows.append(("audit", f"{audit.written} lines written to {audit.sink}, {audit.pending} pending"))
        if audit.skipped:
            rows.append(("  not sampled", str(audit.skipped)))
        if audit.lost:
            why = f"queue full {audit.full}, sink failed {audit.failed}, after close {audit.after_close}; logged"
            rows.append(("  lost", f"{audit.lost}  ({why})"))
    return rows


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


# The resilience policies' sections of stats(): (attribute, label, the row's text).
_POLICIES: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    (
        "circuit",
        "circuit",
        lambda c: (
            f"{c.state}: {c.trips} trips, {c.time_open:.3g} s open, {c.refused} refused, "
            f"failure rate {_rate(c.failure_rate)} of {c.calls} in the window"
        ),
    ),
    (
        "bulkhead",
        "bulkhead",
        lambda b: f"{b.in_use} of {b.max_concurrent} in use (peak {b.peak}), {b.waits} waited, {b.full} refused",
    ),
    (
        "cache",
        "cache",
        lambda c: (
            f"{c.hits} hits, {c.misses} misses (hit rate {_rate(c.hit_rate)}), {c.size} of {c.maxsize} held, "
            f"{c.evictions} evicted"
        ),
    ),
    (
        "rate_limit",
        "rate limit",
        lambda r: f"{r.permits} permits, {r.waits} waited ({r.seconds_waited:.3g} s), {r.refusals} refused",
    ),
    ("retry_budget", "retry budget", lambda b: f"{b.retries} retries of {b.calls} calls, {b.denied} denied"),
    (
        "hedge",
        "hedge",
        lambda h: (
            f"{h['hedged_calls']} calls hedged, {h['extra_attempts']} extra attempts, "
            f"{h['won_by_extra']} won by an extra"
        ),
    ),
)


def _resilience(stats: Stats) -> list[tuple[str, str]]:
    """The rows of the resilience policies' sections, for those the model has."""
    sections = ((label, line, getattr(stats, attribute)) for attribute, label, line in _POLICIES)
    return [(label, line(section)) for label, line, section in sections if section is not None]


_REASONS = {
    "timeout": "the attempt ran past its timeout",
    "exception": "the predict raised",
    "invalid_output": "the output failed output=/check=",
    "invalid_input": "the input failed input=",
    "circuit_open": "refused by the open circuit",
    "rate_limited": "no rate-limit permit in time",
    "cancelled": "the caller cancelled the call",
    "interrupted": "interrupted (KeyboardInterrupt or the like)",
    "bulkhead_full": "no bulkhead permit in time",
    "budget": "refused by a cost budget",
}


def report(info: dict[str, Any], stats: Stats, *, html: bool = False, fragment: bool = False) -> str:
    rows = _rows(info, stats)
    if not html:
        width = max(len(key) for key, _ in rows)
        return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)
    import html as _html  # (loaded with the first HTML report, not with prodwrap)

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
