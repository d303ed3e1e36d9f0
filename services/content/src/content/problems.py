"""Problem details the content service raises beyond the runtime's own (field-level 422s, forbidden)."""

from __future__ import annotations

from meadow_runtime.errors import Problem, field_problem


def invalid(pointer: str, detail: str, *, type_: str = "validation-error") -> Problem:
    """A 422 naming the field at fault; content's own kinds of invalid input (`invalid-schedule`,
    `link-not-allowed`, ...) are both the problem's type and the field's error type."""
    return field_problem(pointer, detail, error_type=type_, type_=type_)


def forbidden(detail: str, *, type_: str = "forbidden") -> Problem:
    return Problem(403, "Forbidden", detail, type_=type_)
