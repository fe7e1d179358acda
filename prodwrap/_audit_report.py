"""Summarising an audit log (``python -m prodwrap report``): one streaming pass over its lines.

Each line is parsed once and folded into :class:`Group` totals: the whole log, each model
version, and each value of the tags asked for (``--by``). Latencies are kept (8 bytes a
line) for exact percentiles, computed as ``model.stats()`` computes them
(``prodwrap._stats.percentiles``). Costs are summed as ``Decimal``, exactly. A line that is
not a JSON object with the audit fields (``outcome``, ``latency``, ``cost``, ...) of the right
types is counted as bad and skipped; a blank line is ignored.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from prodwrap._stats import percentiles

UNTAGGED = "(untagged)"  # the group of lines without the tag a breakdown is by
_SHOWN_BAD = 5  # line numbers of bad lines kept for the message


class BadLine(ValueError):
    """A line that is not an audit line."""


class Group:
    """Totals of the lines of one group (the whole log, a version, a tag's value)."""

    __slots__ = ("attempts", "calls", "cost", "failures", "latencies", "outcomes", "served_by", "unpriced")

    def __init__(self) -> None:
        self.calls = 0
        self.attempts = 0
        self.outcomes: dict[str, int] = {}
        self.served_by: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.latencies = array("d")
        self.cost = Decimal(0)
        self.unpriced = 0

    def add(self, line: Line) -> None:
        self.calls += 1
        self.attempts += line.attempts
        self.outcomes[line.outcome] = self.outcomes.get(line.outcome, 0) + 1
        if line.outcome != "error":
            self.served_by[line.served_by] = self.served_by.get(line.served_by, 0) + 1
        for reason in line.reasons:
            self.failures[reason] = self.failures.get(reason, 0) + 1
        self.latencies.append(line.latency)
        if not line.nested:  # a fallback model's own line: its cost is in its caller's line already
            self.cost += line.cost
            self.unpriced += line.unpriced

    def rate(self, outcome: str) -> float:
        return self.outcomes.get(outcome, 0) / self.calls if self.calls else 0.0

    def summary(self) -> dict[str, Any]:
        """The group as JSON-able data (cost as a decimal string)."""
        p50, p95, p99 = percentiles(list(self.latencies), (50, 95, 99))
        return {
            "calls": self.calls,
            "outcomes": dict(sorted(self.outcomes.items())),
            "served_by": dict(sorted(self.served_by.items())),
            "error_rate": self.rate("error"),
            "fallback_rate": self.rate("fallback"),
            "attempts": self.attempts,
            "failures": dict(sorted(self.failures.items())),
            "latency_p50": p50,
            "latency_p95": p95,
            "latency_p99": p99,
            "cost": f"{self.cost:f}",
            "unpriced": self.unpriced,
        }


class Line:
    """The fields of one audit line a summary reads."""

    __slots__ = (
        "attempts",
        "cost",
        "latency",
        "nested",
        "outcome",
        "reasons",
        "served_by",
        "tags",
        "time",
        "unpriced",
        "version",
    )

    def __init__(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise BadLine("not a JSON object")
        try:
            self.outcome = raw["outcome"]
            self.served_by = raw["served_by"]
            latency = raw["latency"]
            cost = raw["cost"]
        except KeyError as exc:
            raise BadLine(f"no {exc.args[0]!r} field") from None
        if not isinstance(self.outcome, str) or not isinstance(self.served_by, str):
            raise BadLine("outcome and served_by must be strings")
        if isinstance(latency, bool) or not isinstance(latency, int | float) or not 0 <= latency < math.inf:
            raise BadLine(f"latency must be seconds >= 0, got {latency!r}")
        self.latency = float(latency)
        self.cost = _decimal(cost)
        attempts = raw.get("attempts", 1)
        self.attempts = attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 1
        tags = raw.get("tags")
        self.tags: dict[str, Any] = tags if isinstance(tags, dict) else {}
        reasons = raw.get("reasons")
        self.reasons: list[str] = [r for r in reasons if isinstance(r, str)] if isinstance(reasons, list) else []
        self.unpriced = 1 if raw.get("unpriced") is True else 0
        self.nested = raw.get("nested") is True
        self.version = f"{raw.get('model')} {raw.get('version')}"
        time = raw.get("time")
        self.time = time if isinstance(time, str) else None


def _decimal(cost: Any) -> Decimal:
    if isinstance(cost, str | int) and not isinstance(cost, bool):
        try:
            amount = Decimal(cost)
        except InvalidOperation:
            pass
        else:
            if amount.is_finite() and -30 <= amount.adjusted() <= 15:  # a cent's fraction to a trillion
                return amount
    raise BadLine(f"cost must be a decimal string, got {cost!r}")


class Summary:
    """An audit log summarised: the totals, by version, and by each tag in ``by``."""

    def __init__(self, by: Sequence[str] = ()) -> None:
        self.by = tuple(by)
        self.total = Group()
        self.versions: dict[str, Group] = {}
        self.groups: dict[str, dict[str, Group]] = {tag: {} for tag in self.by}
        self.lines = 0  # lines read, blank ones included
        self.bad = 0
        self.bad_at: list[int] = []  # the first bad lines' numbers (1-based)
        self.first: str | None = None
        self.last: str | None = None

    def read(self, lines: Iterable[str]) -> Summary:
        loads = json.loads
        for number, text in enumerate(lines, self.lines + 1):
            self.lines = number
            if not text.strip():
                continue
            try:
                line = Line(loads(text))
                self.add(line)
            except (ValueError, RecursionError, ArithmeticError):  # BadLine, bad JSON, bad numbers
                self.bad += 1
                if len(self.bad_at) < _SHOWN_BAD:
                    self.bad_at.append(number)
                continue
        return self

    def add(self, line: Line) -> None:
        self.total.add(line)
        version = self.versions.get(line.version)
        if version is None:
            version = self.versions[line.version] = Group()
        version.add(line)
        for tag in self.by:
            value = line.tags.get(tag, UNTAGGED)
            key = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            groups = self.groups[tag]
            group = groups.get(key)
            if group is None:
                group = groups[key] = Group()
            group.add(line)
        if line.time is not None:  # ISO 8601 UTC text: its order is the time's
            if self.first is None or line.time < self.first:
                self.first = line.time
            if self.last is None or line.time > self.last:
                self.last = line.time

    def summary(self) -> dict[str, Any]:
        """Everything, JSON-able: ``calls``, ``outcomes``, ``latency_p50``, ``latency_p95``,
        ``cost`` (a decimal string), ... for the whole log, ``versions``, and ``by`` (tag ->
        value -> group) when tags were asked for."""
        out: dict[str, Any] = {"lines": self.lines, "bad_lines": self.bad, "bad_line_numbers": self.bad_at}
        out.update(self.total.summary())
        out["first"], out["last"] = self.first, self.last
        out["versions"] = {key: group.summary() for key, group in sorted(self.versions.items())}
        if self.by:
            out["by"] = {
                tag: {key: group.summary() for key, group in sorted(groups.items())}
                for tag, groups in self.groups.items()
            }
        return out
