"""Application routes (API.md 3.16-3.17, CLIENT.md 4.13, G-34): applications, bot tokens and
application commands (global and per space)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from accord.auth.principal import Principal
from accord.http.body import read_array, read_object
from accord.http.context import get_ctx, path_id, require_principal
from accord.http.responses import ok
from accord.models.applications import parse_command
from accord.services.applications import APP_NOT_FOUND, ApplicationService

blueprint = Blueprint("applications", __name__, url_prefix="/api/v1/applications")


def _app_id(raw: str) -> int:
    return path_id(raw, APP_NOT_FOUND)


async def _changes() -> dict[str, Any]:
    body = await read_object(required=False)
    changes: dict[str, Any] = {}
    for name in ("name", "description"):
        value = body.text(name)
        if value is not None:
            changes[name] = value
    if body.provided("icon"):
        changes["icon"] = body.text("icon")
    bot_public = body.boolean("bot_public")
    if bot_public is not None:
        changes["bot_public"] = bot_public
    return changes


@blueprint.post("")
async def create_application() -> Response:
    """POST /api/v1/applications — users only; `name`, `description`."""
    principal = require_principal()
    body = await read_object()
    name = body.text("name", required=True) or ""
    description = body.text("description") or ""
    app, token = await get_ctx().get(ApplicationService).create(principal, name, description)
    return ok({"application": app.to_wire(), "token": token})


@blueprint.get("")
async def list_applications() -> Response:
    """GET /api/v1/applications — the caller's applications (additive, G-34)."""
    principal = require_principal()
    apps = await get_ctx().get(ApplicationService).list_owned(principal)
    return ok([app.to_wire() for app in apps])


@blueprint.get("/@me")
async def get_my_application() -> Response:
    """GET /api/v1/applications/@me — the caller's (oldest) application, or a bot's own."""
    principal = require_principal()
    return ok((await get_ctx().get(ApplicationService).get(principal, None)).to_wire())


@blueprint.patch("/@me")
async def patch_my_application() -> Response:
    """PATCH /api/v1/applications/@me — name, description, icon, bot_public."""
    principal = require_principal()
    changes = await _changes()
    app = await get_ctx().get(ApplicationService).update(principal, None, changes)
    return ok(app.to_wire())


@blueprint.post("/@me/reset-token")
async def reset_my_token() -> Response:
    """POST /api/v1/applications/@me/reset-token — old bot tokens stop working at once."""
    principal = require_principal()
    token = await get_ctx().get(ApplicationService).reset_token(principal, None)
    return ok({"token": token})


@blueprint.get("/<app_id>")
async def get_application(app_id: str) -> Response:
    """GET /api/v1/applications/{id} — its owner (or its bot)."""
    principal = require_principal()
    app = await get_ctx().get(ApplicationService).get(principal, _app_id(app_id))
    return ok(app.to_wire())


@blueprint.patch("/<app_id>")
async def patch_application(app_id: str) -> Response:
    """PATCH /api/v1/applications/{id} — its owner."""
    principal = require_principal()
    aid = _app_id(app_id)
    changes = await _changes()
    app = await get_ctx().get(ApplicationService).update(principal, aid, changes)
    return ok(app.to_wire())


@blueprint.post("/<app_id>/reset-token")
async def reset_token(app_id: str) -> Response:
    """POST /api/v1/applications/{id}/reset-token — its owner."""
    principal = require_principal()
    token = await get_ctx().get(ApplicationService).reset_token(principal, _app_id(app_id))
    return ok({"token": token})


# -- commands ------------------------------------------------------------------------------


def _scope(app_id: str, space_id: str | None) -> tuple[Principal, int, int | None]:
    principal = require_principal()
    sid = path_id(space_id, "unknown_space") if space_id is not None else None
    return principal, _app_id(app_id), sid


@blueprint.get("/<app_id>/commands")
@blueprint.get("/<app_id>/spaces/<space_id>/commands")
async def list_commands(app_id: str, space_id: str | None = None) -> Response:
    """GET /api/v1/applications/{a}[/spaces/{s}]/commands — owner or the app's bot."""
    principal, aid, sid = _scope(app_id, space_id)
    commands = await get_ctx().get(ApplicationService).list_commands(principal, aid, sid)
    return ok([c.to_wire() for c in commands])


@blueprint.post("/<app_id>/commands")
@blueprint.post("/<app_id>/spaces/<space_id>/commands")
async def create_command(app_id: str, space_id: str | None = None) -> Response:
    """POST …/commands — create or overwrite by name."""
    principal, aid, sid = _scope(app_id, space_id)
    spec = parse_command((await read_object()).data)
    command = await get_ctx().get(ApplicationService).upsert_command(principal, aid, sid, spec)
    return ok(command.to_wire())


@blueprint.put("/<app_id>/commands")
@blueprint.put("/<app_id>/spaces/<space_id>/commands")
async def replace_commands(app_id: str, space_id: str | None = None) -> Response:
    """PUT …/commands — bulk overwrite with a JSON array."""
    principal, aid, sid = _scope(app_id, space_id)
    items = await read_array()
    specs = [parse_command(item, f"[{index}]") for index, item in enumerate(items)]
    commands = await get_ctx().get(ApplicationService).replace_commands(principal, aid, sid, specs)
    return ok([c.to_wire() for c in commands])


@blueprint.get("/<app_id>/commands/<command_id>")
@blueprint.get("/<app_id>/spaces/<space_id>/commands/<command_id>")
async def get_command(app_id: str, command_id: str, space_id: str | None = None) -> Response:
    principal, aid, sid = _scope(app_id, space_id)
    cid = path_id(command_id, "unknown_command")
    command = await get_ctx().get(ApplicationService).get_command(principal, aid, cid, sid)
    return ok(command.to_wire())


@blueprint.patch("/<app_id>/commands/<command_id>")
@blueprint.patch("/<app_id>/spaces/<space_id>/commands/<command_id>")
async def edit_command(app_id: str, command_id: str, space_id: str | None = None) -> Response:
    principal, aid, sid = _scope(app_id, space_id)
    cid = path_id(command_id, "unknown_command")
    body = await read_object()
    patch = {k: body.data.get(k) for k in ("name", "description", "options", "type")}
    command = await get_ctx().get(ApplicationService).edit_command(principal, aid, cid, sid, patch)
    return ok(command.to_wire())


@blueprint.delete("/<app_id>/commands/<command_id>")
@blueprint.delete("/<app_id>/spaces/<space_id>/commands/<command_id>")
async def delete_command(app_id: str, command_id: str, space_id: str | None = None) -> Response:
    principal, aid, sid = _scope(app_id, space_id)
    cid = path_id(command_id, "unknown_command")
    await get_ctx().get(ApplicationService).delete_command(principal, aid, cid, sid)
    return ok(None)
