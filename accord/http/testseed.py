"""`POST /test/seed` (OPERATIONS.md 9, D-seed2): only in test mode, only from loopback."""

from __future__ import annotations

import ipaddress
import logging

from quart import Blueprint, Response, request

from accord.http.context import get_ctx
from accord.http.responses import error_body, json_response, ok
from accord.services.bootstrap import BootstrapService

log = logging.getLogger("accord.http")

blueprint = Blueprint("testseed", __name__)


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@blueprint.post("/test/seed")
async def seed() -> Response:
    """POST /test/seed — test mode only; body ignored."""
    settings = get_ctx().settings
    allowed = settings.test_mode and (
        settings.test_mode_remote or _is_loopback(request.remote_addr)
    )
    if not allowed:
        return json_response(error_body("not_found", "not found"), 404)
    log.warning("test seed called from %s: credentials rotated", request.remote_addr)
    try:
        data = await get_ctx().get(BootstrapService).seed()
    except Exception:
        log.exception("test seed failed")  # the details go to the log, never to the caller
        return json_response(error_body("seed_failed", "seeding failed, see the server log"), 500)
    return ok(data)
