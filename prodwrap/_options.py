"""A model's options, declared once.

:class:`Options` is the declaration: one annotated entry per option, holding its type, its
default, how stacked decorators merge it and how ``describe()`` shows it. The constructor
(``**options: Unpack[Options]``), ``with_options``, the decorators, ``describe()`` and
``report()`` all derive from it; :class:`Settings` is the frozen record a model keeps.
Adding an option is one entry here, plus its stage.
"""

# No "from __future__ import annotations": the Annotated metadata below is read at import.

import dataclasses
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict

from prodwrap.errors import ConfigurationError

if TYPE_CHECKING:
    from prodwrap._record import Prediction
    from prodwrap.audit import AuditLog
    from prodwrap.cost import Budget, CostModel, Ledger
    from prodwrap.drift._monitor import DriftMonitor
    from prodwrap.policies.bulkhead import Bulkhead
    from prodwrap.policies.cache import Cache
    from prodwrap.policies.circuit import CircuitBreaker
    from prodwrap.policies.fallback import Constant
    from prodwrap.policies.hedge import Hedge
    from prodwrap.policies.ratelimit import RateLimit
    from prodwrap.policies.retry import Retry
    from prodwrap.policies.timeout import Timeout
    from prodwrap.policies.validation import Check
    from prodwrap.rollout.canary import Canary
    from prodwrap.rollout.escalate import Escalate
    from prodwrap.rollout.shadow import Shadow


@dataclasses.dataclass(frozen=True, slots=True)
class Option:
    """How one option behaves beyond its type.

    Attributes:
        default: its value when not given.
        merge: ``"replace"`` (a stacked decorator's value wins) or ``"extend"`` (stacked
            decorators add to a sequence: fallbacks, observers).
        describe: its entry in ``describe()`` from its value (default: the value itself).
        sequence: the value is a sequence (one item may be given bare); kept as a tuple.
        check: raises ``ConfigurationError`` for a given value (not None) it refuses.
    """

    default: Any = None
    merge: Literal["replace", "extend"] = "replace"
    describe: Callable[[Any], Any] | None = None
    sequence: bool = False
    check: Callable[[Any], None] | None = None


MAX_VERSION = 256  # characters: a version is a label (spans, metrics, ledger keys, audit lines)


def _check_version(version: Any) -> None:
    """``version=`` is a non-empty ``str`` of at most :data:`MAX_VERSION` characters; a number
    is refused (``1.4`` and ``"1.40"`` are not one version: give the text)."""
    if isinstance(version, str) and version.strip() and len(version) <= MAX_VERSION:
        return
    shown = f"{len(version)} characters" if isinstance(version, str) and version.strip() else repr(version)
    if isinstance(version, int | float) and not isinstance(version, bool):
        shown += f' (give the text: version="{version}")'
    raise ConfigurationError(
        f"version must be a non-empty string of at most {MAX_VERSION} characters, got {shown:.200}"
    )


def _described(value: Any) -> Any:
    describe = getattr(value, "describe", None)
    return describe() if callable(describe) else value


def _names(values: Sequence[Any]) -> list[str]:
    from prodwrap.policies.fallback import fallback_names

    return fallback_names(values)  # as the compiled chain names them


def _checks(value: Any) -> Any:
    if value is None:
        return None
    checks = value if isinstance(value, list | tuple) else [value]
    return [getattr(c, "__qualname__", repr(c)) for c in checks]


def _spec(value: Any) -> Any:
    from prodwrap.policies.validation import describe_spec

    return describe_spec(value)


def _timeout(value: Any) -> Any:
    from prodwrap.policies.timeout import Timeout

    policy = Timeout.coerce(value)
    return None if policy is None else policy.describe()


def _cost(value: Any) -> Any:
    from prodwrap.cost._models import cost_model

    return cost_model(value).describe()


def _retry(value: Any) -> Any:
    from prodwrap.policies.retry import Retry

    policy = Retry.coerce(value)
    return None if policy is None else policy.describe()


def _telemetry(value: Any) -> Any:
    return "spans and metrics when a provider is installed" if value else "off"


