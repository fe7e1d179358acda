"""The audit trail: one JSON line per prediction, written off the prediction path.

``audit=pw.AuditLog("predictions.jsonl", redact=["ssn"])`` adds an observer stage: once a
call is final, its ``Prediction``, validated input and wall time are queued, and a background
writer (``prodwrap._audit_writer``) builds the line, hashes what is sensitive, summarises
what is huge (``prodwrap._audit_lines``) and hands it to the sink. (A mutable input or output
is copied on the call's thread first, its sensitive values hashed, its strings kept as they
are: the writer summarises them.) A sink that fails, a full queue or a
line after ``close()`` loses the line: counted (``log.stats()``, ``model.stats().audit``) and
logged once per burst (logger ``prodwrap.audit``), never raised. ``python -m prodwrap report``
summarises a log (``prodwrap._cli``).
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._audit_lines import MAX_TEXT, Redactor
from prodwrap._audit_writer import FileSink, Writer
from prodwrap._copies import immutable
from prodwrap._scope import SCOPE, deliver
from prodwrap._stage import Build, Seam, Stage
from prodwrap._stats import counted
from prodwrap.errors import ConfigurationError

if TYPE_CHECKING:
    from prodwrap._record import CallRecord

EXIT_SECONDS = 10.0  # what the interpreter's exit waits at most for queued lines to be written
_SPACE = 2**64  # sampling: the prediction id's 64-bit hash is below sample x this


@dataclass(frozen=True, slots=True)
class AuditStats:
    """``log.stats()`` and ``model.stats().audit``: a snapshot of one audit log (shared by
    every model that writes to it).

    Attributes:
        sink: the file's path or the callable's name.
        written: lines the sink took.
        lost: lines not written: ``full + failed + after_close``.
        full: lines lost because the queue stayed full for ``max_wait`` seconds.
        failed: lines lost because building or writing them raised (a failing sink).
        after_close: lines of calls that ended after ``close()``, or left unwritten by it.
        skipped: calls not recorded by ``sample=`` (not losses).
        pending: lines queued now, not written yet.
    """

    sink: str
    written: int
    lost: int
    full: int
    failed: int
    after_close: int
    skipped: int
    pending: int


def _salt(salt: bytes | str | None) -> bytes:
    if salt is None:
        return os.urandom(16)
    key = salt.encode() if isinstance(salt, str) else salt
    if not isinstance(key, bytes) or not 1 <= len(key) <= 64:
        raise ConfigurationError(f"AuditLog.salt must be 1 to 64 bytes (or text), got {salt!r}")
    return key


class AuditLog:
    """An audit trail (``audit=``): one JSON line per prediction, from a background writer.

    Args:
        sink: a path (``str`` or ``os.PathLike``): lines are appended to that file, created
            with its directories on the first line; or a callable, given each line as a
            ``dict`` of JSON-able values on the writer's thread (its ``flush()`` and
            ``close()`` are called when it has them).
        redact: field names (or aliases) whose values are written as a salted hash, at any
            depth of the input, the output and the tags; fields the specs mark sensitive
            (``SecretStr``, ``Annotated[T, pw.Sensitive]``, ``json_schema_extra={"sensitive":
            True}``) are hashed without being listed.
        sample: the fraction of calls recorded, in (0, 1]; chosen by the prediction id's hash,
            so one id is always in or out.
        salt: the hash's key (bytes or text, at most 64 bytes); random per log by default, so
            hashes compare within one log only. Fix it to compare across runs, and keep it secret.
        max_queue: lines waiting at most (default 10,000).
        max_wait: seconds a call waits for room when the queue is full (default 0.1); then
            the line is lost, and counted.

    Raises:
        ConfigurationError: a sink that is neither a path nor a callable, a redact name that
            is not a non-empty string, a sample outside (0, 1], a bad salt, ``max_queue`` < 1
            or a negative ``max_wait``.
    """

    def __init__(
        self,
        sink: str | os.PathLike[str] | Callable[[dict[str, Any]], object],
        redact: Iterable[str] = (),
        sample: float = 1.0,
        *,
        salt: bytes | str | None = None,
        max_queue: int = 10_000,
        max_wait: float = 0.1,
    ) -> None:
        if isinstance(sink, str | os.PathLike):
            self.path: Path | None = Path(sink)
            target: Callable[[dict[str, Any]], object] = FileSink(self.path)
            self.sink_name = os.fspath(sink)
        elif callable(sink):
            self.path, target = None, sink
            self.sink_name = str(getattr(sink, "__qualname__", None) or type(sink).__name__)
        else:
            raise ConfigurationError(f"AuditLog.sink must be a path or a callable, got {sink!r}")
        names = (redact,) if isinstance(redact, str) else tuple(redact)
        if not all(isinstance(n, str) and n for n in names):
            raise ConfigurationError(f"AuditLog.redact takes field names (non-empty strings), got {redact!r}")
        if isinstance(sample, bool) or not isinstance(sample, int | float) or not 0 < sample <= 1:
            raise ConfigurationError(f"AuditLog.sample must be a fraction in (0, 1], got {sample!r}")
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ConfigurationError(f"AuditLog.max_queue must be an int >= 1, got {max_queue!r}")
        wait = max_wait
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not math.isfinite(wait) or wait < 0:
            raise ConfigurationError(f"AuditLog.max_wait must be seconds >= 0, got {max_wait!r}")
        self.redact = frozenset(names)
        self.sample = float(sample)
        self.max_queue = max_queue
        self.max_wait = float(wait)
        self._salt = _salt(salt)
        self._hasher = Redactor(frozenset(), self._salt)
        self._threshold = None if sample == 1 else int(sample * _SPACE)
        self._skipped = itertools.count()
        self._registered = False
        self._writer = Writer(target, _build, max_queue, self.max_wait, self.sink_name, self._started, _wrote)

    # -- the pipeline -----------------------------------------------------------------------

    def stages(self, build: Build) -> Sequence[Stage]:
        """The log's stage on the observer seam of one model (its redaction from that
        model's ``input=``/``output=`` specs)."""
        return (AuditStage(self, build),)

    def redactor(self, input_spec: Any = None, output_spec: Any = None) -> Redactor:
        """The redaction for a model with these specs: ``redact=`` and the specs' sensitive
        fields (found as validation finds them); strings over ``MAX_TEXT`` characters
        summarised."""
        from prodwrap.policies.validation import _sensitive

        found_in, found_out = _sensitive(input_spec), _sensitive(output_spec)
        names = self.redact | found_in.names | found_out.names
        return Redactor(names, self._salt, found_in.everywhere, found_out.everywhere, max_text=MAX_TEXT)

    def sampled(self, prediction_id: str) -> bool:
        """Whether ``sample=`` records the prediction with this id."""
        if self._threshold is None:
            return True
        digest = hashlib.blake2b(prediction_id.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") < self._threshold

    def hash_of(self, value: Any) -> str:
        """What this log writes in place of ``value`` when it is sensitive (to look a value
        up in the log: ``log.hash_of("123-45-6789")``)."""
        return self._hasher.hash_of(value)

    # -- lifecycle ------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every line queued so far is written and the sink flushed (a file's
        buffer handed to the OS); False if ``timeout`` seconds passed first."""
        return self._writer.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Write what is queued, flush and close the sink, and end the writer's thread
        (idempotent; ``model.close()`` calls it). Lines of later calls are counted as lost
        (``after_close``). Returns False when lines were left unwritten: the sink was still
        busy after ``timeout`` seconds (it ends after its current line)."""
        done = self._writer.close(timeout)
        if self._registered:
            atexit.unregister(self._at_exit)
            self._registered = False
        return done

    def _started(self) -> None:
        """The writer's thread started (the first line): flush at the interpreter's exit."""
        atexit.register(self._at_exit)
        self._registered = True

    def _at_exit(self) -> None:
        self.close(EXIT_SECONDS)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inspection -------------------------------------------------------------------------------

    def stats(self) -> AuditStats:
        counts = self._writer.counts()
        lost = counts["full"] + counts["failed"] + counts["after_close"]
        return AuditStats(sink=self.sink_name, lost=lost, skipped=counted(self._skipped), **counts)

    def describe(self) -> dict[str, Any]:
        """The log's settings, JSON-able (never the salt)."""
        return {
            "sink": self.sink_name,
            "redact": sorted(self.redact),
            "sample": self.sample,
            "max_queue": self.max_queue,
            "max_wait": self.max_wait,
        }

    def __repr__(self) -> str:
        return f"AuditLog({self.sink_name!r}, redact={sorted(self.redact)!r}, sample={self.sample!r})"


