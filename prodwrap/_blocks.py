"""The success path's blocks, written from the stages' hooks: the parts of the template in
``prodwrap._compiled`` that an engine's stages decide (its admission hooks, the finish
point's work, a served call's, the watch's guard), each with the names it binds in ``ns``,
the namespace the compiled lines run in.
"""

from __future__ import annotations

import keyword
from typing import TYPE_CHECKING, Any

from prodwrap._stats import MASK

if TYPE_CHECKING:
    from prodwrap._engine import Engine
    from prodwrap._finish import Finisher


def hooks(names: list[str], call: str, fault: str, caught: str = "Exception") -> str:
    """Each hook called in turn, guarded on its own: a hook's fault never costs the caller
    its output (``fault``: what is done with what it raised, of the ``caught`` class)."""
    return "".join(
        f"    try:\n        {name}{call}\n    except {caught} as exc:\n        {fault.format(name=name)}\n"
        for name in names
    )


def finish(finisher: Finisher, ns: dict[str, Any]) -> str:
    """The finish point's success-path work, inline (``Finisher._finish`` with no record):
    one latency sample, then each ``fast_observe`` hook; or a call of ``finish`` when the
    observers ask call by call for a record (``_finish_asking``)."""
    if finisher.finish != finisher._finish:
        return "    finish(None, value, out, start)\n"
    ns["ring"], ns["seq"], ns["MASK"] = finisher.ring, finisher.seq, MASK
    ticks = [plain[2] for plain in (getattr(h, "plain", None) for h in finisher.fast_observe) if plain]
    if not ticks:
        text = "    ring[next(seq) & MASK] = perf_counter() - start  # a call the primary served at once\n"
    else:  # the hooks' catch-up, once every 1024 calls (the sequence number's low bits)
        text = "    n = next(seq)\n    ring[n & MASK] = perf_counter() - start  # a call the primary served at once\n"
        text += "    if not n & 1023:\n"
        for i, tick in enumerate(ticks):
            ns[f"tick{i}"] = tick
            text += f"        tick{i}()\n"
    if finisher.fast_observe:
        ns["kept"] = finisher._kept
        # An error meant for the caller (or an interrupt), raised once every hook has run; one
        # hook with a plain case keeps that bookkeeping in the branch that calls it.
        start, end = "    raised = None\n", "    if raised is not None:\n        raise raised\n"
        alone = len(finisher.fast_observe) == 1 and getattr(finisher.fast_observe[0], "plain", None) is not None
        text += "" if alone else start
        for i, hook in enumerate(finisher.fast_observe):
            name = f"observe{i}"
            ns[name] = hook
            # (an interrupt, too, is kept for the end: the hooks after it run)
            call = hooks([name], "(value, out)", "raised = kept(raised, {name}, exc, value, out)", "BaseException")
            text += plain_case(getattr(hook, "plain", None), i, ns, start + call + end if alone else call)
        text += "" if alone else end
    return text


def plain_case(plain: Any, i: int | str, ns: dict[str, Any], call: str, prefix: str = "") -> str:
    """A hook's call, preceded by its ``plain`` case when it has one: while each context
    variable holds its value (by identity), one ``None`` appended to its ``tally`` list is all
    the hook does (its ``tick`` runs with the latency sample, see :func:`finish`). A guard
    may carry a third item, an object whose ``set`` is False while the variable has never
    been set (so it holds its default, the guard's value): then the variable is read only
    once it has been (``_context.EVER``)."""
    if plain is None:
        return call
    guards, tally, _ = plain
    if type(tally) is not list:  # (the append below is specialized for an exact list)
        raise TypeError(f"a hook's plain case tallies in a list, got {type(tally).__name__}")
    tests = []
    for j, (var, value, *ever) in enumerate(guards):
        ns[f"{prefix}get{i}_{j}"], ns[f"{prefix}is{i}_{j}"] = var.get, value
        test = f"{prefix}get{i}_{j}() is {prefix}is{i}_{j}"
        if ever:  # (a variable never set yet holds its default: one slot read, no get())
            ns[f"{prefix}ever{i}_{j}"] = ever[0]
            test = f"(not {prefix}ever{i}_{j}.set or {test})"
        tests.append(test)
    ns[f"{prefix}tally{i}"] = tally
    return f"    if {' and '.join(tests)}:\n        {prefix}tally{i}.append(None)\n    else:\n{indent(call)}"


def admit_lines(hook: Any, i: int, ns: dict[str, Any], pad: str) -> str:
    """``said = admit{i}(value, args, kwargs)``, or the hook's own lines in its place when it
    carries them (``_stage.inline_admit``: its names prefixed ``a{i}_``), at indent ``pad``."""
    inline = getattr(hook, "inline", None)
    if inline is None:
        ns[f"admit{i}"] = hook
        return f"{pad}said = admit{i}(value, args, kwargs)\n"
    lines, names = inline
    prefix = f"a{i}_"
    ns.update((prefix + name, value) for name, value in names.items())
    return "".join(f"{pad}{line}\n" for line in lines.format(p=prefix).splitlines())


