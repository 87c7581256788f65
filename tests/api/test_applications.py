"""Applications and bots (API.md 3.16, G-09, G-15, G-34, D10a): creation, bot tokens,
updates, token reset revoking the old token at once, and stored application commands."""

from __future__ import annotations

import httpx
import trio

from accord.events.types import SessionControl
from tests.api.messaging import seed_world
from tests.support import ServerHandle, assert_error, register


async def test_create_application_and_use_its_bot(client: httpx.AsyncClient) -> None:
    owner = await register(client, "maker")
    r = await client.post(
        "/api/v1/applications",
        json={"name": "  Helper ", "description": "d"},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    app = r.json()["data"]["application"]
    token = r.json()["data"]["token"]
    assert app["name"] == "Helper"
    assert app["owner_id"] == owner.id
    assert app["bot_public"] is True
    bot = await client.get("/api/v1/users/@me", headers={"Authorization": f"Bot {token}"})
    assert bot.json()["data"]["bot"] is True
    assert bot.json()["data"]["username"] == "Helper Bot"
    assert bot.json()["data"]["id"] == app["bot_user_id"]
    # A second app with the same name gets a non-colliding bot username (G-15).
    again = await client.post(
        "/api/v1/applications", json={"name": "Helper"}, headers=owner.headers
    )
    assert again.status_code == 200
    long = await client.post(
        "/api/v1/applications", json={"name": "x" * 100}, headers=owner.headers
    )
    assert long.status_code == 200
    me = await client.get("/api/v1/applications/@me", headers=owner.headers)
    assert me.json()["data"]["id"] == app["id"]
    mine = await client.get("/api/v1/applications", headers=owner.headers)
    assert len(mine.json()["data"]) == 3
    # Bots cannot create applications (G-09); names follow D21b.
    r = await client.post(
        "/api/v1/applications", json={"name": "x"}, headers={"Authorization": f"Bot {token}"}
    )
    assert_error(r, 403, "forbidden")
    assert_error(
        await client.post("/api/v1/applications", json={"name": " "}, headers=owner.headers), 400
    )
    assert_error(
        await client.post("/api/v1/applications", json={"name": "x" * 101}, headers=owner.headers),
        400,
    )
    assert_error(await client.post("/api/v1/applications", json={}, headers=owner.headers), 422)


async def test_application_me_for_users_and_bots(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    nobody = await register(client, "noapp")
    assert_error(
        await client.get("/api/v1/applications/@me", headers=nobody.headers), 404, "not_found"
    )
    r = await client.get("/api/v1/applications/@me", headers=w.bot)
    assert r.json()["data"]["id"] == w.app_id
    assert_error(await client.patch("/api/v1/applications/@me", json={}, headers=w.bot), 403)
    assert_error(await client.get(f"/api/v1/applications/{w.app_id}", headers=nobody.headers), 404)


async def test_update_application(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    r = await client.patch(
        "/api/v1/applications/@me",
        json={"name": "Renamed", "description": "new", "bot_public": False},
        headers=w.owner,
    )
    data = r.json()["data"]
    assert (data["name"], data["description"], data["bot_public"]) == ("Renamed", "new", False)
    r = await client.patch(f"/api/v1/applications/{w.app_id}", json={"name": ""}, headers=w.owner)
    assert_error(r, 400)
    r = await client.patch(
        f"/api/v1/applications/{w.app_id}", json={"bot_public": "yes"}, headers=w.owner
    )
    assert_error(r, 422)


async def test_reset_token_revokes_the_old_one(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    assert (await client.get("/api/v1/users/@me", headers=w.bot)).status_code == 200
    with server.ctx.bus.subscribed() as sub:
        r = await client.post(
            "/api/v1/applications/@me/reset-token",
            headers={**w.owner, "Content-Type": "application/json"},
        )
        with trio.fail_after(2):
            async for item in sub.receive:
                if isinstance(item, SessionControl) and item.kind == "token_revoked":
                    break
    new = r.json()["data"]["token"]
    assert_error(await client.get("/api/v1/users/@me", headers=w.bot), 401)
    ok = await client.get("/api/v1/users/@me", headers={"Authorization": f"Bot {new}"})
    assert ok.json()["data"]["id"] == w.bot_id


async def test_commands_are_stored(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    base = f"/api/v1/applications/{w.app_id}/commands"
    assert (await client.get(base, headers=w.bot)).json() == {"data": []}
    body = {
        "name": "roll",
        "description": "roll a die",
        "options": [{"name": "sides", "type": "integer", "required": True}],
    }
    created = (await client.post(base, json=body, headers=w.bot)).json()["data"]
    assert created["name"] == "roll"
    assert created["type"] == "chat_input"
    assert created["options"][0]["required"] is True
    same = (await client.post(base, json={**body, "description": "v2"}, headers=w.owner)).json()[
        "data"
    ]
    assert same["id"] == created["id"]  # POST with an existing name overwrites
    assert same["description"] == "v2"
    patched = await client.patch(
        f"{base}/{created['id']}", json={"description": "v3"}, headers=w.bot
    )
    assert patched.json()["data"]["description"] == "v3"
    replaced = await client.put(
        base, json=[{"name": "ping"}, {"name": "roll", "description": "x"}], headers=w.bot
    )
    assert [c["name"] for c in replaced.json()["data"]] == ["ping", "roll"]
    space_base = f"/api/v1/applications/{w.app_id}/spaces/{w.space_id}/commands"
    local = await client.post(space_base, json={"name": "local"}, headers=w.bot)
    assert local.json()["data"]["space_id"] == w.space_id
    assert [c["name"] for c in (await client.get(space_base, headers=w.bot)).json()["data"]] == [
        "local"
    ]
    assert (await client.delete(f"{base}/{created['id']}", headers=w.bot)).status_code == 200
    assert_error(await client.get(f"{base}/{created['id']}", headers=w.bot), 404)
    for bad, status in (
        ({"name": "Bad Name"}, 400),
        ({}, 422),
        ({"name": "x", "options": "no"}, 422),
        ({"name": "x", "type": 9}, 400),
    ):
        assert_error(await client.post(base, json=bad, headers=w.bot), status)
    stranger = await register(client, "stranger")
    assert_error(await client.get(base, headers=stranger.headers), 403)
    assert_error(await client.get("/api/v1/applications/99999999999/commands", headers=w.bot), 404)
    other_space = (await client.get("/api/v1/users/@me/spaces", headers=stranger.headers)).json()[
        "data"
    ][0]["id"]
    assert_error(
        await client.get(
            f"/api/v1/applications/{w.app_id}/spaces/{other_space}/commands", headers=w.bot
        ),
        403,
    )
