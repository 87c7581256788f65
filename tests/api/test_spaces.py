"""Space routes end to end (API.md 3.5): create with defaults, read by id or slug, update with
validation and images, delete with cascades, and the events each change publishes."""

from __future__ import annotations

import base64
import io
import sqlite3

import httpx
from PIL import Image

from tests.spaces_support import (
    controls,
    create_space,
    drain,
    events,
    join_by_invite,
    make_world,
    next_event,
    roles_by_name,
)
from tests.support import ServerHandle, assert_error, register


async def test_create_space_comes_with_defaults(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    await register(client, "root")
    ana = await register(client, "ana")
    sub = server.ctx.bus.subscribe()
    space = await create_space(client, ana, "  My Cool Space  ", description="hi")
    assert space["name"] == "My Cool Space"
    assert space["slug"] == "my-cool-space"
    assert space["owner_id"] == ana.id
    assert space["description"] == "hi"
    assert space["public"] is False
    assert space["features"] == []
    assert space["verification_level"] == "none"
    assert space["afk_timeout"] == 300
    roles = await roles_by_name(client, ana, space["id"])
    assert [r["position"] for r in (roles["@everyone"], roles["Moderator"], roles["Admin"])] == [
        0,
        1,
        2,
    ]
    assert roles["@everyone"]["id"] == space["id"]
    assert "manage_space" not in roles["@everyone"]["permissions"]
    assert "manage_space" in roles["Admin"]["permissions"]
    assert "administrator" not in roles["Admin"]["permissions"]
    channels = (
        await client.get(f"/api/v1/spaces/{space['id']}/channels", headers=ana.headers)
    ).json()["data"]
    assert [(c["name"], c["type"]) for c in channels] == [("general", "text")]
    me = (
        await client.get(f"/api/v1/spaces/{space['id']}/members/{ana.id}", headers=ana.headers)
    ).json()["data"]
    assert me["roles"] == [roles["Admin"]["id"]]
    items = drain(sub)
    assert controls(items, "membership_changed")[0].user_id == int(ana.id)
    created = events(items, "space.create")[0]
    assert created.user_ids == frozenset({int(ana.id)})
    assert created.data["id"] == space["id"]


async def test_slugs_are_suffixed_and_validated(client: httpx.AsyncClient) -> None:
    await register(client, "root")
    ana = await register(client, "ana")
    first = await create_space(client, ana, "Dup")
    second = await create_space(client, ana, "Dup")
    supplied = await create_space(client, ana, "Other", slug="dup")
    assert (first["slug"], second["slug"], supplied["slug"]) == ("dup", "dup-2", "dup-3")
    emoji = await create_space(client, ana, "日本語")
    assert emoji["slug"] == f"space-{emoji['id']}"
    cases = [
        ("", "slug must not be empty"),
        ("x" * 101, "100 characters"),
        ("Upper", "lowercase"),
        ("-a", "start or end"),
        ("a--b", "consecutive"),
        ("public", "public"),
        ("12345", "digits"),
    ]
    for slug, text in cases:
        r = await client.post(
            "/api/v1/spaces", json={"name": "x", "slug": slug}, headers=ana.headers
        )
        error = assert_error(r, 400, "invalid_request")
        assert text in error["message"]
        assert error["details"] == {"field": "slug"}


async def test_create_space_validation(client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana")
    for body, status in [
        ({"name": ""}, 400),
        ({"name": "   "}, 400),
        ({"name": "x" * 101}, 400),
        ({"name": "ok", "description": "d" * 1025}, 400),
        ({}, 422),
        ({"name": 5}, 422),
        ({"name": "ok", "public": "yes"}, 422),
    ]:
        r = await client.post("/api/v1/spaces", json=body, headers=ana.headers)
        assert_error(r, status, "invalid_request")
    assert_error(await client.post("/api/v1/spaces", json={"name": "x"}), 401, "unauthorized")


async def test_get_space_by_id_or_slug_and_access(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    for key in (w.space_id, w.space["slug"]):
        r = await client.get(f"/api/v1/spaces/{key}", headers=w.member.headers)
        assert r.status_code == 200
        assert r.json()["data"]["id"] == w.space_id
    assert_error(await client.get(f"/api/v1/spaces/{w.space_id}"), 401, "unauthorized")
    r = await client.get(f"/api/v1/spaces/{w.space_id}", headers=w.other.headers)
    assert_error(r, 403, "forbidden")
    for key in ("999999999999999", "no-such-slug", "-1"):
        r = await client.get(f"/api/v1/spaces/{key}", headers=w.member.headers)
        assert_error(r, 404, "not_found")
    # Instance admins may read any space (D8a).
    r = await client.get(f"/api/v1/spaces/{w.space_id}", headers=w.root.headers)
    assert r.status_code == 200


async def test_update_space(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    voice = await client.post(
        f"/api/v1/spaces/{w.space_id}/channels",
        json={"name": "Lounge", "type": "voice"},
        headers=w.owner.headers,
    )
    voice_id = voice.json()["data"]["id"]
    sub = server.ctx.bus.subscribe()
    body = {
        "name": "Renamed",
        "slug": "renamed",
        "description": "about",
        "verification_level": "high",
        "default_notifications": "only_mentions",
        "afk_timeout": 900,
        "afk_channel_id": voice_id,
        "system_channel_id": w.general["id"],
        "preferred_locale": "de-DE",
        "public": True,
    }
    r = await client.patch(f"/api/v1/spaces/{w.space_id}", json=body, headers=w.owner.headers)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    for key, value in body.items():
        assert data[key] == value, key
    assert data["features"] == ["public"]
    event = await next_event(sub, "space.update")
    assert event.space_id == int(w.space_id)
    assert event.data["name"] == "Renamed"
    # {} changes nothing; null clears channel references.
    r = await client.patch(f"/api/v1/spaces/{w.space_id}", json={}, headers=w.owner.headers)
    assert r.json()["data"]["name"] == "Renamed"
    r = await client.patch(
        f"/api/v1/spaces/{w.space_id}", json={"afk_channel_id": None}, headers=w.owner.headers
    )
    assert r.json()["data"]["afk_channel_id"] is None


async def test_update_space_validation_and_permission(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}"
    r = await client.patch(url, json={"name": "x"}, headers=w.member.headers)
    assert_error(r, 403, "forbidden")
    assert r.json()["error"]["message"] == "missing permission: manage_space"
    other = await create_space(client, w.owner, "Elsewhere")
    other_channels = await client.get(
        f"/api/v1/spaces/{other['id']}/channels", headers=w.owner.headers
    )
    foreign = other_channels.json()["data"][0]["id"]
    for body, field in [
        ({"name": ""}, "name"),
        ({"verification_level": "extreme"}, "verification_level"),
        ({"default_notifications": "some"}, "default_notifications"),
        ({"afk_timeout": 5}, "afk_timeout"),
        ({"preferred_locale": "not a locale"}, "preferred_locale"),
        ({"system_channel_id": foreign}, "system_channel_id"),
        ({"afk_channel_id": w.general["id"]}, "afk_channel_id"),
        ({"rules_channel_id": "abc"}, "rules_channel_id"),
        ({"icon": "not base64!"}, "icon"),
        ({"name": "ok", "slug": "Bad"}, "slug"),
    ]:
        r = await client.patch(url, json=body, headers=w.owner.headers)
        assert assert_error(r, 400, "invalid_request")["details"] == {"field": field}, body
    # Nothing was partially applied.
    r = await client.get(url, headers=w.owner.headers)
    assert r.json()["data"]["name"] == "Test Space"
    assert_error(await client.patch("/api/v1/spaces/abc", json={}, headers=w.owner.headers), 404)


def _png_base64() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


async def test_space_icon_and_banner_are_stored_and_cleared(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}"
    image = _png_base64()
    r = await client.patch(
        url,
        json={"icon": f"data:image/png;base64,{image}", "banner": image},
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert isinstance(data["icon"], str)
    assert len(data["icon"]) >= 16
    assert data["banner"] == data["icon"]  # content-addressed
    # Sending back the stored hash keeps it; null clears.
    r = await client.patch(url, json={"icon": data["icon"]}, headers=w.owner.headers)
    assert r.json()["data"]["icon"] == data["icon"]
    r = await client.patch(url, json={"icon": None}, headers=w.owner.headers)
    assert r.json()["data"]["icon"] is None
    assert r.json()["data"]["banner"] == data["banner"]


async def test_delete_space_cascades_and_publishes(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}"
    role = await client.post(f"{url}/roles", json={"name": "Extra"}, headers=w.owner.headers)
    await client.put(
        f"{url}/members/{w.member.id}/roles/{role.json()['data']['id']}", headers=w.owner.headers
    )
    await client.put(f"{url}/bans/{w.other.id}", headers=w.owner.headers)
    await client.put(
        f"/api/v1/channels/{w.general['id']}/permissions/{w.member.id}",
        json={"type": "member", "allow": [], "deny": ["send_messages"]},
        headers=w.owner.headers,
    )
    assert_error(await client.delete(url, headers=w.member.headers), 403, "forbidden")
    sub = server.ctx.bus.subscribe()
    r = await client.delete(url, headers=w.owner.headers)
    assert r.status_code == 200
    assert r.json() == {"data": None}
    assert_error(await client.get(url, headers=w.owner.headers), 404, "not_found")
    assert_error(
        await client.get(f"/api/v1/channels/{w.general['id']}", headers=w.owner.headers), 404
    )
    items = drain(sub)
    deleted = events(items, "space.delete")[0]
    assert deleted.data == {"id": w.space_id}
    assert deleted.user_ids == frozenset({int(w.owner.id), int(w.member.id)})
    assert controls(items, "space_deleted")[0].space_id == int(w.space_id)
    assert {c.user_id for c in controls(items, "membership_changed")} == {
        int(w.owner.id),
        int(w.member.id),
    }
    # The tables are clean: nothing of the space is left.

    def count(conn: sqlite3.Connection) -> list[int]:
        tables = ("roles", "members", "member_roles", "channels", "bans", "invites", "messages")
        return [
            conn.execute(
                f"SELECT COUNT(*) FROM {t} WHERE space_id = ?", (int(w.space_id),)
            ).fetchone()[0]
            for t in tables
        ]

    assert await server.ctx.db.read(count) == [0] * 7


async def test_instance_admin_may_delete_any_space(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    r = await client.delete(f"/api/v1/spaces/{w.space_id}", headers=w.root.headers)
    assert r.status_code == 200


async def test_new_member_event_via_invite_in_new_space(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    await register(client, "root")
    ana = await register(client, "ana")
    bob = await register(client, "bob")
    space = await create_space(client, ana, "Fresh")
    sub = server.ctx.bus.subscribe()
    await join_by_invite(client, ana, bob, space["id"])
    joined = await next_event(sub, "member.join")
    assert joined.data["user_id"] == bob.id
    assert joined.data["user"]["id"] == bob.id
    assert joined.space_id == int(space["id"])