def admits(fast: Any, ns: dict[str, Any]) -> str:
    """Several ``fast_admit`` hooks, each called once the one before said True (one that
    raises ends the run: the walk asks its stage again); what the hooks before a refusal
    took goes back (``_ending.refused``)."""
    if fast.admit_one is not None or not fast.admit:
        return ""
    text = "    passed = 0\n    try:\n"
    for i, hook in enumerate(fast.admit):
        pad = "    " * (i + 2)
        if i:
            text += f"{pad[:-4]}if said is True:\n{pad}passed = {i}\n"
        text += admit_lines(hook, i, ns, pad)
    text += "    except Exception:\n        said = False\n"
    # (the first hook serving the call, a cache hit: nothing to give back, no call to make)
    text += "    if said is not True and (passed or type(said) is not Serve):\n"
    return text + "        said = refused(fast, passed, said)"


def served_block(engine: Engine, ns: dict[str, Any]) -> str:
    """A call an admission hook served, when no observer needs its record (``serves_fast``):
    one latency sample, its (outcome, served_by) tallied, then each ``fast_served`` hook.
    For each pair an admission stage declares it serves (``Stage.serves``), the tally is
    made now and bumped inline, and a hook's ``plain`` case for its outcome runs in place of
    the hook (see :func:`plain_case`); any other pair takes ``ended`` and the hooks."""
    finisher = engine.finisher
    if not finisher.serves_fast:
        return ""
    ns["ring"], ns["seq"], ns["MASK"], ns["ended"], ns["kept"] = (
        finisher.ring,
        finisher.seq,
        MASK,
        finisher.stats.ended,
        finisher._kept,
    )
    names = [f"served{i}" for i in range(len(finisher.fast_served))]
    ns.update(zip(names, finisher.fast_served, strict=True))
    each = [
        hooks([name], "(value, said)", "raised = kept(raised, {name}, exc, value, said[0])", "BaseException")
        for name in names
    ]
    start, end = "    raised = None\n", "    if raised is not None:\n        raise raised\n"
    alone = len(names) == 1  # one hook: its error bookkeeping in the branches that call it
    if alone:
        each = [start + each[0] + end]
    pairs = list(dict.fromkeys(pair for stage in engine.stages for pair in stage.serves))
    # each hook's plain case for each pair's outcome (None: the hook has none)
    plains = [getattr(hook, "plain", None) for hook in finisher.fast_served]
    cases = [[None if plain is None else plain(outcome) for plain in plains] for outcome, _ in pairs]
    ticks = list(dict.fromkeys(case[2] for row in cases for case in row if case is not None))
    sample = "    ring[next(seq) & MASK] = perf_counter() - start\n"
    if ticks:
        sample = "    n = next(seq)\n    ring[n & MASK] = perf_counter() - start\n    if not n & 1023:\n"
        for j, tick in enumerate(ticks):
            ns[f"served_tick{j}"] = tick
            sample += f"        served_tick{j}()\n"
    text = sample + (start if names and not alone else "")
    ending = "    ended(said[1:])  # (outcome, served_by)\n" + "".join(each)
    for k, (pair, row) in enumerate(zip(pairs, cases, strict=True)):
        ns[f"OUTCOME{k}"], ns[f"BY{k}"] = pair
        ns[f"end{k}"] = finisher.stats.tally(pair)
        text += f"    {'el' if k else ''}if said[1] == OUTCOME{k} and said[2] == BY{k}:\n        next(end{k})\n"
        for i, (call, case) in enumerate(zip(each, row, strict=True)):
            text += indent(plain_case(case, f"{i}_{k}", ns, call, "served_"))
    text += ("    else:\n" + indent(ending)) if pairs else ending
    if names and not alone:
        text += end
    return "".join(" " * 12 + line + "\n" for line in text.splitlines()).rstrip("\n")


def indent(text: str) -> str:
    return "".join(("    " + line if line.strip() else "") + "\n" for line in text.splitlines())


def done_block(fast: Any, ns: dict[str, Any]) -> str:
    """A permit to give back and nothing else (``only_done``): each ``fast_done`` hook, inline."""
    if not fast.only_done:
        return ""
    names = [f"done{i}" for i in range(len(fast.done))]
    ns.update(zip(names, fast.done, strict=True))
    ns["failed_hook"] = fast.finisher.failed
    return hooks(names, "()", "failed_hook({name}, exc, value)")


def guard(watch: Any, ns: dict[str, Any]) -> str:
    """The watch's ``when`` (objects and attribute names, one of which is set whenever the
    watch may take a call) as one condition read inline, the watch called only when it holds
    ("" when the watch has no ``when``: asked on every call)."""
    when = getattr(watch, "when", None)
    if not when:
        return ""
    terms = []
    for i, (holder, attribute) in enumerate(when):
        if not isinstance(attribute, str) or not attribute.isidentifier() or keyword.iskeyword(attribute):
            raise ValueError(f"a watch's when names attributes, got {attribute!r}")
        ns[f"holder{i}"] = holder
        terms.append(f"holder{i}.{attribute}")
    return f"({' or '.join(terms)})"
