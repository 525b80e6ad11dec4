"""The audit trail over HTTP: `GET /v1/events` (the caller's); the admin's per-user view is in
service/web/admin.py and pages the same way.

Both page newest first with `?limit=` and an opaque `cursor`: base64url of the last event's
(created_at, id), so the next page starts exactly after it even when events share a timestamp.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from service.domain.errors import ValidationFailed
from service.domain.views import EventPage, EventPosition, EventView, Principal
from service.web.caller import authenticated, flows
from service.web.responses import json_response, timestamp

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Every cursor this service issues: base64url (no padding) of a JSON array that starts with a
# string, ["<created_at>", "<id>"], at least 91 characters. The OpenAPI document has the same.
CURSOR_PATTERN = re.compile(r"WyI[A-Za-z0-9_-]{88,197}")

routes = web.RouteTableDef()


def encode_cursor(position: EventPosition) -> str:
    created_at, event_id = position
    raw = orjson.dumps([created_at.isoformat(), str(event_id)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> EventPosition:
    """The position a cursor names; ValidationFailed for anything this service did not issue."""
    invalid = ValidationFailed({"cursor": "is not a valid cursor"})
    if CURSOR_PATTERN.fullmatch(cursor) is None:
        raise invalid
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        created_at, event_id = data
        position = (datetime.fromisoformat(created_at), uuid.UUID(event_id))
    except (binascii.Error, orjson.JSONDecodeError, TypeError, ValueError):
        raise invalid from None
    if position[0].tzinfo is None:
        raise invalid
    return position


def page_request(request: web.Request) -> tuple[int, EventPosition | None]:
    fields: dict[str, str] = {}
    limit = DEFAULT_LIMIT
    raw_limit = request.query.get("limit")
    if raw_limit is not None:
        if re.fullmatch(r"[0-9]{1,3}", raw_limit) and 1 <= int(raw_limit) <= MAX_LIMIT:
            limit = int(raw_limit)
        else:
            fields["limit"] = f"must be an integer between 1 and {MAX_LIMIT}"
    position = None
    raw_cursor = request.query.get("cursor")
    if raw_cursor is not None:
        try:
            position = decode_cursor(raw_cursor)
        except ValidationFailed as exc:
            fields.update(exc.fields)
    if fields:
        raise ValidationFailed(fields)
    return limit, position


def event_json(event: EventView) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "kind": event.kind,
        "reason": event.reason,
        "session_id": None if event.session_id is None else str(event.session_id),
        "ip": event.ip,
        "user_agent": event.user_agent,
        "created_at": timestamp(event.created_at),
    }


def page_response(page: EventPage) -> web.Response:
    body = {
        "events": [event_json(event) for event in page.events],
        "next_cursor": None if page.next is None else encode_cursor(page.next),
    }
    return json_response(body, headers={"Cache-Control": "no-store"})


@routes.get("/v1/events")
@authenticated
async def list_events(request: web.Request, principal: Principal) -> web.Response:
    limit, position = page_request(request)
    return page_response(await flows(request).trail.page(principal.user.id, limit, position))
