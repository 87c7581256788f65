"""`GET /health`: liveness, plain text `ok` (OPERATIONS.md 8). No auth, no rate limit."""

from __future__ import annotations

from quart import Blueprint, Response

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
async def health() -> Response:
    """GET /health"""
    return Response("ok", status=200, content_type="text/plain; charset=utf-8")
