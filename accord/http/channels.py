"""Channel routes (API.md 3.5-3.6): a space's channel list, create, reorder; one channel's
read, update, delete; its permission overwrites under `/permissions` and `/overwrites`
(CLIENT.md 4.4: the client uses both)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from accord.errors import NotFoundError, ShapeError
from accord.http.body import Body, read_array, read_object
from accord.http.context import (
    audit_reason,
    get_ctx,
    optional_principal,
    parse_after_access,
    path_id,
    require_principal,
)
from accord.http.responses import ok
from accord.http.spaces import optional_id
from accord.ids import parse_id
from accord.services.channels import ChannelService
from accord.services.spaces import SpaceService

blueprint = Blueprint("channels", __name__, url_prefix="/api/v1")

_INT_FIELDS = ("position", "rate_limit")
_NULLABLE_INT_FIELDS = ("bitrate", "user_limit")


def _channel_changes(body: Body, *, creating: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in ("name", "type"):
        if body.text(name) is not None:
            changes[name] = body.text(name)
    if body.provided("topic"):
        changes["topic"] = body.text("topic")
    for name in _INT_FIELDS:
        if body.integer(name) is not None:
            changes[name] = body.integer(name)
    if "rate_limit" not in changes and body.integer("rate_limit_per_user") is not None:
        changes["rate_limit"] = body.integer("rate_limit_per_user")
    for name in _NULLABLE_INT_FIELDS:
        if body.provided(name):
            changes[name] = body.integer(name)
    for name in ("nsfw", "archived"):
        if body.boolean(name) is not None:
            changes[name] = body.boolean(name)
    if body.provided("parent_id"):
        changes["parent_id"] = optional_id(body, "parent_id")
    if creating:
        changes.pop("archived", None)
        changes = {k: v for k, v in changes.items() if v is not None}
    return changes


def reorder_items(items: list[Any], unknown: str) -> list[Body]:
    """Elements of a reorder array: objects with an id naming something and an int position."""
    out: list[Body] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ShapeError("expected an object", field=f"[{index}]")
        body = Body(item, prefix=f"[{index}].")
        body.integer("position", required=True)
        raw = item.get("id")
        if not isinstance(raw, str | int) or isinstance(raw, bool):
            raise ShapeError("expected an id string", field=f"[{index}].id")
        if parse_id(raw) is None:
            raise NotFoundError(unknown)
        out.append(body)
    return out


@blueprint.get("/spaces/<raw>/channels")
async def list_channels(raw: str) -> Response:
    """GET /api/v1/spaces/{space_id}/channels — optional auth; channels the caller can view."""
    space_id = path_id(raw, "unknown_space")
    channels = await get_ctx().get(ChannelService).list_channels(optional_principal(), space_id)
    return ok([channel.to_wire() for channel in channels])


@blueprint.post("/spaces/<raw>/channels")
async def create_channel(raw: str) -> Response:
    """POST /api/v1/spaces/{space_id}/channels — manage_channels."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    body = await read_object()
    ctx = get_ctx()

    def parse() -> dict[str, Any]:
        body.text("name", required=True)
        return _channel_changes(body, creating=True)

    changes = await parse_after_access(
        parse,
        lambda: ctx.get(SpaceService).require_permission(principal, space_id, "manage_channels"),
    )
    channel = await ctx.get(ChannelService).create_channel(
        principal, space_id, changes, reason=audit_reason()
    )
    return ok(channel.to_wire())


