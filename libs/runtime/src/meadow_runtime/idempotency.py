"""`Idempotency-Key` for mutating endpoints.

The key is claimed in the same transaction as the effects it guards: a retried request with the same key
and body gets the stored response; the same key with another body gets 409; a concurrent duplicate waits
on the first's row lock and then reads its outcome. If the first attempt fails, its claim rolls back
with it and the key is free again.

Keys belong to the caller (the token's role, subject and customer within its merchant), as a payment API
scopes them to the API key: two customers who both send `k-1` with the same body make two requests, and
neither is answered with the other's stored response. Keys stored before keys were scoped (raw) are not
found any more: a retry that spans that upgrade runs again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import text

from .auth import Principal
from .errors import Conflict, Problem
from .uow import UnitOfWork

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=256,
        description="Retry-safe key: the same key and body return the first outcome; another body is a 409.",
    ),
]

CLAIM = text(
    "INSERT INTO idempotency_keys (merchant_id, key, fingerprint) VALUES (:m, :k, :f) "
    "ON CONFLICT DO NOTHING RETURNING key"
)
LOOKUP = text(
    "SELECT fingerprint, status_code, response_body FROM idempotency_keys WHERE merchant_id = :m AND key = :k"
)
STORE = text(
    "UPDATE idempotency_keys SET status_code = :s, response_body = :b WHERE merchant_id = :m AND key = :k"
)


async def request_fingerprint(request: Request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.url.path.encode())
    body = await request.body()
    try:
        canonical = (
            json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
        )
    except ValueError:
        canonical = body
    digest.update(canonical)
    return digest.hexdigest()


def caller_key(caller: Principal, key: str) -> str:
    """The stored key: the client's key within the caller's namespace (role, subject and customer, as a
    customer's access is checked on `customer_id`), hashed so that any caller and header value fit the
    column."""
    caller_id = json.dumps([caller.role, caller.subject, caller.customer_id, key])
    return hashlib.sha256(caller_id.encode()).hexdigest()


def _render(result: BaseModel | Any) -> str:
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return json.dumps(result, default=str)


async def run_idempotently(
    uow: UnitOfWork,
    request: Request,
    *,
    caller: Principal,
    key: str | None,
    action: Callable[[], Awaitable[BaseModel | Any]],
    status_code: int = 200,
) -> Response:
    """Run `action` (which must not commit) once per key, commit, and answer with its JSON result."""
    if key is None:
        body = _render(await action())
        await uow.commit()
        return Response(body, status_code=status_code, media_type="application/json")

    merchant_id, key = caller.merchant_id, caller_key(caller, key)
    fingerprint = await request_fingerprint(request)
    claimed = (await uow.session.execute(CLAIM, {"m": merchant_id, "k": key, "f": fingerprint})).first()
    if claimed is None:
        stored = (await uow.session.execute(LOOKUP, {"m": merchant_id, "k": key})).one()
        if stored.fingerprint != fingerprint:
            raise Conflict(
                "Idempotency-Key reused with a different request",
                "This key was first used with another method, path or body.",
            )
        if stored.status_code is None:
            raise Problem(409, "Request still in progress", "Retry shortly.", type_="conflict")
        return Response(
            stored.response_body,
            status_code=stored.status_code,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    body = _render(await action())
    await uow.session.execute(STORE, {"m": merchant_id, "k": key, "s": status_code, "b": body})
    await uow.commit()
    return JSONResponse(json.loads(body), status_code=status_code)
