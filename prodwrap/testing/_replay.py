"""Record and replay: a cassette of predict calls, so tests of code around a slow, costly or
nondeterministic model (an LLM) run offline and repeat exactly.

``with replay(path, model):`` swaps the model's engine for one whose predict is the
cassette's (same stages, validators, fallbacks and stats: only the primary predict is
replaced), and swaps the original back when the block ends. Validation, cost, stats and
observers run around replayed calls as around live ones.

A call is keyed by the canonical key (``prodwrap.policies._canonical``) of the model's name,
the validated input and the pass-through arguments (of their JSON form, secrets revealed, when
the input holds what has no canonical form, such as a ``SecretStr``), hashed again with the
cassette's random salt (BLAKE2b keyed), so the key reveals nothing of a sensitive field. Calls
with one key are replayed in the order they were recorded; once they are used up the last one
repeats. A recorded exception is raised again (its class called with its message, the
call's sensitive values masked in it, and its retry-relevant attributes set again). The
cassette is a JSON-lines file: a header line ``{"prodwrap_cassette": 1, "salt": ...}``, then
one call per line; the input and arguments are written with their sensitive fields hashed (the
specs' sensitive fields and ``redact=``), the output as JSON (replayed through the model's
``output=`` validation, or the predict's return annotation, when there is one).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

from prodwrap._audit_lines import Redactor
from prodwrap._engine import Engine
from prodwrap.errors import ConfigurationError, UnkeyableError
from prodwrap.policies._canonical import canonical_key
from prodwrap.policies.timeout import Timeout
from prodwrap.testing._calls import Shower, _is_model
from prodwrap.testing._recorded import error_line, raised, sensitive_values

HEADER = "prodwrap_cassette"  # the first line's mark: {"prodwrap_cassette": 1, "salt": hex}
Mode = Literal["record", "replay", "auto"]
_MODES = ("record", "replay", "auto")


class CassetteMiss(AssertionError):
    """A call the cassette has no recording of, in ``mode="replay"`` (a test failure: the
    message names the model and the input, its sensitive fields masked)."""


class Cassette:
    """The calls of one cassette file, and what the block did with them.

    Attributes:
        path: the file. mode: ``"record"``, ``"replay"`` or ``"auto"``.
        hits: calls answered from the cassette. recorded: calls recorded into it.
        misses: what ``replay`` mode had no recording of (one line each).
    """

    def __init__(self, path: Path, mode: Mode) -> None:
        self.path = path
        self.mode = mode
        self.hits = 0
        self.recorded = 0
        self.misses: list[str] = []
        self._calls: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._played: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._out: IO[str] | None = None
        self.salt: bytes | None = None  # the key of the calls' keys (None: an old cassette's plain keys)
        self._header = True  # the file still needs its header line
        if mode != "record" and path.exists():
            self._load(path)
        if self._header:
            self.salt = os.urandom(16)

    def _load(self, path: Path) -> None:
        first = True
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
                if first and isinstance(line, dict) and HEADER in line:
                    self.salt, self._header = bytes.fromhex(line["salt"]), False
                    first = False
                    continue
                where = (line["model"], line["key"])
            except (ValueError, KeyError, TypeError):
                raise ConfigurationError(f"cassette {path}: line {number} is not a recorded call") from None
            if first:  # recorded calls and no header: an old cassette, keyed without a salt
                if self.mode == "auto":
                    raise ConfigurationError(
                        f"cassette {path} has no salt header (recorded by an older prodwrap, its keys reveal"
                        " sensitive inputs): re-record it with mode='record'"
                    )
                self._header = False
            first = False
            self._calls.setdefault(where, []).append(line)

    def keyed(self, key: str) -> str:
        """A call's key in this cassette: its canonical key hashed with the cassette's salt
        (BLAKE2b keyed), so the file reveals nothing of the sensitive fields it hashed."""
        if self.salt is None:
            return key
        return hashlib.blake2b(key.encode("ascii"), key=self.salt, digest_size=16).hexdigest()

    def __len__(self) -> int:
        return sum(len(calls) for calls in self._calls.values())

    def take(self, model: str, key: str) -> dict[str, Any] | None:
        """The next recorded call with this key (the last one again once they are used up)."""
        with self._lock:
            calls = self._calls.get((model, key))
            if not calls:
                return None
            i = self._played.get((model, key), 0)
            self._played[(model, key)] = i + 1
            self.hits += 1
            return calls[min(i, len(calls) - 1)]

    def record(self, line: dict[str, Any]) -> None:
        text = json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n"
        with self._lock:
            if self._out is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._out = self.path.open("w" if self.mode == "record" else "a", encoding="utf-8")
                if self._header and self.salt is not None:
                    self._out.write(json.dumps({HEADER: 1, "salt": self.salt.hex()}) + "\n")
                    self._header = False
            self._out.write(text)
            self._out.flush()
            self.recorded += 1
            self._calls.setdefault((line["model"], line["key"]), []).append(line)
            self._played[(line["model"], line["key"])] = len(self._calls[(line["model"], line["key"])])

    def missed(self, what: str) -> CassetteMiss:
        with self._lock:
            self.misses.append(what)
        return CassetteMiss(what)

    def close(self) -> None:
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None

    def __repr__(self) -> str:
        return f"<Cassette {str(self.path)!r} mode={self.mode} hits={self.hits} recorded={self.recorded}>"


def _decoder(model: Any, fn: Callable[..., Any]) -> Callable[[Any], Any]:
    """How a recorded output becomes a value again: the model's output validation does it
    when it has ``output=``; else the predict's return annotation, if any; else plain JSON."""
    if model._settings.output is not None:
        return lambda value: value
    try:
        annotation = inspect.signature(fn, eval_str=True).return_annotation
    except Exception:  # an annotation that does not resolve: plain JSON
        return lambda value: value
    if annotation in (inspect.Signature.empty, Any, None, type(None)):
        return lambda value: value
    import pydantic

    try:
        adapter = pydantic.TypeAdapter(annotation)
    except Exception:
        return lambda value: value
    return adapter.validate_python


