"""The walk's vocabulary: what it asks of a driver (:class:`Act`) and what the engine decides
after a failure (:class:`Step`)."""

from __future__ import annotations

from enum import IntEnum


class Act(IntEnum):
    """What the walk asks of a driver. The details are on the call's record, so a step
    allocates nothing; after each act the driver sets ``rec.now`` (the clock's monotonic
    reading), and after a CALL also ``rec.ok`` and ``rec.result`` (output or exception)."""

    CALL = 1  # invoke rec.target with rec.input: within rec.seconds of its start, by rec.limit;
    #           an attempt the caller gives up on at its limit leaves its job in rec.late
    SLEEP = 2  # sleep rec.wait seconds
    WAIT = 3  # wait up to rec.wait seconds for the permit rec.gate: rec.ok says if it was given
    RACE = 4  # a hedged CALL: one more attempt each rec.wait seconds, up to rec.extra more
    #           (see prodwrap._race); rec.raced, rec.won say how it went


class Step(IntEnum):
    """What :meth:`Engine.on_failure` decided (details on the record, as for :class:`Act`)."""

    RETRY = 1  # try the primary again after rec.wait seconds
    NEXT = 2  # try the fallback rec.target
    GIVE_UP = 3  # raise rec.result


CALL, SLEEP, WAIT, RACE = Act.CALL, Act.SLEEP, Act.WAIT, Act.RACE
RETRY, NEXT, GIVE_UP = Step.RETRY, Step.NEXT, Step.GIVE_UP
