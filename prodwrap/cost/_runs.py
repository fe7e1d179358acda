"""A ledger's batch of calls as runs of one kind, each call under its own tags' text.

The fold (:meth:`~prodwrap.cost._ledger.Ledger._fold`) counts a run of calls of one kind
(one model, one context) at once, keyed by the run's first call's tags. Kinds are told apart
by ``==``, and tag values equal under ``==`` may differ in text: ``1``, ``1.0`` and ``True``;
``"red"`` and a ``str`` enum member ``C.RED`` (text ``"C.RED"``); any object equal to a
``str``. A run is counted whole only when its first call's text is every call's text: every
tag value of every call in it is exactly a ``str`` or None (``type(v) is str``: a ``str``
subclass may print otherwise), checked for each call, in C. Any other run is split by each
call's own text, so a call's key never depends on the calls it arrived with.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import groupby, repeat
from operator import countOf, is_, itemgetter
from typing import TYPE_CHECKING, Any

from prodwrap._context import tag_text

if TYPE_CHECKING:
    from prodwrap.cost._ledger import Entry, Run

_alike = itemgetter(0)  # an entry's kind: all of it but its amount
_amount = itemgetter(1)
_tags = itemgetter(1)  # a kind's tags
# Tag values of exactly these types print alike whenever they are equal (not so 1 and True,
# 1 and 1.0, a str and a str enum member: those are told apart by their text).
_TEXTS = frozenset({str, int, type(None)})


def grouped(batch: list[Entry]) -> Iterable[Run]:
    """The batch as runs of entries of one kind, taken and grouped in C: runs of calls of one
    kind (one model, one context) cost the fold a few tens of nanoseconds each. Telling kinds
    apart compares their tags, which a tag value may refuse (its ``==`` raising): the entries
    then count one by one, each exactly once."""
    n = len(batch)
    try:
        if batch and _textual(batch[0][0][1]) and countOf(batch, batch[0]) == n and _texts_alike(batch):
            kind, each = batch[0]
            return ((kind, n, each * n, repeat(each, n)),)
        return list(_runs(batch))
    except Exception:
        return [(kind, 1, each, (each,)) for kind, each in batch]


def _runs(batch: list[Entry]) -> Iterator[Run]:
    """Each run of entries of one kind, and of one text of its tags."""
    for kind, run in groupby(batch, _alike):
        entries = list(run)
        if len(entries) == 1 or (_textual(kind[1]) and _texts_alike(entries)):
            amounts = list(map(_amount, entries))
            yield kind, len(amounts), sum(amounts), amounts
        else:  # tags equal under == may differ in text (1, 1.0 and True): split by it
            yield from _by_text(entries, tuple(kind[1]))


def _by_text(entries: list[Entry], names: tuple[str, ...]) -> Iterator[Run]:
    """Runs of entries whose tags (``names``) have one text, in order."""

    def text(entry: Entry) -> tuple[str, ...]:
        return tuple(map(tag_text, map(entry[0][1].__getitem__, names)))

    for _, alike in groupby(entries, text):
        same = list(alike)
        amounts = list(map(_amount, same))
        yield same[0][0], len(amounts), sum(amounts), amounts


def _textual(tags: Mapping[str, Any]) -> bool:
    """Whether every value of these tags is exactly a ``str``, an ``int`` or None (tags merely
    equal to these may still print otherwise: see :func:`_texts_alike`)."""
    return not tags or set(map(type, tags.values())) <= _TEXTS


def _texts_alike(entries: list[Entry]) -> bool:
    """Whether entries of equal kinds, the first one's tags textual, all have its text: their
    tags are that mapping itself (a loop in one ``pw.context`` block), or equal mappings (the
    same names) whose values are each exactly a ``str``, an ``int`` or None too. (Tens of
    nanoseconds a call.)"""
    first: Mapping[str, Any] = entries[0][0][1]
    if not first or all(map(is_, map(_tags, map(_alike, entries)), repeat(first))):
        return True
    every = list(map(_tags, map(_alike, entries)))
    return all(set(map(type, map(itemgetter(name), every))) <= _TEXTS for name in first)
