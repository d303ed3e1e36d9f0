"""The unit of work: one transaction, the events it causes, and the only place a commit happens.

Service layers receive a unit of work and never commit; the endpoint or consumer that opened it does.
Services subclass it to expose their repositories, built on `self.session`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .outbox import Outbox


class UnitOfWork:
    session: AsyncSession
    outbox: Outbox

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], source: str) -> None:
        self._session_factory = session_factory
        self._source = source
        self._committed = False

    async def __aenter__(self) -> Self:
        self.session = self._session_factory()
        self.outbox = Outbox(self.session, self._source)
        self._committed = False
        self.on_enter()
        return self

    def on_enter(self) -> None:
        """Hook for subclasses to build repositories on the fresh session."""

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._committed:
                await self.rollback()
        finally:
            await self.session.close()

    async def flush(self) -> None:
        await self.outbox.flush()
        await self.session.flush()

    async def commit(self) -> None:
        await self.outbox.flush()
        await self.session.commit()
        self._committed = True

    async def rollback(self) -> None:
        self.outbox.discard()
        await self.session.rollback()
