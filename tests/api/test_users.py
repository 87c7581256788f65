"""User routes (API.md 3.4, D17a, G-09): other users, one's spaces, avatar/banner images."""

from __future__ import annotations

import httpx
import trio

from tests.api.messaging import data_uri, next_event, png_bytes, seed_world
from tests.support import ServerHandle, assert_error, register


async def test_get_user_by_id(client: httpx.AsyncClient) -> None:
    admin = await register(client, "admin0")
    other = await register(client, "other")
    r = await client.get(f"/api/v1/users/{admin.id}", headers=other.headers)
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["username"] == "admin0"
    assert data["is_admin"] is False  # only shown to the user itself (G-09)
    assert "mfa_enabled" not in data
    me = await client.get(f"/api/v1/users/{admin.id}", headers=admin.headers)
    assert me.json()["data"]["is_admin"] is True
    assert_error(
        await client.get("/api/v1/users/99999999999", headers=other.headers), 404, "not_found"
    )
    assert_error(await client.get("/api/v1/users/nobody", headers=other.headers), 404)
    assert_error(await client.get(f"/api/v1/users/{admin.id}"), 401)


async def test_my_spaces(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    spaces = (await client.get("/api/v1/users/@me/spaces", headers=w.bot)).json()["data"]
    assert [s["id"] for s in spaces] == [w.space_id]
    assert spaces[0]["slug"]
    user = await register(client, "newbie")
    names = [
        s["name"]
        for s in (await client.get("/api/v1/users/@me/spaces", headers=user.headers)).json()["data"]
    ]
    assert names == ["General"]


async def test_avatar_upload_clear_and_event(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    user = await register(client, "face")
    with server.ctx.bus.subscribed() as sub:
        r = await client.patch(
            "/api/v1/users/@me", json={"avatar": data_uri(png_bytes())}, headers=user.headers
        )
        with trio.fail_after(2):
            event = await next_event(sub, "user.update")
    avatar = r.json()["data"]["avatar"]
    assert len(avatar) == 64
    assert event.data["avatar"] == avatar
    assert (await client.get(f"/cdn/avatars/{user.id}/{avatar}.png")).status_code == 200
    # Bare base64 works too, and sending the current hash back changes nothing.
    import base64

    bare = base64.b64encode(png_bytes(colour=(1, 2, 3))).decode()
    r = await client.patch("/api/v1/users/@me", json={"avatar": bare}, headers=user.headers)
    second = r.json()["data"]["avatar"]
    assert second != avatar
    r = await client.patch(
        "/api/v1/users/@me", json={"avatar": second, "bio": "hi"}, headers=user.headers
    )
    assert r.json()["data"]["avatar"] == second
    r = await client.patch(
        "/api/v1/users/@me", json={"avatar": None, "banner": None}, headers=user.headers
    )
    assert r.json()["data"]["avatar"] is None


async def test_bad_avatar_is_refused(server: ServerHandle, client: httpx.AsyncClient) -> None:
    user = await register(client, "face")
    for bad in (
        "https://example.com/a.png",
        data_uri(b"GIF89a-not-really"),
        "data:image/png;base64,???",
        5,
    ):
        r = await client.patch("/api/v1/users/@me", json={"avatar": bad}, headers=user.headers)
        assert r.status_code in (400, 422), r.text
    me = await client.get("/api/v1/users/@me", headers=user.headers)
    assert me.json()["data"]["avatar"] is None
