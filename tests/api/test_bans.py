"""Ban routes end to end (API.md 3.11, CLIENT.md 4.8): ban with hierarchy, membership removal,
message cleanup, listing and paging, 403 before 404, rejoin blocked, and events."""

from __future__ import annotations

import sqlite3

import httpx

from tests.spaces_support import (
    controls,
    drain,
    events,
    give_role,
    join_by_invite,
    make_world,
    roles_by_name,
)
from tests.support import ServerHandle, assert_error, register


async def test_ban_removes_member_and_publishes(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    base = f"/api/v1/spaces/{w.space_id}/bans"
    sub = server.ctx.bus.subscribe()
    r = await client.put(
        f"{base}/{w.member.id}", json={"reason": "  spam  "}, headers=w.owner.headers
    )
    assert r.status_code == 200, r.text
    ban = r.json()["data"]
    assert (ban["user_id"], ban["space_id"], ban["reason"], ban["banned_by"]) == (
        w.member.id,
        w.space_id,
        "spam",
        w.owner.id,
    )
    items = drain(sub)
    created = events(items, "ban.create")[0]
    assert created.data == ban
    assert created.user_ids == frozenset({int(w.member.id)})
    assert events(items, "member.leave")[0].data["user_id"] == w.member.id
    assert controls(items, "membership_changed")[0].user_id == int(w.member.id)
    r = await client.get(
        f"/api/v1/spaces/{w.space_id}/members/{w.member.id}", headers=w.owner.headers
    )
    assert_error(r, 404)
    r = await client.get(f"{base}/{w.member.id}", headers=w.owner.headers)
    assert r.json()["data"]["reason"] == "spam"
    # A banned user cannot come back by invite.
    r = await client.post(f"/api/v1/spaces/{w.space_id}/invites", json={}, headers=w.owner.headers)
    code = r.json()["data"]["code"]
    r = await client.post(f"/api/v1/invites/{code}/accept", headers=w.member.headers)
    assert r.json()["error"]["message"] == "you are banned from this space"
    r = await client.get(f"/api/v1/invites/{code}", headers=w.owner.headers)
    assert r.json()["data"]["uses"] == 0  # a banned caller burns no use (G-19)
    # Unban, then the invite works again.
    sub = server.ctx.bus.subscribe()
    assert (await client.delete(f"{base}/{w.member.id}", headers=w.owner.headers)).json() == {
        "data": None
    }
    assert events(drain(sub), "ban.delete")[0].data == {
        "space_id": w.space_id,
        "user_id": w.member.id,
    }
    assert (
        await client.post(f"/api/v1/invites/{code}/accept", headers=w.member.headers)
    ).status_code == 200


async def test_ban_without_body_and_non_member(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    base = f"/api/v1/spaces/{w.space_id}/bans"
    r = await client.put(f"{base}/{w.other.id}", headers=w.owner.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["reason"] is None
    r = await client.put(
        f"{base}/{w.other.id}", headers={**w.owner.headers, "Content-Type": "application/json"}
    )
    assert r.status_code == 200
    assert_error(await client.put(f"{base}/987654321", headers=w.owner.headers), 404)
    r = await client.put(
        f"{base}/{w.other.id}", json={"reason": "r" * 513}, headers=w.owner.headers
    )
    assert assert_error(r, 400)["details"] == {"field": "reason"}


async def test_ban_permission_and_hierarchy(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    roles = await roles_by_name(client, w.owner, w.space_id)
    base = f"/api/v1/spaces/{w.space_id}/bans"
    for method, path in [
        ("GET", base),
        ("GET", f"{base}/{w.other.id}"),
        ("PUT", f"{base}/{w.other.id}"),
        ("DELETE", f"{base}/{w.other.id}"),  # not banned: 403 still wins (CLIENT.md 4.8)
        ("GET", f"{base}/junk"),
        ("DELETE", f"{base}/junk"),
    ]:
        r = await client.request(method, path, headers=w.member.headers)
        assert r.json()["error"]["message"] == "missing permission: ban_members", (method, path)
    await give_role(client, w.owner, w.space_id, w.member, roles["Moderator"]["id"])
    for victim in (w.owner.id, w.member.id):
        r = await client.put(f"{base}/{victim}", headers=w.member.headers)
        assert (
            r.json()["error"]["message"]
            == "you cannot act on a member with an equal or higher role"
        )
    peer = await register(client, "peer")
    await join_by_invite(client, w.owner, peer, w.space_id)
    await give_role(client, w.owner, w.space_id, peer, roles["Moderator"]["id"])
    assert_error(await client.put(f"{base}/{peer.id}", headers=w.member.headers), 403)
    assert_error(await client.get(f"{base}/{peer.id}", headers=w.member.headers), 404)
    assert_error(await client.get(f"{base}/junk", headers=w.member.headers), 404)
    assert (await client.delete(f"{base}/{peer.id}", headers=w.member.headers)).status_code == 200


async def test_list_bans_whole_and_paged(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    base = f"/api/v1/spaces/{w.space_id}/bans"
    victims = [w.other] + [await register(client, f"v{i}") for i in range(3)]
    for victim in victims:
        await client.put(f"{base}/{victim.id}", headers=w.owner.headers)
    r = await client.get(base, headers=w.owner.headers)
    assert {b["user_id"] for b in r.json()["data"]} == {v.id for v in victims}
    ordered = sorted((v.id for v in victims), key=int)
    r = await client.get(base, params={"limit": 2}, headers=w.owner.headers)
    assert [b["user_id"] for b in r.json()["data"]] == ordered[:2]
    r = await client.get(base, params={"after": ordered[1]}, headers=w.owner.headers)
    assert [b["user_id"] for b in r.json()["data"]] == ordered[2:]
    r = await client.get(base, params={"before": ordered[2], "limit": 1}, headers=w.owner.headers)
    assert [b["user_id"] for b in r.json()["data"]] == [ordered[1]]
    assert_error(await client.get(base, params={"limit": "x"}, headers=w.owner.headers), 400)


async def test_ban_deletes_recent_messages(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    old_id = (1 << 22) * 1000  # one second after the epoch: far older than a day
    new_id = server.ctx.new_id()

    def add_messages(conn: sqlite3.Connection) -> None:
        for message_id in (old_id, new_id):
            conn.execute(
                "INSERT INTO messages (id, channel_id, space_id, author_id, content, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, 'x', 'x', 'x')",
                (message_id, int(w.general["id"]), int(w.space_id), int(w.member.id)),
            )

    await server.ctx.db.write(add_messages)
    sub = server.ctx.bus.subscribe()
    r = await client.put(
        f"/api/v1/spaces/{w.space_id}/bans/{w.member.id}",
        json={"delete_message_seconds": 86400},
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    bulk = events(drain(sub), "message.delete_bulk")[0]
    assert bulk.data == {
        "ids": [str(new_id)],
        "channel_id": w.general["id"],
        "space_id": w.space_id,
    }
    assert bulk.channel_id == int(w.general["id"])

    def remaining(conn: sqlite3.Connection) -> list[int]:
        return [
            row[0]
            for row in conn.execute(
                "SELECT id FROM messages WHERE author_id = ?", (int(w.member.id),)
            )
        ]

    assert await server.ctx.db.read(remaining) == [old_id]
    r = await client.put(
        f"/api/v1/spaces/{w.space_id}/bans/{w.member.id}",
        json={"delete_message_seconds": 10**7},
        headers=w.owner.headers,
    )
    assert_error(r, 400)
