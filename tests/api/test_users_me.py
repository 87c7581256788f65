"""The caller's own profile (API.md 3.4) and the user.update event (D12d)."""

from __future__ import annotations

import httpx
import trio

from accord.events.types import Event
from tests.support import ServerHandle, assert_error, register


async def test_get_me_for_bearer(client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana")
    r = await client.get("/api/v1/users/@me", headers=ana.headers)
    assert r.status_code == 200
    user = r.json()["data"]
    assert user["id"] == ana.id
    assert set(user) >= {
        "id",
        "username",
        "display_name",
        "avatar",
        "banner",
        "accent_color",
        "bio",
        "bot",
        "system",
        "is_admin",
        "flags",
        "public_flags",
        "created_at",
    }
    assert "T" in user["created_at"]
    assert not user["created_at"].endswith("Z")


async def test_get_me_for_seeded_bot(client: httpx.AsyncClient) -> None:
    seed = (await client.post("/test/seed")).json()["data"]
    r = await client.get(
        "/api/v1/users/@me", headers={"Authorization": f"Bot {seed['bot']['token']}"}
    )
    assert r.status_code == 200
    assert r.json()["data"]["bot"] is True
    assert r.json()["data"]["id"] == seed["bot"]["id"]


async def test_patch_me_updates_and_publishes(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    with server.ctx.bus.subscribed() as sub:
        r = await client.patch(
            "/api/v1/users/@me",
            headers=ana.headers,
            json={"display_name": "  Ana B  ", "bio": "hi", "accent_color": 255},
        )
        assert r.status_code == 200
        user = r.json()["data"]
        assert (user["display_name"], user["bio"], user["accent_color"]) == ("Ana B", "hi", 255)
        with trio.fail_after(2):
            while True:
                item = await sub.receive.receive()
                if isinstance(item, Event) and item.type == "user.update":
                    break
    assert item.data["id"] == ana.id
    assert item.user_ids == frozenset({int(ana.id)})
    assert item.space_ids  # ana auto-joined the default space; its members hear the change
    # null clears nullable fields (D17a).
    r = await client.patch("/api/v1/users/@me", headers=ana.headers, json={"bio": None})
    assert r.json()["data"]["bio"] is None


async def test_patch_me_validation(client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana")
    await register(client, "bob")
    h = ana.headers
    assert_error(await client.patch("/api/v1/users/@me", headers=h, json={"username": "bob"}), 409)
    assert_error(
        await client.patch("/api/v1/users/@me", headers=h, json={"username": "x" * 40}), 400
    )
    assert_error(
        await client.patch("/api/v1/users/@me", headers=h, json={"display_name": "d" * 65}), 400
    )
    assert_error(await client.patch("/api/v1/users/@me", headers=h, json={"bio": "b" * 191}), 400)
    assert_error(await client.patch("/api/v1/users/@me", headers=h, json={"accent_color": -1}), 400)
    assert_error(
        await client.patch("/api/v1/users/@me", headers=h, json={"accent_color": "red"}), 422
    )
    # Nothing was half-applied.
    me = (await client.get("/api/v1/users/@me", headers=h)).json()["data"]
    assert me["username"] == "ana"
    assert me["bio"] is None
    assert me["accent_color"] is None
    r = await client.patch("/api/v1/users/@me", headers=h, json={"username": "anna"})
    assert r.json()["data"]["username"] == "anna"
    assert_error(await client.patch("/api/v1/users/@me", json={}), 401)
