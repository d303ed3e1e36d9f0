"""The rewards unit of work: one transaction, its outbox, and the repositories built on its session."""

from __future__ import annotations

from meadow_runtime.uow import UnitOfWork

from .ledger.repository import LedgerRepository


class RewardsUnitOfWork(UnitOfWork):
    ledger: LedgerRepository

    def on_enter(self) -> None:
        self.ledger = LedgerRepository(self.session)
