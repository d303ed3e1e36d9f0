"""HTTP API of segment definitions: CRUD, preview before saving, full recompute, members."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from meadow_runtime.auth import StaffPrincipal
from meadow_runtime.errors import NotFound, field_problem
from meadow_runtime.idempotency import IdempotencyKey, run_idempotently

from ..uow import SegmentsUoW
from . import service
from .repository import StoredSegment
from .schemas import (
    Member,
    MembersPage,
    PreviewIn,
    PreviewOut,
    RecomputeOut,
    SegmentIn,
    SegmentOut,
    SegmentSaved,
    SegmentUpdate,
)

router = APIRouter(prefix="/v1/segments", tags=["segments"])


def _out(segment: StoredSegment) -> SegmentOut:
    return SegmentOut(**{name: getattr(segment, name) for name in SegmentOut.model_fields})


def _saved(segment: StoredSegment, result: service.Recomputed) -> SegmentSaved:
    return SegmentSaved(
        **_out(segment).model_dump(),
        entered=result.entered,
        exited=result.exited,
        member_count=result.member_count,
    )


@router.post(
    "", status_code=201, response_model=SegmentSaved, summary="Create a segment and compute its members"
)
async def create_segment(
    body: SegmentIn, principal: StaffPrincipal, uow: SegmentsUoW, request: Request, key: IdempotencyKey = None
) -> Response:
    principal.require_role("operator")

    async def action() -> SegmentSaved:
        segment, result = await service.create_segment(
            uow, principal.merchant_id, body.key, body.name, body.description, body.rule
        )
        return _saved(segment, result)

    return await run_idempotently(uow, request, caller=principal, key=key, action=action, status_code=201)


@router.get("", response_model=list[SegmentOut], summary="The merchant's segments")
async def list_segments(principal: StaffPrincipal, uow: SegmentsUoW) -> list[SegmentOut]:
    return [_out(s) for s in await uow.definitions.all_of(principal.merchant_id)]


@router.post(
    "/preview", response_model=PreviewOut, summary="How many customers a rule matches, before saving it"
)
async def preview_segment(body: PreviewIn, principal: StaffPrincipal, uow: SegmentsUoW) -> PreviewOut:
    count, sample = await service.preview(uow, principal.merchant_id, body.rule, body.sample_size)
    return PreviewOut(count=count, sample=sample)


@router.get("/{segment_key}", response_model=SegmentOut)
async def get_segment(segment_key: str, principal: StaffPrincipal, uow: SegmentsUoW) -> SegmentOut:
    segment = await uow.definitions.get(principal.merchant_id, segment_key)
    if segment is None:
        raise NotFound("segment", segment_key)
    return _out(segment)


@router.put("/{segment_key}", response_model=SegmentSaved, summary="Change a segment; members are recomputed")
async def update_segment(
    segment_key: str,
    body: SegmentUpdate,
    principal: StaffPrincipal,
    uow: SegmentsUoW,
    request: Request,
    key: IdempotencyKey = None,
) -> Response:
    principal.require_role("operator")

    async def action() -> SegmentSaved:
        segment, result = await service.update_segment(
            uow, principal.merchant_id, segment_key, body.name, body.description, body.rule
        )
        return _saved(segment, result)

    return await run_idempotently(uow, request, caller=principal, key=key, action=action)


@router.delete("/{segment_key}", status_code=204, summary="Delete a segment; its members exit it")
async def delete_segment(segment_key: str, principal: StaffPrincipal, uow: SegmentsUoW) -> Response:
    principal.require_role("operator")
    await service.delete_segment(uow, principal.merchant_id, segment_key)
    await uow.commit()
    return Response(status_code=204)


@router.post("/{segment_key}/recompute", response_model=RecomputeOut, summary="Recompute members with SQL")
async def recompute_segment(segment_key: str, principal: StaffPrincipal, uow: SegmentsUoW) -> RecomputeOut:
    principal.require_role("operator")
    result = await service.recompute_saved(uow, principal.merchant_id, segment_key, datetime.now(UTC))
    await uow.commit()
    return RecomputeOut(
        segment_key=segment_key,
        entered=result.entered,
        exited=result.exited,
        member_count=result.member_count,
    )


def _encode_cursor(customer_id: str) -> str:
    return base64.urlsafe_b64encode(customer_id.encode()).decode()


def _decode_cursor(cursor: str) -> str:
    """The customer id a cursor carries. Strictly decoded: the lenient decoder drops characters outside
    the alphabet, so a garbled cursor would restart the listing instead of being refused."""
    try:
        customer_id = base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise field_problem("/cursor", "not a cursor this API returned") from error
    if not customer_id or "\x00" in customer_id:
        raise field_problem("/cursor", "not a cursor this API returned")
    return customer_id


@router.get("/{segment_key}/members", response_model=MembersPage, summary="Members, in pages")
async def segment_members(
    segment_key: str,
    principal: StaffPrincipal,
    uow: SegmentsUoW,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MembersPage:
    await service.segment_exists(uow, principal.merchant_id, segment_key)
    after = _decode_cursor(cursor) if cursor else None
    rows = await uow.definitions.members_page(principal.merchant_id, segment_key, after, limit + 1)
    page = rows[:limit]
    return MembersPage(
        segment_key=segment_key,
        items=[Member(customer_id=c, entered_at=at) for c, at in page],
        next_cursor=_encode_cursor(page[-1][0]) if len(rows) > limit else None,
    )
