"""Auth routes end to end: register, login, logout, token expiry and revocation (API.md 3.2)."""

from __future__ import annotations

import httpx

from tests.support import ServerHandle, assert_error, register


async def test_register_returns_user_and_token(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/auth/register",
        json={"username": "  ana  ", "password": "password1", "display_name": "Ana"},
    )
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["user"]["username"] == "ana"
    assert data["user"]["display_name"] == "Ana"
    assert isinstance(data["token"], str)
    assert len(data["token"]) >= 40
    me = await client.get("/api/v1/users/@me", headers={"Authorization": f"Bearer {data['token']}"})
    assert me.status_code == 200
    assert me.json()["data"]["id"] == data["user"]["id"]


async def test_first_user_is_admin_and_second_is_not(client: httpx.AsyncClient) -> None:
    first = await register(client, "first")
    second = await register(client, "second")
    assert first.user["is_admin"] is True
    assert second.user["is_admin"] is False


async def test_duplicate_username_is_409(client: httpx.AsyncClient) -> None:
    await register(client, "bob")
    r = await client.post("/api/v1/auth/register", json={"username": "bob", "password": "xxxxxxxx"})
    assert_error(r, 409, "already_exists")


async def test_register_validation(client: httpx.AsyncClient) -> None:
    cases = [
        ({"username": "", "password": "password1"}, 400),
        ({"username": "x" * 33, "password": "password1"}, 400),
        ({"username": "ok", "password": "short"}, 400),
        ({"username": "ok", "password": "p" * 129}, 400),
        ({"username": "ok"}, 422),
        ({"username": 5, "password": "password1"}, 422),
        ({"username": "ok", "password": "password1", "display_name": "d" * 65}, 400),
    ]
    for body, status in cases:
        r = await client.post("/api/v1/auth/register", json=body)
        assert_error(r, status, "invalid_request")
    r = await client.post("/api/v1/auth/register", json=["not", "an", "object"])
    assert_error(r, 422, "invalid_request")


async def test_login_and_wrong_password(client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana", password="password1")
    r = await client.post("/api/v1/auth/login", json={"username": "ana", "password": "password1"})
    assert r.status_code == 200
    token = r.json()["data"]["token"]
    assert token != ana.token
    assert_error(
        await client.post("/api/v1/auth/login", json={"username": "ana", "password": "nope1234"}),
        401,
        "unauthorized",
    )
    assert_error(
        await client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"}),
        401,
        "unauthorized",
    )
    # Login is exact and case-sensitive (D21a).
    assert_error(
        await client.post("/api/v1/auth/login", json={"username": "ANA", "password": "password1"}),
        401,
    )


async def test_logout_revokes_only_that_token(client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana", password="password1")
    r = await client.post("/api/v1/auth/login", json={"username": "ana", "password": "password1"})
    other = r.json()["data"]["token"]
    r = await client.post("/api/v1/auth/logout", headers=ana.headers)
    assert r.status_code == 200
    assert r.json() == {"data": {"ok": True}}
    assert_error(await client.get("/api/v1/users/@me", headers=ana.headers), 401, "unauthorized")
    r = await client.get("/api/v1/users/@me", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 200


async def test_expired_token_is_rejected(server: ServerHandle, client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana")
    assert (await client.get("/api/v1/users/@me", headers=ana.headers)).status_code == 200

    def expire(conn: object) -> None:
        conn.execute("UPDATE user_tokens SET expires_at = '2000-01-01T00:00:00'")  # type: ignore[attr-defined]

    await server.ctx.db.write(expire)
    # The resolved-token cache must not keep an expired token alive.
    from accord.services.auth import AuthService

    server.ctx.get(AuthService)._cache.clear()
    assert_error(await client.get("/api/v1/users/@me", headers=ana.headers), 401)


async def test_authorization_header_forms(client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana")
    for header in (
        f"bearer {ana.token}",
        f"Token {ana.token}",
        f"Bot {ana.token}",
        "Bearer  " + ana.token,
        ana.token,
    ):
        r = await client.get("/api/v1/users/@me", headers={"Authorization": header})
        assert_error(r, 401, "unauthorized")
