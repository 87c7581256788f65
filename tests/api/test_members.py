"""Member routes end to end (API.md 3.9, CLIENT.md 4.6, G-01, D-to): paging, search, reads,
per-field permissions and hierarchy on edits, timeouts, kicks, leaving, role assignment."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from accord.auth.principal import Principal
from accord.errors import ForbiddenError
from accord.services.permissions import space_access
from tests.spaces_support import (
    controls,
    drain,
    events,
    give_role,
    join_by_invite,
    make_world,
    next_event,
    roles_by_name,
)
from tests.support import ServerHandle, assert_error, register


async def test_list_members_pages_by_user_id(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    extra = [await register(client, f"extra{i}") for i in range(3)]
    for account in extra:
        await join_by_invite(client, w.owner, account, w.space_id)
    url = f"/api/v1/spaces/{w.space_id}/members"
    r = await client.get(url, headers=w.member.headers)
    body = r.json()
    assert "cursor" not in body
    ids = [m["user_id"] for m in body["data"]]
    assert ids == sorted(ids, key=int)
    assert len(ids) == 5
    assert body["data"][0]["user"]["id"] == ids[0]
    assert body["data"][0]["user"]["is_admin"] is False
    pages: list[str] = []
    after = ""
    while True:
        r = await client.get(url, params={"limit": 2, "after": after}, headers=w.member.headers)
        page = r.json()
        pages += [m["user_id"] for m in page["data"]]
        if "cursor" not in page:
            break
        assert page["cursor"]["has_more"] is True
        after = page["cursor"]["after"]
    assert pages == ids
    # limit is clamped to 1..1000; bad values are 400.
    r = await client.get(url, params={"limit": 0}, headers=w.member.headers)
    assert len(r.json()["data"]) == 1
    r = await client.get(url, params={"limit": -5}, headers=w.member.headers)
    assert len(r.json()["data"]) == 1
    for params in ({"limit": "abc"}, {"after": "xyz"}):
        assert_error(await client.get(url, params=params, headers=w.member.headers), 400)
    assert_error(await client.get(url, headers=w.other.headers), 403)
    assert_error(await client.get("/api/v1/spaces/nope/members", headers=w.member.headers), 404)


async def test_search_members(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/members/search"
    await client.patch(
        f"/api/v1/spaces/{w.space_id}/members/@me",
        json={"nick": "Zed_Nick"},
        headers=w.member.headers,
    )
    r = await client.get(url, params={"query": "MEM"}, headers=w.owner.headers)
    assert [m["user_id"] for m in r.json()["data"]] == [w.member.id]
    r = await client.get(url, params={"query": "zed"}, headers=w.owner.headers)
    assert [m["user_id"] for m in r.json()["data"]] == [w.member.id]
    # Wildcards are literal (G-28).
    r = await client.get(url, params={"query": "%"}, headers=w.owner.headers)
    assert r.json()["data"] == []
    r = await client.get(url, params={"query": "_"}, headers=w.owner.headers)
    assert [m["user_id"] for m in r.json()["data"]] == [w.member.id]
    r = await client.get(url, params={"query": "e", "limit": 1}, headers=w.owner.headers)
    assert len(r.json()["data"]) == 1
    assert_error(await client.get(url, headers=w.owner.headers), 400)
    assert_error(await client.get(url, params={"query": "x"}, headers=w.other.headers), 403)


async def test_get_member(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    base = f"/api/v1/spaces/{w.space_id}/members"
    r = await client.get(f"{base}/{w.owner.id}", headers=w.member.headers)
    data = r.json()["data"]
    assert (data["user_id"], data["space_id"], data["user"]["username"]) == (
        w.owner.id,
        w.space_id,
        "owner",
    )
    for key in (
        "nickname",
        "nick",
        "roles",
        "joined_at",
        "deaf",
        "mute",
        "timed_out_until",
        "permissions",
    ):
        assert key in data
    r = await client.get(f"{base}/@me", headers=w.member.headers)
    assert r.json()["data"]["user_id"] == w.member.id
    assert_error(await client.get(f"{base}/{w.other.id}", headers=w.member.headers), 404)
    assert_error(await client.get(f"{base}/abc", headers=w.member.headers), 404)


async def test_update_own_nickname(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/members/@me"
    sub = server.ctx.bus.subscribe()
    r = await client.patch(
        url, json={"nickname": "  Memo  ", "mute": True}, headers=w.member.headers
    )
    data = r.json()["data"]
    assert (data["nickname"], data["nick"], data["mute"]) == ("Memo", "Memo", False)
    event = await next_event(sub, "member.update")
    assert (event.data["nickname"], event.data["user"]["id"]) == ("Memo", w.member.id)
    r = await client.patch(url, json={"nick": ""}, headers=w.member.headers)
    assert r.json()["data"]["nickname"] is None
    r = await client.patch(url, json={"nickname": "n" * 33}, headers=w.member.headers)
    assert assert_error(r, 400, "invalid_request")["details"] == {"field": "nickname"}
    # Without change_nickname on @everyone, the member cannot rename themselves.
    roles = await roles_by_name(client, w.owner, w.space_id)
    everyone = [p for p in roles["@everyone"]["permissions"] if p != "change_nickname"]
    await client.patch(
        f"/api/v1/spaces/{w.space_id}/roles/{w.space_id}",
        json={"permissions": everyone},
        headers=w.owner.headers,
    )
    r = await client.patch(url, json={"nickname": "x"}, headers=w.member.headers)
    assert r.json()["error"]["message"] == "missing permission: change_nickname"


async def test_member_patch_checks_each_field(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    roles = await roles_by_name(client, w.owner, w.space_id)
    target = await register(client, "target")
    await join_by_invite(client, w.owner, target, w.space_id)
    url = f"/api/v1/spaces/{w.space_id}/members/{target.id}"
    # A plain member can change nothing of others.
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    for body, permission in [
        ({"nickname": "x"}, "manage_nicknames"),
        ({"mute": True}, "mute_members"),
        ({"deaf": True}, "deafen_members"),
        ({"roles": [roles["Moderator"]["id"]]}, "manage_roles"),
        ({"timed_out_until": soon}, "moderate_members"),
    ]:
        r = await client.patch(url, json=body, headers=w.member.headers)
        assert r.json()["error"]["message"] == f"missing permission: {permission}", body
    # A moderator (position 1) may rename and mute the target (position 0) ...
    await give_role(client, w.owner, w.space_id, w.member, roles["Moderator"]["id"])
    r = await client.patch(
        url, json={"nick": "T", "mute": True, "deaf": True}, headers=w.member.headers
    )
    assert r.status_code == 200, r.text
    assert (r.json()["data"]["nickname"], r.json()["data"]["mute"]) == ("T", True)
    # ... but not give anyone roles (no manage_roles: G-01), nor touch the owner.
    r = await client.patch(url, json={"roles": [roles["Admin"]["id"]]}, headers=w.member.headers)
    assert r.json()["error"]["message"] == "missing permission: manage_roles"
    r = await client.patch(
        f"/api/v1/spaces/{w.space_id}/members/{w.owner.id}",
        json={"nick": "x"},
        headers=w.member.headers,
    )
    assert r.json()["error"]["message"] == "you cannot act on a member with an equal or higher role"
    # An equal-ranked member is protected too.
    await give_role(client, w.owner, w.space_id, target, roles["Moderator"]["id"])
    r = await client.patch(url, json={"nick": "y"}, headers=w.member.headers)
    assert_error(r, 403, "forbidden")
    assert_error(
        await client.patch(
            f"/api/v1/spaces/{w.space_id}/members/{w.other.id}", json={}, headers=w.owner.headers
        ),
        404,
    )


async def test_member_patch_needs_nothing_for_unchanged_fields(client: httpx.AsyncClient) -> None:
    """A client may send the whole member object with a nickname change: fields equal to the
    target's current values need no permission (only the nickname is checked)."""
    w = await make_world(client)
    roles = await roles_by_name(client, w.owner, w.space_id)
    target = await register(client, "target")
    await join_by_invite(client, w.owner, target, w.space_id)
    url = f"/api/v1/spaces/{w.space_id}/members/{target.id}"
    # A nickname moderator: manage_nicknames only.
    r = await client.post(
        f"/api/v1/spaces/{w.space_id}/roles",
        json={"name": "Nicks", "permissions": ["manage_nicknames"]},
        headers=w.owner.headers,
    )
    nicks = r.json()["data"]["id"]
    await give_role(client, w.owner, w.space_id, w.member, nicks)
    current = (await client.get(url, headers=w.member.headers)).json()["data"]
    whole = {
        "nick": "renamed",
        "mute": current["mute"],
        "deaf": current["deaf"],
        "roles": current["roles"] + [w.space_id],  # @everyone is implied
        "communication_disabled_until": None,
    }
    r = await client.patch(url, json=whole, headers=w.member.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["nickname"] == "renamed"
    # A field that does change still needs its permission.
    for field, value, permission in [
        ("mute", True, "mute_members"),
        ("deaf", True, "deafen_members"),
        ("roles", [roles["Moderator"]["id"]], "manage_roles"),
    ]:
        r = await client.patch(url, json={**whole, field: value}, headers=w.member.headers)
        error = assert_error(r, 403, "forbidden")
        assert error["message"] == f"missing permission: {permission}"


async def test_member_patch_checks_permission_before_target(client: httpx.AsyncClient) -> None:
    """The permission comes before the target lookup (API.md 3): a caller without it gets 403
    for a non-member target; one with it gets 404."""
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/members/{w.other.id}"
    r = await client.patch(url, json={"nickname": "x"}, headers=w.member.headers)
    error = assert_error(r, 403, "forbidden")
    assert error["message"] == "missing permission: manage_nicknames"
    r = await client.patch(url, json={"mute": True}, headers=w.member.headers)
    assert_error(r, 403, "forbidden")
    assert_error(await client.patch(url, json={"nickname": "x"}, headers=w.owner.headers), 404)


async def test_member_patch_roles_hierarchy(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    roles = await roles_by_name(client, w.owner, w.space_id)
    target = await register(client, "target")
    await join_by_invite(client, w.owner, target, w.space_id)
    url = f"/api/v1/spaces/{w.space_id}/members/{target.id}"
    await give_role(client, w.owner, w.space_id, w.member, roles["Admin"]["id"])
    sub = server.ctx.bus.subscribe()
    # Admin (2) may give Moderator (1); @everyone in the list is ignored.
    r = await client.patch(
        url, json={"roles": [roles["Moderator"]["id"], w.space_id]}, headers=w.member.headers
    )
    assert r.json()["data"]["roles"] == [roles["Moderator"]["id"]]
    items = drain(sub)
    assert controls(items, "permissions_changed")
    assert events(items, "member.update")[0].data["roles"] == [roles["Moderator"]["id"]]
    # ... but not Admin (equal), not themselves a higher role, not a role of another space.
    r = await client.patch(url, json={"roles": [roles["Admin"]["id"]]}, headers=w.member.headers)
    assert r.json()["error"]["message"] == "you cannot manage a role at or above your highest role"
    top = (
        await client.post(
            f"/api/v1/spaces/{w.space_id}/roles", json={"name": "Top"}, headers=w.owner.headers
        )
    ).json()["data"]
    r = await client.patch(
        f"/api/v1/spaces/{w.space_id}/members/{w.member.id}",
        json={"roles": [roles["Admin"]["id"], top["id"]]},
        headers=w.member.headers,
    )
    assert_error(r, 403, "forbidden")
    elsewhere = (
        await client.post("/api/v1/spaces", json={"name": "E"}, headers=w.owner.headers)
    ).json()["data"]
    foreign_roles = await roles_by_name(client, w.owner, elsewhere["id"])
    r = await client.patch(
        url, json={"roles": [foreign_roles["Moderator"]["id"]]}, headers=w.member.headers
    )
    assert_error(r, 404, "not_found")
    r = await client.patch(url, json={"roles": ["not-an-id"]}, headers=w.member.headers)
    assert_error(r, 400, "invalid_request")
    # Nothing partially applied.
    r = await client.get(url, headers=w.owner.headers)
    assert r.json()["data"]["roles"] == [roles["Moderator"]["id"]]


async def test_timeouts(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    roles = await roles_by_name(client, w.owner, w.space_id)
    url = f"/api/v1/spaces/{w.space_id}/members/{w.member.id}"
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).replace(microsecond=0)
    r = await client.patch(
        url, json={"timed_out_until": until.isoformat()}, headers=w.owner.headers
    )
    assert r.status_code == 200, r.text
    stored = r.json()["data"]["timed_out_until"]
    assert stored == until.strftime("%Y-%m-%dT%H:%M:%S")
    assert r.json()["data"]["communication_disabled_until"] == stored
    for value in ("tomorrow", (dt.datetime.now(dt.UTC) + dt.timedelta(days=29)).isoformat()):
        r = await client.patch(url, json={"timed_out_until": value}, headers=w.owner.headers)
        assert assert_error(r, 400)["details"] == {"field": "timed_out_until"}
    r = await client.patch(
        url, json={"communication_disabled_until": None}, headers=w.owner.headers
    )
    assert r.json()["data"]["timed_out_until"] is None
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    r = await client.patch(url, json={"timed_out_until": past}, headers=w.owner.headers)
    assert r.json()["data"]["timed_out_until"] is None
    # Nobody times themselves out, nor the owner.
    await give_role(client, w.owner, w.space_id, w.member, roles["Moderator"]["id"])
    r = await client.patch(
        url, json={"timed_out_until": until.isoformat()}, headers=w.member.headers
    )
    assert_error(r, 403, "forbidden")
    r = await client.patch(
        f"/api/v1/spaces/{w.space_id}/members/{w.owner.id}",
        json={"timed_out_until": until.isoformat()},
        headers=w.member.headers,
    )
    assert_error(r, 403, "forbidden")


async def test_timed_out_member_is_flagged_by_access(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    await client.patch(
        f"/api/v1/spaces/{w.space_id}/members/{w.member.id}",
        json={"timed_out_until": until},
        headers=w.owner.headers,
    )
    principal = Principal(int(w.member.id), "bearer", is_admin=False, token_hash="")
    access = await server.ctx.db.read(space_access, int(w.space_id), principal)
    assert access.is_timed_out
    with pytest.raises(ForbiddenError):
        access.require_not_timed_out()


async def test_kick(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    roles = await roles_by_name(client, w.owner, w.space_id)
    target = await register(client, "target")
    await join_by_invite(client, w.owner, target, w.space_id)
    base = f"/api/v1/spaces/{w.space_id}/members"
    r = await client.delete(f"{base}/{target.id}", headers=w.member.headers)
    assert r.json()["error"]["message"] == "missing permission: kick_members"
    await give_role(client, w.owner, w.space_id, w.member, roles["Moderator"]["id"])
    for victim in (w.owner.id, w.member.id):
        assert_error(await client.delete(f"{base}/{victim}", headers=w.member.headers), 403)
    sub = server.ctx.bus.subscribe()
    r = await client.delete(f"{base}/{target.id}", headers=w.member.headers)
    assert r.json() == {"data": None}
    items = drain(sub)
    leave = events(items, "member.leave")[0]
    assert leave.data["user_id"] == target.id
    assert leave.data["space_id"] == w.space_id
    assert leave.user_ids == frozenset({int(target.id)})
    assert controls(items, "membership_changed")[0].user_id == int(target.id)
    assert_error(await client.get(f"{base}/{target.id}", headers=w.owner.headers), 404)
    # Kicking a non-member is a quiet 200.
    sub = server.ctx.bus.subscribe()
    assert (await client.delete(f"{base}/{target.id}", headers=w.member.headers)).status_code == 200
    assert drain(sub) == []


async def test_leave_space(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/members/@me"
    assert_error(await client.delete(url, headers=w.owner.headers), 403)
    sub = server.ctx.bus.subscribe()
    assert (await client.delete(url, headers=w.member.headers)).status_code == 200
    assert (await next_event(sub, "member.leave")).data["user_id"] == w.member.id
    assert_error(await client.delete(url, headers=w.member.headers), 403)


async def test_assign_and_remove_role(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    roles = await roles_by_name(client, w.owner, w.space_id)
    moderator = roles["Moderator"]["id"]
    url = f"/api/v1/spaces/{w.space_id}/members/{w.member.id}/roles/{moderator}"
    assert_error(await client.put(url, headers=w.member.headers), 403)
    sub = server.ctx.bus.subscribe()
    r = await client.put(url, headers={**w.owner.headers, "Content-Type": "application/json"})
    assert r.json() == {"data": None}
    items = drain(sub)
    assert events(items, "member.update")[0].data["roles"] == [moderator]
    assert controls(items, "permissions_changed")
    assert (await client.put(url, headers=w.owner.headers)).status_code == 200  # idempotent
    assert (await client.delete(url, headers=w.owner.headers)).status_code == 200
    r = await client.get(
        f"/api/v1/spaces/{w.space_id}/members/{w.member.id}", headers=w.owner.headers
    )
    assert r.json()["data"]["roles"] == []
    base = f"/api/v1/spaces/{w.space_id}/members"
    cases = [
        (f"{base}/{w.other.id}/roles/{moderator}", 404),  # not a member
        (f"{base}/{w.member.id}/roles/123456789", 404),  # unknown role
        (f"{base}/{w.member.id}/roles/{w.space_id}", 400),  # @everyone
    ]
    for path, status in cases:
        assert_error(await client.put(path, headers=w.owner.headers), status)
    elsewhere = (
        await client.post("/api/v1/spaces", json={"name": "E"}, headers=w.owner.headers)
    ).json()["data"]
    foreign = (await roles_by_name(client, w.owner, elsewhere["id"]))["Moderator"]["id"]
    assert_error(
        await client.put(f"{base}/{w.member.id}/roles/{foreign}", headers=w.owner.headers), 404
    )
    # An Admin cannot hand out Admin (equal) or act on the owner's roles.
    await give_role(client, w.owner, w.space_id, w.member, roles["Admin"]["id"])
    other_member = await register(client, "third")
    await join_by_invite(client, w.owner, other_member, w.space_id)
    r = await client.put(
        f"{base}/{other_member.id}/roles/{roles['Admin']['id']}", headers=w.member.headers
    )
    assert_error(r, 403, "forbidden")
    r = await client.put(f"{base}/{w.owner.id}/roles/{moderator}", headers=w.member.headers)
    assert_error(r, 403, "forbidden")
    r = await client.put(f"{base}/{other_member.id}/roles/{moderator}", headers=w.member.headers)
    assert r.status_code == 200
