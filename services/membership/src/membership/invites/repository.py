"""Invite links, referral codes and smart invitations, and who accepted which."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.invites import InviteKind, InviteTerms


@dataclass(frozen=True)
class InviteRecord:
    id: UUID
    group_id: UUID
    kind: InviteKind
    code: str
    inviter_customer_id: str | None
    invitee_customer_id: str | None
    created_by: str
    expires_at: datetime | None
    max_uses: int | None
    use_count: int
    revoked_at: datetime | None
    created_at: datetime

    @property
    def terms(self) -> InviteTerms:
        return InviteTerms(
            kind=self.kind,
            inviter_customer_id=self.inviter_customer_id,
            invitee_customer_id=self.invitee_customer_id,
            expires_at=self.expires_at,
            max_uses=self.max_uses,
            use_count=self.use_count,
            revoked=self.revoked_at is not None,
        )


COLUMNS = (
    "id, group_id, kind, code, inviter_customer_id, invitee_customer_id, created_by, expires_at, max_uses, "
    "use_count, revoked_at, created_at"
)


def _invite(row: Row[tuple[object, ...]]) -> InviteRecord:
    return InviteRecord(**row._mapping)


class InviteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        *,
        invite_id: UUID,
        merchant_id: str,
        group_id: UUID,
        kind: InviteKind,
        code: str,
        created_by: str,
        inviter_customer_id: str | None = None,
        invitee_customer_id: str | None = None,
        expires_at: datetime | None = None,
        max_uses: int | None = None,
    ) -> InviteRecord | None:
        """None when the id, the code or the customer's referral code for this group already exists."""
        row = (
            await self._session.execute(
                text(
                    "INSERT INTO invites (id, merchant_id, group_id, kind, code, inviter_customer_id, "
                    "invitee_customer_id, created_by, expires_at, max_uses) "
                    "VALUES (:id, :merchant, :group, :kind, "
                    ":code, :inviter, :invitee, :by, :expires, :max_uses) ON CONFLICT DO NOTHING "
                    f"RETURNING {COLUMNS}"
                ),
                {
                    "id": invite_id,
                    "merchant": merchant_id,
                    "group": group_id,
                    "kind": kind,
                    "code": code,
                    "inviter": inviter_customer_id,
                    "invitee": invitee_customer_id,
                    "by": created_by,
                    "expires": expires_at,
                    "max_uses": max_uses,
                },
            )
        ).first()
        return _invite(row) if row else None

    async def by_code(self, merchant_id: str, code: str, *, for_update: bool = False) -> InviteRecord | None:
        lock = "FOR UPDATE" if for_update else ""
        row = (
            await self._session.execute(
                text(f"SELECT {COLUMNS} FROM invites WHERE merchant_id = :merchant AND code = :code {lock}"),
                {"merchant": merchant_id, "code": code},
            )
        ).first()
        return _invite(row) if row else None

    async def referral_code_of(self, merchant_id: str, group_id: UUID, inviter: str) -> InviteRecord | None:
        row = (
            await self._session.execute(
                text(
                    f"SELECT {COLUMNS} FROM invites WHERE merchant_id = :merchant AND group_id = :group "
                    "AND kind = 'referral' AND inviter_customer_id = :inviter AND revoked_at IS NULL"
                ),
                {"merchant": merchant_id, "group": group_id, "inviter": inviter},
            )
        ).first()
        return _invite(row) if row else None

    async def count_use(self, invite_id: UUID) -> bool:
        used = await self._session.execute(
            text(
                "UPDATE invites SET use_count = use_count + 1 WHERE id = :id "
                "AND (max_uses IS NULL OR use_count < max_uses) RETURNING 1"
            ),
            {"id": invite_id},
        )
        return used.first() is not None

    async def record_acceptance(
        self, invite_id: UUID, customer_id: str, membership_id: UUID, at: datetime
    ) -> None:
        await self._session.execute(
            text(
                "INSERT INTO invite_acceptances (invite_id, customer_id, membership_id, accepted_at) "
                "VALUES (:invite, :customer, :membership, :at)"
            ),
            {"invite": invite_id, "customer": customer_id, "membership": membership_id, "at": at},
        )

    async def revoke(self, merchant_id: str, invite_id: UUID) -> InviteRecord | None:
        row = (
            await self._session.execute(
                text(
                    "UPDATE invites SET revoked_at = COALESCE(revoked_at, now()) "
                    "WHERE merchant_id = :merchant "
                    f"AND id = :id RETURNING {COLUMNS}"
                ),
                {"merchant": merchant_id, "id": invite_id},
            )
        ).first()
        return _invite(row) if row else None

    async def of_group(
        self, merchant_id: str, group_id: UUID, *, after: tuple[datetime, UUID] | None, limit: int
    ) -> list[InviteRecord]:
        params: dict[str, object] = {"merchant": merchant_id, "group": group_id, "limit": limit}
        keyset = ""
        if after is not None:
            keyset = "AND (created_at, id) > (:after_at, :after_id)"
            params["after_at"], params["after_id"] = after
        rows = await self._session.execute(
            text(
                f"SELECT {COLUMNS} FROM invites WHERE merchant_id = :merchant AND group_id = :group {keyset} "
                "ORDER BY created_at, id LIMIT :limit"
            ),
            params,
        )
        return [_invite(r) for r in rows]

    async def smart_invites_since(
        self, merchant_id: str, customer_id: str, since: datetime
    ) -> list[InviteRecord]:
        rows = await self._session.execute(
            text(
                f"SELECT {COLUMNS} FROM invites "
                "WHERE merchant_id = :merchant AND invitee_customer_id = :customer "
                "AND kind = 'smart' AND created_at > :since ORDER BY created_at"
            ),
            {"merchant": merchant_id, "customer": customer_id, "since": since},
        )
        return [_invite(r) for r in rows]
