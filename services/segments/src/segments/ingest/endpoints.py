"""`POST /v1/ingest/{event_type}`: a batch of commerce events, validated, published via the outbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from sqlalchemy.exc import IntegrityError

from meadow_runtime.auth import CurrentPrincipal
from meadow_runtime.errors import Conflict, Problem

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
    principal: CurrentPrincipal,
    uow: SegmentsUoW,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            description=(
                "Names this request: items sent without an `id` get ids derived from the key and their "
                "place in the batch, so a retry with the same key and the same events publishes nothing "
                "twice."
            ),
        ),
    ] = None,
) -> Response:
    if principal.role not in ("service", "owner", "operator"):
        raise Problem(
            403, "Forbidden", "Ingest needs a service token or the operator role.", type_="forbidden"
        )
    model = service.model_for(event_type)
    envelopes = service.build_envelopes(model, principal.merchant_id, batch.events, idempotency_key)
    accepted, duplicates = await service.ingest(uow, principal.merchant_id, model, envelopes, batch.events)
    try:
        await uow.commit()
    except IntegrityError as error:  # the outbox's key: another merchant's request took an id meanwhile
        raise Conflict(
            "Event id in use", "An event id of this batch was just used by another merchant's event."
        ) from error
    body = IngestResult(accepted=accepted, duplicates=duplicates)
    return Response(body.model_dump_json(), status_code=202, media_type="application/json")
