"""The `/ws` endpoint on the main port (D12, GATEWAY.md 1) and the gateway's background task.

The gateway is served below Quart: `install()` wraps the app's ASGI callable so websocket
requests for `/ws` go straight to `Connection` (no per-message Quart machinery, and the
client's close code is visible), while every other request, including a plain `GET /ws`
without upgrade headers (400 here, with the error envelope), goes to Quart as usual.
"""

from __future__ import annotations

from typing import Any

import orjson
from quart import Blueprint, Response
from quart_trio import QuartTrio

from accord.gateway import _hypercorn
from accord.gateway.connection import Connection
from accord.gateway.fanout import Gateway
from accord.services.context import Context

blueprint = Blueprint("gateway", __name__)

WS_PATHS = frozenset({"/ws", "/ws/"})


@blueprint.get("/ws")
async def not_upgraded() -> Response:
    """GET /ws without a WebSocket upgrade — 400 (GATEWAY.md 1)."""
    body = {"error": {"code": "invalid_request", "message": "websocket upgrade required"}}
    return Response(orjson.dumps(body), status=400, content_type="application/json")


def install(app: QuartTrio, ctx: Context) -> None:
    _hypercorn.install_close_code_hook()
    gateway = ctx.get(Gateway)
    inner = app.asgi_app

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and scope.get("path") in WS_PATHS:
            await Connection(gateway, scope, receive, send).serve()
        else:
            await inner(scope, receive, send)

    app.asgi_app = asgi_app  # type: ignore[method-assign]


def background_tasks(ctx: Context) -> list[Any]:
    return [ctx.get(Gateway).run]