def _build(item: tuple[Any, ...]) -> dict[str, Any]:
    """A queued item's line (on the writer's thread)."""
    redactor, prediction, value, valid, reasons, epoch, nested, sides, _ = item
    line: dict[str, Any] = redactor.line(prediction, value, valid, reasons, epoch, sides)
    if nested:  # a fallback of another model: its cost is in that model's line too
        line["nested"] = True
    return line


def _wrote(item: tuple[Any, ...], line: dict[str, Any]) -> None:
    """A line was written: the test captures in force when its call ended receive it
    (``prodwrap.testing.capture()``; those of a later scope never see it)."""
    captures = item[-1]
    if captures:
        deliver(captures, "audit", line)


def _nested() -> bool:
    """Whether this call runs as a fallback of another model that counts its charges."""
    stage = sys.modules.get("prodwrap.cost._stage")  # (not loaded: no model has cost=)
    return stage is not None and stage.COLLECT.get() is not None


class AuditStage(Stage):
    """An :class:`AuditLog` on the observer seam: once a call is final, its ``Prediction``
    (built here, the one every observer shares), input and wall time are queued."""

    name = "audit"
    seam = Seam.OBSERVER
    section = "audit"
    needs_prediction = True

    def __init__(self, log: AuditLog, build: Build) -> None:
        self.log = log
        self.model, self.version = build.name, build.version
        settings = build.settings
        self.redactor = log.redactor(getattr(settings, "input", None), getattr(settings, "output", None))
        self.put = log._writer.put
        self.sampling = log._threshold is not None
        self.clocks = _clock.current

    def observe(self, call: CallRecord) -> None:
        prediction = call.public(self.model, self.version)
        if self.sampling and not self.log.sampled(prediction.id):
            next(self.log._skipped)
            return
        value = call.input
        sides = None
        if not (immutable(value) and immutable(prediction.value)):
            try:  # what was asked and answered, as it was: taken now, before the caller goes on
                sides = self.redactor.sides(prediction, value, call.valid_input)  # (strings whole: bounded later)
            except Exception:  # (taken on the writer's thread instead, where a fault is counted)
                sides = None
        self.put(
            (
                self.redactor,
                prediction,
                value,
                call.valid_input,
                call.reasons,
                self.clocks.clock.time(),
                _nested(),
                sides,
                SCOPE.captures,  # (an empty tuple outside a test's capture)
            )
        )

    def stats(self) -> AuditStats:
        return self.log.stats()

    def describe(self) -> dict[str, Any]:
        return self.log.describe()

    def close(self, timeout: float | None = None) -> None:
        self.log.close(timeout)


__all__ = ["AuditLog", "AuditStage", "AuditStats"]
