"""Interaction routes (API.md 3.17, CLIENT.md 4.13): invoking a command (additive), the
application's callback (authenticated by the interaction token, G-09) and the webhook
follow-ups keyed by that token."""

from __future__ import annotations

from quart import Blueprint, Response

from accord.errors import NotFoundError, ShapeError
from accord.http.body import read_object
from accord.http.context import get_ctx, path_id, require_principal
from accord.http.messages import draft_from
from accord.http.responses import ok
from accord.ids import parse_id
from accord.models.interactions import parse_callback_type, parse_interaction_type
from accord.models.messages import normalize_embeds
from accord.services.interactions import UNKNOWN_INTERACTION, InteractionService

blueprint = Blueprint("interactions", __name__, url_prefix="/api/v1")


@blueprint.post("/interactions")
async def invoke() -> Response:
    """POST /api/v1/interactions — run an application command in a channel (send_messages).

    Body: `application_id`, `channel_id`, `type` ("command"), `data: {name, options}`.
    """
    principal = require_principal()
    body = await read_object()
    kind = parse_interaction_type(body.data.get("type"))
    app_raw = body.text("application_id", required=True) or ""
    channel_raw = body.text("channel_id", required=True) or ""
    data = body.obj("data", required=True)
    assert data is not None
    name = data.text("name", required=True) or ""
    options = data.array("options") or []
    app_id = parse_id(app_raw)
    if app_id is None:
        raise NotFoundError("application not found")
    channel_id = parse_id(channel_raw)
    if channel_id is None:
        raise NotFoundError("unknown_channel")
    interaction = (
        await get_ctx()
        .get(InteractionService)
        .invoke(
            principal,
            application_id=app_id,
            channel_id=channel_id,
            kind=kind,
            command_name=name,
            options=options,
        )
    )
    return ok(interaction)


@blueprint.post("/interactions/<interaction_id>/<token>/callback")
async def callback(interaction_id: str, token: str) -> Response:
    """POST /api/v1/interactions/{id}/{token}/callback — no auth header; the token is."""
    iid = path_id(interaction_id, UNKNOWN_INTERACTION)
    body = await read_object()
    kind = parse_callback_type(body.data.get("type"))
    data = body.obj("data")
    draft = draft_from(data) if data is not None else None
    await get_ctx().get(InteractionService).callback(iid, token, kind, draft)
    return ok(None)


@blueprint.post("/webhooks/<app_id>/<token>")
async def follow_up(app_id: str, token: str) -> Response:
    """POST /api/v1/webhooks/{application_id}/{token} — a follow-up message."""
    aid = path_id(app_id, UNKNOWN_INTERACTION)
    draft = draft_from(await read_object())
    return ok(await get_ctx().get(InteractionService).follow_up(aid, token, draft))


@blueprint.patch("/webhooks/<app_id>/<token>/messages/@original")
async def edit_original(app_id: str, token: str) -> Response:
    """PATCH /api/v1/webhooks/{application_id}/{token}/messages/@original."""
    aid = path_id(app_id, UNKNOWN_INTERACTION)
    body = await read_object()
    embeds_raw = body.data.get("embeds")
    if embeds_raw is not None and not isinstance(embeds_raw, list):
        raise ShapeError("expected an array", field="embeds")
    message = (
        await get_ctx()
        .get(InteractionService)
        .edit_original(
            aid,
            token,
            content=body.text("content"),
            embeds=normalize_embeds(embeds_raw) if embeds_raw is not None else None,
        )
    )
    return ok(message)


@blueprint.delete("/webhooks/<app_id>/<token>/messages/@original")
async def delete_original(app_id: str, token: str) -> Response:
    """DELETE /api/v1/webhooks/{application_id}/{token}/messages/@original."""
    aid = path_id(app_id, UNKNOWN_INTERACTION)
    await get_ctx().get(InteractionService).delete_original(aid, token)
    return ok(None)
