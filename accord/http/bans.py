"""Ban routes (API.md 3.11, CLIENT.md 4.8). The list comes back whole unless the caller pages
it with `after`/`before`/`limit` (by user id, G-37)."""

from __future__ import annotations

from quart import Blueprint, Response, request

from accord.http.body import read_object
from accord.http.context import audit_reason, get_ctx, path_id, require_principal
from accord.http.members import query_id, query_int
from accord.http.responses import ok
from accord.ids import parse_id
from accord.services.bans import BanService

blueprint = Blueprint("bans", __name__, url_prefix="/api/v1/spaces")

BANS_PAGE_MAX = 1000


@blueprint.get("/<raw>/bans")
async def list_bans(raw: str) -> Response:
    """GET /api/v1/spaces/{space_id}/bans — ban_members; newest first when not paged."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    paged = any(request.args.get(name) for name in ("after", "before", "limit"))
    limit = max(1, min(query_int("limit", BANS_PAGE_MAX), BANS_PAGE_MAX)) if paged else None
    bans = (
        await get_ctx()
        .get(BanService)
        .list_bans(
            principal, space_id, after=query_id("after"), before=query_id("before"), limit=limit
        )
    )
    return ok([ban.to_wire() for ban in bans])


@blueprint.get("/<raw>/bans/<user>")
async def get_ban(raw: str, user: str) -> Response:
    """GET /api/v1/spaces/{space_id}/bans/{user_id} — ban_members."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    ban = await get_ctx().get(BanService).get_ban(principal, space_id, _user_id(user))
    return ok(ban.to_wire())


def _user_id(raw: str) -> int:
    """The target user id; a malformed one names nobody (0), so the permission check still
    answers first (403 before 404, CLIENT.md 4.8)."""
    return parse_id(raw) or 0


@blueprint.put("/<raw>/bans/<user>")
async def put_ban(raw: str, user: str) -> Response:
    """PUT /api/v1/spaces/{space_id}/bans/{user_id} — ban_members + hierarchy; body optional."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    body = await read_object(required=False)
    ban = (
        await get_ctx()
        .get(BanService)
        .ban(
            principal,
            space_id,
            _user_id(user),
            reason=body.text("reason"),
            delete_message_seconds=body.integer("delete_message_seconds"),
            audit_reason=audit_reason(),
        )
    )
    return ok(ban.to_wire())


@blueprint.delete("/<raw>/bans/<user>")
async def delete_ban(raw: str, user: str) -> Response:
    """DELETE /api/v1/spaces/{space_id}/bans/{user_id} — ban_members; idempotent."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    await (
        get_ctx().get(BanService).unban(principal, space_id, _user_id(user), reason=audit_reason())
    )
    return ok(None)
