"""Emoji routes (API.md 3.13, CLIENT.md 4.10)."""

from __future__ import annotations

from quart import Blueprint, Response

from accord.errors import ShapeError
from accord.http.body import Body, read_object
from accord.http.context import (
    audit_reason,
    get_ctx,
    parse_after_access,
    path_id,
    require_principal,
)
from accord.http.responses import ok
from accord.ids import parse_id
from accord.services.emojis import EmojiService
from accord.services.spaces import SpaceService

blueprint = Blueprint("emojis", __name__, url_prefix="/api/v1/spaces/<space_id>/emojis")


def _role_ids(body: Body) -> list[int] | None:
    """`roles` (or `role_ids`): role id strings; ids that name nothing are a 400 later."""
    name = "roles" if body.data.get("roles") is not None else "role_ids"
    values = body.array(name)
    if values is None:
        return None
    ids = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ShapeError("expected an array of id strings", field=name)
        ids.append(parse_id(value) or 0)
    return ids


@blueprint.get("")
async def list_emojis(space_id: str) -> Response:
    """GET /api/v1/spaces/{s}/emojis — member."""
    principal = require_principal()
    sid = path_id(space_id, "unknown_space")
    return ok(await get_ctx().get(EmojiService).list_emojis(principal, sid))


@blueprint.post("")
async def create_emoji(space_id: str) -> Response:
    """POST /api/v1/spaces/{s}/emojis — manage_emojis; `name`, `image` (data URI), `roles`."""
    principal = require_principal()
    sid = path_id(space_id, "unknown_space")
    body = await read_object()
    ctx = get_ctx()

    def parse() -> tuple[str, str, list[int]]:
        name = body.text("name", required=True) or ""
        image = body.text("image", required=True) or ""
        return name, image, _role_ids(body) or []

    name, image, role_ids = await parse_after_access(
        parse, lambda: ctx.get(SpaceService).require_permission(principal, sid, "manage_emojis")
    )
    emoji = await ctx.get(EmojiService).create_emoji(
        principal, sid, name=name, image=image, role_ids=role_ids, reason=audit_reason()
    )
    return ok(emoji)


@blueprint.get("/<emoji_id>")
async def get_emoji(space_id: str, emoji_id: str) -> Response:
    """GET /api/v1/spaces/{s}/emojis/{e} — member; 404 unless the emoji is in {s}."""
    principal = require_principal()
    sid = path_id(space_id, "unknown_space")
    eid = path_id(emoji_id, "unknown_emoji")
    return ok(await get_ctx().get(EmojiService).get_emoji(principal, sid, eid))


@blueprint.patch("/<emoji_id>")
async def update_emoji(space_id: str, emoji_id: str) -> Response:
    """PATCH /api/v1/spaces/{s}/emojis/{e} — manage_emojis; `name`, `roles`."""
    principal = require_principal()
    sid = path_id(space_id, "unknown_space")
    eid = path_id(emoji_id, "unknown_emoji")
    body = await read_object(required=False)
    ctx = get_ctx()
    name, role_ids = await parse_after_access(
        lambda: (body.text("name"), _role_ids(body)),
        lambda: ctx.get(SpaceService).require_permission(principal, sid, "manage_emojis"),
    )
    emoji = await ctx.get(EmojiService).update_emoji(
        principal, sid, eid, name=name, role_ids=role_ids, reason=audit_reason()
    )
    return ok(emoji)


@blueprint.delete("/<emoji_id>")
async def delete_emoji(space_id: str, emoji_id: str) -> Response:
    """DELETE /api/v1/spaces/{s}/emojis/{e} — manage_emojis; idempotent."""
    principal = require_principal()
    sid = path_id(space_id, "unknown_space")
    eid = parse_id(emoji_id) or 0  # a malformed id names nothing: 200 once permitted
    await get_ctx().get(EmojiService).delete_emoji(principal, sid, eid, reason=audit_reason())
    return ok(None)
