"""``expect_golden``: outputs compared with a JSON-lines golden file, or recorded into it.

A header line ``{"prodwrap_golden": 1, "salt": ...}``, then one line per input:
``{"key": ..., "input": ..., "output": ...}`` (``"error"`` instead of ``"output"`` when the
call raised: the exception's type name). The key is the canonical key
(``prodwrap.policies._canonical``) of the input's JSON form (its secrets, such as a
``SecretStr``, hashed with the file's random salt), validated first when the model has
``input=``, hashed again with the salt (BLAKE2b keyed), so a dict and the schema's instance
are the same case, a file reads back the same keys it was written with, and a key gives
nothing away. An update keeps the file's salt. Golden files hold other test inputs as given
(they are test data: keep secrets out of them). A file without a header (an older prodwrap's)
is read with its plain keys.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prodwrap._audit_lines import Redactor
from prodwrap.errors import ConfigurationError
from prodwrap.policies._canonical import canonical_key
from prodwrap.testing._calls import Shower, _is_model, call_all, close, model_name
from prodwrap.testing._expect import CaseResult, Expectation, ExpectationFailed, _settle, nothing_checked

ENV = "PRODWRAP_UPDATE_GOLDEN"
UPDATE = [False]  # switched on by the pytest plugin's --prodwrap-update-golden
_JSON = Redactor(frozenset(), b"golden")  # JSON-able forms, nothing hashed (no names)
HEADER = "prodwrap_golden"
HOW_TO_UPDATE = f"update=True, pytest --prodwrap-update-golden, or {ENV}=1"


def jsonable(value: Any) -> Any:
    """``value`` as JSON-able data (pydantic models and dataclasses as dicts, numpy as lists,
    ``Decimal`` as text), as audit lines and cassettes write it."""
    return _JSON.jsonable(value)


def updating(update: bool | None) -> bool:
    """Whether golden files are rewritten: ``update`` if given, else the pytest option or
    the environment variable ``PRODWRAP_UPDATE_GOLDEN`` (``1``, ``true`` or ``yes``)."""
    if update is not None:
        return bool(update)
    return UPDATE[0] or os.environ.get(ENV, "").strip().lower() in {"1", "true", "yes"}


def _form(salt: bytes | None) -> Redactor:
    return _JSON if salt is None else Redactor(frozenset(), salt)


def input_key(model: Any, x: Any, salt: bytes | None = None) -> str:
    """The golden key of ``x``: the canonical key of its (validated) JSON form, secrets hashed
    with ``salt``, hashed again with it (None: an old file's plain key)."""
    value = x
    if _is_model(model) and model._engine.validate_input is not None:
        try:
            value = model._engine.validate_input(x)
        except Exception:  # an input the model refuses is a case too: keyed as given
            value = x
    key = canonical_key(_form(salt).jsonable(value))
    if salt is None:
        return key
    return hashlib.blake2b(key.encode("ascii"), key=salt, digest_size=16).hexdigest()


def _line(key: str, x: Any, output: Any, error: BaseException | None, salt: bytes) -> dict[str, Any]:
    line: dict[str, Any] = {"key": key, "input": _form(salt).jsonable(x)}
    if error is None:
        line["output"] = jsonable(output)
    else:
        line["error"] = type(error).__name__
    return line


def _kind(value: Any) -> str:
    """The JSON type of a value in JSON form, ``bool``, ``int`` and ``float`` told apart."""
    if value is None:
        return "null"
    for kind in (bool, int, float, str, list, dict):
        if isinstance(value, kind):
            return kind.__name__
    return type(value).__name__


def same_types(got: Any, golden: Any) -> bool:
    """Whether ``got`` (an output's JSON form) has the JSON types of ``golden`` at every depth:
    a changed type is a changed output (``True`` is not ``1``, nor ``1`` ``1.0``)."""
    if _kind(got) != _kind(golden):
        return False
    if isinstance(golden, list):
        return len(got) == len(golden) and all(same_types(a, b) for a, b in zip(got, golden, strict=True))
    if isinstance(golden, dict):
        return got.keys() == golden.keys() and all(same_types(got[k], golden[k]) for k in golden)
    return True


def _read(path: Path) -> tuple[bytes | None, list[dict[str, Any]]]:
    """The file's salt (None: no header) and its lines."""
    lines: list[dict[str, Any]] = []
    salt: bytes | None = None
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            if not lines and salt is None and isinstance(line, dict) and HEADER in line:
                salt = bytes.fromhex(line["salt"])
                continue
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"golden file {path}: line {number} is not JSON: {exc}") from None
        if not isinstance(line, dict) or "key" not in line or "input" not in line:
            raise ConfigurationError(f"golden file {path}: line {number} has no key and input")
        lines.append(line)
    return salt, lines


