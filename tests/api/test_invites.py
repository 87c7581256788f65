"""Invite routes end to end (API.md 3.12, CLIENT.md 4.9, D-inv, D-inv2, D-inv3, G-19):
space and channel invites, 0 = unlimited, expiry, atomic use counting under concurrency,
listing and deletion rights, caps and events."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
import trio

from accord.services import invites as invite_service
from tests.spaces_support import drain, events, make_world, next_event
from tests.support import ServerHandle, assert_error, register


async def test_space_invite_shape_and_events(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    sub = server.ctx.bus.subscribe()
    r = await client.post(f"/api/v1/spaces/{w.space_id}/invites", headers=w.member.headers)
    assert r.status_code == 200, r.text
    invite = r.json()["data"]
    assert len(invite["code"]) == 8
    assert invite["code"].isalnum()
    assert "channel_id" not in invite  # D-inv3
    assert (invite["space_id"], invite["inviter_id"], invite["uses"]) == (
        w.space_id,
        w.member.id,
        0,
    )
    assert (invite["max_uses"], invite["max_age"], invite["expires_at"], invite["temporary"]) == (
        None,
        None,
        None,
        False,
    )
    created = await next_event(sub, "invite.create")
    assert created.data == invite
    assert created.channel_id is None
    r = await client.get(f"/api/v1/invites/{invite['code']}", headers=w.other.headers)
    preview = r.json()["data"]
    assert {k: preview[k] for k in invite} == invite  # the Invite, plus the preview fields
    assert preview["space"]["id"] == w.space_id
    assert_error(await client.get("/api/v1/invites/nothing1", headers=w.other.headers), 404)
    assert_error(await client.get(f"/api/v1/invites/{invite['code']}"), 401)


async def test_channel_invite_and_limits(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    r = await client.post(
        f"/api/v1/channels/{w.general['id']}/invites",
        json={"max_uses": 0, "max_age": 0, "temporary": True},
        headers=w.member.headers,
    )
    invite = r.json()["data"]
    assert (invite["channel_id"], invite["space_id"]) == (w.general["id"], w.space_id)
    assert (invite["max_uses"], invite["max_age"], invite["expires_at"], invite["temporary"]) == (
        None,
        None,
        None,
        True,
    )
    r = await client.post(
        f"/api/v1/spaces/{w.space_id}/invites",
        json={"max_uses": 5, "max_age": 3600},
        headers=w.member.headers,
    )
    data = r.json()["data"]
    assert (data["max_uses"], data["max_age"]) == (5, 3600)
    assert data["expires_at"] > data["created_at"]
    for body, field in [({"max_uses": -1}, "max_uses"), ({"max_age": -5}, "max_age")]:
        r = await client.post(
            f"/api/v1/spaces/{w.space_id}/invites", json=body, headers=w.member.headers
        )
        assert assert_error(r, 400)["details"] == {"field": field}
    assert_error(
        await client.post(f"/api/v1/spaces/{w.space_id}/invites", json={}, headers=w.other.headers),
        403,
    )
    assert_error(
        await client.post("/api/v1/channels/777/invites", json={}, headers=w.member.headers), 404
    )
    # Without create_invites on @everyone, members cannot invite.
    everyone = (
        await client.get(f"/api/v1/spaces/{w.space_id}/roles", headers=w.owner.headers)
    ).json()["data"][0]
    kept = [p for p in everyone["permissions"] if p != "create_invites"]
    await client.patch(
        f"/api/v1/spaces/{w.space_id}/roles/{w.space_id}",
        json={"permissions": kept},
        headers=w.owner.headers,
    )
    r = await client.post(
        f"/api/v1/channels/{w.general['id']}/invites", json={}, headers=w.member.headers
    )
    assert r.json()["error"]["message"] == "missing permission: create_invites"


async def test_accept_counts_uses_and_expiry(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    a, b = await register(client, "a"), await register(client, "b")
    r = await client.post(
        f"/api/v1/spaces/{w.space_id}/invites", json={"max_uses": 1}, headers=w.owner.headers
    )
    code = r.json()["data"]["code"]
    sub = server.ctx.bus.subscribe()
    r = await client.post(
        f"/api/v1/invites/{code}/accept", headers={**a.headers, "Content-Type": "application/json"}
    )
    assert r.json()["data"]["uses"] == 1
    joined = await next_event(sub, "member.join")
    assert (joined.data["user_id"], joined.data["space_id"]) == (a.id, w.space_id)
    # Re-accepting as a member uses nothing and succeeds (G-19).
    r = await client.post(f"/api/v1/invites/{code}/accept", headers=a.headers)
    assert r.json()["data"]["uses"] == 1
    r = await client.post(f"/api/v1/invites/{code}/accept", headers=b.headers)
    assert r.json()["error"]["message"] == "invite has reached max uses"
    assert_error(r, 400, "invalid_request")
    assert_error(await client.post("/api/v1/invites/zzzzzzzz/accept", headers=b.headers), 404)
    # Expired invites are refused.
    r = await client.post(
        f"/api/v1/spaces/{w.space_id}/invites", json={"max_age": 60}, headers=w.owner.headers
    )
    expiring = r.json()["data"]["code"]

    def expire(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE invites SET expires_at = '2000-01-01T00:00:00' WHERE code = ?", (expiring,)
        )

    await server.ctx.db.write(expire)
    r = await client.post(f"/api/v1/invites/{expiring}/accept", headers=b.headers)
    assert r.json()["error"]["message"] == "invite has expired"


async def test_concurrent_accepts_race_for_the_last_use(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    racers = [await register(client, f"racer{i}") for i in range(6)]
    r = await client.post(
        f"/api/v1/spaces/{w.space_id}/invites", json={"max_uses": 1}, headers=w.owner.headers
    )
    code = r.json()["data"]["code"]
    statuses: list[int] = []

    async def accept(account: object) -> None:
        response = await client.post(f"/api/v1/invites/{code}/accept", headers=account.headers)  # type: ignore[attr-defined]
        statuses.append(response.status_code)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for racer in racers:
                nursery.start_soon(accept, racer)
    assert sorted(statuses) == [200] + [400] * 5
    r = await client.get(f"/api/v1/invites/{code}", headers=w.owner.headers)
    assert r.json()["data"]["uses"] == 1
    r = await client.get(f"/api/v1/spaces/{w.space_id}/members", headers=w.owner.headers)
    assert len(r.json()["data"]) == 3  # owner, member and exactly one racer


async def test_listing_and_deleting_rights(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    mine = (
        await client.post(f"/api/v1/spaces/{w.space_id}/invites", json={}, headers=w.member.headers)
    ).json()["data"]
    owners = (
        await client.post(
            f"/api/v1/channels/{w.general['id']}/invites", json={}, headers=w.owner.headers
        )
    ).json()["data"]
    r = await client.get(f"/api/v1/spaces/{w.space_id}/invites", headers=w.owner.headers)
    listed = {i["code"] for i in r.json()["data"]}
    assert {mine["code"], owners["code"]} <= listed
    assert len(listed) == 3  # and the invite make_world used
    r = await client.get(f"/api/v1/spaces/{w.space_id}/invites", headers=w.member.headers)
    assert [i["code"] for i in r.json()["data"]] == [mine["code"]]  # D-inv2
    r = await client.get(f"/api/v1/channels/{w.general['id']}/invites", headers=w.owner.headers)
    assert [i["code"] for i in r.json()["data"]] == [owners["code"]]
    assert_error(
        await client.get(f"/api/v1/spaces/{w.space_id}/invites", headers=w.other.headers), 403
    )
    # A plain member cannot delete the owner's invite, but can delete their own.
    r = await client.delete(f"/api/v1/invites/{owners['code']}", headers=w.member.headers)
    assert_error(r, 403, "forbidden")
    sub = server.ctx.bus.subscribe()
    assert (
        await client.delete(f"/api/v1/invites/{mine['code']}", headers=w.member.headers)
    ).json() == {"data": None}
    deleted = events(drain(sub), "invite.delete")[0]
    assert deleted.data == {"code": mine["code"], "space_id": w.space_id}
    sub = server.ctx.bus.subscribe()
    assert (
        await client.delete(f"/api/v1/invites/{owners['code']}", headers=w.owner.headers)
    ).status_code == 200
    deleted = events(drain(sub), "invite.delete")[0]
    assert deleted.data["channel_id"] == w.general["id"]
    assert deleted.channel_id == int(w.general["id"])
    assert_error(
        await client.delete(f"/api/v1/invites/{mine['code']}", headers=w.owner.headers), 404
    )


async def test_invite_cap_purges_dead_invites(
    server: ServerHandle, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(invite_service, "INVITES_PER_SPACE", 2)
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/invites"
    # make_world used one invite (unlimited); one more fills the cap.
    first = (await client.post(url, json={"max_uses": 1}, headers=w.owner.headers)).json()["data"]
    r = await client.post(url, json={}, headers=w.owner.headers)
    assert "at most 2 invites" in assert_error(r, 400)["message"]
    outsider = await register(client, "outsider")
    await client.post(f"/api/v1/invites/{first['code']}/accept", headers=outsider.headers)
    r = await client.post(url, json={}, headers=w.owner.headers)  # the used-up one was purged
    assert r.status_code == 200


async def test_bot_token_accepts_invite_and_is_a_plain_member(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    """CLIENT.md 11: a Bot accepts an invite (member.join with its id), may create channel
    invites, and gets 403 for owner-only actions."""
    w = await make_world(client)
    seed = (await client.post("/test/seed")).json()["data"]
    bot_id = seed["bot"]["id"]
    bot = {"Authorization": f"Bot {seed['bot']['token']}"}
    r = await client.post(f"/api/v1/spaces/{w.space_id}/invites", json={}, headers=w.owner.headers)
    code = r.json()["data"]["code"]
    sub = server.ctx.bus.subscribe()
    r = await client.post(
        f"/api/v1/invites/{code}/accept", headers={**bot, "Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text
    joined = await next_event(sub, "member.join")
    assert (joined.data["user_id"], joined.data["user"]["bot"]) == (bot_id, True)
    r = await client.post(f"/api/v1/channels/{w.general['id']}/invites", json={}, headers=bot)
    assert r.status_code == 200
    for method, path, body in [
        ("PATCH", f"/api/v1/spaces/{w.space_id}", {"name": "x"}),
        ("DELETE", f"/api/v1/spaces/{w.space_id}", None),
        ("POST", f"/api/v1/spaces/{w.space_id}/channels", {"name": "x"}),
        ("DELETE", f"/api/v1/channels/{w.general['id']}", None),
        ("POST", f"/api/v1/spaces/{w.space_id}/roles", {"name": "x"}),
        ("DELETE", f"/api/v1/spaces/{w.space_id}/members/{w.member.id}", None),
        ("PUT", f"/api/v1/spaces/{w.space_id}/bans/{w.member.id}", {}),
        ("DELETE", f"/api/v1/spaces/{w.space_id}/bans/{w.member.id}", None),
        ("DELETE", f"/api/v1/invites/{code}", None),
    ]:
        r = await client.request(method, path, json=body, headers=bot)
        assert_error(r, 403, "forbidden")
