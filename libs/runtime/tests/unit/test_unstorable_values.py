"""Which database errors are the request's values (a 422) and which are the server's own (a 500)."""

from __future__ import annotations

import asyncpg
import pytest
from asyncpg.exceptions._base import DataError as ArgumentError  # asyncpg's client-side encoding error
from sqlalchemy.exc import DBAPIError

from meadow_runtime.errors import unstorable_value


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