def expect_golden(
    model: Callable[..., Any],
    path: str | os.PathLike[str],
    tol: float = 0,
    update: bool | None = None,
    *,
    inputs: Iterable[Any] | None = None,
) -> Expectation:
    """Compare the model's outputs with those recorded in the golden file at ``path``.

    Args:
        model: a ``ProductionModel`` or any callable (async ones are awaited).
        path: the JSON-lines golden file.
        tol: absolute tolerance between numbers of the same type (int and int, float and
            float), at any depth of the output; a changed type (``True`` for ``1``, ``1.0``
            for ``1``) is a changed output.
        update: True rewrites the file with the current outputs (and passes, unless there is
            nothing to record); None (the default) updates when pytest runs with
            ``--prodwrap-update-golden`` or the environment has ``PRODWRAP_UPDATE_GOLDEN=1``;
            False never updates.
        inputs: the inputs to check (None: those the file holds). An input the file has no
            line for fails until the file is updated.

    Raises:
        ExpectationFailed: outputs that differ from the golden ones, inputs without a golden
            line, a missing file (the message says how to create it), or nothing to check (an
            empty file, or ``inputs=[]``), when updating too: then nothing is written.
    """
    file = Path(path)
    name = model_name(model)
    rewrite = updating(update)
    salt, golden = _read(file) if file.exists() else (None, None)
    if rewrite and salt is None:
        salt = os.urandom(16)
    if inputs is not None:
        xs = list(inputs)
    elif golden is not None:
        xs = [line["input"] for line in golden]
    elif rewrite:
        raise ConfigurationError(f"expect_golden: {file} does not exist yet: pass inputs= to record it")
    else:
        xs = []
    shower = Shower(model)
    if golden is None and not rewrite:
        result = Expectation("expect_golden", name, (CaseResult(0, file.name, "a golden file", (), 0, 1, False, 0.0),))
        how = HOW_TO_UPDATE if inputs is not None else f"inputs= (the inputs to record) and {HOW_TO_UPDATE}"
        message = f"expect_golden({name}): golden file {file} does not exist; create it with {how}"
        raise ExpectationFailed(result, message)
    if not xs:
        what = f"golden file {file} has no lines" if inputs is None else "inputs is empty"
        nothing_checked(
            "expect_golden", model, f"{what} (nothing recorded: the file is left as it was)" if rewrite else what
        )
    keys = [input_key(model, x, salt) for x in xs]
    runs = call_all(model, xs)
    if rewrite:
        assert salt is not None
        file.parent.mkdir(parents=True, exist_ok=True)
        with file.open("w", encoding="utf-8") as out:
            out.write(json.dumps({HEADER: 1, "salt": salt.hex()}) + "\n")
            for key, x, run in zip(keys, xs, runs, strict=True):
                line = _line(key, x, run.output, run.error, salt)
                out.write(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n")
        cases = tuple(
            CaseResult(i, x, None, (run.output,), 1, 1, True, 0.0)
            for i, (x, run) in enumerate(zip(xs, runs, strict=True))
        )
        return Expectation("expect_golden", name, cases, notes=(f"updated {file} ({len(xs)} cases)",))
    by_key = {line["key"]: line for line in golden or ()}
    results = []
    for i, (key, x, run) in enumerate(zip(keys, xs, runs, strict=True)):
        found = by_key.get(key)
        got: Any = run.output if run.error is None else run.error
        if found is None:
            results.append(
                CaseResult(i, x, None, (got,), 0, 1, False, 0.0, f"no golden line: record it with {HOW_TO_UPDATE}")
            )
            continue
        if "error" in found:
            expected: Any = f"raises {found['error']}"
            ok = run.error is not None and type(run.error).__name__ == found["error"]
        else:
            expected = found.get("output")
            output = jsonable(run.output)
            ok = run.error is None and same_types(output, expected) and close(output, expected, tol)
        results.append(CaseResult(i, x, expected, (got,), int(ok), 1, ok, 0.0, got=got))
    unused = len(set(by_key) - set(keys))
    notes = (f"{unused} golden line(s) not checked by these inputs",) if unused else ()
    labels = ("input", "golden", "got")
    return _settle(Expectation("expect_golden", name, tuple(results), labels=labels, notes=notes), shower)
