"""Which database errors are the request's values (a 422), which are worth a retry (a 503), and which
are the server's own (a 500)."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from asyncpg.exceptions._base import DataError as ArgumentError  # asyncpg's client-side encoding error
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from meadow_runtime.errors import install_problem_handlers, transient_failure, unstorable_value


def _wrapped(error: BaseException) -> DBAPIError:
    """As SQLAlchemy raises it: its own error, the dialect's adapted one as `orig`, the driver's as cause."""
    adapted = RuntimeError("adapted")
    adapted.__cause__ = error
    return DBAPIError("INSERT ...", {}, adapted)


def _argument_error(cause: BaseException) -> ArgumentError:
    error = ArgumentError("invalid input for query argument $1")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.StringDataRightTruncationError("value too long for type character varying(128)"),
        asyncpg.exceptions.NumericValueOutOfRangeError("integer out of range"),
        asyncpg.exceptions.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
        asyncpg.exceptions.UntranslatableCharacterError("unsupported Unicode escape sequence"),
        _argument_error(OverflowError("int too big to convert")),
    ],
)
def test_values_the_database_cannot_take_are_the_requests(error: BaseException) -> None:
    assert unstorable_value(error) == str(error)
    assert unstorable_value(_wrapped(error)) == str(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.DivisionByZeroError("division by zero"),
        asyncpg.exceptions.InvalidTextRepresentationError("invalid input syntax for type uuid"),
        _argument_error(TypeError("a str where a UUID was expected")),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        RuntimeError("anything else"),
    ],
)
def test_the_servers_own_failures_are_not(error: BaseException) -> None:
    assert unstorable_value(error) is None
    assert unstorable_value(_wrapped(error)) is None


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.LockNotAvailableError("could not obtain lock"),
    ],
)
async def test_a_transaction_undone_by_a_concurrent_one_is_a_503_to_retry(error: BaseException) -> None:
    assert transient_failure(error)
    assert transient_failure(_wrapped(error))
    assert unstorable_value(_wrapped(error)) is None
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/v1/things")
    async def fail() -> None:
        raise _wrapped(error)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post("/v1/things")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"


def test_other_failures_are_not_transient() -> None:
    for error in (asyncpg.exceptions.UniqueViolationError("duplicate key"), RuntimeError("anything")):
        assert not transient_failure(error)
        assert not transient_failure(_wrapped(error))
