"""Public spaces end to end (API.md 3.5, D-feat, G-06): listing, anonymous reads limited to what
@everyone may view, joining, and bans blocking joins."""

from __future__ import annotations

import httpx

from tests.spaces_support import create_space, make_world, next_event, put_overwrite
from tests.support import ServerHandle, assert_error, register


async def test_public_listing(client: httpx.AsyncClient) -> None:
    w = await make_world(client, public=True)
    await create_space(client, w.owner, "Private")
    r = await client.get("/api/v1/spaces/public")
    names = [s["name"] for s in r.json()["data"]]
    assert "Test Space" in names
    assert "Private" not in names
    space = next(s for s in r.json()["data"] if s["id"] == w.space_id)
    assert space["public"] is True
    assert space["features"] == ["public"]


async def test_public_listing_pages_by_id(client: httpx.AsyncClient) -> None:
    owner = await register(client, "owner")
    for i in range(5):
        await create_space(client, owner, f"Open {i}", public=True)
    whole = (await client.get("/api/v1/spaces/public")).json()["data"]
    ids = [s["id"] for s in whole]
    assert ids == sorted(ids, key=int)  # the default: every public space, by id
    assert len(ids) >= 5
    r = await client.get("/api/v1/spaces/public", params={"limit": 2})
    assert [s["id"] for s in r.json()["data"]] == ids[:2]
    r = await client.get("/api/v1/spaces/public", params={"limit": 2, "after": ids[1]})
    assert [s["id"] for s in r.json()["data"]] == ids[2:4]
    r = await client.get("/api/v1/spaces/public", params={"after": ids[-1]})
    assert r.json()["data"] == []
    assert_error(await client.get("/api/v1/spaces/public", params={"limit": "x"}), 400)
    assert_error(await client.get("/api/v1/spaces/public", params={"after": "nope"}), 400)


async def test_anonymous_reads_see_only_everyone_view(client: httpx.AsyncClient) -> None:
    w = await make_world(client, public=True)
    url = f"/api/v1/spaces/{w.space_id}/channels"
    hidden = (await client.post(url, json={"name": "hidden"}, headers=w.owner.headers)).json()[
        "data"
    ]
    await put_overwrite(client, w.owner, hidden["id"], w.space_id, "role", deny=("view_channel",))
    # A member overwrite stops counting once its member has left (G-06: non-members read as
    # @everyone).
    staff = (await client.post(url, json={"name": "staff"}, headers=w.owner.headers)).json()["data"]
    await put_overwrite(client, w.owner, staff["id"], w.space_id, "role", deny=("view_channel",))
    await put_overwrite(
        client, w.owner, staff["id"], w.member.id, "member", allow=("view_channel",)
    )
    r = await client.get(url, headers=w.member.headers)
    assert [c["name"] for c in r.json()["data"]] == ["general", "staff"]
    await client.delete(f"/api/v1/spaces/{w.space_id}/members/@me", headers=w.member.headers)
    anyone: tuple[dict[str, str], ...] = (
        {},
        w.other.headers,
        w.member.headers,
        {"Authorization": "Bearer not-a-token"},
    )
    for headers in anyone:
        r = await client.get(f"/api/v1/spaces/{w.space_id}", headers=headers)
        assert r.status_code == 200
        r = await client.get(url, headers=headers)
        assert [c["name"] for c in r.json()["data"]] == ["general"]
        assert (
            await client.get(f"/api/v1/channels/{w.general['id']}", headers=headers)
        ).status_code == 200
        assert_error(await client.get(f"/api/v1/channels/{hidden['id']}", headers=headers), 404)
    # Member-only routes stay closed to non-members.
    assert_error(
        await client.get(f"/api/v1/spaces/{w.space_id}/members", headers=w.other.headers), 403
    )
    assert_error(
        await client.get(f"/api/v1/spaces/{w.space_id}/roles", headers=w.other.headers), 403
    )
    assert_error(await client.post(url, json={"name": "x"}, headers=w.other.headers), 403)


async def test_join_public_space(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client, public=True)
    url = f"/api/v1/spaces/{w.space_id}/join"
    sub = server.ctx.bus.subscribe()
    r = await client.post(url, headers={**w.other.headers, "Content-Type": "application/json"})
    assert r.json() == {"data": {"space_id": w.space_id}}
    joined = await next_event(sub, "member.join")
    assert joined.data["user_id"] == w.other.id
    assert (await client.post(url, headers=w.other.headers)).status_code == 200  # idempotent
    r = await client.get(
        f"/api/v1/spaces/{w.space_id}/members/{w.other.id}", headers=w.owner.headers
    )
    assert r.json()["data"]["roles"] == []
    assert_error(await client.post(url), 401)
    assert_error(await client.post("/api/v1/spaces/123/join", headers=w.other.headers), 404)


async def test_join_refused_when_private_or_banned(client: httpx.AsyncClient) -> None:
    w = await make_world(client, public=True)
    private = await create_space(client, w.owner, "Private")
    r = await client.post(f"/api/v1/spaces/{private['id']}/join", headers=w.other.headers)
    assert r.json()["error"]["message"] == "this space is not public"
    banned = await register(client, "banned")
    await client.put(f"/api/v1/spaces/{w.space_id}/bans/{banned.id}", headers=w.owner.headers)
    r = await client.post(f"/api/v1/spaces/{w.space_id}/join", headers=banned.headers)
    assert r.json()["error"]["message"] == "you are banned from this space"
    assert_error(r, 403, "forbidden")
