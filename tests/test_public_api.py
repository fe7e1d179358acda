from __future__ import annotations

import subprocess
import sys

import prodwrap as pw


def test_all_is_sorted_and_complete() -> None:
    assert list(pw.__all__) == sorted(pw.__all__, key=lambda n: (not n[0].isupper(), n))
    public = {n for n in dir(pw) if not n.startswith("_")}
    assert not public & {"annotations", "TYPE_CHECKING", "Any", "importlib"}  # the module's own imports are private
    modules = {n for n in public if type(getattr(pw, n)).__name__ == "module"}
    assert set(pw.__all__) - {"__version__"} == public - modules
    for name in pw.__all__:
        assert hasattr(pw, name)


def test_import_has_no_side_effects() -> None:
    code = (
        "import threading, sys; before = threading.active_count(); import prodwrap; "
        "assert threading.active_count() == before; "
        "from opentelemetry import trace; "
        "assert type(trace.get_tracer_provider()).__name__ == 'ProxyTracerProvider'; "
        "assert 'opentelemetry.sdk' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_model_without_rollouts_loads_none_of_their_machinery() -> None:
    """Making and calling a plain model reads the rollout package's versions, not its shadow,
    canary or escalation modules (nor hashlib, which their sticky keys use); each name of the
    package loads its module on first use."""
    code = (
        "import sys, prodwrap as pw; m = pw.ProductionModel(lambda x: x); assert m(1) == 1; "
        "left = {'prodwrap.rollout.shadow', 'prodwrap.rollout.canary', 'prodwrap.rollout.escalate', "
        "'prodwrap.rollout._keys', 'hashlib'} & set(sys.modules); assert not left, left; "
        "from prodwrap.rollout import Shadow, compare; assert pw.Shadow is Shadow and compare.equal; "
        "assert 'prodwrap.rollout.shadow' in sys.modules and 'Guard' in dir(sys.modules['prodwrap.rollout'])"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
