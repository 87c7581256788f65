"""Role routes end to end (API.md 3.10, CLIENT.md 4.7, G-02, G-03, G-04): create, update,
reorder and delete with validation, the grant rule, the hierarchy, caps and events."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from accord.services import roles as role_service
from tests.api.messaging import data_uri, png_bytes
from tests.spaces_support import controls, drain, events, give_role, make_world, roles_by_name
from tests.support import ServerHandle, assert_error


async def test_create_role(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/roles"
    sub = server.ctx.bus.subscribe()
    r = await client.post(
        url,
        json={
            "name": "Helpers",
            "color": 0x00FF00,
            "hoist": True,
            "mentionable": True,
            "permissions": ["kick_members", "kick_members", "view_channel"],
        },
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    role = r.json()["data"]
    assert role["position"] == 3  # above every existing role (G-40)
    assert role["permissions"] == ["kick_members", "view_channel"]
    assert (role["color"], role["hoist"], role["mentionable"], role["managed"]) == (
        65280,
        True,
        True,
        False,
    )
    assert "space_id" not in role
    items = drain(sub)
    created = events(items, "role.create")[0]
    assert created.data["space_id"] == w.space_id
    assert created.data["id"] == role["id"]
    assert controls(items, "permissions_changed")
    r = await client.get(url, headers=w.member.headers)
    assert [x["name"] for x in r.json()["data"]] == ["@everyone", "Moderator", "Admin", "Helpers"]


async def test_create_role_validation_and_grants(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/roles"
    for body, status, field in [
        ({"name": ""}, 400, "name"),
        ({"name": "r" * 101}, 400, "name"),
        ({"name": "x", "color": -1}, 400, "color"),
        ({"name": "x", "color": 0x1000000}, 400, "color"),
        ({"name": "x", "permissions": ["fly"]}, 400, "permissions"),
        ({"name": "x", "permissions": "all"}, 422, "permissions"),
        ({"color": 1}, 422, "name"),
    ]:
        r = await client.post(url, json=body, headers=w.owner.headers)
        assert assert_error(r, status, "invalid_request")["details"] == {"field": field}, body
    r = await client.post(url, json={"name": "x"}, headers=w.member.headers)
    assert r.json()["error"]["message"] == "missing permission: manage_roles"
    roles = await roles_by_name(client, w.owner, w.space_id)
    await give_role(client, w.owner, w.space_id, w.member, roles["Admin"]["id"])
    # Admins cannot create a role with a permission they lack (G-02).
    r = await client.post(
        url, json={"name": "x", "permissions": ["administrator"]}, headers=w.member.headers
    )
    assert r.json()["error"]["message"] == "missing permission: administrator"
    r = await client.post(
        url, json={"name": "x", "permissions": ["manage_roles"]}, headers=w.member.headers
    )
    assert r.status_code == 200


async def test_role_cap(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(role_service, "ROLES_PER_SPACE", 4)
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/roles"
    assert (
        await client.post(url, json={"name": "four"}, headers=w.owner.headers)
    ).status_code == 200
    r = await client.post(url, json={"name": "five"}, headers=w.owner.headers)
    assert "at most 4 roles" in assert_error(r, 400)["message"]


async def test_update_role(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    roles = await roles_by_name(client, w.owner, w.space_id)
    url = f"/api/v1/spaces/{w.space_id}/roles/{roles['Moderator']['id']}"
    sub = server.ctx.bus.subscribe()
    r = await client.patch(
        url,
        json={
            "name": "Mods",
            "color": 5,
            "hoist": False,
            "icon": "🛡",
            "permissions": ["view_channel"],
        },
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["name"], data["color"], data["hoist"], data["icon"], data["permissions"]) == (
        "Mods",
        5,
        False,
        "🛡",
        ["view_channel"],
    )
    updated = events(drain(sub), "role.update")[0]
    assert (updated.data["name"], updated.data["space_id"]) == ("Mods", w.space_id)
    r = await client.patch(url, json={"icon": None}, headers=w.owner.headers)
    assert r.json()["data"]["icon"] is None
    # @everyone keeps its name and position.
    everyone = f"/api/v1/spaces/{w.space_id}/roles/{w.space_id}"
    assert_error(await client.patch(everyone, json={"name": "all"}, headers=w.owner.headers), 400)
    assert_error(await client.patch(everyone, json={"position": 2}, headers=w.owner.headers), 400)
    assert_error(await client.patch(url, json={"position": 0}, headers=w.owner.headers), 400)
    assert_error(await client.patch(url, json={"permissions": ["x"]}, headers=w.owner.headers), 400)
    assert_error(
        await client.patch(
            f"/api/v1/spaces/{w.space_id}/roles/987654321", json={}, headers=w.owner.headers
        ),
        404,
    )


async def test_role_hierarchy_on_update(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    roles = await roles_by_name(client, w.owner, w.space_id)
    await give_role(client, w.owner, w.space_id, w.member, roles["Admin"]["id"])
    base = f"/api/v1/spaces/{w.space_id}/roles"
    # An Admin may edit Moderator but not grant what they lack, nor touch Admin itself.
    r = await client.patch(
        f"{base}/{roles['Moderator']['id']}", json={"name": "M"}, headers=w.member.headers
    )
    assert r.status_code == 200
    r = await client.patch(
        f"{base}/{roles['Moderator']['id']}",
        json={"permissions": [*roles["Moderator"]["permissions"], "administrator"]},
        headers=w.member.headers,
    )
    assert r.json()["error"]["message"] == "missing permission: administrator"
    # @everyone cannot be escalated either (G-02).
    r = await client.patch(
        f"{base}/{w.space_id}", json={"permissions": ["administrator"]}, headers=w.member.headers
    )
    assert_error(r, 403, "forbidden")
    r = await client.patch(
        f"{base}/{roles['Admin']['id']}", json={"name": "A"}, headers=w.member.headers
    )
    assert r.json()["error"]["message"] == "you cannot manage a role at or above your highest role"
    # Nor move Moderator up to their own level (G-03).
    r = await client.patch(
        f"{base}/{roles['Moderator']['id']}", json={"position": 2}, headers=w.member.headers
    )
    assert_error(r, 403, "forbidden")


async def test_reorder_roles(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/roles"
    helper = (await client.post(url, json={"name": "Helper"}, headers=w.owner.headers)).json()[
        "data"
    ]
    roles = await roles_by_name(client, w.owner, w.space_id)
    sub = server.ctx.bus.subscribe()
    r = await client.patch(url, json=[{"id": helper["id"], "position": 1}], headers=w.owner.headers)
    assert r.status_code == 200, r.text
    assert [x["name"] for x in r.json()["data"]] == ["@everyone", "Helper", "Moderator", "Admin"]
    assert [x["position"] for x in r.json()["data"]] == [0, 1, 2, 3]
    items = drain(sub)
    assert {e.data["name"] for e in events(items, "role.update")} == {
        "Helper",
        "Moderator",
        "Admin",
    }
    assert controls(items, "permissions_changed")
    # Moving a role down below another.
    r = await client.patch(
        url, json=[{"id": roles["Admin"]["id"], "position": 1}], headers=w.owner.headers
    )
    assert [x["name"] for x in r.json()["data"]] == ["@everyone", "Admin", "Helper", "Moderator"]
    for body, status in [
        ([{"id": roles["Moderator"]["id"], "position": 0}], 400),
        ([{"id": w.space_id, "position": 2}], 400),
        ([{"id": "123", "position": 1}], 404),
        ([{"id": helper["id"], "position": 1}, {"id": helper["id"], "position": 2}], 400),
        ([{"id": helper["id"]}], 422),
        ({"id": helper["id"], "position": 1}, 422),
    ]:
        assert_error(await client.patch(url, json=body, headers=w.owner.headers), status)
    elsewhere = (
        await client.post("/api/v1/spaces", json={"name": "E"}, headers=w.owner.headers)
    ).json()["data"]
    foreign = (await roles_by_name(client, w.owner, elsewhere["id"]))["Admin"]["id"]
    assert_error(
        await client.patch(url, json=[{"id": foreign, "position": 1}], headers=w.owner.headers), 404
    )


async def test_reorder_roles_hierarchy(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/roles"
    roles = await roles_by_name(client, w.owner, w.space_id)
    await give_role(client, w.owner, w.space_id, w.member, roles["Admin"]["id"])
    helper = (await client.post(url, json={"name": "Helper"}, headers=w.owner.headers)).json()[
        "data"
    ]
    # Admin (2) cannot move Helper (3, above) nor lift Moderator to 2 or above.
    for body in (
        [{"id": helper["id"], "position": 1}],
        [{"id": roles["Moderator"]["id"], "position": 2}],
    ):
        r = await client.patch(url, json=body, headers=w.member.headers)
        assert_error(r, 403, "forbidden")
    r = await client.patch(
        url, json=[{"id": roles["Moderator"]["id"], "position": 1}], headers=w.member.headers
    )
    assert r.status_code == 200
    assert_error(await client.patch(url, json=[], headers=w.other.headers), 403)


async def test_delete_role(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    roles = await roles_by_name(client, w.owner, w.space_id)
    base = f"/api/v1/spaces/{w.space_id}/roles"
    await give_role(client, w.owner, w.space_id, w.member, roles["Admin"]["id"])
    r = await client.delete(f"{base}/{w.space_id}", headers=w.owner.headers)
    assert r.json()["error"]["message"] == "cannot delete the @everyone role"
    assert_error(
        await client.delete(f"{base}/{roles['Admin']['id']}", headers=w.member.headers), 403
    )
    sub = server.ctx.bus.subscribe()
    r = await client.delete(f"{base}/{roles['Moderator']['id']}", headers=w.member.headers)
    assert r.json() == {"data": None}
    items = drain(sub)
    deleted = events(items, "role.delete")[0]
    assert deleted.data == {
        "space_id": w.space_id,
        "role_id": roles["Moderator"]["id"],
        "id": roles["Moderator"]["id"],
    }
    assert controls(items, "permissions_changed")
    assert_error(
        await client.delete(f"{base}/{roles['Moderator']['id']}", headers=w.owner.headers), 404
    )
    # Deleting Admin drops the member's assignment.
    await client.delete(f"{base}/{roles['Admin']['id']}", headers=w.owner.headers)
    r = await client.get(
        f"/api/v1/spaces/{w.space_id}/members/{w.member.id}", headers=w.owner.headers
    )
    assert r.json()["data"]["roles"] == []


async def test_role_icon_is_an_uploaded_image_or_an_emoji(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    """G-25: a role icon is an image stored by the server (served under /cdn/role-icons) or an
    emoji; URLs and other text are refused; a replaced or deleted icon's file goes (D17)."""
    w = await make_world(client)
    roles = await roles_by_name(client, w.owner, w.space_id)
    role_id = roles["Moderator"]["id"]
    url = f"/api/v1/spaces/{w.space_id}/roles/{role_id}"
    for bad in ("https://tracker.example/pixel.png", "shield", "data:image/png;base64,!!!"):
        r = await client.patch(url, json={"icon": bad}, headers=w.owner.headers)
        assert assert_error(r, 400)["details"]["field"] == "icon", bad
    # A plain member can't learn anything about the icon check (permission first).
    r = await client.patch(url, json={"icon": "shield"}, headers=w.member.headers)
    assert_error(r, 403)

    r = await client.patch(url, json={"icon": data_uri(png_bytes())}, headers=w.owner.headers)
    assert r.status_code == 200, r.text
    icon = r.json()["data"]["icon"]
    assert len(icon) == 64
    cdn = await client.get(f"/cdn/role-icons/{role_id}/{icon}.png")
    assert cdn.status_code == 200
    assert cdn.headers["content-type"] == "image/png"
    stored = Path(server.ctx.settings.storage_dir) / "role_icons" / icon[:2] / icon
    assert stored.is_file()
    # Sending the current hash back (a client echoing the role) changes nothing.
    r = await client.patch(url, json={"icon": icon, "hoist": True}, headers=w.owner.headers)
    assert r.json()["data"]["icon"] == icon
    assert stored.is_file()

    # An emoji replaces it; the image file goes.
    r = await client.patch(url, json={"icon": "🛡️"}, headers=w.owner.headers)
    assert r.json()["data"]["icon"] == "🛡️"
    assert not stored.is_file()
    r = await client.patch(url, json={"icon": data_uri(png_bytes())}, headers=w.owner.headers)
    assert stored.is_file()
    r = await client.delete(url, headers=w.owner.headers)
    assert r.status_code == 200
    assert not stored.is_file()
