"""Auth routes (API.md 3.2, CLIENT.md 4.1, 12): register, login (with two-factor), logout,
password change, two-factor set-up and backup codes."""

from __future__ import annotations

from quart import Blueprint, Response

from accord.http.body import Body, read_object
from accord.http.context import get_ctx, require_principal
from accord.http.responses import ok
from accord.services.auth import AuthService, Session
from accord.services.mfa import MfaService
from accord.services.users import UserService

blueprint = Blueprint("auth", __name__, url_prefix="/api/v1/auth")


def _session(session: Session) -> Response:
    return ok({"user": session.user.to_wire(), "token": session.token})


async def _credentials() -> tuple[Body, str, str]:
    """A register/login body with its required `username` and `password`, in that order."""
    body = await read_object()
    return body, body.required_text("username"), body.required_text("password")


@blueprint.post("/register")
async def register() -> Response:
    """POST /api/v1/auth/register — no auth."""
    body, username, password = await _credentials()
    auth = get_ctx().get(AuthService)
    return _session(await auth.register(username, password, body.text("display_name")))


@blueprint.post("/login")
async def login() -> Response:
    """POST /api/v1/auth/login — no auth. With two-factor on, `code` is required (TOTP or a
    backup code); without it the answer is 401 `mfa_required` carrying a ticket."""
    body, username, password = await _credentials()
    auth = get_ctx().get(AuthService)
    return _session(await auth.login(username, password, body.text("code")))


@blueprint.post("/login/mfa")
async def login_mfa() -> Response:
    """POST /api/v1/auth/login/mfa — no auth; `ticket` from mfa_required plus `code`."""
    body = await read_object()
    ticket = body.required_text("ticket")
    code = body.required_text("code")
    return _session(await get_ctx().get(AuthService).login_with_ticket(ticket, code))


@blueprint.post("/logout")
async def logout() -> Response:
    """POST /api/v1/auth/logout — user-or-bot; revokes the presented bearer token."""
    principal = require_principal()
    await get_ctx().get(AuthService).logout(principal)
    return ok({"ok": True})


@blueprint.post("/password")
@blueprint.post("/change-password")
async def change_password() -> Response:
    """POST /api/v1/auth/password (and /change-password) — user; revokes the other tokens."""
    principal = require_principal()
    body = await read_object()
    current = body.required_text("current_password")
    new = body.required_text("new_password")
    await get_ctx().get(AuthService).change_password(principal, current, new)
    return ok({"ok": True})


@blueprint.post("/sessions/revoke-all")
async def revoke_all() -> Response:
    """POST /api/v1/auth/sessions/revoke-all — user; every other token stops working."""
    principal = require_principal()
    await (
        get_ctx()
        .get(AuthService)
        .revoke_all_tokens(principal.user_id, keep_hash=principal.token_hash)
    )
    return ok({"ok": True})


@blueprint.post("/2fa/enable")
async def mfa_enable() -> Response:
    """POST /api/v1/auth/2fa/enable — user; a new secret, active only after /2fa/verify."""
    principal = require_principal()
    await read_object(required=False)
    user = await get_ctx().get(UserService).get_user(principal.user_id)
    pending = await get_ctx().get(MfaService).begin_enable(user.id, user.username)
    return ok({"secret": pending.secret, "uri": pending.uri, "otpauth_uri": pending.uri})


@blueprint.post("/2fa/verify")
async def mfa_verify() -> Response:
    """POST /api/v1/auth/2fa/verify — user; `code` activates two-factor, returns backup codes."""
    principal = require_principal()
    body = await read_object()
    code = body.required_text("code")
    codes = await get_ctx().get(MfaService).verify(principal.user_id, code)
    return ok({"enabled": True, "backup_codes": codes})


@blueprint.post("/2fa/disable")
async def mfa_disable() -> Response:
    """POST /api/v1/auth/2fa/disable — user; needs `password`; a `code`, if sent, must be valid."""
    principal = require_principal()
    body = await read_object()
    password = body.required_text("password")
    ctx = get_ctx()
    password_ok = await ctx.get(AuthService).check_password(principal.user_id, password)
    await ctx.get(MfaService).disable(principal.user_id, password_ok, body.text("code"))
    return ok({"enabled": False})


@blueprint.get("/2fa/backup-codes")
async def mfa_backup_status() -> Response:
    """GET /api/v1/auth/2fa/backup-codes — user; how many unused codes remain (codes are
    stored hashed, so they are shown only when made)."""
    principal = require_principal()
    enabled, unused, total = await get_ctx().get(MfaService).backup_code_status(principal.user_id)
    return ok({"enabled": enabled, "remaining": unused, "total": total, "backup_codes": []})


@blueprint.post("/2fa/backup-codes")
async def mfa_backup_regenerate() -> Response:
    """POST /api/v1/auth/2fa/backup-codes — user; `password` required; new codes replace all."""
    principal = require_principal()
    body = await read_object()
    password = body.required_text("password")
    ctx = get_ctx()
    password_ok = await ctx.get(AuthService).check_password(principal.user_id, password)
    codes = await ctx.get(MfaService).regenerate_backup_codes(principal.user_id, password_ok)
    return ok({"backup_codes": codes})
