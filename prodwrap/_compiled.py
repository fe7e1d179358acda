"""The success path, compiled: one function per engine and driver, from one template.

:class:`~prodwrap._fastpath.FastPath` collects the stages' success-path hooks; this module
turns it into the function a call runs (``engine.run_sync``, ``engine.run_async``): the
template below with every branch the engine's configuration decides at construction folded
away (no validator: no validation line; no hook: no loop; one observer hook: one guarded
call, inline; several admission hooks: each in turn, inline), and the finish point's
success-path work (one latency sample, the observers' ``fast_observe`` hooks, or their
``fast_served`` hooks for a call an admission hook served) written out in the same frame.
A call that leaves the success path goes to the drivers' general functions, as before: the
compiled function is one frame instead of four, and its lines are the drivers' own success
path, nothing else.

The sync and the async function come from the same lines and differ only where the drivers
do: how the predict is called (inline or on a worker under a timeout, versus awaited under a
time limit with ``asyncio.timeout``'s semantics, ``prodwrap._expiry``). Stages are read
through the same tuples the drivers use; the template names no capability. The blocks the
stages' hooks decide are written by ``prodwrap._blocks``.
"""

from __future__ import annotations

import itertools
import linecache
import weakref
from collections.abc import Callable
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prodwrap import _clock, _drivers, _ending
from prodwrap._blocks import admit_lines, admits, done_block, finish, guard, indent, served_block
from prodwrap._context import DEADLINE, LIVE, Binding, outer_deadline
from prodwrap._expiry import arm, disarm, timed_out
from prodwrap._failing import FAILED, failing
from prodwrap._record import CallRecord
from prodwrap._stage import Serve
from prodwrap._target import COROUTINE, NO_INPUT, keyword_input, returned_coroutine
from prodwrap._workers import POOL

if TYPE_CHECKING:
    from prodwrap._engine import Engine

Runner = Callable[..., Any]  # (x, args, kwargs, w=None) -> output (a coroutine when async)

# One line per statement; "#?FLAG " keeps a line only when FLAG is set ("#?!FLAG ": unset).
# {A} is "async " or "", {W} "await " or "".
_TEMPLATE = (
    """\
{A}def run(x, args, kwargs, w=None):
    start = perf_counter()
#?UNWALKED     if LIVE and outer_deadline() is not None:
#?WALKED     if (LIVE and outer_deadline() is not None) or (w is not None and w.walk):
        return {W}general(engine, start, x, args, kwargs, w)
#?WATCH     if {WGUARD}:
#?WATCH         {H} = watch()
#?WATCH         if {H} is not None:  # the engine's watch took the call
#?WATCH             return {W}watched(engine, {H}, x, args, kwargs)
#?VALIDATE     try:
#?VALIDATE         value = validate(x)
#?VALIDATE     except Exception:  # refused: the walk takes it, after the else clause (nothing chains onto it)
#?VALIDATE         pass
#?VALIDATE     else:
#?!VALIDATE     value = x
#@ (with a validator, the lines from here to the end are its else clause)
#?ADMIT_ONE     try:  # one admission hook alone: called here (one that raises sends the call to the walk)
#?ADMIT_ONE {ADMIT_ONE}
#?ADMIT_ONE     except Exception:
#?ADMIT_ONE         said = False
#?ADMIT_MANY {ADMITS}
#?ADMIT     if said is not True:
#?ADMIT         if type(said) is Serve:  # an admission hook served it (a cache hit)
#?QUIET             if {QUIET}:  # no observer needs its record
#?QUIET {SERVED}
#?QUIET                 return said[0]
#?ADMIT             return served(engine, start, value, said, w)
#?ADMIT         # the walk takes it (after a Route, its attempts go there)
#?ADMIT         return {W}run_walk(engine, walked(start, said, w), value, args, kwargs, validated=True)
#?CLOCK     began = clocks.clock.monotonic()
#?TIMED     late = failure = None
    try:
#?!TIMED         out = {W}(fn(value, *args, **kwargs) if args or kwargs else fn(value))
#?UNTIMED_SYNC         if type(out) is COROUTINE:  # a sync predict's coroutine: a failed attempt
#?UNTIMED_SYNC             raise returned_coroutine(NAME, "primary", out)
#?TIMED_SYNC         done, out = POOL.run(SECONDS, None, fn, (value, *args), kwargs, late_error)
#?TIMED_SYNC         if not done:  # the first attempt on a worker, until the nearer of the two timeouts
#?TIMED_SYNC             abandoned()
#?TIMED_SYNC             failure = timeout_error(None, SECONDS)
#?TIMED_SYNC             late = out  # the job, running on until its predict returns
#?TIMED_SYNC         elif type(out) is COROUTINE:  # a sync predict's coroutine: a failed attempt
#?TIMED_SYNC             raise returned_coroutine(NAME, "primary", out)
#?TIMED_ASYNC         expiry = arm(SECONDS)  # asyncio.timeout(SECONDS)'s semantics, at under half its cost
#?TIMED_ASYNC         binding = Binding()  # bind(began + SECONDS), without its frame
#?TIMED_ASYNC         binding.at = began + SECONDS
#?TIMED_ASYNC         live_add(binding)
#?TIMED_ASYNC         token = deadline_set(binding)
#?TIMED_ASYNC         try:
#?TIMED_ASYNC             out = await (fn(value, *args, **kwargs) if args or kwargs else fn(value))
#?TIMED_ASYNC         except BaseException as exc:
#?TIMED_ASYNC             if not timed_out(expiry, exc):
#?TIMED_ASYNC                 raise  # the predict's own error (its own TimeoutError too), or a cancel not ours
#?TIMED_ASYNC             abandoned()
#?TIMED_ASYNC             failure = timeout_error(None, SECONDS)
#?TIMED_ASYNC         else:
#?TIMED_ASYNC             disarm(expiry)
#?TIMED_ASYNC         finally:
#?TIMED_ASYNC             deadline_reset(token)
#?TIMED_ASYNC             live_discard(binding)  # binding.end()
#?OUTPUT_TIMED         if failure is None:
#?OUTPUT_TIMED             out = validate_output(out)
#?OUTPUT_UNTIMED         out = validate_output(out)
    except Exception as exc:
        failure = exc
    except BaseException as exc:  # cancelled or interrupted: the stages give back what they took
        interrupted(engine, fast, start, value, exc, w)
        raise
#?!TIMED     else:  # (untimed, the success path is the else clause: no failure to set and test on it)
#?!TIMED {SUCCESS}
#?!TIMED     if failure is not None:  # (always, here: the else clause returned)
#?TIMED     if failure is not None:
"""
    + FAILED
    + """        try:  # (the failure's traceback holds this frame: one that kept the failure would be a cycle)
            return {W}drive(engine, *handover(engine, start, value, failure, {BEGAN}, {LATE}, w), args, kwargs)
        finally:
            failure = None
#?TIMED {SUCCESS}
"""
)
# The success path's end: the call served at once (indented into the attempt's else clause
# when untimed). {BEGAN} is "began" when the attempt's start is read, else "None".
_SUCCESS = """#?WALKED     if w is not None:
#?WALKED         finish_fast(fast, start, value, out, {BEGAN}, args, kwargs, w)
#?WALKED         return out
#?HOOKED     finish_fast(fast, start, value, out, {BEGAN}, args, kwargs)
{DONE}{FINISH}    return out
"""
_MARK = "#@ (with a validator, the lines from here to the end are its else clause)\n"