class CommonOptions(TypedDict, total=False):
    """Every option but ``input`` (the constructor's overloads type that one apart)."""

    name: Annotated[str | None, Option(describe=lambda v: v)]
    version: Annotated[str | None, Option(check=_check_version)]
    output: Annotated[Any, Option(describe=_spec)]
    check: Annotated["Check | Sequence[Check] | None", Option(describe=_checks)]
    timeout: Annotated["Timeout | float | None", Option(describe=_timeout)]
    retry: Annotated["Retry | int | None", Option(describe=_retry)]
    fallback: Annotated[
        "Callable[..., Any] | Constant | Sequence[Callable[..., Any] | Constant] | None",
        Option(default=(), merge="extend", describe=_names, sequence=True),
    ]
    bulkhead: Annotated["Bulkhead | None", Option(describe=_described)]
    circuit: Annotated["CircuitBreaker | None", Option(describe=_described)]
    on_invalid: Annotated[Literal["raise", "fallback"], Option(default="raise")]
    batch: Annotated[bool, Option(default=False)]
    hedge: Annotated["Hedge | None", Option(describe=_described)]
    rate_limit: Annotated["RateLimit | None", Option(describe=_described)]
    cache: Annotated["Cache | None", Option(describe=_described)]
    cost: Annotated["CostModel | Callable[..., Any] | None", Option(describe=_cost)]
    ledger: Annotated["Ledger | None", Option(describe=_described)]
    budget: Annotated[
        "Budget | Sequence[Budget] | None",
        Option(default=(), merge="extend", describe=lambda v: [_described(b) for b in v], sequence=True),
    ]
    canary: Annotated["Canary | None", Option(describe=_described)]
    drift: Annotated["DriftMonitor | None", Option(describe=_described)]
    shadow: Annotated[
        "Shadow | Sequence[Shadow] | None",
        Option(default=(), merge="extend", describe=lambda v: [_described(s) for s in v], sequence=True),
    ]
    escalate: Annotated["Escalate | None", Option(describe=_described)]
    audit: Annotated["AuditLog | None", Option(describe=_described)]
    telemetry: Annotated[bool, Option(default=True, describe=_telemetry)]
    tracer_provider: Annotated[Any, Option(describe=lambda v: type(v).__name__)]
    meter_provider: Annotated[Any, Option(describe=lambda v: type(v).__name__)]
    remote: Annotated[bool, Option(default=False)]
    capture_content: Annotated[bool, Option(default=False)]
    observers: Annotated[
        "Sequence[Callable[[Prediction], object]] | None",
        Option(
            default=(),
            merge="extend",
            describe=lambda v: [getattr(o, "__qualname__", repr(o)) for o in v],
            sequence=True,
        ),
    ]


class Options(CommonOptions, total=False):
    """The options of ``pw.ProductionModel`` (see its docstring for each one's meaning)."""

    input: Annotated[Any, Option(describe=_spec)]


def _declared() -> dict[str, Option]:
    out: dict[str, Option] = {}
    for cls in (CommonOptions, Options):
        for key, hint in cls.__annotations__.items():
            meta = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Option)]
            out[key] = meta[0]
    return out


DECLARED: "MappingProxyType[str, Option]" = MappingProxyType(_declared())

_Record = dataclasses.make_dataclass(
    "Settings",
    [(key, Any, dataclasses.field(default=option.default)) for key, option in DECLARED.items()],
    frozen=True,
    slots=True,
)


class Settings(_Record):  # type: ignore[valid-type, misc]
    """The frozen record of a model's options, defaults filled in (sequences as tuples)."""

    __slots__ = ()

    @classmethod
    def of(cls, options: dict[str, Any]) -> "Settings":
        unknown = set(options) - set(DECLARED)
        if unknown:
            raise ConfigurationError(
                f"unknown option(s): {', '.join(sorted(unknown))}; options are {', '.join(sorted(DECLARED))}"
            )
        values = {}
        for key, given in options.items():
            value = given
            option = DECLARED[key]
            if option.check is not None and given is not None:
                option.check(given)
            if option.sequence:
                value = () if given is None else tuple(given) if isinstance(given, list | tuple) else (given,)
            values[key] = value
        return cls(**values)

    def given(self) -> dict[str, Any]:
        """The options that differ from their defaults."""
        return {key: getattr(self, key) for key, option in DECLARED.items() if getattr(self, key) != option.default}

    def merged(self, options: dict[str, Any]) -> "Settings":
        """These settings with ``options`` applied as stacked decorators apply them: a
        sequence option marked ``"extend"`` adds to the chain (nearest the function first)."""
        new = self.of(options)
        values = {}
        for key in options:
            value = getattr(new, key)
            if DECLARED[key].merge == "extend":
                value = (*getattr(self, key), *value)
            values[key] = value
        return dataclasses.replace(self, **values)

    def replaced(self, options: dict[str, Any]) -> "Settings":
        """These settings with ``options`` replacing theirs (``with_options``)."""
        new = self.of(options)
        return dataclasses.replace(self, **{key: getattr(new, key) for key in options})

    def describe(self) -> dict[str, Any]:
        """Each option as ``describe()`` shows it."""
        out = {}
        for key, option in DECLARED.items():
            value = getattr(self, key)
            out[key] = option.describe(value) if option.describe is not None and value is not None else value
        return out
