"""Shared steps of the content integration tests: groups, members, tiers, and scheduled posts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from content.models import CONTENT_TABLES
from meadow_contracts import Envelope, Topic
from meadow_contracts.events import MemberJoined, TierChanged
from meadow_runtime.outbox import OUTBOX
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import produce


def merchant() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


async def make_group(svc: ServiceHarness, merchant_id: str, **rules: Any) -> uuid.UUID:
    group_id = uuid.uuid4()
    body = {"max_posts_per_day": 3, **rules}
    response = await svc.client.put(
        f"/v1/groups/{group_id}/settings", json=body, headers=svc.auth(merchant_id)
    )
    assert response.status_code == 200, response.text
    return group_id


async def join(svc: ServiceHarness, merchant_id: str, group_id: uuid.UUID, *customers: str) -> None:
    envelopes = [
        Envelope.wrap(
            MemberJoined(
                group_id=group_id,
                subgroup_id=uuid.uuid4(),
                subgroup_number=1,
                customer_id=c,
                joined_at=datetime.now(UTC),
            ),
            source="membership",
            merchant_id=merchant_id,
            subject=c,
        )
        for c in customers
    ]
    await produce(svc.settings, Topic.MEMBERSHIP.value, *envelopes)
    await svc.consume()


async def set_tier(svc: ServiceHarness, merchant_id: str, customer_id: str, rank: int) -> None:
    event = TierChanged(
        customer_id=customer_id,
        old_tier=None,
        new_tier=f"vip{rank}",
        new_rank=rank,
        direction="up",
        changed_at=datetime.now(UTC),
    )
    envelope = Envelope.wrap(event, source="rewards", merchant_id=merchant_id, subject=customer_id)
    await produce(svc.settings, Topic.REWARDS.value, envelope)
    await svc.consume()


async def row_counts(svc: ServiceHarness, merchant_id: str) -> dict[str, int]:
    """Rows per content table that belong to the merchant (for "writes nothing")."""
    counts: dict[str, int] = {}
    async with svc.uow() as uow:
        for table in CONTENT_TABLES:
            if "merchant_id" in table.c and table.name not in {"groups", "merchant_settings"}:
                query = select(func.count()).select_from(table).where(table.c.merchant_id == merchant_id)
                counts[table.name] = int(await uow.session.scalar(query) or 0)
        counts["outbox"] = int(
            await uow.session.scalar(
                select(func.count())
                .select_from(OUTBOX)
                .where(OUTBOX.c.aggregateid.startswith(f"{merchant_id}:"))
            )
            or 0
        )
    return counts


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server on 127.0.0.1: records each request, answers with the next scripted status."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    location: str | None = None  # sent with every answer, to script redirects
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        extra = f"Location: {self.location}\r\n" if self.location else ""
        writer.write(
            f"HTTP/1.1 {status} X\r\n{extra}Content-Length: 2\r\nConnection: close\r\n\r\nok".encode()
        )
        await writer.drain()
        writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/meadow"

    @classmethod
    @asynccontextmanager
    async def listening(cls) -> AsyncIterator[Receiver]:
        found = cls()
        server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
        found.port = server.sockets[0].getsockname()[1]
        async with server:
            yield found
