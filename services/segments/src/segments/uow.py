"""The segments unit of work: one transaction with the facts and definitions repositories on it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from meadow_runtime.app import unit_of_work_dependency
from meadow_runtime.uow import UnitOfWork

from .definitions.repository import DefinitionsRepository
from .facts.repository import FactsRepository


class SegmentsUnitOfWork(UnitOfWork):
    facts: FactsRepository
    definitions: DefinitionsRepository

    def on_enter(self) -> None:
        self.facts = FactsRepository(self.session)
        self.definitions = DefinitionsRepository(self.session)


SegmentsUoW = Annotated[SegmentsUnitOfWork, Depends(unit_of_work_dependency(SegmentsUnitOfWork))]