def _lines(flags: dict[str, bool], template: str = _TEMPLATE) -> str:
    kept = []
    for line in template.splitlines(keepends=True):
        if not line.startswith("#?"):
            kept.append(line)
            continue
        flag, _, code = line[2:].partition(" ")
        if (not flags[flag[1:]]) if flag.startswith("!") else flags[flag]:
            kept.append(code)
    return "".join(kept)


def compile_runners(engine: Engine) -> tuple[Runner, Runner, Runner]:
    """What a call of ``engine`` runs: ``run_sync(x, args, kwargs, w=None)``, the model's
    ``__call__`` (``call(x, *args, **kwargs)``: the same lines under the call's own
    signature, so ``model(x)`` is one frame) and ``run_async``."""
    run_sync, call = _compile(engine, False)
    return run_sync, call, _compile(engine, True)[0]


def _entry(engine: Engine) -> tuple[str, dict[str, Any]]:
    """The first lines of the model's ``__call__``: the input taken from the keywords when
    it was not passed first (``keyword_input``). It has no watch handle: ``w`` is a global
    None in its lines, and the watch's handle is ``h`` (no store of None on every call)."""
    head = "def call(x=NO_INPUT, /, *args, **kwargs):\n"
    head += "    if x is NO_INPUT:\n        x = keyword_input(kwargs)\n"
    return head, {"NO_INPUT": NO_INPUT, "keyword_input": partial(keyword_input, engine), "w": None}


