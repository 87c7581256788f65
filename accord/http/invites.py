"""Invite routes (API.md 3.12, CLIENT.md 4.9): create and list per space or channel, preview
(read with a space preview), edit, delete and accept by code. Bodies of create are optional
(`{}` or nothing)."""

from __future__ import annotations

from quart import Blueprint, Response

from accord.http.body import read_object
from accord.http.context import audit_reason, get_ctx, path_id, require_principal
from accord.http.responses import ok
from accord.services.invites import InviteService

blueprint = Blueprint("invites", __name__, url_prefix="/api/v1")


async def _create(*, space_id: int | None = None, channel_id: int | None = None) -> Response:
    principal = require_principal()
    body = await read_object(required=False)
    invite = (
        await get_ctx()
        .get(InviteService)
        .create_invite(
            principal,
            space_id=space_id,
            channel_id=channel_id,
            max_uses=body.integer("max_uses"),
            max_age=body.integer("max_age"),
            temporary=bool(body.boolean("temporary")),
            reason=audit_reason(),
        )
    )
    return ok(invite.to_wire())


@blueprint.post("/spaces/<raw>/invites")
async def create_space_invite(raw: str) -> Response:
    """POST /api/v1/spaces/{space_id}/invites — create_invites."""
    require_principal()
    return await _create(space_id=path_id(raw, "unknown_space"))


@blueprint.post("/channels/<raw>/invites")
async def create_channel_invite(raw: str) -> Response:
    """POST /api/v1/channels/{channel_id}/invites — create_invites in the channel."""
    require_principal()
    return await _create(channel_id=path_id(raw, "unknown_channel"))


@blueprint.get("/spaces/<raw>/invites")
async def list_space_invites(raw: str) -> Response:
    """GET /api/v1/spaces/{space_id}/invites — member; all with manage_channels/manage_space,
    else the caller's own (D-inv2)."""
    principal = require_principal()
    invites = (
        await get_ctx()
        .get(InviteService)
        .list_invites(principal, space_id=path_id(raw, "unknown_space"))
    )
    return ok([invite.to_wire() for invite in invites])


@blueprint.get("/channels/<raw>/invites")
async def list_channel_invites(raw: str) -> Response:
    """GET /api/v1/channels/{channel_id}/invites — view_channel (D-inv2 filtering)."""
    principal = require_principal()
    invites = (
        await get_ctx()
        .get(InviteService)
        .list_invites(principal, channel_id=path_id(raw, "unknown_channel"))
    )
    return ok([invite.to_wire() for invite in invites])


@blueprint.get("/invites/<code>")
async def get_invite(code: str) -> Response:
    """GET /api/v1/invites/{code} — user-or-bot; the Invite with a `space` preview."""
    require_principal()
    return ok(await get_ctx().get(InviteService).preview_invite(code))


@blueprint.patch("/invites/<code>")
async def update_invite(code: str) -> Response:
    """PATCH /api/v1/invites/{code} — its inviter, manage_channels or manage_space;
    `max_uses`, `max_age` (0 or null: unlimited / never), `temporary`."""
    principal = require_principal()
    body = await read_object()
    changes = frozenset(n for n in ("max_uses", "max_age", "temporary") if body.provided(n))
    invite = (
        await get_ctx()
        .get(InviteService)
        .update_invite(
            principal,
            code,
            max_uses=body.integer("max_uses"),
            max_age=body.integer("max_age"),
            temporary=body.boolean("temporary"),
            changes=changes,
            reason=audit_reason(),
        )
    )
    return ok(invite.to_wire())


@blueprint.delete("/invites/<code>")
async def delete_invite(code: str) -> Response:
    """DELETE /api/v1/invites/{code} — its inviter, manage_channels or manage_space."""
    principal = require_principal()
    await get_ctx().get(InviteService).delete_invite(principal, code, reason=audit_reason())
    return ok(None)


@blueprint.post("/invites/<code>/accept")
async def accept_invite(code: str) -> Response:
    """POST /api/v1/invites/{code}/accept — user-or-bot; no body."""
    principal = require_principal()
    invite = await get_ctx().get(InviteService).accept_invite(principal, code)
    return ok(invite.to_wire())
