"""Auth routes (API.md 3.2): register, login, logout."""

from __future__ import annotations

from quart import Blueprint, Response

from accord.http.body import read_object
from accord.http.context import get_ctx, require_principal
from accord.http.responses import ok
from accord.services.auth import AuthService, Session

blueprint = Blueprint("auth", __name__, url_prefix="/api/v1/auth")


def _session(session: Session) -> Response:
    return ok({"user": session.user.to_wire(), "token": session.token})


@blueprint.post("/register")
async def register() -> Response:
    """POST /api/v1/auth/register — no auth."""
    body = await read_object()
    username = body.text("username", required=True)
    password = body.text("password", required=True)
    assert username is not None
    assert password is not None
    auth = get_ctx().get(AuthService)
    return _session(await auth.register(username, password, body.text("display_name")))


@blueprint.post("/login")
async def login() -> Response:
    """POST /api/v1/auth/login — no auth."""
    body = await read_object()
    username = body.text("username", required=True)
    password = body.text("password", required=True)
    assert username is not None
    assert password is not None
    return _session(await get_ctx().get(AuthService).login(username, password))


@blueprint.post("/logout")
async def logout() -> Response:
    """POST /api/v1/auth/logout — user-or-bot; revokes the presented bearer token."""
    principal = require_principal()
    await get_ctx().get(AuthService).logout(principal)
    return ok({"ok": True})
