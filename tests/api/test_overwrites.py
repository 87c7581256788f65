"""Channel permission overwrites end to end (API.md 3.6, CLIENT.md 4.4, D-ow, G-05): both route
spellings, validation, hierarchy and grant rules, effect on access, and events."""

from __future__ import annotations

import httpx

from tests.spaces_support import (
    controls,
    drain,
    events,
    give_role,
    make_world,
    put_overwrite,
    roles_by_name,
)
from tests.support import ServerHandle, assert_error, register


async def test_put_list_delete_on_both_paths(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    channel = w.general["id"]
    sub = server.ctx.bus.subscribe()
    r = await client.put(
        f"/api/v1/channels/{channel}/overwrites/{w.member.id}",
        json={"type": "user", "allow": ["attach_files"], "deny": ["send_messages"]},
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {
        "id": w.member.id,
        "type": "member",
        "allow": ["attach_files"],
        "deny": ["send_messages"],
    }
    items = drain(sub)
    assert controls(items, "permissions_changed")[0].space_id == int(w.space_id)
    update = events(items, "channel.update")[0]
    assert update.data["permission_overwrites"][0]["id"] == w.member.id
    for path in ("permissions", "overwrites"):
        r = await client.get(f"/api/v1/channels/{channel}/{path}", headers=w.owner.headers)
        assert [o["id"] for o in r.json()["data"]] == [w.member.id]
    r = await client.delete(
        f"/api/v1/channels/{channel}/permissions/{w.member.id}", headers=w.owner.headers
    )
    assert r.json() == {"data": None}
    r = await client.get(f"/api/v1/channels/{channel}/permissions", headers=w.owner.headers)
    assert r.json()["data"] == []
    # Deleting again (or a malformed id) is still 200.
    for target in (w.member.id, "junk"):
        r = await client.delete(
            f"/api/v1/channels/{channel}/overwrites/{target}", headers=w.owner.headers
        )
        assert r.status_code == 200


async def test_overwrite_validation(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/channels/{w.general['id']}/permissions/{w.space_id}"
    for body, status, text in [
        ({"type": "guild", "allow": [], "deny": []}, 400, "type must be 'role' or 'member'"),
        ({"type": "role", "allow": ["fly"], "deny": []}, 400, "unknown permission: fly"),
        ({"type": "role", "allow": [], "deny": ["nope"]}, 400, "unknown permission: nope"),
        ({"type": "role", "allow": ["administrator"], "deny": []}, 400, "administrator"),
        ({"type": "role", "allow": []}, 422, "deny"),
        ({"type": "role", "allow": "x", "deny": []}, 422, "allow"),
    ]:
        r = await client.put(url, json=body, headers=w.owner.headers)
        assert text in assert_error(r, status, "invalid_request")["message"], body
    elsewhere = (
        await client.post("/api/v1/spaces", json={"name": "E"}, headers=w.owner.headers)
    ).json()["data"]
    r = await client.put(
        f"/api/v1/channels/{w.general['id']}/permissions/{elsewhere['id']}",
        json={"type": "role", "allow": [], "deny": []},
        headers=w.owner.headers,
    )
    assert_error(r, 404, "not_found")  # a role of another space (G-05)
    r = await client.put(
        f"/api/v1/channels/{w.general['id']}/permissions/{w.other.id}",
        json={"type": "member", "allow": [], "deny": []},
        headers=w.owner.headers,
    )
    assert_error(r, 404, "not_found")  # not a member


async def test_overwrite_permission_and_hierarchy(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    roles = await roles_by_name(client, w.owner, w.space_id)
    channel = w.general["id"]
    body = {"type": "role", "allow": [], "deny": ["send_messages"]}
    r = await client.put(
        f"/api/v1/channels/{channel}/permissions/{w.space_id}", json=body, headers=w.member.headers
    )
    assert r.json()["error"]["message"] == "missing permission: manage_roles"
    r = await client.get(f"/api/v1/channels/{channel}/permissions", headers=w.member.headers)
    assert_error(r, 403, "forbidden")
    # A helper role with manage_roles at position 3 (above Admin).
    helper = (
        await client.post(
            f"/api/v1/spaces/{w.space_id}/roles",
            json={
                "name": "Helper",
                "permissions": ["manage_roles", "view_channel", "send_messages"],
            },
            headers=w.owner.headers,
        )
    ).json()["data"]
    await give_role(client, w.owner, w.space_id, w.member, helper["id"])
    # Allowed: a role below, with permissions the helper holds.
    r = await client.put(
        f"/api/v1/channels/{channel}/permissions/{roles['Moderator']['id']}",
        json={"type": "role", "allow": ["send_messages"], "deny": []},
        headers=w.member.headers,
    )
    assert r.status_code == 200, r.text
    # Not allowed: granting what the helper lacks (G-05).
    r = await client.put(
        f"/api/v1/channels/{channel}/permissions/{roles['Moderator']['id']}",
        json={"type": "role", "allow": ["manage_messages"], "deny": []},
        headers=w.member.headers,
    )
    assert r.json()["error"]["message"] == "missing permission: manage_messages"
    # Not allowed: the helper's own role (not strictly below).
    r = await client.put(
        f"/api/v1/channels/{channel}/permissions/{helper['id']}",
        json={"type": "role", "allow": [], "deny": []},
        headers=w.member.headers,
    )
    assert r.json()["error"]["message"] == "you cannot manage a role at or above your highest role"
    # Not allowed: a member overwrite on the owner.
    r = await client.put(
        f"/api/v1/channels/{channel}/permissions/{w.owner.id}",
        json={"type": "member", "allow": [], "deny": ["send_messages"]},
        headers=w.member.headers,
    )
    assert r.json()["error"]["message"] == "you cannot act on a member with an equal or higher role"
    # Deleting an overwrite follows the same hierarchy.
    r = await client.put(
        f"/api/v1/channels/{channel}/permissions/{helper['id']}",
        json={"type": "role", "allow": [], "deny": []},
        headers=w.owner.headers,
    )
    r = await client.delete(
        f"/api/v1/channels/{channel}/permissions/{helper['id']}", headers=w.member.headers
    )
    assert_error(r, 403, "forbidden")


async def test_overwrites_change_effective_access(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    extra = await register(client, "extra")
    roles = await roles_by_name(client, w.owner, w.space_id)
    url = f"/api/v1/spaces/{w.space_id}/channels"
    staff = (await client.post(url, json={"name": "staff"}, headers=w.owner.headers)).json()["data"]
    # @everyone denied, Moderator allowed: only moderators see it.
    await put_overwrite(client, w.owner, staff["id"], w.space_id, "role", deny=("view_channel",))
    await put_overwrite(
        client, w.owner, staff["id"], roles["Moderator"]["id"], "role", allow=("view_channel",)
    )
    assert_error(await client.get(f"/api/v1/channels/{staff['id']}", headers=w.member.headers), 403)
    await give_role(client, w.owner, w.space_id, w.member, roles["Moderator"]["id"])
    r = await client.get(f"/api/v1/channels/{staff['id']}", headers=w.member.headers)
    assert r.status_code == 200
    # A member deny beats the role allow.
    await put_overwrite(client, w.owner, staff["id"], w.member.id, "member", deny=("view_channel",))
    assert_error(await client.get(f"/api/v1/channels/{staff['id']}", headers=w.member.headers), 403)
    # Deleting the role removes the overwrites naming it.
    await client.delete(
        f"/api/v1/spaces/{w.space_id}/roles/{roles['Moderator']['id']}", headers=w.owner.headers
    )
    r = await client.get(f"/api/v1/channels/{staff['id']}/permissions", headers=w.owner.headers)
    assert sorted(o["id"] for o in r.json()["data"]) == sorted([w.space_id, w.member.id])
    assert extra.id  # a registered non-member never sees it
    assert_error(await client.get(f"/api/v1/channels/{staff['id']}", headers=extra.headers), 403)
