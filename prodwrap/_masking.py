"""What a span or a log line may show of an exception a call met (DESIGN §3).

Two rules, applied to an exception's message and to its stack trace (the whole
``__cause__``/``__context__`` chain and every exception of a group, as ``traceback`` prints it):

- the values of the input's sensitive fields, and of the output's when the call has one, are
  masked wherever a text repeats them (a predict or an observer may put one in its error's
  message): on spans and in log lines alike;
- on a span without ``capture_content=True``, no input or output content: the rejected value an
  ``InputValidationError`` or ``OutputValidationError`` quotes at the end of each message line
  (`` input='...'``, `` value='...'``) is left out; locations, error types and messages stay.

The user's own exception keeps its own words otherwise: prodwrap cannot know what else in them
is content.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from prodwrap.errors import _FieldErrors

if TYPE_CHECKING:
    from prodwrap.policies._redact import Sensitive

Mask = Callable[[str], str]


class Masking:
    """The sensitive fields of a model's input and output, and how texts are masked for one
    call's input and output.

    Args:
        sensitive: the input spec's sensitive fields (None or empty: nothing to mask).
        sensitive_out: the output spec's (None or empty: nothing to mask).
    """

    __slots__ = ("sensitive", "sensitive_out")

    def __init__(self, sensitive: Sensitive | None = None, sensitive_out: Sensitive | None = None) -> None:
        self.sensitive = sensitive if sensitive else None
        self.sensitive_out = sensitive_out if sensitive_out else None

    def __bool__(self) -> bool:
        return self.sensitive is not None or self.sensitive_out is not None

    def secrets(self, value: Any, *outs: Any) -> list[str]:
        """The texts of the sensitive fields of ``value`` (a call's input, validated or as
        given) and of ``outs`` (outputs, when the call has any: a shadow's and the primary's),
        longest first; [] when they have none."""
        found = _found(self.sensitive, value)
        for out in outs:
            found |= _found(self.sensitive_out, out)
        return sorted((text for text in found if text), key=len, reverse=True)

    def mask_for(self, value: Any, *outs: Any) -> Mask | None:
        """A function masking the sensitive texts of ``value`` (the input) and ``outs`` (the
        outputs) in a text, or None when they have none (never raises: a value whose sensitive
        values cannot be read withholds the text)."""
        try:
            secrets = self.secrets(value, *outs)
        except Exception:
            return withheld
        if not secrets:
            return None
        from prodwrap.policies._redact import _masked

        return lambda text: _masked(text, secrets)


def _found(sensitive: Sensitive | None, value: Any) -> set[str]:
    """The texts of ``value``'s fields that ``sensitive`` marks (the whole value's when the
    spec's type itself is secret)."""
    if sensitive is None or value is None:
        return set()
    from prodwrap.policies._redact import _values_under

    if sensitive.everywhere:  # (the spec's type is secret: a SecretStr, or a container of them)
        revealed = getattr(value, "get_secret_value", None)
        return {str(revealed() if callable(revealed) else value)} | _values_under({"": value}, frozenset({""}))
    return _values_under(value, sensitive.names)


def withheld(text: str) -> str:
    """What a line shows when it cannot be shown masked: nothing of the text."""
    return "(the text is withheld: the input's sensitive values could not be read to mask them)"


NO_MASKING = Masking()


def quoted_values(exc: BaseException) -> list[str]:
    """What the validation errors in ``exc`` (its chain, its group) quote of rejected values."""
    found: list[str] = []
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, _FieldErrors):
            found.extend(item._quoted())
        stack.extend((item.__cause__, item.__context__))
        if isinstance(item, BaseExceptionGroup):
            stack.extend(item.exceptions)
    return sorted(set(found), key=len, reverse=True)


def exception_text(exc: BaseException, secrets: Sequence[str] = (), quoted: Sequence[str] = ()) -> tuple[str, str]:
    """``exc``'s message and its stack trace (as ``traceback.format_exception``), with the
    ``quoted`` ends of lines left out and the ``secrets`` masked."""
    message = str(exc)
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return cleaned(message, secrets, quoted), cleaned(trace, secrets, quoted)


def cleaned(text: str, secrets: Sequence[str] = (), quoted: Sequence[str] = ()) -> str:
    """``text`` without the ``quoted`` ends of its lines, and with ``secrets`` masked."""
    for end in quoted:  # (only at a line's end: a message nested in a group has a prefix, not a suffix)
        text = re.sub(re.escape(end) + "$", "", text, flags=re.MULTILINE)
    if secrets:
        from prodwrap.policies._redact import _masked

        text = _masked(text, secrets)
    return text
