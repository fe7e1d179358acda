"""``pw.Sensitive``: mark a field as sensitive where it is declared.

``Annotated[str, pw.Sensitive]`` (on a pydantic model's field, a dataclass's, a TypedDict's,
or any type given to ``input=``/``output=``) means what ``json_schema_extra={"sensitive":
True}`` means, and is found the same way (``prodwrap.policies._redact.find_sensitive``):
the field's value never appears in clear in a validation error, a log line or the audit log
(which writes a salted hash of it instead). The JSON schema of the field says
``"sensitive": true``.
"""

from __future__ import annotations

from typing import Any


class Sensitive:
    """A marker for ``Annotated[T, pw.Sensitive]`` (the class itself, or an instance of it).

    It changes nothing in how the value is validated or serialised: it adds
    ``{"sensitive": True}`` to the field's JSON schema, which is how prodwrap finds sensitive
    fields at any depth and under their aliases.
    """

    __slots__ = ()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        schema = handler(source)
        metadata = dict(schema.get("metadata") or {})
        extra = metadata.get("pydantic_js_extra")
        metadata["pydantic_js_extra"] = {**extra, "sensitive": True} if isinstance(extra, dict) else {"sensitive": True}
        return {**schema, "metadata": metadata}  # a copy: a shared schema (a model's) stays unmarked

    def __repr__(self) -> str:
        return "pw.Sensitive"


__all__ = ["Sensitive"]
