"""The membership unit of work: one transaction, its outbox, and the repositories built on its session."""

from __future__ import annotations

from meadow_runtime.uow import UnitOfWork

from .blacklist.repository import BlacklistRepository
from .groups.repository import GroupRepository
from .invites.repository import InviteRepository
from .members.repository import MemberRepository
from .projections.repository import ProjectionRepository
from .staff.repository import AuditRepository, SettingsRepository, StaffRepository


class MembershipUnitOfWork(UnitOfWork):
    groups: GroupRepository
    members: MemberRepository
    invites: InviteRepository
    blacklist: BlacklistRepository
    projections: ProjectionRepository
    staff: StaffRepository
    audit: AuditRepository
    settings: SettingsRepository

    @property
    def source(self) -> str:
        """The `source` of the events this unit of work writes (the service's name)."""
        return self._source

    def on_enter(self) -> None:
        self.groups = GroupRepository(self.session)
        self.members = MemberRepository(self.session)
        self.invites = InviteRepository(self.session)
        self.blacklist = BlacklistRepository(self.session)
        self.projections = ProjectionRepository(self.session)
        self.staff = StaffRepository(self.session)
        self.audit = AuditRepository(self.session)
        self.settings = SettingsRepository(self.session)
