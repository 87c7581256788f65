"""The REST rate limiter end to end (OPERATIONS.md 6, D9, D9a, D26)."""

from __future__ import annotations

import httpx
import pytest

from tests.support import assert_error, register


@pytest.fixture
def server_env() -> dict[str, str]:
    # Test mode exempts register/login (D9); these tests need the real behaviour for them.
    return {"ACCORD_TEST_MODE": "false", "ACCORD_AUTH_IP_RATE": "1000/min"}


async def test_headers_and_71st_request(client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana")
    r = await client.get("/api/v1/users/@me", headers=ana.headers)
    assert r.headers["x-ratelimit-limit"] == "70"
    first_remaining = int(r.headers["x-ratelimit-remaining"])
    assert 60 <= first_remaining <= 69
    assert int(r.headers["x-ratelimit-reset"]) > 0
    last = r
    for _ in range(first_remaining):
        last = await client.get("/api/v1/users/@me", headers=ana.headers)
        assert last.status_code == 200
    r = await client.get("/api/v1/users/@me", headers=ana.headers)
    error = assert_error(r, 429, "rate_limited")
    retry_after = int(r.headers["retry-after"])
    assert retry_after >= 1
    assert error["message"] == f"rate limited, retry after {retry_after}s"
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert "x-ratelimit-limit" in r.headers


async def test_users_have_separate_buckets_from_anonymous(client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana")
    bob = await register(client, "bob")
    for _ in range(70):
        await client.get("/api/v1/users/@me", headers=ana.headers)
    assert (await client.get("/api/v1/users/@me", headers=ana.headers)).status_code == 429
    # Another user's bucket is untouched, and so is the anonymous (per-IP) one.
    assert (await client.get("/api/v1/users/@me", headers=bob.headers)).status_code == 200
    assert (await client.get("/api/v1/gateway")).status_code == 200


async def test_invalid_tokens_share_the_ip_bucket(client: httpx.AsyncClient) -> None:
    # Random invalid tokens must not each get a fresh bucket (G-12).
    for i in range(70):
        r = await client.get("/api/v1/users/@me", headers={"Authorization": f"Bearer junk{i}"})
        assert r.status_code == 401
    r = await client.get("/api/v1/users/@me", headers={"Authorization": "Bearer junk-new"})
    assert_error(r, 429, "rate_limited")
    assert (await client.get("/health")).status_code == 200  # not rate limited


class TestNodeBucket:
    @pytest.fixture
    def server_env(self) -> dict[str, str]:
        return {"ACCORD_SFU_SECRET": "node-secret"}

    async def test_node_calls_use_their_own_bucket(self, client: httpx.AsyncClient) -> None:
        for _ in range(70):
            await client.get("/api/v1/gateway")
        assert_error(await client.get("/api/v1/gateway"), 429)
        node = {"Authorization": "Node node-secret"}
        r = await client.get("/api/v1/gateway", headers=node)
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit"] != "70"
        # A wrong secret is just an anonymous caller.
        r = await client.get("/api/v1/gateway", headers={"Authorization": "Node wrong"})
        assert_error(r, 429)


class TestLoginLimit:
    @pytest.fixture
    def server_env(self) -> dict[str, str]:
        return {"ACCORD_TEST_MODE": "false", "ACCORD_AUTH_IP_RATE": "3/min+0"}

    async def test_login_per_ip_bucket(self, client: httpx.AsyncClient) -> None:
        for _ in range(3):
            r = await client.post("/api/v1/auth/login", json={"username": "x", "password": "y"})
            assert r.status_code == 401
        r = await client.post("/api/v1/auth/login", json={"username": "x", "password": "y"})
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1


class TestTestModeExemptsAuth:
    @pytest.fixture
    def server_env(self) -> dict[str, str]:
        return {"ACCORD_TEST_MODE": "true", "ACCORD_AUTH_IP_RATE": "1/min+0"}

    async def test_register_not_limited_in_test_mode(self, client: httpx.AsyncClient) -> None:
        for i in range(5):
            await register(client, f"user{i}")


async def test_failed_sign_ins_are_limited_per_account(client: httpx.AsyncClient) -> None:
    """G-12/RT-46: ten failures lock the account for a while, whatever the address; the right
    password is refused too meanwhile (nothing to learn), and other accounts are unaffected."""
    await register(client, "ana", password="right-password")
    await register(client, "bob", password="bobs-password")
    login = "/api/v1/auth/login"
    for _ in range(10):
        r = await client.post(login, json={"username": "ana", "password": "wrong-guess"})
        assert_error(r, 401)
    r = await client.post(login, json={"username": "ana", "password": "right-password"})
    error = assert_error(r, 429, "rate_limited")
    assert "account" in error["message"]
    assert int(r.headers["retry-after"]) >= 1
    r = await client.post(login, json={"username": "bob", "password": "bobs-password"})
    assert r.status_code == 200
    # Unknown names have buckets of their own, so guessing names is limited too.
    for _ in range(10):
        r = await client.post(login, json={"username": "nobody", "password": "whatever1"})
        assert_error(r, 401)
    r = await client.post(login, json={"username": "NOBODY", "password": "whatever1"})
    assert_error(r, 429, "rate_limited")


async def test_revoke_all_ends_every_other_token(client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana", password="right-password")
    r = await client.post(
        "/api/v1/auth/login", json={"username": "ana", "password": "right-password"}
    )
    other = {"Authorization": f"Bearer {r.json()['data']['token']}"}
    assert (await client.get("/api/v1/users/@me", headers=other)).status_code == 200
    r = await client.post("/api/v1/auth/sessions/revoke-all", headers=ana.headers)
    assert r.status_code == 200
    assert_error(await client.get("/api/v1/users/@me", headers=other), 401)
    assert (await client.get("/api/v1/users/@me", headers=ana.headers)).status_code == 200
    assert_error(await client.post("/api/v1/auth/sessions/revoke-all"), 401)
