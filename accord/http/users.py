"""User routes (API.md 3.4, CLIENT.md 4.2): profiles, one's spaces and DM channels, and
deleting one's own account (`DELETE /users/@me`, G-35)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from accord.errors import NotFoundError, ShapeError
from accord.http.body import read_object
from accord.http.context import get_ctx, path_id, require_principal
from accord.http.responses import ok
from accord.ids import parse_id
from accord.services.dms import DmService
from accord.services.users import UserService

blueprint = Blueprint("users", __name__, url_prefix="/api/v1/users")


@blueprint.get("/@me")
async def get_me() -> Response:
    """GET /api/v1/users/@me — user-or-bot."""
    principal = require_principal()
    user = await get_ctx().get(UserService).get_user(principal.user_id)
    return ok(user.to_wire())


@blueprint.patch("/@me")
async def patch_me() -> Response:
    """PATCH /api/v1/users/@me — user-or-bot. avatar/banner: data URI or base64 (D17a);
    null clears avatar, banner, accent_color, bio."""
    principal = require_principal()
    body = await read_object(required=False)
    changes: dict[str, Any] = {}
    for name in ("username", "display_name"):
        value = body.text(name)
        if value is not None:
            changes[name] = value
    for name in ("avatar", "banner", "bio"):
        if body.provided(name):
            changes[name] = body.text(name)
    if body.provided("accent_color"):
        changes["accent_color"] = body.integer("accent_color")
    user = await get_ctx().get(UserService).update_me(principal.user_id, changes)
    return ok(user.to_wire())


@blueprint.delete("/@me")
async def delete_me() -> Response:
    """DELETE /api/v1/users/@me — user; body may carry `password` (required when the account
    has one) and `code` (required with two-factor auth); refused while the user owns spaces."""
    principal = require_principal()
    body = await read_object(required=False)
    await (
        get_ctx()
        .get(UserService)
        .delete_account(principal, body.text("password"), body.text("code"))
    )
    return ok(None)


@blueprint.get("/@me/spaces")
async def my_spaces() -> Response:
    """GET /api/v1/users/@me/spaces — every space the caller is a member of."""
    principal = require_principal()
    spaces = await get_ctx().get(UserService).list_spaces(principal.user_id)
    return ok([space.to_wire() for space in spaces])


@blueprint.get("/@me/channels")
async def my_channels() -> Response:
    """GET /api/v1/users/@me/channels — the caller's DM channels, latest first."""
    principal = require_principal()
    return ok(await get_ctx().get(DmService).list_channels(principal))


@blueprint.post("/@me/channels")
async def open_dm() -> Response:
    """POST /api/v1/users/@me/channels — `recipient_id` (DM) or `recipients` (group DM)."""
    principal = require_principal()
    body = await read_object()
    raw: list[Any] = []
    if body.data.get("recipient_id") is not None:
        raw = [body.data["recipient_id"]]
    elif body.data.get("recipients") is not None:
        raw = body.array("recipients") or []
    else:
        raise ShapeError("missing required field", field="recipient_id")
    ids = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ShapeError("expected an id string", field="recipients")
        user_id = parse_id(value)
        if user_id is None:
            raise NotFoundError("unknown_user")
        ids.append(user_id)
    return ok(await get_ctx().get(DmService).open_channel(principal, ids))


@blueprint.get("/<user_id>")
async def get_user(user_id: str) -> Response:
    """GET /api/v1/users/{id} — user-or-bot; 404 unknown_user."""
    principal = require_principal()
    uid = path_id(user_id, "unknown_user")
    user = await get_ctx().get(UserService).get_user(uid)
    return ok(user.to_wire(viewer_id=principal.user_id))
