"""JWT authentication and tenancy: every request names its merchant, and every query is scoped to it.

A token carries `merchant_id`, `sub` (staff account or customer), `role` (owner, operator, support or
customer), `scopes`, and for customers `customer_id`. Each service verifies tokens locally with the
shared key; nothing calls a central auth service on the request path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import Problem
from .settings import Settings

Role = Literal["owner", "operator", "support", "customer", "service"]
STAFF_ROLES: frozenset[str] = frozenset({"owner", "operator", "support"})
ROLE_RANK = {"support": 1, "operator": 2, "owner": 3}


@dataclass(frozen=True)
class Principal:
    merchant_id: str
    subject: str
    role: Role
    scopes: frozenset[str] = field(default_factory=frozenset)
    customer_id: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def require_role(self, minimum: Literal["support", "operator", "owner"]) -> None:
        if ROLE_RANK.get(self.role, 0) < ROLE_RANK[minimum]:
            raise Problem(
                403, "Forbidden", f"This action needs the {minimum} role or higher.", type_="forbidden"
            )

    def require_scope(self, scope: str) -> None:
        if scope not in self.scopes and "*" not in self.scopes:
            raise Problem(403, "Forbidden", f"The token lacks the scope {scope!r}.", type_="forbidden")

    def require_customer_access(self, customer_id: str) -> None:
        """Staff see every customer of their merchant; a customer sees only themself."""
        if self.is_staff or self.role == "service":
            return
        if self.customer_id != customer_id:
            raise Problem(403, "Forbidden", "Customers may only read their own data.", type_="forbidden")


def issue_token(
    settings: Settings,
    *,
    merchant_id: str,
    subject: str,
    role: Role,
    scopes: list[str] | None = None,
    customer_id: str | None = None,
    ttl_seconds: int = 3600,
) -> str:
    """Mint a token signed with the HS256 secret (development, tests and the demo)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "merchant_id": merchant_id,
        "sub": subject,
        "role": role,
        "scopes": scopes if scopes is not None else ["*"],
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if customer_id is not None:
        claims["customer_id"] = customer_id
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def verify_token(settings: Settings, token: str) -> Principal:
    return _verify(settings, token)[0]


def _verify(settings: Settings, token: str) -> tuple[Principal, float]:
    """The token's principal and its expiry (Unix seconds); raises a 401 problem on any flaw."""
    key = (
        settings.jwt_secret.get_secret_value()
        if settings.jwt_algorithm == "HS256"
        else settings.jwt_public_key
    )
    assert key is not None  # enforced by Settings
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "sub", "merchant_id"]},
        )
    except jwt.PyJWTError as error:
        raise _unauthorized(f"Invalid token: {error}") from error
    role = claims.get("role", "customer")
    if role not in {"owner", "operator", "support", "customer", "service"}:
        raise _unauthorized(f"Unknown role {role!r}")
    customer_id = claims.get("customer_id")
    if role == "customer" and not customer_id:
        raise _unauthorized("A customer token must carry customer_id")
    principal = Principal(
        merchant_id=str(claims["merchant_id"]),
        subject=str(claims["sub"]),
        role=role,
        scopes=frozenset(claims.get("scopes") or ()),
        customer_id=customer_id,
    )
    return principal, float(claims["exp"])


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, type_="unauthorized")


_bearer = HTTPBearer(auto_error=False)
VERIFIED_TOKENS_PER_APP = 10_000


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise _unauthorized("Send 'Authorization: Bearer <token>'.")
    # Verifying a signature costs more than most of a request's own work, and a client (a storefront, a
    # logged-in customer) sends the same token with every request: a verified token's principal is kept
    # per app (so per signing key) until the token's `exp`. Only tokens that verified are kept; the bound
    # keeps a flood of distinct tokens from growing the map without limit.
    token = credentials.credentials
    verified: dict[str, tuple[Principal, float]] = request.app.state.verified_tokens
    known = verified.get(token)
    if known is not None and time.time() < known[1]:
        return known[0]
    verified.pop(token, None)
    principal, expires = _verify(request.app.state.settings, token)
    if len(verified) >= VERIFIED_TOKENS_PER_APP:
        verified.clear()
    verified[token] = (principal, expires)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


async def staff_principal(principal: CurrentPrincipal) -> Principal:
    if not principal.is_staff:
        raise Problem(403, "Forbidden", "Staff only.", type_="forbidden")
    return principal


StaffPrincipal = Annotated[Principal, Depends(staff_principal)]
