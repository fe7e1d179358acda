"""What the behavioural checks share: calling a model (sync or async), comparing outputs
within a tolerance, showing values briefly (sensitive fields masked) and the Wilson bound."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import inspect
import json
import math
import textwrap
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from decimal import Decimal
from statistics import NormalDist
from typing import Any, NamedTuple, TypeVar

import pydantic

from prodwrap._audit_lines import Redactor
from prodwrap._target import is_async_callable

T = TypeVar("T")
_WIDTH = 60  # characters of a value shown in a table cell
INPUT_WIDTH = 100  # characters of a case's input shown (the case a failure names)


class Run(NamedTuple):
    """One call of the model: its output, or the exception it raised (``output`` None)."""

    output: Any
    error: BaseException | None


def _is_model(model: Any) -> bool:
    from prodwrap._model import ProductionModel

    return isinstance(model, ProductionModel)


def model_name(model: Any) -> str:
    return str(getattr(model, "name", None) or getattr(model, "__name__", None) or type(model).__name__)


def is_async(model: Any) -> bool:
    """Whether calling ``model`` gives an awaitable (an async ``ProductionModel`` or function)."""
    return bool(model.is_async) if _is_model(model) else is_async_callable(model)


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end from sync code: on a fresh event loop, or on a helper thread's
    loop when this thread already runs one (an async test calling a sync check)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, asyncio.run(coro)))
        except BaseException as exc:
            box.append((False, exc))

    thread = threading.Thread(target=run, name="prodwrap-expect")
    thread.start()
    thread.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def call_all(model: Callable[..., Any], inputs: Sequence[Any]) -> list[Run]:
    """``model(x)`` for every input, in order (awaited for an async model); exceptions kept."""
    if not is_async(model):
        runs = []
        for x in inputs:
            try:
                runs.append(Run(model(x), None))
            except Exception as exc:
                runs.append(Run(None, exc))
        return runs

    async def go() -> list[Run]:
        runs = []
        for x in inputs:
            try:
                runs.append(Run(await model(x), None))
            except Exception as exc:
                runs.append(Run(None, exc))
        return runs

    return run_coroutine(go())


# -- comparing -------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float | Decimal):
        return True
    return (  # a numpy scalar (an array, even of one element, is compared element-wise)
        type(value).__module__ == "numpy"
        and hasattr(value, "dtype")
        and value.dtype.kind in "iuf"
        and getattr(value, "ndim", 0) == 0
    )


def plain(value: Any) -> Any:
    """A pydantic model or dataclass as a dict of its fields (what outputs are compared as)."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return value


def close(a: Any, b: Any, tol: float = 0.0) -> bool:
    """Whether ``a`` and ``b`` are equal, numbers within ``tol`` (absolute) at any depth of
    mappings, sequences, arrays, pydantic models and dataclasses; NaN equals NaN."""
    if _number(a) and _number(b):
        x, y = float(a), float(b)
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return x == y or abs(x - y) <= tol
    if hasattr(a, "__array__") or hasattr(b, "__array__"):
        import numpy as np

        try:
            u, v = np.asarray(a), np.asarray(b)
            if u.shape != v.shape:
                return False
            if u.dtype.kind in "iufc" and v.dtype.kind in "iufc":
                return bool(np.allclose(u, v, rtol=0.0, atol=tol, equal_nan=True))
            return bool(np.array_equal(u, v))
        except (TypeError, ValueError):
            return False
    a, b = plain(a), plain(b)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    sequences = (list, tuple)
    if isinstance(a, sequences) and isinstance(b, sequences):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:  # an == that raises (arrays inside objects) is not equality
        return False


# -- showing ---------------------------------------------------------------------------------


class _Masker(Redactor):
    """The audit redaction, writing a mask instead of a hash (for messages, not logs)."""

    __slots__ = ()

    def hash_of(self, value: Any) -> str:
        return "***"


