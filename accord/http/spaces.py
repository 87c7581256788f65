"""Space routes (API.md 3.5): public listing, create, read by id or slug, update, delete, join,
and ownership transfer (`POST /spaces/{id}/transfer`, or `owner_id` in PATCH; G-35)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request

from accord.errors import ValidationError
from accord.http.body import Body, read_object
from accord.http.context import (
    audit_reason,
    get_ctx,
    optional_principal,
    parse_after_access,
    path_id,
    query_id,
    query_int,
    require_principal,
)
from accord.http.responses import ok
from accord.services.spaces import SpaceService

blueprint = Blueprint("spaces", __name__, url_prefix="/api/v1/spaces")

_TEXT_FIELDS = (
    "name",
    "slug",
    "description",
    "verification_level",
    "default_notifications",
    "preferred_locale",
)
_CHANNEL_FIELDS = ("afk_channel_id", "system_channel_id", "rules_channel_id")


def optional_id(body: Body, name: str) -> int | None:
    """An id field where null or "" clears the reference; malformed ids are a 400."""
    if body.is_null(name) or body.data.get(name) == "":
        return None
    value = body.snowflake(name)
    if value is None:
        raise ValidationError("not a valid id", field=name)
    return value


PUBLIC_PAGE_MAX = 100


@blueprint.get("/public")
async def list_public() -> Response:
    """GET /api/v1/spaces/public — no auth; the whole list by id, or with `after` and/or `limit`
    (1..100, default 100) one page of it (G-37)."""
    paged = any(request.args.get(name) for name in ("after", "limit"))
    limit = query_int("limit", PUBLIC_PAGE_MAX, 1, PUBLIC_PAGE_MAX) if paged else None
    spaces = await get_ctx().get(SpaceService).list_public(after=query_id("after"), limit=limit)
    return ok([space.to_wire() for space in spaces])


@blueprint.post("")
async def create_space() -> Response:
    """POST /api/v1/spaces — user-or-bot."""
    principal = require_principal()
    body = await read_object()
    space = (
        await get_ctx()
        .get(SpaceService)
        .create_space(
            principal,
            name=body.text("name", required=True) or "",
            slug=body.text("slug"),
            description=body.text("description"),
            public=bool(body.boolean("public")),
        )
    )
    return ok(space.to_wire())


@blueprint.get("/<raw>")
async def get_space(raw: str) -> Response:
    """GET /api/v1/spaces/{space_id_or_slug} — optional auth (public spaces need none)."""
    space = await get_ctx().get(SpaceService).get_space(optional_principal(), raw)
    return ok(space.to_wire())


@blueprint.patch("/<raw>")
async def update_space(raw: str) -> Response:
    """PATCH /api/v1/spaces/{space_id} — manage_space."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    body = await read_object()

    def parse() -> dict[str, Any]:
        changes: dict[str, Any] = {}
        for name in _TEXT_FIELDS:
            if body.text(name) is not None:
                changes[name] = body.text(name)
        if body.integer("afk_timeout") is not None:
            changes["afk_timeout"] = body.integer("afk_timeout")
        if body.boolean("public") is not None:
            changes["public"] = body.boolean("public")
        for name in ("icon", "banner"):
            if body.provided(name):
                changes[name] = body.text(name)
        for name in _CHANNEL_FIELDS:
            if body.provided(name):
                changes[name] = optional_id(body, name)
        if body.provided("owner_id"):
            changes["owner_id"] = _owner_id(body)
        return changes

    service = get_ctx().get(SpaceService)
    changes = await parse_after_access(
        parse, lambda: service.require_permission(principal, space_id, "manage_space")
    )
    space = await service.update_space(principal, space_id, changes, reason=audit_reason())
    return ok(space.to_wire())


def _owner_id(body: Body) -> int:
    """`owner_id`: required (422 when missing or of the wrong type, 400 when malformed)."""
    owner_id = body.snowflake("owner_id", required=True)
    assert owner_id is not None
    return owner_id


@blueprint.post("/<raw>/transfer")
async def transfer_ownership(raw: str) -> Response:
    """POST /api/v1/spaces/{space_id}/transfer — the owner; `owner_id` of a current member."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    body = await read_object()
    space = (
        await get_ctx()
        .get(SpaceService)
        .transfer_ownership(principal, space_id, _owner_id(body), reason=audit_reason())
    )
    return ok(space.to_wire())


@blueprint.delete("/<raw>")
async def delete_space(raw: str) -> Response:
    """DELETE /api/v1/spaces/{space_id} — the owner or an instance admin."""
    principal = require_principal()
    await get_ctx().get(SpaceService).delete_space(principal, path_id(raw, "unknown_space"))
    return ok(None)


@blueprint.post("/<raw>/join")
async def join_space(raw: str) -> Response:
    """POST /api/v1/spaces/{space_id}/join — user-or-bot; public spaces only; no body."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    await get_ctx().get(SpaceService).join_public(principal, space_id)
    return ok({"space_id": str(space_id)})
