"""Member routes (API.md 3.9, CLIENT.md 4.6): list (paged by user id), search, read, edit
(`nick` is an alias of `nickname`), kick, leave (`DELETE .../members/@me`, G-35), and role
assignment. Members carry their embedded user (CLIENT.md 5 Member)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request

from accord.errors import ValidationError
from accord.http.body import Body, read_object
from accord.http.context import audit_reason, get_ctx, path_id, require_principal
from accord.http.responses import ok
from accord.ids import parse_id
from accord.services.members import MemberService

blueprint = Blueprint("members", __name__, url_prefix="/api/v1/spaces")


def query_int(name: str, default: int) -> int:
    """An integer query parameter; anything else is a 400 (API.md 1.3)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValidationError("expected an integer", field=name) from None
    if not -(2**63) <= value < 2**63:
        raise ValidationError("integer out of range", field=name)
    return value


def query_id(name: str) -> int | None:
    """An id query parameter (`after`, `before`); malformed ids are a 400."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    value = parse_id(raw.strip())
    if value is None and raw.strip() != "0":
        raise ValidationError("not a valid id", field=name)
    return value or 0


def _member_changes(body: Body) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for alias in ("nick", "nickname"):
        if body.provided(alias):
            changes["nickname"] = body.text(alias)
    for flag in ("mute", "deaf"):
        if body.boolean(flag) is not None:
            changes[flag] = body.boolean(flag)
    if body.provided("roles") and not body.is_null("roles"):
        changes["roles"] = body.snowflakes("roles")
    for alias in ("communication_disabled_until", "timed_out_until"):
        if body.provided(alias):
            changes["timed_out_until"] = body.text(alias)
    return changes


@blueprint.get("/<raw>/members")
async def list_members(raw: str) -> Response:
    """GET /api/v1/spaces/{space_id}/members — member; `after`, `limit` (1..1000, 50)."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    views, has_more = (
        await get_ctx()
        .get(MemberService)
        .list_members(
            principal, space_id, after=query_id("after") or 0, limit=query_int("limit", 50)
        )
    )
    data = [view.to_wire(principal.user_id) for view in views]
    if has_more:
        return ok(data, cursor={"after": data[-1]["user_id"], "has_more": True})
    return ok(data)


@blueprint.get("/<raw>/members/search")
async def search_members(raw: str) -> Response:
    """GET /api/v1/spaces/{space_id}/members/search?query= — member; limit 1..100 (25)."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    query = request.args.get("query")
    if query is None:
        raise ValidationError("missing required query parameter", field="query")
    views = (
        await get_ctx()
        .get(MemberService)
        .search(principal, space_id, query, limit=query_int("limit", 25))
    )
    return ok([view.to_wire(principal.user_id) for view in views])


@blueprint.get("/<raw>/members/@me")
async def get_me(raw: str) -> Response:
    """GET /api/v1/spaces/{space_id}/members/@me — the caller's own member object."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    view = await get_ctx().get(MemberService).get_member(principal, space_id, principal.user_id)
    return ok(view.to_wire(principal.user_id))


@blueprint.patch("/<raw>/members/@me")
async def update_me(raw: str) -> Response:
    """PATCH /api/v1/spaces/{space_id}/members/@me — change_nickname; only the nickname."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    body = await read_object()
    changes = {k: v for k, v in _member_changes(body).items() if k == "nickname"}
    view = (
        await get_ctx()
        .get(MemberService)
        .update_member(principal, space_id, principal.user_id, changes)
    )
    return ok(view.to_wire(principal.user_id))


@blueprint.delete("/<raw>/members/@me")
async def leave(raw: str) -> Response:
    """DELETE /api/v1/spaces/{space_id}/members/@me — leave the space (not its owner)."""
    principal = require_principal()
    await get_ctx().get(MemberService).leave(principal, path_id(raw, "unknown_space"))
    return ok(None)


@blueprint.get("/<raw>/members/<user>")
async def get_member(raw: str, user: str) -> Response:
    """GET /api/v1/spaces/{space_id}/members/{user_id} — member."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    user_id = path_id(user, "member not found")
    view = await get_ctx().get(MemberService).get_member(principal, space_id, user_id)
    return ok(view.to_wire(principal.user_id))


@blueprint.patch("/<raw>/members/<user>")
async def update_member(raw: str, user: str) -> Response:
    """PATCH /api/v1/spaces/{space_id}/members/{user_id} — per field: manage_nicknames,
    mute_members, deafen_members, manage_roles (+ role hierarchy), moderate_members."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    user_id = path_id(user, "member not found")
    body = await read_object()
    view = (
        await get_ctx()
        .get(MemberService)
        .update_member(principal, space_id, user_id, _member_changes(body), reason=audit_reason())
    )
    return ok(view.to_wire(principal.user_id))


@blueprint.delete("/<raw>/members/<user>")
async def kick_member(raw: str, user: str) -> Response:
    """DELETE /api/v1/spaces/{space_id}/members/{user_id} — kick_members + hierarchy."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    user_id = path_id(user, "member not found")
    await get_ctx().get(MemberService).kick(principal, space_id, user_id, reason=audit_reason())
    return ok(None)


@blueprint.put("/<raw>/members/<user>/roles/<role>")
async def add_role(raw: str, user: str, role: str) -> Response:
    """PUT /api/v1/spaces/{space_id}/members/{user_id}/roles/{role_id} — manage_roles."""
    principal = require_principal()
    await (
        get_ctx()
        .get(MemberService)
        .set_role(
            principal,
            path_id(raw, "unknown_space"),
            path_id(user, "member not found"),
            path_id(role, "unknown_role"),
            assign=True,
            reason=audit_reason(),
        )
    )
    return ok(None)


@blueprint.delete("/<raw>/members/<user>/roles/<role>")
async def remove_role(raw: str, user: str, role: str) -> Response:
    """DELETE /api/v1/spaces/{space_id}/members/{user_id}/roles/{role_id} — manage_roles."""
    principal = require_principal()
    await (
        get_ctx()
        .get(MemberService)
        .set_role(
            principal,
            path_id(raw, "unknown_space"),
            path_id(user, "member not found"),
            path_id(role, "unknown_role"),
            assign=False,
            reason=audit_reason(),
        )
    )
    return ok(None)