class _Recorder:
    """One model's predict, answered from (or recorded into) the cassette."""

    def __init__(self, cassette: Cassette, model: Any, redact: Sequence[str]) -> None:
        from prodwrap.policies.validation import _sensitive

        self.cassette = cassette
        self.name = model.name
        self.fn = model._engine.primary.fn
        settings = model._settings
        found = _sensitive(settings.input)
        self.redactor = Redactor(found.names | frozenset(redact), os.urandom(16), found.everywhere)
        self.output = Redactor(frozenset(), os.urandom(16))
        self.decode = _decoder(model, self.fn)
        self.shower = Shower(model, redact)

    def key(self, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        try:
            key = canonical_key(value, self.name, args, kwargs)
        except UnkeyableError:  # a SecretStr, say: its JSON form, the secret revealed
            plain = self.output.jsonable
            key = canonical_key("json", plain(value, reveal=True), self.name, plain([args, kwargs], reveal=True))
        return self.cassette.keyed(key)  # salted: the file alone cannot test guesses

    def replayed(self, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any]:
        """(True, output) for a recorded call; (False, key) when it must be made."""
        try:
            key = self.key(value, args, kwargs)
        except Exception as exc:  # an input with no canonical form cannot be looked up
            raise self.cassette.missed(f"replay: {self.name}: the input has no canonical key ({exc})") from None
        if self.cassette.mode != "record":
            line = self.cassette.take(self.name, key)
            if line is not None:
                if "error" in line:
                    raise raised(line["error"])
                return True, self.decode(line.get("output"))
            if self.cassette.mode == "replay":
                shown = self.shower(value, 200)
                extra = f" with args {self.shower(args)} {self.shower(kwargs)}" if args or kwargs else ""
                what = f"replay: {self.name} has no recorded call for input {shown}{extra} in {self.cassette.path}"
                raise self.cassette.missed(what)
        return False, key

    def write(self, key: str, value: Any, args: Any, kwargs: Any, out: Any, error: BaseException | None) -> None:
        side = self.redactor.side(value, self.redactor.secret_input)
        line: dict[str, Any] = {"model": self.name, "key": key, "input": side}
        if args:
            line["args"] = self.redactor.jsonable(list(args))
        if kwargs:
            line["kwargs"] = self.redactor.jsonable(kwargs)
        if error is None:
            line["output"] = self.output.jsonable(out)
        else:
            line["error"] = error_line(error, sensitive_values(self.redactor, value, args, kwargs))
        self.cassette.record(line)

    def sync(self) -> Callable[..., Any]:
        fn = self.fn

        def cassette_predict(value: Any, *args: Any, **kwargs: Any) -> Any:
            found, got = self.replayed(value, args, kwargs)
            if found:
                return got
            try:
                result = fn(value, *args, **kwargs)
            except Exception as exc:
                self.write(got, value, args, kwargs, None, exc)
                raise
            self.write(got, value, args, kwargs, result, None)
            return result

        return cassette_predict

    def asynchronous(self) -> Callable[..., Any]:
        fn = self.fn

        async def cassette_predict(value: Any, *args: Any, **kwargs: Any) -> Any:
            found, got = self.replayed(value, args, kwargs)
            if found:
                return got
            try:
                result = await fn(value, *args, **kwargs)
            except Exception as exc:
                self.write(got, value, args, kwargs, None, exc)
                raise
            self.write(got, value, args, kwargs, result, None)
            return result

        return cassette_predict


def _engine_with(model: Any, fn: Callable[..., Any]) -> Engine:
    """The model's engine with ``fn`` as its primary predict: the same stages, validators,
    fallbacks and stats."""
    e = model._engine
    return Engine(
        fn=fn,
        name=e.name,
        input_name=e.input_name,
        version=e.version,
        is_async=e.is_async,
        validate_input=e.validate_input,
        validate_fast=e.validate_fast,
        validate_output=e.validate_output,
        timeout=Timeout.coerce(model._settings.timeout),
        retry=e.retry,
        fallbacks=e.fallbacks,
        on_invalid=e.on_invalid,
        stages=e.stages,
        stats=e.stats,
        batch=e.batch,
    )


@contextmanager
def replay(
    path: str | os.PathLike[str], *models: Any, mode: Mode = "auto", redact: Sequence[str] = ()
) -> Iterator[Cassette]:
    """Record the models' predict calls into the cassette at ``path``, or replay them from it.

    Args:
        path: the cassette (JSON lines; created with its directories when recording).
        models: the ``ProductionModel``\\ s whose predict calls go through the cassette.
        mode: ``"record"`` calls through and writes a fresh cassette; ``"replay"`` answers
            every call from the cassette and fails on a call it has no recording of
            (:class:`CassetteMiss`, naming the input); ``"auto"`` replays what is recorded
            and records what is not (appending to the file).
        redact: further field names whose values are hashed in the cassette (the specs'
            sensitive fields always are).

    Raises:
        CassetteMiss: in replay mode, at the call (and again when the block ends, in case a
            fallback served that call): every call the cassette had no recording of.
        ConfigurationError: a mode that is not one of the three, a model that is not a
            ``ProductionModel``, or a cassette line that is not a recorded call.
    """
    if mode not in _MODES:
        raise ConfigurationError(f'replay mode must be "record", "replay" or "auto", got {mode!r}')
    if not models:
        raise ConfigurationError("replay(path, model, ...) needs at least one ProductionModel")
    for model in models:
        if not _is_model(model):
            raise ConfigurationError(f"replay takes ProductionModels, got {model!r}")
    file = Path(path)
    if mode == "replay" and not file.exists():
        raise CassetteMiss(f"replay: no cassette at {file}: record it first with mode='record' or mode='auto'")
    cassette = Cassette(file, mode)
    swapped = []  # (model, its engine before the block, the cassette's engine)
    try:
        for model in models:
            recorder = _Recorder(cassette, model, redact)
            fn = recorder.asynchronous() if model.is_async else recorder.sync()
            swapped.append((model, model._engine, _engine_with(model, fn)))
            model._swap(swapped[-1][2])
        yield cassette
    finally:
        for model, engine, ours in swapped:
            if model._engine is ours:  # (a stage(), promote() or rollback() in the block stands)
                model._swap(engine)
        cassette.close()
    if cassette.misses:  # (reached only when the block itself did not fail)
        raise CassetteMiss("\n".join(cassette.misses))
