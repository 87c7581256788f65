"""Emoji CRUD (API.md 3.13, G-04, G-29, D17b, D21, D23): images checked by their bytes,
names, uniqueness, roles, space scoping, permissions, events and CDN serving."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from tests.api.messaging import data_uri, gif_animated_bytes, next_event, png_bytes, seed_world
from tests.support import ServerHandle, assert_error, register


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"ACCORD_PUBLIC_URL": "https://chat.example.com"}


async def test_emoji_lifecycle(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    base = f"/api/v1/spaces/{w.space_id}/emojis"
    with server.ctx.bus.subscribed() as sub:
        r = await client.post(
            base, json={"name": "blob", "image": data_uri(png_bytes())}, headers=w.owner
        )
        assert r.status_code == 200, r.text
        with trio.fail_after(2):
            event = await next_event(sub, "emoji.create")
    emoji = r.json()["data"]
    assert event.data == {"space_id": w.space_id, "emoji": emoji}
    assert emoji["name"] == "blob"
    assert emoji["animated"] is False
    assert emoji["creator_id"] == w.owner_id
    assert emoji["role_ids"] == []
    assert emoji["image_url"] == f"https://chat.example.com/cdn/emojis/{emoji['id']}.png"
    image = await client.get(f"/cdn/emojis/{emoji['id']}.png")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert (await client.get(base, headers=w.bot)).json()["data"] == [emoji]
    assert (await client.get(f"{base}/{emoji['id']}", headers=w.bot)).json()["data"] == emoji
    with server.ctx.bus.subscribed() as sub:
        r = await client.patch(
            f"{base}/{emoji['id']}", json={"name": "blob2", "roles": [w.space_id]}, headers=w.owner
        )
        with trio.fail_after(2):
            await next_event(sub, "emoji.update")
    assert r.json()["data"]["name"] == "blob2"
    assert r.json()["data"]["role_ids"] == [w.space_id]
    with server.ctx.bus.subscribed() as sub:
        assert (await client.delete(f"{base}/{emoji['id']}", headers=w.owner)).json() == {
            "data": None
        }
        with trio.fail_after(2):
            deleted = await next_event(sub, "emoji.delete")
    assert deleted.data == {"space_id": w.space_id, "emoji_id": emoji["id"]}
    assert (await client.delete(f"{base}/{emoji['id']}", headers=w.owner)).status_code == 200
    assert_error(await client.get(f"{base}/{emoji['id']}", headers=w.bot), 404, "not_found")


async def test_animated_emoji(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    r = await client.post(
        f"/api/v1/spaces/{w.space_id}/emojis",
        json={"name": "dance", "image": data_uri(gif_animated_bytes(), "image/gif")},
        headers=w.owner,
    )
    emoji = r.json()["data"]
    assert emoji["animated"] is True
    gif = await client.get(f"/cdn/emojis/{emoji['id']}.gif")
    assert gif.content.startswith(b"GIF8")
    assert (await client.get(f"/cdn/emojis/{emoji['id']}.png")).content.startswith(b"\x89PNG")


async def test_emoji_validation(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    base = f"/api/v1/spaces/{w.space_id}/emojis"
    good = data_uri(png_bytes())
    await client.post(base, json={"name": "taken", "image": good}, headers=w.owner)
    cases = [
        ({"name": "a", "image": good}, 400),
        ({"name": "has space", "image": good}, 400),
        ({"name": "x" * 33, "image": good}, 400),
        ({"name": "taken", "image": good}, 400),
        ({"name": "fake", "image": data_uri(b"<svg></svg>")}, 400),
        ({"name": "fake", "image": "data:image/png;base64,!!!"}, 400),
        ({"name": "huge", "image": data_uri(png_bytes((256, 256)))}, 400),
        ({"name": "roles", "image": good, "roles": ["99999999999"]}, 400),
        ({"name": "noimage"}, 422),
        ({"image": good}, 422),
        ({"name": 5, "image": good}, 422),
    ]
    for body, status in cases:
        assert_error(await client.post(base, json=body, headers=w.owner), status)
    listed = (await client.get(base, headers=w.owner)).json()["data"]
    assert [e["name"] for e in listed] == ["taken"]
    root = Path(server.ctx.settings.storage_dir)
    files = await trio.to_thread.run_sync(lambda: [p for p in root.rglob("*") if p.is_file()])
    assert len(files) == 1  # refused requests stored no image


async def test_emoji_permissions_and_scoping(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    base = f"/api/v1/spaces/{w.space_id}/emojis"
    r = await client.post(
        base, json={"name": "nope", "image": data_uri(png_bytes())}, headers=w.bot
    )
    assert r.json()["error"]["message"] == "missing permission: manage_emojis"
    created = await client.post(
        base, json={"name": "mine", "image": data_uri(png_bytes())}, headers=w.owner
    )
    emoji_id = created.json()["data"]["id"]
    assert_error(await client.patch(f"{base}/{emoji_id}", json={"name": "x2"}, headers=w.bot), 403)
    assert_error(await client.delete(f"{base}/{emoji_id}", headers=w.bot), 403)
    # Another space's owner cannot reach this emoji through their own space (G-04).
    await register(client, "admin0")
    other = await register(client, "other")
    r = await client.get("/api/v1/users/@me/spaces", headers=other.headers)
    space_id = r.json()["data"][0]["id"]
    assert_error(
        await client.get(f"/api/v1/spaces/{space_id}/emojis/{emoji_id}", headers=other.headers), 404
    )
    assert_error(await client.get(base, headers=other.headers), 403)
