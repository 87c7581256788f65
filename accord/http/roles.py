"""Role routes (API.md 3.10, CLIENT.md 4.7): list, create, reorder, update, delete."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from accord.auth.principal import Principal
from accord.http.body import read_array, read_object
from accord.http.channels import reorder_items
from accord.http.context import (
    audit_reason,
    get_ctx,
    parse_after_access,
    path_id,
    require_principal,
)
from accord.http.responses import ok
from accord.ids import parse_id
from accord.services.roles import RoleService
from accord.services.spaces import SpaceService

blueprint = Blueprint("roles", __name__, url_prefix="/api/v1/spaces")


async def _require_manage_roles(principal: Principal, space_id: int) -> None:
    await get_ctx().get(SpaceService).require_permission(principal, space_id, "manage_roles")


@blueprint.get("/<raw>/roles")
async def list_roles(raw: str) -> Response:
    """GET /api/v1/spaces/{space_id}/roles — member; by position (@everyone first)."""
    principal = require_principal()
    roles = await get_ctx().get(RoleService).list_roles(principal, path_id(raw, "unknown_space"))
    return ok([role.to_wire() for role in roles])


@blueprint.post("/<raw>/roles")
async def create_role(raw: str) -> Response:
    """POST /api/v1/spaces/{space_id}/roles — manage_roles."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    body = await read_object()
    ctx = get_ctx()

    def parse() -> dict[str, Any]:
        return {
            "name": body.text("name", required=True) or "",
            "color": body.integer("color"),
            "hoist": body.boolean("hoist"),
            "permissions": body.strings("permissions"),
            "mentionable": body.boolean("mentionable"),
        }

    fields = await parse_after_access(parse, lambda: _require_manage_roles(principal, space_id))
    role = await ctx.get(RoleService).create_role(
        principal, space_id, **fields, reason=audit_reason()
    )
    return ok(role.to_wire())


@blueprint.patch("/<raw>/roles")
async def reorder_roles(raw: str) -> Response:
    """PATCH /api/v1/spaces/{space_id}/roles — manage_roles; [{id, position}]."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    array = await read_array()

    def parse() -> list[tuple[int, int]]:
        items = reorder_items(array, "unknown_role")
        return [(parse_id(i.data["id"]) or 0, i.integer("position") or 0) for i in items]

    requested = await parse_after_access(parse, lambda: _require_manage_roles(principal, space_id))
    roles = (
        await get_ctx()
        .get(RoleService)
        .reorder(principal, space_id, requested, reason=audit_reason())
    )
    return ok([role.to_wire() for role in roles])


@blueprint.patch("/<raw>/roles/<role>")
async def update_role(raw: str, role: str) -> Response:
    """PATCH /api/v1/spaces/{space_id}/roles/{role_id} — manage_roles + role hierarchy."""
    principal = require_principal()
    space_id = path_id(raw, "unknown_space")
    role_id = path_id(role, "unknown_role")
    body = await read_object()

    def parse() -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if body.text("name") is not None:
            changes["name"] = body.text("name")
        for name in ("color", "position"):
            if body.integer(name) is not None:
                changes[name] = body.integer(name)
        for name in ("hoist", "mentionable"):
            if body.boolean(name) is not None:
                changes[name] = body.boolean(name)
        if body.provided("icon"):
            changes["icon"] = body.text("icon")
        if body.strings("permissions") is not None:
            changes["permissions"] = body.strings("permissions")
        return changes

    changes = await parse_after_access(parse, lambda: _require_manage_roles(principal, space_id))
    updated = (
        await get_ctx()
        .get(RoleService)
        .update_role(principal, space_id, role_id, changes, reason=audit_reason())
    )
    return ok(updated.to_wire())


@blueprint.delete("/<raw>/roles/<role>")
async def delete_role(raw: str, role: str) -> Response:
    """DELETE /api/v1/spaces/{space_id}/roles/{role_id} — manage_roles + role hierarchy."""
    principal = require_principal()
    await (
        get_ctx()
        .get(RoleService)
        .delete_role(
            principal,
            path_id(raw, "unknown_space"),
            path_id(role, "unknown_role"),
            reason=audit_reason(),
        )
    )
    return ok(None)
