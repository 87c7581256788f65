"""SFU node registry routes (VOICE.md 7.2, API.md 3.15, D15, D15b-d, D26).

Callers are SFU nodes (`Authorization: Node <ACCORD_SFU_SECRET>`) or instance admins. The
credential is checked before the body is read and the admin flag after (VOICE.md 7.2 order).
Node calls use their own rate bucket (middleware, D26).
"""

from __future__ import annotations

from quart import Blueprint, Response, g

from accord.auth.principal import NodePrincipal, Principal
from accord.errors import UnauthorizedError, ValidationError
from accord.http.body import read_object
from accord.http.context import get_ctx, require_node_or_admin
from accord.http.responses import ok
from accord.voice.nodes import NodeRegistration
from accord.voice.service import VoiceService

blueprint = Blueprint("sfu_nodes", __name__, url_prefix="/api/v1/sfu/nodes")

MAX_REPORTED_SESSIONS = 100_000


def _require_credential() -> None:
    if not isinstance(g.get("principal"), Principal | NodePrincipal):
        raise UnauthorizedError("invalid or missing authentication")


def _voice() -> VoiceService:
    return get_ctx().get(VoiceService)


@blueprint.post("")
async def register_node() -> Response:
    """POST /api/v1/sfu/nodes — node or admin; upsert {id, endpoint, region, capacity}."""
    _require_credential()
    body = await read_object(required=True)
    registration = NodeRegistration(
        id=body.text("id", required=True) or "",
        endpoint=body.text("endpoint", required=True) or "",
        region=body.text("region", required=True) or "",
        capacity=body.integer("capacity", required=True) or 0,
        control_url=body.text("control_url"),
    )
    require_node_or_admin()
    node = await _voice().register_node(registration)
    return ok(node.to_wire())


@blueprint.get("")
async def list_nodes() -> Response:
    """GET /api/v1/sfu/nodes — node or admin; online nodes."""
    require_node_or_admin()
    return ok([node.to_wire() for node in _voice().list_nodes()])


@blueprint.post("/<node_id>/heartbeat")
async def heartbeat(node_id: str) -> Response:
    """POST /api/v1/sfu/nodes/{node_id}/heartbeat — {current_load, sessions?} (D15c)."""
    _require_credential()
    body = await read_object(required=True)
    load = body.integer("current_load", required=True)
    assert load is not None
    sessions = body.strings("sessions")
    if sessions is not None and len(sessions) > MAX_REPORTED_SESSIONS:
        raise ValidationError("too many sessions", field="sessions")
    if load < 0:
        raise ValidationError("must not be negative", field="current_load")
    require_node_or_admin()
    await _voice().node_heartbeat(node_id, load, sessions)
    return ok({"ok": True})


@blueprint.delete("/<node_id>")
async def deregister_node(node_id: str) -> Response:
    """DELETE /api/v1/sfu/nodes/{node_id} — node or admin."""
    require_node_or_admin()
    await _voice().deregister_node(node_id)
    return ok({"ok": True})
