"""POST /test/seed (OPERATIONS.md 9, D-seed1, D-seed2)."""

from __future__ import annotations

import httpx
import pytest

from tests.support import assert_error


async def test_seed_creates_fixture_and_rotates(client: httpx.AsyncClient) -> None:
    first = await client.post("/test/seed", json={})
    assert first.status_code == 200
    data = first.json()["data"]
    assert data["user"]["username"] == "test_user"
    assert data["user"]["token_type"] == "Bearer"
    assert data["bot"]["token_type"] == "Bot"
    assert data["space"]["name"] == "Test Space"
    assert data["space"]["slug"] == "test-space"
    assert data["space"]["owner_id"] == data["user"]["id"]
    names = [c["name"] for c in data["channels"]]
    assert "general" in names
    assert "testing" in names
    testing = next(c for c in data["channels"] if c["name"] == "testing")
    assert testing["topic"] == "Test channel"
    assert testing["type"] == "text"

    second = (await client.post("/test/seed")).json()["data"]
    assert second["space"]["id"] == data["space"]["id"]
    assert second["bot"]["application_id"] == data["bot"]["application_id"]
    assert second["user"]["token"] != data["user"]["token"]
    # Old credentials stop working, new ones work.
    old_user = {"Authorization": f"Bearer {data['user']['token']}"}
    old_bot = {"Authorization": f"Bot {data['bot']['token']}"}
    assert_error(await client.get("/api/v1/users/@me", headers=old_user), 401)
    assert_error(await client.get("/api/v1/users/@me", headers=old_bot), 401)
    new_user = {"Authorization": f"Bearer {second['user']['token']}"}
    assert (await client.get("/api/v1/users/@me", headers=new_user)).status_code == 200
    assert [c["name"] for c in second["channels"]].count("testing") == 1


class TestSeedDisabled:
    @pytest.fixture
    def server_env(self) -> dict[str, str]:
        return {"ACCORD_TEST_MODE": "false"}

    async def test_seed_is_404_without_test_mode(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/test/seed")
        assert_error(r, 404, "not_found")
        assert r.json() == {"error": {"code": "not_found", "message": "not found"}}


def test_seed_answers_loopback_only() -> None:
    from accord.http.testseed import _is_loopback

    assert _is_loopback("127.0.0.1")
    assert _is_loopback("::1")
    assert not _is_loopback("192.0.2.7")
    assert not _is_loopback(None)
    assert not _is_loopback("not-an-ip")
