"""The segments unit of work: one transaction with the facts and definitions repositories on it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from meadow_runtime.app import unit_of_work_dependency
from meadow_runtime.uow import UnitOfWork

from .definitions.repository import DefinitionsRepository
from .facts.cache import cache_for
from .facts.repository import FactsRepository


class SegmentsUnitOfWork(UnitOfWork):
    facts: FactsRepository
    definitions: DefinitionsRepository

    def on_enter(self) -> None:
        self.facts = FactsRepository(self.session, cache_for(self._session_factory))
        self.definitions = DefinitionsRepository(self.session)

    async def commit(self) -> None:
        # New versions for the customers whose facts changed, in the transaction that changed them; the
        # facts it ends with are kept only once it committed.
        await self.facts.renew_versions()
        await super().commit()
        self.facts.publish()


SegmentsUoW = Annotated[SegmentsUnitOfWork, Depends(unit_of_work_dependency(SegmentsUnitOfWork))]
