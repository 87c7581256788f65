"""Gateway discovery (API.md 3.3): the real WebSocket URL of this server (G-31)."""

from __future__ import annotations

from quart import Blueprint, Response, request

from accord.http.context import get_ctx, require_principal
from accord.http.responses import ok

blueprint = Blueprint("gateway_info", __name__, url_prefix="/api/v1")


def gateway_url() -> str:
    """ws(s)://host/ws from ACCORD_PUBLIC_URL, else from the request's own scheme and host."""
    public = get_ctx().settings.public_url
    if public:
        base = public.rstrip("/")
    else:
        scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
        base = f"{scheme}://{request.host}"
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return f"{base}/ws"


@blueprint.get("/gateway")
async def gateway() -> Response:
    """GET /api/v1/gateway — no auth."""
    return ok({"url": gateway_url()})


@blueprint.get("/gateway/bot")
async def gateway_bot() -> Response:
    """GET /api/v1/gateway/bot — user-or-bot (G-09)."""
    require_principal()
    return ok(
        {
            "url": gateway_url(),
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000,
                "reset_after": 0,
                "max_concurrency": 1,
            },
        }
    )
