"""`GET /spaces/{id}/audit-log` (CLIENT.md 4.15): view_audit_log; newest first."""

from __future__ import annotations

from quart import Blueprint, Response, request

from accord.http.context import get_ctx, path_id, query_id, query_int, require_principal
from accord.http.responses import ok
from accord.services.audit_log import AuditLogService

blueprint = Blueprint("audit_log", __name__, url_prefix="/api/v1/spaces")


@blueprint.get("/<space_id>/audit-log")
async def list_audit_log(space_id: str) -> Response:
    """GET /api/v1/spaces/{id}/audit-log?limit&before&user_id&action_type — view_audit_log."""
    principal = require_principal()
    entries = (
        await get_ctx()
        .get(AuditLogService)
        .list(
            principal,
            path_id(space_id, "unknown_space"),
            limit=query_int("limit"),
            before=query_id("before"),
            user_id=query_id("user_id"),
            action_type=request.args.get("action_type") or None,
        )
    )
    return ok([entry.to_wire() for entry in entries])
