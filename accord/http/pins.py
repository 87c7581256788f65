"""Pin routes (API.md 3.7, CLIENT.md 4.5): list, pin, unpin."""

from __future__ import annotations

from quart import Blueprint, Response

from accord.http.context import get_ctx, message_path_ids, path_id, require_principal
from accord.http.responses import ok
from accord.services.messages import MessageService

blueprint = Blueprint("pins", __name__, url_prefix="/api/v1/channels/<channel_id>/pins")


@blueprint.get("")
async def list_pins(channel_id: str) -> Response:
    """GET /api/v1/channels/{c}/pins — view_channel + read_history; newest pin first."""
    principal = require_principal()
    cid = path_id(channel_id, "unknown_channel")
    return ok(await get_ctx().get(MessageService).list_pins(principal, cid))


@blueprint.put("/<message_id>")
async def pin(channel_id: str, message_id: str) -> Response:
    """PUT /api/v1/channels/{c}/pins/{m} — manage_messages; the message must be in {c}."""
    principal = require_principal()
    cid, mid = message_path_ids(channel_id, message_id)
    await get_ctx().get(MessageService).set_pin(principal, cid, mid, pinned=True)
    return ok(None)


@blueprint.delete("/<message_id>")
async def unpin(channel_id: str, message_id: str) -> Response:
    """DELETE /api/v1/channels/{c}/pins/{m} — manage_messages; idempotent."""
    principal = require_principal()
    cid, mid = message_path_ids(channel_id, message_id)
    await get_ctx().get(MessageService).set_pin(principal, cid, mid, pinned=False)
    return ok(None)
