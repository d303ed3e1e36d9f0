"""`POST /v1/ingest/{event_type}`: a batch of commerce events, validated, published via the outbox."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import IntegrityError

from meadow_runtime.auth import CurrentPrincipal
from meadow_runtime.errors import Conflict, Problem
from meadow_runtime.idempotency import IdempotencyKey, run_idempotently

from ..uow import SegmentsUoW
from . import service
from .schemas import IngestBatch, IngestResult

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])


@router.post(
    "/{event_type}",
    status_code=202,
    response_model=IngestResult,
    summary="Ingest commerce events (order_paid, order_refunded, customer_profile_updated, product_*)",
)
async def ingest_events(
    event_type: str,
    batch: IngestBatch,
    request: Request,
    principal: CurrentPrincipal,
    uow: SegmentsUoW,
    key: IdempotencyKey = None,
) -> Response:
    if principal.role not in ("service", "owner", "operator"):
        raise Problem(
            403, "Forbidden", "Ingest needs a service token or the operator role.", type_="forbidden"
        )
    model = service.model_for(event_type)
    ingestibles = service.build_envelopes(model, principal.merchant_id, batch.events)

    async def publish() -> IngestResult:
        accepted, duplicates = await service.ingest(
            uow, principal.merchant_id, model, ingestibles, batch.events
        )
        return IngestResult(accepted=accepted, duplicates=duplicates)

    try:
        return await run_idempotently(
            uow, request, caller=principal, key=key, status_code=202, action=publish
        )
    except IntegrityError as error:  # the outbox's key: another merchant's request took an id meanwhile
        raise Conflict(
            "Event id in use", "An event id of this batch was just used by another merchant's event."
        ) from error
