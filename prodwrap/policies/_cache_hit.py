"""The cache's success-path admission hook for a model's declared input class, compiled.

For ``input=`` a pydantic model class with fields, an LRU table and no ``key=``, the hook
keys an instance of that class inline, as ``_cache_keys._compiled`` would (one frame: no
``KEYERS`` lookup, no key function called), and looks the key up in the table's ``front``
without the lock. Until the class's key is compiled (from its first instance with scalar
fields only, ``_cache_keys.USUAL``), and for any input its lines do not key (another class,
pass-through arguments, extra fields, a field not set, a field of another type, a zero or NaN
float), it hands the call to ``CacheCore.fast_admit``; a miss goes to ``CacheCore.claim``
with the key. The usual field types are globals of the hook (``k0``, ``k1``, ...), set once
the class's key is compiled; a field whose usual type is not float has ``n<i>`` True (no zero
or NaN test). Before that ``k0`` is ``_Unlearnt``, a class no value has.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from prodwrap.policies._cache_keys import USUAL
from prodwrap.policies._cache_tables import FOLD_EVERY

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeAlias

    from prodwrap._stage import Serve
    from prodwrap.policies._cache_stage import CacheCore

    Admit: TypeAlias = Callable[[Any, tuple[Any, ...], dict[str, Any]], bool | Serve]


class _Unlearnt:
    """The usual type of a field before its class's key is compiled (no value is one)."""


def compile_admit(core: CacheCore, declared: Any) -> Admit:
    """The success-path admission hook of ``core`` for a model declaring ``input=declared``."""
    pydantic = sys.modules.get("pydantic")
    model = pydantic is not None and isinstance(declared, type) and issubclass(declared, pydantic.BaseModel)
    names = tuple(getattr(declared, "model_fields", ())) if model else ()  # (the order ``_cache_keys._first`` reads)
    if core.front is None or core.user_key is not None or not names:
        return core.fast_admit
    values = [f"v{i}" for i in range(len(names))]
    ns: dict[str, Any] = {
        "cls": declared,
        "general": core.fast_admit,
        "claim": core.claim,
        "get": core.front.get,
        "served": core.served,
        "fold": core.fold,
        "serve": core.serve,
        "FOLD_EVERY": FOLD_EVERY,
    }
    for i in range(len(names)):
        ns[f"k{i}"], ns[f"n{i}"] = _Unlearnt, True

    def learn() -> None:
        kinds = USUAL.get(declared)
        if kinds is not None and len(kinds) == len(names):
            for i, kind in enumerate(kinds):
                ns[f"n{i}"] = kind is not float
                ns[f"k{i}"] = kind  # (the last: until each is set, no field matches)

    ns["learn"] = learn
    lines = [
        "def admit(value, args, kwargs):",
        "    if type(value) is cls and not args and not kwargs and not value.__pydantic_extra__:",
        "        fields = value.__dict__",
        "        try:",
        *(f"            {v} = fields[{name!r}]" for v, name in zip(values, names, strict=True)),
        "        except KeyError:",
        "            return general(value, args, kwargs)",
        f"        if {' and '.join(f'{v}.__class__ is k{i}' for i, v in enumerate(values))}:",
        # (zero or NaN floats: the canonical form decides, as _compiled's key says)
        f"            if {' and '.join(f'(n{i} or {v} and {v} == {v})' for i, v in enumerate(values))}:",
        f"                key = (cls, {', '.join(values)},)",
        "                entry = get(key)  # (without the lock: one dict lookup, see _cache_tables)",
        "                if entry is None:",
        "                    return claim(value, args, kwargs, key)",
        "                served.append(entry)  # (counted, and its recency applied, by the next fold)",
        "                if len(served) > FOLD_EVERY:",
        "                    fold()",
        "                return entry.decision or serve(entry)",
        "        elif k0 is Unlearnt:",
        "            learn()",
        "    return general(value, args, kwargs)",
    ]
    ns["Unlearnt"] = _Unlearnt
    exec(compile("\n".join(lines) + "\n", f"<prodwrap cache lookup of {declared.__qualname__}>", "exec"), ns)
    admit: Admit = ns["admit"]
    return admit
