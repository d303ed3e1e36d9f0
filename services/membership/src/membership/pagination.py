"""Opaque keyset cursors: the (time, id) of the last item served, so pages never skip or repeat rows."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from uuid import UUID

from meadow_runtime.errors import field_problem


def encode_cursor(at: datetime, item_id: UUID | int | str) -> str:
    raw = json.dumps([at.isoformat(), str(item_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, item_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(at), str(item_id)
    except (ValueError, TypeError) as error:
        raise field_problem("/cursor", "not a cursor this API issued", error_type="cursor") from error


def decode_uuid_cursor(cursor: str) -> tuple[datetime, UUID]:
    at, item_id = decode_cursor(cursor)
    try:
        return at, UUID(item_id)
    except ValueError as error:
        raise field_problem("/cursor", "not a cursor this API issued", error_type="cursor") from error
