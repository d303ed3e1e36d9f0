"""Staff sub-accounts, the audit log of staff actions, and per-merchant settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from meadow_runtime.auth import Role

from ..domain.invites import DEFAULT_SMART_INVITES_PER_WEEK


@dataclass(frozen=True)
class StaffAccount:
    subject: str
    role: Role
    display_name: str | None
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    actor: str
    actor_role: str
    action: str
    target: str | None
    details: dict[str, Any]
    at: datetime


STAFF_COLUMNS = "subject, role, display_name, created_at, updated_at, disabled_at"


class StaffRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, merchant_id: str, subject: str) -> StaffAccount | None:
        row = (
            await self._session.execute(
                text(
                    f"SELECT {STAFF_COLUMNS} FROM staff_accounts "
                    "WHERE merchant_id = :merchant AND subject = :subject"
                ),
                {"merchant": merchant_id, "subject": subject},
            )
        ).first()
        return StaffAccount(*row) if row else None

    async def add(
        self, merchant_id: str, subject: str, role: str, display_name: str | None
    ) -> StaffAccount | None:
        row = (
            await self._session.execute(
                text(
                    "INSERT INTO staff_accounts (merchant_id, subject, role, display_name) "
                    "VALUES (:merchant, :subject, :role, :name) ON CONFLICT DO NOTHING "
                    f"RETURNING {STAFF_COLUMNS}"
                ),
                {"merchant": merchant_id, "subject": subject, "role": role, "name": display_name},
            )
        ).first()
        return StaffAccount(*row) if row else None

    async def update(
        self,
        merchant_id: str,
        subject: str,
        *,
        role: str | None,
        display_name: str | None,
        rename: bool,
        disabled: bool | None,
    ) -> StaffAccount | None:
        row = (
            await self._session.execute(
                text(
                    "UPDATE staff_accounts SET role = COALESCE(:role, role), "
                    "display_name = CASE WHEN :rename THEN :name ELSE display_name END, "
                    "disabled_at = CASE WHEN CAST(:disabled AS boolean) IS NULL THEN disabled_at "
                    "WHEN :disabled THEN COALESCE(disabled_at, now()) ELSE NULL END, updated_at = now() "
                    f"WHERE merchant_id = :merchant AND subject = :subject RETURNING {STAFF_COLUMNS}"
                ),
                {
                    "merchant": merchant_id,
                    "subject": subject,
                    "role": role,
                    "rename": rename,
                    "name": display_name,
                    "disabled": disabled,
                },
            )
        ).first()
        return StaffAccount(*row) if row else None

    async def all(self, merchant_id: str) -> list[StaffAccount]:
        rows = await self._session.execute(
            text(
                f"SELECT {STAFF_COLUMNS} FROM staff_accounts "
                "WHERE merchant_id = :merchant ORDER BY created_at, subject"
            ),
            {"merchant": merchant_id},
        )
        return [StaffAccount(*r) for r in rows]


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(
        self,
        merchant_id: str,
        actor: str,
        actor_role: str,
        action: str,
        target: str | None,
        details: dict[str, Any],
    ) -> None:
        await self._session.execute(
            text(
                "INSERT INTO audit_log (merchant_id, actor, actor_role, action, target, details) "
                "VALUES (:merchant, :actor, :role, :action, :target, CAST(:details AS jsonb))"
            ),
            {
                "merchant": merchant_id,
                "actor": actor,
                "role": actor_role,
                "action": action,
                "target": target,
                "details": json.dumps(details, default=str),
            },
        )

    async def page(
        self, merchant_id: str, *, after_id: int | None, limit: int, action: str | None
    ) -> list[AuditEntry]:
        params: dict[str, object] = {"merchant": merchant_id, "limit": limit, "after": after_id or 0}
        action_filter = ""
        if action is not None:
            action_filter = "AND action = :action"
            params["action"] = action
        rows = await self._session.execute(
            text(
                "SELECT id, actor, actor_role, action, target, details, at FROM audit_log "
                f"WHERE merchant_id = :merchant AND id > :after {action_filter} ORDER BY id LIMIT :limit"
            ),
            params,
        )
        return [AuditEntry(*r) for r in rows]


class SettingsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def smart_invites_per_week(self, merchant_id: str) -> int:
        row = (
            await self._session.execute(
                text("SELECT smart_invites_per_week FROM merchant_settings WHERE merchant_id = :merchant"),
                {"merchant": merchant_id},
            )
        ).first()
        return int(row[0]) if row else DEFAULT_SMART_INVITES_PER_WEEK

    async def set_smart_invites_per_week(self, merchant_id: str, per_week: int) -> None:
        await self._session.execute(
            text(
                "INSERT INTO merchant_settings (merchant_id, smart_invites_per_week) VALUES (:merchant, :n) "
                "ON CONFLICT (merchant_id) DO UPDATE "
                "SET smart_invites_per_week = excluded.smart_invites_per_week, "
                "updated_at = now()"
            ),
            {"merchant": merchant_id, "n": per_week},
        )