def _compile(engine: Engine, is_async: bool) -> tuple[Runner, Runner]:
    """The compiled success path when the engine has one for this driver, else the general
    path straight away; and, for the sync driver, the model's ``__call__`` (else ``run``)."""
    fast = engine.async_fast if is_async else engine.sync_fast
    general: Any = _drivers.general_async if is_async else _drivers.general_sync
    if fast is None:  # (the async general path reads its start when the coroutine starts)

        def run(x: Any, args: tuple[Any, ...], kwargs: dict[str, Any], w: Any = None) -> Any:
            return general(engine, None if is_async else perf_counter(), x, args, kwargs, w)

        def call(x: Any = NO_INPUT, /, *args: Any, **kwargs: Any) -> Any:
            if x is NO_INPUT:
                x = keyword_input(engine, kwargs)
            return general(engine, perf_counter(), x, args, kwargs, None)

        return run, call
    ns: dict[str, Any] = {
        "engine": engine,
        "fast": fast,
        "perf_counter": perf_counter,
        "LIVE": LIVE,
        "outer_deadline": outer_deadline,
        "general": general,
        "watch": fast.watch,
        "watched": _drivers.watched_async if is_async else _drivers.watched_sync,
        "validate": fast.validate,
        "CallRecord": CallRecord,
        "run_walk": _drivers.walk_async if is_async else _drivers.walk_sync,
        "drive": _drivers.drive_async if is_async else _drivers.drive_sync,
        "refused": _ending.refused,
        "walked": _ending.walked,
        "Serve": Serve,
        "served": _ending.served,
        "clocks": _clock.current,
        "fn": fast.fn,
        "POOL": POOL,
        "SECONDS": fast.seconds,
        "late_error": engine.late,
        "abandoned": engine.stats.abandoned,
        "timeout_error": engine.timeout_error,
        "Binding": Binding,
        "live_add": LIVE.add,
        "live_discard": LIVE.discard,
        "deadline_set": DEADLINE.set,
        "deadline_reset": DEADLINE.reset,
        "validate_output": fast.validate_output,
        "interrupted": _ending.interrupted,
        "handover": _ending.handover,
        "finish_fast": _ending.finish_fast,
        "finish": fast.finish,
        "COROUTINE": COROUTINE,
        "returned_coroutine": returned_coroutine,
        "NAME": engine.name,
    }
    timed = fast.seconds is not None
    if timed and is_async:
        ns["arm"], ns["disarm"], ns["timed_out"] = arm, disarm, timed_out
    flags = {
        "WATCH": fast.watch is not None,
        "VALIDATE": fast.validate is not None,
        "ADMIT": bool(fast.admit),
        "ADMIT_ONE": fast.admit_one is not None,
        "QUIET": bool(fast.admit) and engine.finisher.serves_fast,
        "ADMIT_MANY": bool(fast.admit) and fast.admit_one is None,
        "CLOCK": bool(fast.attempted) or timed,
        "TIMED": timed,
        "TIMED_SYNC": timed and not is_async,
        "UNTIMED_SYNC": not timed and not is_async,
        "TIMED_ASYNC": timed and is_async,
        "OUTPUT_TIMED": fast.validate_output is not None and timed,
        "OUTPUT_UNTIMED": fast.validate_output is not None and not timed,
        "HOOKED": fast.hooked and not fast.only_done,
    }
    flags.update(failing(engine, fast, is_async, ns))
    ending = not flags["HOOKED"]
    when = guard(fast.watch, ns) if fast.watch is not None else ""
    parts = {
        "BEGAN": "began" if flags["CLOCK"] else "None",
        "LATE": "late" if timed else "None",
        "A": "async " if is_async else "",
        "W": "await " if is_async else "",
        "SLEEP": "asleep" if is_async else "sleep",
        "ADMITS": admits(fast, ns),
        "ADMIT_ONE": "" if fast.admit_one is None else admit_lines(fast.admit_one, 0, ns, " " * 8).rstrip("\n"),
        "SERVED": served_block(engine, ns),
        "DONE": done_block(fast, ns) if ending else "",
        "FINISH": finish(fast.finisher, ns) if ending else "",
    }

    def text(entry: bool) -> str:
        # The model's __call__ (entry) starts every call itself: it has no watch handle yet,
        # so it asks the watch (when one is set) and never finishes a watched call.
        walked = flags["WATCH"] and not entry
        asked = (when or "True") if entry else f"w is None and {when}" if when else "w is None"
        kept = {**flags, "WALKED": walked, "UNWALKED": not walked}
        success = _lines(kept, _SUCCESS).format(**parts)
        whole = _lines(kept).format(
            WGUARD=asked,
            H="h" if entry else "w",
            QUIET="True" if entry else "w is None",
            SUCCESS=(success if timed else indent(success)).rstrip("\n"),
            **parts,
        )
        head, _, rest = whole.partition(_MARK)
        if not flags["VALIDATE"]:
            return head + rest
        # The lines after validation are the else clause of its try: a refused input leaves
        # it at once and goes to the walk (no sentinel to set and test on the success path).
        refused = f"    return {parts['W']}run_walk(engine, CallRecord(start, w), x, args, kwargs)\n"
        return head + indent(rest) + refused

    source = text(False)
    entry = ""
    if not is_async:  # the same lines again, as the model's __call__
        head, names = _entry(engine)
        ns.update(names)
        entry = head + text(True).split("\n", 1)[1]
    shown = repr(engine.name)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    filename = f"<prodwrap success path of {shown}, {next(_engines)}>"
    lines = f"{source}\n\n{entry}" if entry else source
    # Tracebacks and inspect show the compiled lines (as attrs does for the methods it writes),
    # for as long as the function lives: its lines go with it.
    linecache.cache[filename] = (len(lines), None, lines.splitlines(keepends=True), filename)
    exec(compile(lines, filename, "exec"), ns)  # the template's own lines, with the engine's parts bound by name
    runner: Runner = ns["run"]
    entered: Runner = ns.get("call", runner)
    runner.__source__, entered.__source__ = source, entry or source  # type: ignore[attr-defined]  # (tests, debugging)
    weakref.finalize(runner, linecache.cache.pop, filename, None)
    return runner, entered


_engines = itertools.count(1)  # (each compiled function's file name is its own)
