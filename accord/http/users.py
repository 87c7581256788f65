"""User routes (API.md 3.4): the caller's own profile."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from accord.http.body import read_object
from accord.http.context import get_ctx, require_principal
from accord.http.responses import ok
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
    """PATCH /api/v1/users/@me — user-or-bot. null clears avatar, banner, accent_color, bio."""
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
