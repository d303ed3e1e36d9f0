"""RFC 9457 problem details for every error an API returns.

Validation errors become 422 with each failing field as a JSON pointer; domain errors raise `Problem`.
A value that passed validation but that Postgres refuses to store is the client's input too: 422 (see
`unstorable_value`). A transaction undone by a concurrent one (deadlock, serialization failure, lock
timeout) is a 503 with Retry-After (see `transient_failure`). Nothing escapes as an HTML page or a bare
string.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(Exception):
    """Raise from a service or endpoint to answer with a problem+json response."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


class NotFound(Problem):
    def __init__(self, what: str, identifier: object) -> None:
        super().__init__(
            404, f"{what} not found", f"No {what} {identifier} for this merchant.", type_="not-found"
        )


class Conflict(Problem):
    def __init__(
        self, title: str, detail: str | None = None, *, type_: str = "conflict", **extensions: Any
    ) -> None:
        super().__init__(409, title, detail, type_=type_, **extensions)


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    instance = str(request.url.path) if request is not None else None
    return JSONResponse(problem.body(instance), status_code=problem.status, media_type=PROBLEM_JSON)


def _pointer(location: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] if parts[0] == "body" else parts
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def validation_problem(errors: Sequence[Mapping[str, Any]]) -> Problem:
    """A 422 listing pydantic's errors (a request's or a model's `ValidationError.errors()`) by pointer."""
    fields = [
        {
            "pointer": _pointer(tuple(error.get("loc", ()))),
            "detail": error.get("msg", "invalid"),
            "type": error.get("type"),
        }
        for error in errors
    ]
    first = fields[0]["pointer"] if fields else "/"
    return Problem(
        422, "Request is not valid", f"{first}: {fields[0]['detail']}" if fields else None,
        type_="validation-error", errors=fields,
    )  # fmt: skip


def field_problem(
    pointer: str, detail: str, *, error_type: str = "value_error", type_: str = "validation-error"
) -> Problem:
    """A 422 naming one field at fault, shaped like the request-validation errors above: for checks an
    endpoint makes beyond its models (a cursor it did not issue, a date range). `error_type` is the
    field's error kind, as pydantic names them (`missing`, `extra`, ...); `type_` the problem's type."""
    return Problem(
        422,
        "Request is not valid",
        f"{pointer}: {detail}",
        type_=type_,
        errors=[{"pointer": pointer, "detail": detail, "type": error_type}],
    )


# Data exceptions a request's own values cause: text longer than its column, a number out of its type's
# range, a date beyond the calendar, a NUL or otherwise unencodable character. Other members of class 22
# (division by zero, a bad cast of stored data) are the server's own failures and stay 500s.
UNSTORABLE_SQLSTATES = frozenset({"22001", "22003", "22008", "22021", "22P05"})


# Failures of a transaction that says nothing about the request: a deadlock Postgres broke by aborting
# this side, a serialization failure, a lock not available in time. The transaction rolled back; the
# same request, sent again, can succeed: a 503 asking for a retry, not a 500.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def transient_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, asyncpg.PostgresError) and seen.sqlstate in TRANSIENT_SQLSTATES:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def unstorable_value(exc: BaseException) -> str | None:
    """The database's reason, if `exc` is a value of the request that Postgres could not take, or an int the
    driver could not encode (beyond 64 bits); found under SQLAlchemy's wrappers, which keep the driver's
    exception as a cause. Anything else (a wrong Python type passed by our own code) is not the client's."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, asyncpg.PostgresError) and seen.sqlstate in UNSTORABLE_SQLSTATES:
            return str(seen)
        # asyncpg's client-side "invalid input for query argument" (its DataError is both of these)
        if (
            isinstance(seen, asyncpg.InterfaceError)
            and isinstance(seen, ValueError)
            and isinstance(seen.__cause__, OverflowError)
        ):
            return str(seen)
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(validation_problem(exc.errors()), request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        problem = Problem(exc.status_code, str(exc.detail) if exc.detail else "HTTP error")
        response = problem_response(problem, request)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        if transient_failure(exc):
            log.warning("transient database failure: %s", exc, extra={"path": request.url.path})
            response = problem_response(
                Problem(
                    503,
                    "Try again",
                    "The request met a concurrent one and was undone; send it again.",
                    type_="transient-failure",
                ),
                request,
            )
            response.headers["Retry-After"] = "1"
            return response
        reason = unstorable_value(exc)
        if reason is None:
            raise exc  # not the client's value: the 500 below, logged
        # its transaction was rolled back with the exception: nothing was written
        log.warning("value refused by the database: %s", reason, extra={"path": request.url.path})
        problem = Problem(422, "A value cannot be stored", reason, type_="validation-error")
        return problem_response(problem, request)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(Problem(500, "Internal error", "The error was logged."), request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for database_error in (DBAPIError, asyncpg.PostgresError, asyncpg.InterfaceError):
        app.add_exception_handler(database_error, on_database_error)
    app.add_exception_handler(Exception, on_unexpected)
