"""Password change and two-factor authentication (issue: what the client uses; CLIENT.md 4.1,
12). TOTP runs against a fixed clock so codes are deterministic."""

from __future__ import annotations

import httpx
import pytest
import trio

from accord.events.types import SessionControl
from accord.services.mfa import MfaService
from tests.support import T0, ServerHandle, assert_error, enable_mfa, register


async def _login(
    client: httpx.AsyncClient, username: str, password: str, **extra: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password, **extra}
    )


async def test_password_change_revokes_other_tokens(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana", password="old-password")
    other = (await _login(client, "ana", "old-password")).json()["data"]["token"]
    other_headers = {"Authorization": f"Bearer {other}"}
    with server.ctx.bus.subscribed() as sub:
        r = await client.post(
            "/api/v1/auth/password",
            headers=ana.headers,
            json={"current_password": "old-password", "new_password": "new-password"},
        )
        assert r.status_code == 200
        with trio.fail_after(2):
            notice = await sub.receive.receive()
    assert isinstance(notice, SessionControl)
    assert notice.kind == "token_revoked"
    assert (await client.get("/api/v1/users/@me", headers=ana.headers)).status_code == 200
    assert_error(await client.get("/api/v1/users/@me", headers=other_headers), 401)
    assert_error(await _login(client, "ana", "old-password"), 401)
    assert (await _login(client, "ana", "new-password")).status_code == 200


async def test_password_change_errors(client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana", password="old-password")
    url = "/api/v1/auth/change-password"
    r = await client.post(
        url, headers=ana.headers, json={"current_password": "wrong-one", "new_password": "x" * 10}
    )
    assert_error(r, 403, "forbidden")
    r = await client.post(
        url, headers=ana.headers, json={"current_password": "old-password", "new_password": "short"}
    )
    assert_error(r, 400, "invalid_request")
    assert_error(await client.post(url, headers=ana.headers, json={}), 422)
    assert_error(await client.post(url, json={"current_password": "a", "new_password": "b"}), 401)
    # Nothing changed.
    assert (await _login(client, "ana", "old-password")).status_code == 200


class TestWrongPasswordIsRateLimited:
    @pytest.fixture
    def server_env(self) -> dict[str, str]:
        return {"ACCORD_AUTH_IP_RATE": "3/min"}

    async def test_limited(self, client: httpx.AsyncClient) -> None:
        ana = await register(client, "ana", password="old-password")
        body = {"current_password": "guess-guess", "new_password": "whatever1"}
        for _ in range(3):
            r = await client.post("/api/v1/auth/password", headers=ana.headers, json=body)
            assert r.status_code == 403
        r = await client.post("/api/v1/auth/password", headers=ana.headers, json=body)
        assert_error(r, 429, "rate_limited")


async def test_totp_login_flow(server: ServerHandle, client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana", password="password1")
    mfa = server.ctx.get(MfaService)
    totp, _ = await enable_mfa(server, client, ana.headers)
    me = (await client.get("/api/v1/users/@me", headers=ana.headers)).json()["data"]
    assert me["mfa_enabled"] is True

    # Without a code: a clear error the client can show, with a ticket for the newer flow.
    r = await _login(client, "ana", "password1")
    error = assert_error(r, 401, "mfa_required")
    assert "code" in error["message"]
    assert error["details"]["mfa_required"] is True
    ticket = error["details"]["ticket"]

    # The code used to verify was consumed: replaying it in the same window fails.
    assert_error(await _login(client, "ana", "password1", code=totp.at(T0)), 401)
    # The next step's code works once, then never again.
    mfa.clock = lambda: T0 + 30
    assert (await _login(client, "ana", "password1", code=totp.at(T0 + 30))).status_code == 200
    assert_error(await _login(client, "ana", "password1", code=totp.at(T0 + 30)), 401)
    # An older code than one already used is refused too.
    mfa.clock = lambda: T0 + 60
    assert_error(await _login(client, "ana", "password1", code=totp.at(T0)), 401)
    # Ticket flow: a wrong code can be retried, a right one finishes the login.
    r = await client.post("/api/v1/auth/login/mfa", json={"ticket": ticket, "code": "123456"})
    assert_error(r, 401)
    r = await client.post(
        "/api/v1/auth/login/mfa", json={"ticket": ticket, "code": totp.at(T0 + 60)}
    )
    assert r.status_code == 200
    assert r.json()["data"]["user"]["id"] == ana.id
    r = await client.post("/api/v1/auth/login/mfa", json={"ticket": ticket, "code": "1"})
    assert_error(r, 401)  # a ticket is single use
    # Wrong password with a right code is still refused.
    mfa.clock = lambda: T0 + 90
    assert_error(await _login(client, "ana", "nope-nope", code=totp.at(T0 + 90)), 401)


async def test_backup_codes_are_single_use(server: ServerHandle, client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana", password="password1")
    _, codes = await enable_mfa(server, client, ana.headers)
    assert (await _login(client, "ana", "password1", code=codes[0])).status_code == 200
    assert_error(await _login(client, "ana", "password1", code=codes[0]), 401)
    r = await client.get("/api/v1/auth/2fa/backup-codes", headers=ana.headers)
    data = r.json()["data"]
    assert (data["enabled"], data["remaining"], data["total"]) == (True, 9, 10)
    r = await client.post(
        "/api/v1/auth/2fa/backup-codes", headers=ana.headers, json={"password": "wrong-pass"}
    )
    assert_error(r, 403)
    r = await client.post(
        "/api/v1/auth/2fa/backup-codes", headers=ana.headers, json={"password": "password1"}
    )
    fresh = r.json()["data"]["backup_codes"]
    assert_error(await _login(client, "ana", "password1", code=codes[1]), 401)  # old set gone
    assert (await _login(client, "ana", "password1", code=fresh[0])).status_code == 200


async def test_disable_needs_password_and_checks_a_sent_code(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana", password="password1")
    totp, _ = await enable_mfa(server, client, ana.headers)
    mfa = server.ctx.get(MfaService)
    mfa.clock = lambda: T0 + 30
    url = "/api/v1/auth/2fa/disable"
    assert_error(
        await client.post(
            url, headers=ana.headers, json={"password": "bad-pass", "code": totp.at(T0 + 30)}
        ),
        403,
    )
    assert_error(await client.post(url, headers=ana.headers, json={}), 422)
    # A code is optional, but one that is sent must be valid.
    r = await client.post(url, headers=ana.headers, json={"password": "password1", "code": "1"})
    assert_error(r, 403)
    assert_error(await _login(client, "ana", "password1"), 401, "mfa_required")
    r = await client.post(
        url, headers=ana.headers, json={"password": "password1", "code": totp.at(T0 + 30)}
    )
    assert r.status_code == 200
    assert r.json()["data"] == {"enabled": False}
    assert (await _login(client, "ana", "password1")).status_code == 200
    r = await client.post(url, headers=ana.headers, json={"password": "password1", "code": "1"})
    assert_error(r, 400)
    # Enabling twice while active is refused.
    await enable_mfa(server, client, ana.headers)
    assert_error(await client.post("/api/v1/auth/2fa/enable", headers=ana.headers), 409)


async def test_disable_with_password_only(server: ServerHandle, client: httpx.AsyncClient) -> None:
    """The client sends only `password` (CLIENT.md 4.1)."""
    ana = await register(client, "ana", password="password1")
    await enable_mfa(server, client, ana.headers)
    url = "/api/v1/auth/2fa/disable"
    assert_error(await client.post(url, headers=ana.headers, json={"password": "bad-pass"}), 403)
    assert_error(await _login(client, "ana", "password1"), 401, "mfa_required")
    r = await client.post(url, headers=ana.headers, json={"password": "password1"})
    assert r.status_code == 200
    assert r.json()["data"] == {"enabled": False}
    me = (await client.get("/api/v1/users/@me", headers=ana.headers)).json()["data"]
    assert me["mfa_enabled"] is False
    assert (await _login(client, "ana", "password1")).status_code == 200