def _specs(model: Any) -> tuple[Any, Any]:
    """The input and output specs of a model: its ``input=``/``output=``, or a plain
    callable's first-parameter and return annotations (None where there is none)."""
    if _is_model(model):
        return model._settings.input, model._settings.output
    try:
        signature = inspect.signature(model, eval_str=True)
    except Exception:  # no signature, or annotations that do not resolve
        return None, None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    first = next((p.annotation for p in signature.parameters.values() if p.kind in kinds), inspect.Parameter.empty)
    empty = (inspect.Parameter.empty, inspect.Signature.empty, Any)
    return (None if first in empty else first), (
        None if signature.return_annotation in empty else signature.return_annotation
    )


def _sensitive_of(spec: Any) -> Any:
    from prodwrap.policies._redact import Sensitive
    from prodwrap.policies.validation import _sensitive

    try:
        return _sensitive(spec)
    except Exception:  # an annotation pydantic cannot read: nothing known to be sensitive
        return Sensitive()


class Shower:
    """Short text of inputs and outputs for tables, with the model's sensitive fields (and
    any ``SecretStr``) masked: those of its specs, or of a plain callable's annotations; JSON
    text is parsed first, so its sensitive fields are masked too."""

    def __init__(self, model: Any, redact: Sequence[str] = ()) -> None:
        names: frozenset[str] = frozenset(redact)
        spec_in, spec_out = _specs(model)
        found_in, found_out = _sensitive_of(spec_in), _sensitive_of(spec_out)
        names |= found_in.names | found_out.names
        secret_in, secret_out = found_in.everywhere, found_out.everywhere
        self.masker = _Masker(names, b"-", secret_in, secret_out) if names or secret_in or secret_out else None

    def __call__(self, value: Any, width: int = _WIDTH) -> str:
        if callable(value) and not isinstance(value, type):
            return _callable_text(value, width)
        if isinstance(value, BaseException):
            text = f"{type(value).__name__}: {value}".split("\n", 1)[0]
        elif self.masker is not None:
            text = repr(self.masker.jsonable(_parsed(value)))
        else:
            text = repr(value)
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 1] + "…"


def _parsed(value: Any) -> Any:
    """JSON text (a model's input may be) as the object or array it holds; else ``value``."""
    if isinstance(value, str | bytes | bytearray) and value.lstrip()[:1] in ("{", "[", b"{", b"["):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return value
        if isinstance(parsed, dict | list):
            return parsed
    return value


def _callable_text(fn: Any, width: int) -> str:
    """A predicate as the table shows it: a lambda's own source text, else its name."""
    name = str(getattr(fn, "__qualname__", None) or type(fn).__name__)
    if getattr(fn, "__name__", None) == "<lambda>":
        try:
            source = textwrap.dedent(inspect.getsource(fn)).strip()
            tree = ast.parse(source if not source.endswith(",") else source[:-1])
        except (OSError, TypeError, SyntaxError):
            return name
        lambdas = [node for node in ast.walk(tree) if isinstance(node, ast.Lambda)]
        segment = ast.get_source_segment(source, lambdas[0]) if len(lambdas) == 1 else None
        if segment:
            name = " ".join(segment.split())
    return name if len(name) <= width else name[: width - 1] + "…"


# -- statistics ------------------------------------------------------------------------------


def wilson_lower(passes: int, runs: int, confidence: float = 0.95) -> float:
    """The lower end of the Wilson score interval for ``passes`` out of ``runs`` at
    ``confidence`` (two-sided, as ``scipy.stats.binomtest(...).proportion_ci(method="wilson")``);
    0.0 for no runs."""
    if runs <= 0:
        return 0.0
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = passes / runs
    z2 = z * z
    centre = p + z2 / (2 * runs)
    margin = z * math.sqrt(p * (1 - p) / runs + z2 / (4 * runs * runs))
    return max(0.0, (centre - margin) / (1 + z2 / runs))
