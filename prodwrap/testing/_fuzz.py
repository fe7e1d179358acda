"""``fuzz(model, n)``: feed generated invalid inputs, and fail if anything but a refusal (or
the fallback, with ``on_invalid="fallback"``) comes out. Hypothesis is imported when it runs."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from prodwrap.errors import ConfigurationError, InputValidationError
from prodwrap.testing._calls import Shower, is_async, run_coroutine

# (hypothesis is not a dependency of prodwrap: an ImportError that says how to get it)
NEEDS_HYPOTHESIS = "prodwrap.testing.fuzz and prodwrap.testing.strategies need hypothesis: pip install hypothesis"

_SHOWN = 200  # characters of the offending input in the message


@dataclass(frozen=True)
class FuzzResult:
    """What ``fuzz`` fed and what came out.

    Attributes:
        model: the model's name. inputs: invalid inputs fed.
        refused: of them, refused with ``InputValidationError``.
        fallbacks: of them, served by a fallback (``on_invalid="fallback"``).
    """

    model: str
    inputs: int
    refused: int
    fallbacks: int


def _outcome(model: Any, x: Any) -> Any:
    if is_async(model):
        return run_coroutine(model.apredict_detailed(x))
    return model.predict_detailed(x)


def fuzz(model: Any, n: int = 500, seed: int | None = None) -> FuzzResult:
    """Feed ``n`` generated invalid inputs (``strategies.invalid_inputs``) to ``model``.

    Each must be refused with ``InputValidationError``, or, for a model with
    ``on_invalid="fallback"``, served by a fallback. Hypothesis draws the inputs (no example
    database is kept); with ``seed`` the same inputs are drawn on every run.

    Returns:
        A :class:`FuzzResult` counting what happened.

    Raises:
        AssertionError: another exception leaked, or an invalid input was served by the
            primary; the message names the exception and the (smallest such) input, its
            sensitive fields masked and cut short.
        ConfigurationError: ``model`` is not a ``ProductionModel`` with ``input=``, or no
            invalid input can be drawn for its schema.
    """
    try:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as seeded
        from hypothesis.errors import Unsatisfiable
    except ModuleNotFoundError as exc:
        if exc.name != "hypothesis":  # (one of hypothesis's own dependencies: its own message)
            raise
        raise ModuleNotFoundError(NEEDS_HYPOTHESIS, name=exc.name) from exc

    from prodwrap._model import ProductionModel
    from prodwrap.testing.strategies import invalid_inputs

    if not isinstance(model, ProductionModel):
        raise ConfigurationError(f"fuzz takes a ProductionModel with input=, got {model!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigurationError(f"fuzz n= must be an int >= 1, got {n!r}")
    show = Shower(model)
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    shrinking = [False]

    def check(x: Any) -> None:
        with lock:
            if not shrinking[0]:
                counts["inputs"] += 1
        try:
            prediction = _outcome(model, x)
        except InputValidationError:
            with lock:
                counts["refused"] += 0 if shrinking[0] else 1
            return
        except Exception as exc:
            shrinking[0] = True
            message = f"fuzz({model.name}): {type(exc).__name__} leaked on an invalid input: {exc}".split("\n")[0]
            raise AssertionError(f"{message}\n  input: {show(x, _SHOWN)}") from None
        if prediction.outcome == "fallback":
            with lock:
                counts["fallbacks"] += 0 if shrinking[0] else 1
            return
        shrinking[0] = True
        served = f"served by {prediction.served_by} with outcome {prediction.outcome!r}"
        raise AssertionError(f"fuzz({model.name}): an invalid input was {served}\n  input: {show(x, _SHOWN)}")

    options = settings(
        max_examples=n,
        database=None,
        deadline=None,
        derandomize=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
    )
    run = options(given(invalid_inputs(model))(check))
    if seed is not None:
        run = seeded(seed)(run)
    try:
        run()
    except Unsatisfiable:
        raise ConfigurationError(f"fuzz: no invalid input could be drawn for {model.name}'s input schema") from None
    except AssertionError as exc:  # a fresh error: hypothesis's notes show the raw input
        raise AssertionError(str(exc)) from None
    return FuzzResult(model.name, counts["inputs"], counts["refused"], counts["fallbacks"])
