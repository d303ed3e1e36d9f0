"""Problem details the content service raises beyond the runtime's own (field-level 422s, forbidden)."""

from __future__ import annotations

from meadow_runtime.errors import Problem


def invalid(pointer: str, detail: str, *, type_: str = "validation-error") -> Problem:
    """A 422 shaped like the runtime's request-validation errors, naming the field at fault."""
    return Problem(
        422,
        "Request is not valid",
        f"{pointer}: {detail}",
        type_=type_,
        errors=[{"pointer": pointer, "detail": detail, "type": type_}],
    )


def forbidden(detail: str, *, type_: str = "forbidden") -> Problem:
    return Problem(403, "Forbidden", detail, type_=type_)
