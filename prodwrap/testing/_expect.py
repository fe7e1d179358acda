"""Behavioural expectations (CheckList-style): cases, invariants and directional changes.

Each check calls the model (a ``ProductionModel`` or any callable; an async one is awaited
on an event loop of its own, so the checks are plain sync functions usable from any test),
returns an :class:`Expectation` and raises :class:`ExpectationFailed` (an
``AssertionError``) whose message is a table of the failing cases.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from prodwrap.errors import ConfigurationError
from prodwrap.testing._calls import INPUT_WIDTH, Run, Shower, call_all, close, model_name, wilson_lower

SHOWN_CONFIDENCE = 0.95  # the Wilson bound a table shows when no confidence= was asked for


@dataclass(frozen=True)
class CaseResult:
    """How one case went.

    Attributes:
        index: the case's position (0-based) in what was given.
        input: the case's input.
        expected: what was expected (for an invariant: the output before the perturbation).
        outputs: one per run: the output, or the exception the call raised.
        passes: runs that passed. runs: runs made.
        passed: whether the case met the bar.
        wilson: the Wilson lower bound of the pass rate (at ``confidence``, else 95 %).
        detail: what the table shows as the output (a perturbed input, a score's move).
        got: the output the table shows: the first that failed (else the first).
    """

    index: int
    input: Any
    expected: Any
    outputs: tuple[Any, ...]
    passes: int
    runs: int
    passed: bool
    wilson: float
    detail: str = ""
    got: Any = None

    @property
    def pass_rate(self) -> float:
        return self.passes / self.runs if self.runs else 0.0

    @property
    def pass_all(self) -> bool:
        """pass^k: every one of the k runs passed."""
        return self.passes == self.runs


@dataclass(frozen=True)
class Expectation:
    """What a check found: every case, and the bar they were held to. Truthy when it passed.

    Attributes:
        check: which check ran (``"expect_cases"``, ...). model: the model's name.
        cases: every case's :class:`CaseResult`, in order.
        min_pass_rate: the bar of each case. confidence: the Wilson bound's, if asked for.
        labels: the table's headings for the input, the expectation and the output.
    """

    check: str
    model: str
    cases: tuple[CaseResult, ...]
    min_pass_rate: float = 1.0
    confidence: float | None = None
    labels: tuple[str, str, str] = ("input", "expected", "got")
    repeat: int = 1
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return all(case.passed for case in self.cases)

    @property
    def failures(self) -> tuple[CaseResult, ...]:
        return tuple(case for case in self.cases if not case.passed)

    @property
    def pass_rate(self) -> float:
        """Runs that passed, over every run of every case."""
        runs = sum(c.runs for c in self.cases)
        return sum(c.passes for c in self.cases) / runs if runs else 1.0

    @property
    def pass_all_rate(self) -> float:
        """The fraction of cases whose every run passed (pass^k over the cases)."""
        return sum(c.pass_all for c in self.cases) / len(self.cases) if self.cases else 1.0

    def __bool__(self) -> bool:
        return self.passed

    def summary(self) -> str:
        bar = f"min_pass_rate={self.min_pass_rate:g}"
        if self.confidence is not None:
            bar += f", confidence={self.confidence:g}"
        if self.repeat > 1:
            bar += f", repeat={self.repeat}"
        failed = len(self.failures)
        verdict = f"{failed} of {len(self.cases)} cases failed" if failed else f"all {len(self.cases)} cases passed"
        return f"{self.check}({self.model}): {verdict}" + (f" ({bar})" if self.check == "expect_cases" else "")

    def table(self, shower: Callable[..., str] | None = None, everything: bool = False) -> str:
        """The summary line and a table of the failing cases (every case with ``everything``)."""
        show = shower or Shower(None)
        rows = [c for c in self.cases if everything or not c.passed]
        stats = self.check == "expect_cases"
        level = self.confidence if self.confidence is not None else SHOWN_CONFIDENCE
        head = ["case", *self.labels]
        if stats:
            head += ["pass rate", "pass^k", f"wilson lb ({level:.0%})"]
        body = []
        for c in rows:
            cells = [str(c.index), show(c.input, INPUT_WIDTH), show(c.expected), c.detail or show(c.got)]
            if stats:
                cells += [f"{c.passes}/{c.runs} = {c.pass_rate:.0%}", "yes" if c.pass_all else "no", f"{c.wilson:.3f}"]
            body.append(cells)
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        lines = [self.summary(), *self.notes]
        if not body:
            return "\n".join(lines)
        for row in [head, ["-" * w for w in widths], *body]:
            lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


class ExpectationFailed(AssertionError):
    """A behavioural check failed; ``.result`` is its :class:`Expectation`."""

    def __init__(self, result: Expectation, message: str) -> None:
        super().__init__(message)
        self.result = result


def nothing_checked(check: str, model: Any, what: str) -> None:
    """Fail a check that was given no cases (an empty list, an emptied golden file): a check
    of nothing must not pass."""
    name = model_name(model)
    result = Expectation(check, name, (CaseResult(0, "(none)", what, (), 0, 1, False, 0.0, "nothing checked"),))
    raise ExpectationFailed(result, f"{check}({name}): no cases to check: {what}")


def _settle(result: Expectation, shower: Shower) -> Expectation:
    if not result.passed:
        raise ExpectationFailed(result, result.table(shower))
    return result


def _fraction(name: str, value: Any, low_open: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if not ok or not (0 < value < 1 if low_open else 0 <= value <= 1):
        bounds = "(0, 1)" if low_open else "[0, 1]"
        raise ConfigurationError(f"{name} must be a fraction in {bounds}, got {value!r}")
    return float(value)


def _matches(expected: Any, output: Any, compare: Callable[[Any, Any], object] | None) -> bool:
    if compare is not None:
        return bool(compare(output, expected))
    if callable(expected) and not isinstance(expected, type):
        return bool(expected(output))  # a predicate on the output
    return close(output, expected)


def expect_cases(
    model: Callable[..., Any],
    cases: Iterable[tuple[Any, Any]],
    min_pass_rate: float = 1.0,
    repeat: int = 1,
    confidence: float | None = None,
    compare: Callable[[Any, Any], object] | None = None,
) -> Expectation:
    """Run every case ``repeat`` times and hold each to ``min_pass_rate``.

    Args:
        model: a ``ProductionModel`` or any callable (async ones are awaited).
        cases: ``(input, expected)`` pairs. ``expected`` is compared with the output by
            ``compare(output, expected)``; without ``compare``, a callable ``expected`` is a
            predicate on the output, anything else must equal it (NaN equals NaN).
        min_pass_rate: a case fails when the fraction of its runs that passed is below this.
        repeat: runs per case, for nondeterministic models.
        confidence: also fail a case when the Wilson lower bound of its pass rate at this
            confidence (two-sided, e.g. 0.95) is below ``min_pass_rate``, so a lucky run
            cannot pass a gate (9 of 10 is a pass rate of 0.9, a lower bound of 0.60).

    Returns:
        The :class:`Expectation` (per case: outputs, pass rate, pass^k, Wilson bound).

    Raises:
        ExpectationFailed: some case failed (or there were no cases); the message is a table
            of the failing cases with their pass rate, pass^k and Wilson lower bound.
        ConfigurationError: a bar outside [0, 1], a confidence outside (0, 1), repeat < 1,
            or ``confidence`` with ``min_pass_rate=1`` (the Wilson bound never reaches 1).
    """
    bar = _fraction("min_pass_rate", min_pass_rate)
    level = None if confidence is None else _fraction("confidence", confidence, low_open=True)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ConfigurationError(f"repeat must be an int >= 1, got {repeat!r}")
    if level is not None and bar >= 1.0:
        best = wilson_lower(repeat, repeat, level)
        raise ConfigurationError(
            f"expect_cases: confidence={level:g} with min_pass_rate=1 can never pass: the Wilson lower bound"
            f" never reaches 1 ({repeat} of {repeat} runs gives {best:.3f}); pass a min_pass_rate below 1"
            " (e.g. min_pass_rate=0.9), or drop confidence="
        )
    pairs = [tuple(case) for case in cases]
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ConfigurationError(f"expect_cases takes (input, expected) pairs; case {i} is {pair!r}")
    if not pairs:
        nothing_checked("expect_cases", model, "cases is empty")
    runs = call_all(model, [x for x, _ in pairs for _ in range(repeat)])
    shower = Shower(model)
    results = []
    for i, (x, expected) in enumerate(pairs):
        mine = runs[i * repeat : (i + 1) * repeat]
        outcomes, raised = [], ""
        for r in mine:
            try:
                outcomes.append(r.error is None and _matches(expected, r.output, compare))
            except Exception as exc:  # a raising predicate fails its case, not the whole check
                outcomes.append(False)
                what = "compare" if compare is not None else "predicate"
                raised = raised or f"{what} raised {type(exc).__name__}: {exc}".split("\n", 1)[0]
        passes = sum(outcomes)
        lower = wilson_lower(passes, repeat, SHOWN_CONFIDENCE if level is None else level)
        ok = passes / repeat >= bar and (level is None or lower >= bar)
        outputs = [r.output if r.error is None else r.error for r in mine]
        got = next((o for o, good in zip(outputs, outcomes, strict=True) if not good), outputs[0])
        detail = f"{shower(got, 40)} ({raised})" if raised else ""
        results.append(CaseResult(i, x, expected, tuple(outputs), passes, repeat, ok, lower, detail, got=got))
    result = Expectation("expect_cases", model_name(model), tuple(results), bar, level, repeat=repeat)
    return _settle(result, shower)


def _pairs(model: Callable[..., Any], inputs: Sequence[Any], perturb: Callable[[Any], Any]) -> list[Any]:
    perturbed = [perturb(x) for x in inputs]
    runs = call_all(model, [*inputs, *perturbed])
    return list(zip(inputs, perturbed, runs[: len(inputs)], runs[len(inputs) :], strict=True))


def _value(run: Run) -> Any:
    return run.output if run.error is None else run.error


def expect_invariant(
    model: Callable[..., Any], inputs: Iterable[Any], perturb: Callable[[Any], Any], tol: float = 0
) -> Expectation:
    """The output must not change (beyond ``tol``, absolute, at any depth) when ``perturb``
    is applied to the input: a typo, a renamed city, an irrelevant field.

    Raises:
        ExpectationFailed: for the inputs whose output changed (or whose call raised), or
            no inputs at all.
    """
    xs = list(inputs)
    if not xs:
        nothing_checked("expect_invariant", model, "inputs is empty")
    shower = Shower(model)
    results = []
    for i, (x, px, before, after) in enumerate(_pairs(model, xs, perturb)):
        ok = before.error is None and after.error is None and close(before.output, after.output, tol)
        detail = f"{shower(px, 40)} -> {shower(_value(after), 40)}"
        results.append(CaseResult(i, x, _value(before), (_value(after),), int(ok), 1, ok, 0.0, detail))
    labels = ("input", "output", "perturbed -> output")
    result = Expectation("expect_invariant", model_name(model), tuple(results), labels=labels)
    return _settle(result, shower)


def _scorer(key: str | Callable[[Any], Any] | None) -> Callable[[Any], float]:
    if key is None:
        return float
    if callable(key):
        return lambda out: float(key(out))
    return lambda out: float(out[key] if isinstance(out, dict) else getattr(out, key))


def expect_directional(
    model: Callable[..., Any],
    inputs: Iterable[Any],
    perturb: Callable[[Any], Any],
    direction: Literal["increase", "decrease"] = "increase",
    key: str | Callable[[Any], Any] | None = None,
    tol: float = 0,
    strict: bool = False,
) -> Expectation:
    """The score must move in ``direction`` (or stay) when ``perturb`` is applied.

    Args:
        direction: ``"increase"``: the score may not fall (by more than ``tol``);
            ``"decrease"``: it may not rise.
        key: the score: None (the output is a number), a field or key name, or a callable.
        strict: the score must move the right way (a score that stays fails).

    Raises:
        ExpectationFailed: for the inputs whose score moved the wrong way, or no inputs.
    """
    if direction not in ("increase", "decrease"):
        raise ConfigurationError(f'direction must be "increase" or "decrease", got {direction!r}')
    score = _scorer(key)
    sign = 1.0 if direction == "increase" else -1.0
    xs = list(inputs)
    if not xs:
        nothing_checked("expect_directional", model, "inputs is empty")
    shower = Shower(model)
    results = []
    for i, (x, px, before, after) in enumerate(_pairs(model, xs, perturb)):
        ok, detail = False, f"{shower(px, 40)} -> {shower(_value(after), 40)}"
        if before.error is None and after.error is None:
            try:
                s0, s1 = score(before.output), score(after.output)
            except Exception as exc:
                detail = f"no score: {type(exc).__name__}: {exc}"
            else:
                moved = sign * (s1 - s0)
                ok = moved > 0 if strict else moved >= -tol
                detail = f"{shower(px, 40)}: {s0:.6g} -> {s1:.6g}"
        results.append(CaseResult(i, x, _value(before), (_value(after),), int(ok), 1, ok, 0.0, detail))
    labels = ("input", "output", f"perturbed: score before -> after (must {direction})")
    result = Expectation("expect_directional", model_name(model), tuple(results), labels=labels)
    return _settle(result, shower)