@blueprint.patch("/spaces/<raw>/channels")
async def reorder_channels(raw: str) -> Response:
    """PATCH /api/v1/spaces/{space_id}/channels — manage_channels; [{id, position}]."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    array = await read_array()
    ctx = get_ctx()

    def parse() -> list[dict[str, Any]]:
        requested: list[dict[str, Any]] = []
        for item in reorder_items(array, "unknown_channel"):
            entry: dict[str, Any] = {
                "id": parse_id(item.data["id"]),
                "position": item.integer("position"),
            }
            if item.provided("parent_id"):
                entry["parent_id"] = optional_id(item, "parent_id")
            requested.append(entry)
        return requested

    requested = await parse_after_access(
        parse,
        lambda: ctx.get(SpaceService).require_permission(principal, space_id, "manage_channels"),
    )
    channels = (
        await get_ctx()
        .get(ChannelService)
        .reorder(principal, space_id, requested, reason=audit_reason())
    )
    return ok([channel.to_wire() for channel in channels])


@blueprint.get("/channels/<raw>")
async def get_channel(raw: str) -> Response:
    """GET /api/v1/channels/{channel_id} — view_channel (anyone for a public space)."""
    channel_id = path_id(raw, "unknown_channel")
    channel = await get_ctx().get(ChannelService).get_channel(optional_principal(), channel_id)
    return ok(channel.to_wire())


@blueprint.patch("/channels/<raw>")
async def update_channel(raw: str) -> Response:
    """PATCH /api/v1/channels/{channel_id} — manage_channels."""
    principal = require_principal()
    channel_id = path_id(raw, "unknown_channel")
    body = await read_object()
    service = get_ctx().get(ChannelService)
    changes = await parse_after_access(
        lambda: _channel_changes(body, creating=False),
        lambda: service.require_permission(principal, channel_id, "manage_channels"),
    )
    changes.pop("type", None)
    channel = await service.update_channel(principal, channel_id, changes, reason=audit_reason())
    return ok(channel.to_wire())


@blueprint.delete("/channels/<raw>")
async def delete_channel(raw: str) -> Response:
    """DELETE /api/v1/channels/{channel_id} — manage_channels."""
    principal = require_principal()
    channel_id = path_id(raw, "unknown_channel")
    await get_ctx().get(ChannelService).delete_channel(principal, channel_id, reason=audit_reason())
    return ok(None)


@blueprint.get("/channels/<raw>/permissions")
@blueprint.get("/channels/<raw>/overwrites")
async def list_overwrites(raw: str) -> Response:
    """GET /api/v1/channels/{channel_id}/permissions (or /overwrites) — manage_roles."""
    principal = require_principal()
    channel_id = path_id(raw, "unknown_channel")
    overwrites = await get_ctx().get(ChannelService).list_overwrites(principal, channel_id)
    return ok([overwrite.to_wire() for overwrite in overwrites])


@blueprint.put("/channels/<raw>/permissions/<target>")
@blueprint.put("/channels/<raw>/overwrites/<target>")
async def put_overwrite(raw: str, target: str) -> Response:
    """PUT /api/v1/channels/{channel_id}/permissions/{overwrite_id} — manage_roles."""
    principal = require_principal()
    channel_id = path_id(raw, "unknown_channel")
    body = await read_object()
    service = get_ctx().get(ChannelService)

    def parse() -> tuple[int, str, list[str], list[str]]:
        kind = body.text("type", required=True) or ""
        allow = body.strings("allow", required=True) or []
        deny = body.strings("deny", required=True) or []
        target_id = path_id(target, "unknown_role" if kind == "role" else "member not found")
        return target_id, kind, allow, deny

    # CHANNEL(manage_roles), then body validation (API.md 3.6).
    target_id, kind, allow, deny = await parse_after_access(
        parse, lambda: service.require_permission(principal, channel_id, "manage_roles")
    )
    overwrite = await service.put_overwrite(
        principal,
        channel_id,
        target_id,
        kind=kind,
        allow=allow,
        deny=deny,
        reason=audit_reason(),
    )
    return ok(overwrite.to_wire())


@blueprint.delete("/channels/<raw>/permissions/<target>")
@blueprint.delete("/channels/<raw>/overwrites/<target>")
async def delete_overwrite(raw: str, target: str) -> Response:
    """DELETE /api/v1/channels/{channel_id}/permissions/{overwrite_id} — manage_roles."""
    principal = require_principal()
    channel_id = path_id(raw, "unknown_channel")
    target_id = parse_id(target)
    service = get_ctx().get(ChannelService)
    if target_id is None:
        # Nothing can be stored under a malformed id; still check the caller's permission.
        await service.list_overwrites(principal, channel_id)
        return ok(None)
    await service.delete_overwrite(principal, channel_id, target_id, reason=audit_reason())
    return ok(None)
