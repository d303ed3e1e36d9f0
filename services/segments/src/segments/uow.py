"""The segments unit of work: one transaction with the facts and definitions repositories on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from meadow_runtime.uow import UnitOfWork

from .definitions.repository import DefinitionsRepository
from .facts.repository import FactsRepository


class SegmentsUnitOfWork(UnitOfWork):
    facts: FactsRepository
    definitions: DefinitionsRepository

    def on_enter(self) -> None:
        self.facts = FactsRepository(self.session)
        self.definitions = DefinitionsRepository(self.session)


async def _segments_unit_of_work(request: Request) -> AsyncIterator[SegmentsUnitOfWork]:
    async with request.app.state.uow_factory() as uow:
        assert isinstance(uow, SegmentsUnitOfWork)
        yield uow


SegmentsUoW = Annotated[SegmentsUnitOfWork, Depends(_segments_unit_of_work)]
