"""What one audit line holds: a prediction made JSON-able, its sensitive fields hashed.

Runs on the audit writer's thread; only the snapshot of a mutable input or output is taken on
the prediction's thread (:meth:`Redactor.sides`: containers copied, sensitive values hashed,
strings kept as they are, whatever their length). :class:`Redactor` knows the
sensitive field names of one model (its ``input=``/``output=`` specs, found by
``prodwrap.policies._redact.find_sensitive``, plus ``redact=``) and the log's salt; every
value under such a name, at any depth (pydantic models, dataclasses, mappings, named tuples),
every ``SecretStr``/``SecretBytes``/``Secret``, and the whole input or output when its spec is
itself secret, is written as ``"redacted:<32 hex digits>"``: a BLAKE2b hash keyed with the
salt of the value's canonical JSON text (its secret revealed), so equal values hash equally
within one salt and nothing can be read back.

Values JSON does not have are written as documented in ``docs/audit.md``: ``Decimal`` as a
string, non-finite floats as ``"NaN"``/``"Infinity"``/``"-Infinity"``, numpy scalars as
Python numbers, arrays of up to ``MAX_ITEMS`` elements as nested lists and larger ones as a
summary (shape, dtype, hash), bytes as UTF-8 text (else ``"base64:..."``), what pydantic can
serialise (datetimes, UUIDs, enums, paths) as pydantic writes it, and anything else as
``"<TypeName>"``. Bytes over ``MAX_BYTES`` long are summarised (length, hash), and so are
strings over ``MAX_TEXT`` characters when the redactor is given ``max_text`` (an audit log's
is): a line is not a copy of a huge payload. Such a redactor bounds what a line writes
(:meth:`Redactor.bounded`): a string or a mapping's key over ``max_text`` characters is
summarised wherever it is, and an input, output or tags whose JSON text is still over
``MAX_PAYLOAD`` characters is written as one summary, on the writer's thread: the strings a
snapshot kept whole (immutable: a reference, no copy) are summarised and hashed there.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic_core import to_jsonable_python

from prodwrap.policies._redact import _secret_types

if TYPE_CHECKING:
    from prodwrap._record import Prediction

MAX_ITEMS = 1000  # array elements written as a list; larger arrays are summarised
MAX_BYTES = 65_536  # bytes written out; longer ones are summarised
MAX_TEXT = MAX_BYTES  # characters of a string an audit line writes out; longer ones are summarised
MAX_DEPTH = 32  # nesting written out; deeper values are cut short
MAX_PAYLOAD = 16 * MAX_TEXT  # characters of JSON text an input, output or tags is written in; more: a summary
_MAX_JSON = 1_000_000  # characters of a rejected input's JSON text parsed to redact it
_NONFINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


_second: list[tuple[int, str]] = [(0, "1970-01-01T00:00:00")]  # the last whole second formatted


def iso_utc(epoch: float) -> str:
    """Epoch seconds as ISO 8601 UTC with microseconds, ``2026-05-09T07:35:25.123456Z``."""
    micros = round(epoch * 1_000_000)
    whole, fraction = divmod(micros, 1_000_000)
    second, text = _second[0]  # lines come second after second: most reuse the last one's text
    if whole != second:
        text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second[0] = (whole, text)  # one store of a pair: writers of several logs may share it
    return f"{text}.{fraction:06d}Z"


def _field_names(info: Any, name: str) -> Iterable[str]:
    yield name
    for alias in (info.alias, info.validation_alias, info.serialization_alias):
        if isinstance(alias, str):
            yield alias


class Redactor:
    """JSON-able lines for one model's predictions, sensitive values hashed.

    Args:
        names: field names and aliases whose values are hashed wherever they occur.
        salt: the key of the hash (bytes).
        secret_input: the input spec itself is sensitive: the whole input is hashed.
        secret_output: the same for the output.
        max_text: strings longer than this many characters are written as a summary, as long
            bytes are (None: every string whole, as golden files and cassettes need them).
    """

    __slots__ = ("max_text", "names", "salt", "secret_input", "secret_output", "secrets")

    def __init__(
        self,
        names: frozenset[str],
        salt: bytes,
        secret_input: bool = False,
        secret_output: bool = False,
        *,
        max_text: int | None = None,
    ) -> None:
        self.names = names
        self.salt = salt
        self.secret_input = secret_input
        self.secret_output = secret_output
        self.max_text = max_text
        self.secrets = _secret_types()

    # -- hashing ----------------------------------------------------------------------------

    def hash_of(self, value: Any) -> str:
        """The stand-in written for ``value``: its canonical JSON text (secrets revealed,
        keys sorted; bytes as they are), hashed with BLAKE2b keyed by the salt."""
        if isinstance(value, self.secrets):
            secret: Any = value
            value = secret.get_secret_value()
        if isinstance(value, bytes | bytearray):
            data = bytes(value)
        else:
            plain = self.jsonable(value, reveal=True)
            text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            data = text.encode("utf-8", "surrogatepass")  # (a lone surrogate is hashed, not lost)
        return "redacted:" + hashlib.blake2b(data, key=self.salt, digest_size=16).hexdigest()

    # -- values -----------------------------------------------------------------------------

    def jsonable(self, value: Any, reveal: bool = False, depth: int = 0) -> Any:
        """``value`` as JSON-able data; values under a sensitive name (and secrets) hashed,
        unless ``reveal`` (the text a hash is taken of)."""
        if value is None or isinstance(value, str | bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else _NONFINITE.get(value, "NaN")
        if depth > MAX_DEPTH:
            return "<too deep>"
        deeper = depth + 1
        if isinstance(value, pydantic.BaseModel):
            out: dict[str, Any] = {}
            for name, info in type(value).model_fields.items():
                item = getattr(value, name, None)
                hidden = not reveal and any(n in self.names for n in _field_names(info, name))
                out[name] = self.hash_of(item) if hidden else self.jsonable(item, reveal, deeper)
            extra = value.__pydantic_extra__
            if extra:
                out.update(self._mapping(extra, reveal, deeper))
            return out
        if isinstance(value, Mapping):
            return self._mapping(value, reveal, deeper)
        if isinstance(value, self.secrets):
            secret: Any = value
            return self.jsonable(secret.get_secret_value(), True, deeper) if reveal else self.hash_of(value)
        if isinstance(value, Decimal):
            return f"{value:f}"  # (no exponent: 0.00000015, not 1.5E-7)
        asdict = getattr(value, "_asdict", None)  # a named tuple
        if isinstance(value, tuple) and callable(asdict):
            return self._mapping(asdict(), reveal, deeper)
        if isinstance(value, list | tuple | set | frozenset):
            return [self.jsonable(item, reveal, deeper) for item in value]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
            return self._mapping(fields, reveal, deeper)
        if isinstance(value, bytes | bytearray):
            return self._bytes(bytes(value))
        return self._other(value, reveal, deeper)

    def _mapping(self, value: Mapping[Any, Any], reveal: bool, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if isinstance(key, str) else str(self.jsonable(key, reveal, depth))
            hidden = not reveal and name in self.names
            out[name] = self.hash_of(item) if hidden else self.jsonable(item, reveal, depth)
        return out

    def _bytes(self, data: bytes) -> Any:
        if len(data) > MAX_BYTES:
            return {"summary": "bytes", "length": len(data), "hash": self.hash_of(data)}
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(data).decode("ascii")

    def _text(self, text: str) -> dict[str, Any]:
        """A long string's summary: its length in characters and the hash ``hash_of`` gives it
        (what ``redact=`` would write for it, so ``log.hash_of(text)`` finds the line)."""
        return {"summary": "str", "length": len(text), "hash": self.hash_of(text)}

    def _other(self, value: Any, reveal: bool, depth: int) -> Any:
        kind = type(value)
        if kind.__module__ == "numpy" or kind.__module__.startswith("numpy."):
            if hasattr(value, "shape") and hasattr(value, "tolist") and value.shape != ():
                if value.size > MAX_ITEMS:
                    raw = value.tobytes() if value.dtype.kind != "O" else repr(value.tolist()).encode()
                    summary = {"summary": "ndarray", "shape": list(value.shape), "dtype": str(value.dtype)}
                    return {**summary, "hash": self.hash_of(raw)}
                return self.jsonable(value.tolist(), reveal, depth)
            item = getattr(value, "item", None)
            if callable(item):
                return self.jsonable(item(), reveal, depth)
        try:
            plain = to_jsonable_python(value, fallback=_unnamed)
        except Exception:  # a serialiser of the type's own that raises
            return _unnamed(value)
        return plain if plain is value else self.jsonable(plain, reveal, depth)

    # -- the line ---------------------------------------------------------------------------

    def side(self, value: Any, secret: bool) -> Any:
        return self.hash_of(value) if secret else self.jsonable(value)

    def raw_input(self, value: Any) -> Any:
        """An input validation refused, as it came: JSON text is parsed so that its sensitive
        fields are hashed; text that is not JSON is hashed whole when the model has any
        sensitive field."""
        if isinstance(value, str | bytes | bytearray) and len(value) <= _MAX_JSON:
            try:
                return self.side(json.loads(value), self.secret_input)
            except (ValueError, RecursionError):
                pass
        if isinstance(value, str | bytes | bytearray) and (self.names or self.secret_input):
            return self.hash_of(value)
        return self.side(value, self.secret_input)

    def bounded(self, side: Any) -> Any:
        """A line's input, output or tags (JSON-able) as the line writes it, with ``max_text``:
        a string or key over ``max_text`` characters summarised (:meth:`sides` leaves them whole),
        then, if its JSON text is over ``MAX_PAYLOAD`` characters, the whole of it as a summary
        (``{"summary": "json", "length": <characters>, "hash": hash_of(it)}``). Sensitive
        values were hashed already. On the writer's thread."""
        limit = self.max_text
        if limit is None or side is None or isinstance(side, int | float):
            return side
        side, most = self._shortened(side, limit)
        if most <= MAX_PAYLOAD:  # (its text is measured only when it may be over)
            return side
        length = len(json.dumps(side, separators=(",", ":"), ensure_ascii=False))
        if length <= MAX_PAYLOAD:
            return side
        return {"summary": "json", "length": length, "hash": self.hash_of(side)}

    def _shortened(self, value: Any, limit: int) -> tuple[Any, int]:
        """``value`` (JSON-able), its strings and keys over ``limit`` characters summarised, and
        at most how many characters its compact JSON text has."""
        if isinstance(value, str):
            if len(value) > limit:
                return self._shortened(self._text(value), limit)
            return value, 6 * len(value) + 2  # (every character escaped as \uXXXX, at most)
        if isinstance(value, list):
            out: list[Any] = []
            most = 2
            for item in value:
                shortened, n = self._shortened(item, limit)
                out.append(shortened)
                most += n + 1
            return out, most
        if isinstance(value, dict):
            shown: dict[str, Any] = {}
            most = 2
            for key, item in value.items():
                name = self._key(key, limit)
                shown[name], n = self._shortened(item, limit)
                most += 6 * len(name) + 4 + n
            return shown, most
        if isinstance(value, int) and not isinstance(value, bool):
            return value, value.bit_length() * 31 // 100 + 3  # (digits and a sign, at most)
        return value, 24  # a float (its repr), a bool or None

    def _key(self, key: str, limit: int) -> str:
        """A mapping's key as written: over ``limit`` characters, ``"summary:str:<length>:<hash>"``."""
        return key if len(key) <= limit else f"summary:str:{len(key)}:{self.hash_of(key)}"

    def sides(self, p: Prediction, value: Any, valid: bool) -> tuple[Any, Any]:
        """The line's ``input`` and ``output``, JSON-able (new containers: what the caller does
        with its input or output afterwards cannot reach them)."""
        given = self.side(value, self.secret_input) if valid else self.raw_input(value)
        return given, self.side(p.value, self.secret_output) if p.outcome != "error" else None

    def line(
        self,
        p: Prediction,
        value: Any,
        valid: bool,
        reasons: Iterable[str] | None,
        epoch: float,
        sides: tuple[Any, Any] | None = None,
    ) -> dict[str, Any]:
        """The audit line of one prediction (every value JSON-able; ``sides``: its input and
        output, when taken already)."""
        given, out = self.sides(p, value, valid) if sides is None else sides
        given, out = self.bounded(given), self.bounded(out)
        charges = getattr(p, "charges", None) or ()
        line: dict[str, Any] = {
            "id": p.id,
            "time": iso_utc(epoch),
            "model": p.model,
            "version": p.version,
            "outcome": p.outcome,
            "served_by": p.served_by,
            "attempts": p.attempts,
            "latency": p.latency,
            "cost": f"{p.cost:f}",
            "charges": [self.jsonable(charge) for charge in charges],
            "tags": self.bounded(self._mapping(p.tags, False, 1)),
            "trace_id": p.trace_id,
            "valid_input": valid,
            "input": given,
            "output": out,
            "errors": [type(e).__qualname__ for e in p.errors],
            "reasons": list(reasons or ()),
            "escalated": p.escalated,
            "drift": [str(getattr(alert, "feature", alert)) for alert in p.drift],
        }
        if charges:
            line["unpriced"] = any(getattr(charge, "unpriced", False) for charge in charges)
        return line


def _unnamed(value: Any) -> str:
    return f"<{type(value).__qualname__}>"
