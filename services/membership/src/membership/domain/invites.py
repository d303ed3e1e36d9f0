"""When an invite may still be accepted, and whether a customer may get another smart invitation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

SMART_INVITE_WINDOW = timedelta(days=7)
DEFAULT_SMART_INVITES_PER_WEEK = 3

InviteKind = Literal["link", "referral", "smart"]
InviteRefusal = Literal["revoked", "expired", "used_up", "not_for_you", "self_referral"]


@dataclass(frozen=True)
class InviteTerms:
    kind: InviteKind
    inviter_customer_id: str | None
    invitee_customer_id: str | None
    expires_at: datetime | None
    max_uses: int | None
    use_count: int
    revoked: bool


def refusal(invite: InviteTerms, *, customer_id: str, now: datetime) -> InviteRefusal | None:
    if invite.revoked:
        return "revoked"
    if invite.expires_at is not None and now >= invite.expires_at:
        return "expired"
    if invite.max_uses is not None and invite.use_count >= invite.max_uses:
        return "used_up"
    if invite.invitee_customer_id is not None and invite.invitee_customer_id != customer_id:
        return "not_for_you"
    if invite.inviter_customer_id == customer_id:
        return "self_referral"
    return None


def may_send_smart_invite(sent_in_window: int, *, per_week: int) -> bool:
    return sent_in_window < per_week
