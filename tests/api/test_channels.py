"""Channel routes end to end (API.md 3.5-3.6): create with validation and caps, read, update,
reorder, delete with messages and children, visibility of hidden channels, and events."""

from __future__ import annotations

import httpx
import pytest

from accord.services import channels as channel_service
from tests.spaces_support import create_space, drain, events, make_world, next_event
from tests.support import ServerHandle, assert_error


async def test_create_channel_and_events(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/channels"
    category = (
        await client.post(url, json={"name": "Cat", "type": "category"}, headers=w.owner.headers)
    ).json()["data"]
    sub = server.ctx.bus.subscribe()
    r = await client.post(
        url,
        json={
            "name": "voice-1",
            "type": "voice",
            "topic": "talk",
            "parent_id": category["id"],
            "bitrate": 64000,
            "user_limit": 5,
            "position": 3,
            "nsfw": True,
        },
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    channel = r.json()["data"]
    assert channel["space_id"] == w.space_id
    assert channel["type"] == "voice"
    assert channel["parent_id"] == category["id"]
    assert (channel["bitrate"], channel["user_limit"], channel["position"]) == (64000, 5, 3)
    assert channel["nsfw"] is True
    assert channel["permission_overwrites"] == []
    event = await next_event(sub, "channel.create")
    assert event.channel_id == int(channel["id"])
    assert event.data["name"] == "voice-1"
    r = await client.get(f"/api/v1/channels/{channel['id']}", headers=w.member.headers)
    assert r.json()["data"]["id"] == channel["id"]


async def test_create_channel_validation(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/channels"
    elsewhere = await create_space(client, w.owner, "Elsewhere")
    foreign = (
        await client.get(f"/api/v1/spaces/{elsewhere['id']}/channels", headers=w.owner.headers)
    ).json()["data"][0]["id"]
    for body, status, field in [
        ({"name": ""}, 400, "name"),
        ({"name": "n" * 101}, 400, "name"),
        ({"name": "x", "type": "dm"}, 400, "type"),
        ({"name": "x", "type": "bogus"}, 400, "type"),
        ({"name": "x", "topic": "t" * 1025}, 400, "topic"),
        ({"name": "x", "position": -1}, 400, "position"),
        ({"name": "x", "bitrate": 1}, 400, "bitrate"),
        ({"name": "x", "user_limit": 100}, 400, "user_limit"),
        ({"name": "x", "rate_limit": -5}, 400, "rate_limit"),
        ({"name": "x", "parent_id": w.general["id"]}, 400, "parent_id"),
        ({"name": "x", "parent_id": "nope"}, 400, "parent_id"),
        ({"name": "x", "position": "1"}, 422, "position"),
        ({"topic": "no name"}, 422, "name"),
    ]:
        r = await client.post(url, json=body, headers=w.owner.headers)
        assert assert_error(r, status, "invalid_request")["details"] == {"field": field}, body
    # A parent from another space names nothing here (G-04).
    r = await client.post(url, json={"name": "x", "parent_id": foreign}, headers=w.owner.headers)
    assert_error(r, 404, "not_found")
    r = await client.post(url, json={"name": "x"}, headers=w.member.headers)
    assert r.json()["error"]["message"] == "missing permission: manage_channels"
    assert_error(r, 403, "forbidden")
    r = await client.post(url, json={"name": "x"}, headers=w.other.headers)
    assert r.json()["error"]["message"] == "you are not a member of this space"


async def test_channel_cap(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel_service, "CHANNELS_PER_SPACE", 3)
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/channels"
    for name in ("two", "three"):
        assert (
            await client.post(url, json={"name": name}, headers=w.owner.headers)
        ).status_code == 200
    r = await client.post(url, json={"name": "four"}, headers=w.owner.headers)
    assert "at most 3 channels" in assert_error(r, 400, "invalid_request")["message"]


async def test_update_channel(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/channels/{w.general['id']}"
    sub = server.ctx.bus.subscribe()
    r = await client.patch(
        url,
        json={"name": "lobby", "topic": "welcome", "nsfw": True, "rate_limit": 10, "type": "voice"},
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["name"], data["topic"], data["nsfw"], data["rate_limit"]) == (
        "lobby",
        "welcome",
        True,
        10,
    )
    assert data["type"] == "text"  # type cannot change
    assert (await next_event(sub, "channel.update")).data["topic"] == "welcome"
    r = await client.patch(url, json={"topic": None}, headers=w.owner.headers)
    assert r.json()["data"]["topic"] is None
    assert_error(await client.patch(url, json={"name": "x"}, headers=w.member.headers), 403)
    assert_error(await client.patch(url, json={"name": ""}, headers=w.owner.headers), 400)
    assert_error(
        await client.patch(url, json={"parent_id": w.general["id"]}, headers=w.owner.headers),
        404,
    )
    assert_error(
        await client.patch("/api/v1/channels/12345", json={}, headers=w.owner.headers), 404
    )


async def test_reorder_channels(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/channels"
    second = (
        await client.post(url, json={"name": "b", "position": 1}, headers=w.owner.headers)
    ).json()["data"]
    sub = server.ctx.bus.subscribe()
    r = await client.patch(
        url,
        json=[{"id": second["id"], "position": 0}, {"id": w.general["id"], "position": 5}],
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    assert [c["id"] for c in r.json()["data"]] == [second["id"], w.general["id"]]
    items = drain(sub)
    reorder = events(items, "channel.reorder")[0]
    assert {c["id"]: c["position"] for c in reorder.data["channels"]} == {
        second["id"]: 0,
        w.general["id"]: 5,
    }
    assert {e.data["id"] for e in events(items, "channel.update")} == {
        second["id"],
        w.general["id"],
    }
    # Channels of another space are unknown here (G-04); nothing is applied.
    elsewhere = await create_space(client, w.owner, "Elsewhere")
    foreign = (
        await client.get(f"/api/v1/spaces/{elsewhere['id']}/channels", headers=w.owner.headers)
    ).json()["data"][0]["id"]
    r = await client.patch(
        url,
        json=[{"id": second["id"], "position": 9}, {"id": foreign, "position": 1}],
        headers=w.owner.headers,
    )
    assert_error(r, 404, "not_found")
    r = await client.get(url, headers=w.owner.headers)
    assert [c["position"] for c in r.json()["data"]] == [0, 5]
    for body, status in [
        ({"id": second["id"]}, 422),
        ([{"id": second["id"], "position": -1}], 400),
        ([{"position": 1}], 422),
        ([{"id": "junk", "position": 1}], 404),
    ]:
        assert_error(await client.patch(url, json=body, headers=w.owner.headers), status)
    assert_error(await client.patch(url, json=[], headers=w.member.headers), 403)


async def test_delete_channel_with_messages_and_children(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/channels"
    category = (
        await client.post(url, json={"name": "Cat", "type": "category"}, headers=w.owner.headers)
    ).json()["data"]
    child = (
        await client.post(
            url, json={"name": "child", "parent_id": category["id"]}, headers=w.owner.headers
        )
    ).json()["data"]
    await client.patch(
        f"/api/v1/spaces/{w.space_id}",
        json={"system_channel_id": child["id"]},
        headers=w.owner.headers,
    )
    await client.post(f"/api/v1/channels/{child['id']}/invites", json={}, headers=w.owner.headers)

    def add_message(conn: object) -> None:
        conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO messages (id, channel_id, space_id, author_id, content, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, 'hi', 'x', 'x')",
            (server.ctx.new_id(), int(child["id"]), int(w.space_id), int(w.owner.id)),
        )

    await server.ctx.db.write(add_message)
    assert_error(
        await client.delete(f"/api/v1/channels/{category['id']}", headers=w.member.headers), 403
    )
    sub = server.ctx.bus.subscribe()
    r = await client.delete(f"/api/v1/channels/{category['id']}", headers=w.owner.headers)
    assert r.json() == {"data": None}
    items = drain(sub)
    assert events(items, "channel.delete")[0].data["id"] == category["id"]
    detached = events(items, "channel.update")[0].data
    assert (detached["id"], detached["parent_id"]) == (child["id"], None)
    # A channel with messages, invites and space references deletes cleanly (G-14).
    sub = server.ctx.bus.subscribe()
    r = await client.delete(f"/api/v1/channels/{child['id']}", headers=w.owner.headers)
    assert r.status_code == 200, r.text
    items = drain(sub)
    assert events(items, "channel.delete")[0].data["type"] == "text"
    assert events(items, "space.update")[0].data["system_channel_id"] is None
    assert_error(await client.get(f"/api/v1/channels/{child['id']}", headers=w.owner.headers), 404)


async def test_member_without_view_channel_gets_403_on_channel_routes(
    client: httpx.AsyncClient,
) -> None:
    """Every channel route answers a member who cannot view the channel with `403 missing
    permission: view_channel`, even with a valid body (API.md 1.11 CHANNEL(p), CLIENT.md 3)."""
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/channels"
    secret = (await client.post(url, json={"name": "secret"}, headers=w.owner.headers)).json()[
        "data"
    ]
    base = f"/api/v1/channels/{secret['id']}"
    r = await client.put(
        f"{base}/permissions/{w.space_id}",
        json={"type": "role", "allow": [], "deny": ["view_channel"]},
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    overwrite = {"type": "member", "allow": [], "deny": []}
    attempts = [
        ("GET", base, None),
        ("PATCH", base, {"name": "renamed"}),
        ("DELETE", base, None),
        ("GET", f"{base}/permissions", None),
        ("PUT", f"{base}/permissions/{w.member.id}", overwrite),
        ("DELETE", f"{base}/permissions/{w.space_id}", None),
        ("GET", f"{base}/invites", None),
        ("POST", f"{base}/invites", {}),
    ]
    for method, path, body in attempts:
        r = await client.request(method, path, json=body, headers=w.member.headers)
        error = assert_error(r, 403, "forbidden")
        assert error["message"] == "missing permission: view_channel", (method, path)
    # Nothing changed.
    r = await client.get(base, headers=w.owner.headers)
    assert r.json()["data"]["name"] == "secret"


async def test_hidden_channels_are_invisible(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/spaces/{w.space_id}/channels"
    secret = (await client.post(url, json={"name": "secret"}, headers=w.owner.headers)).json()[
        "data"
    ]
    r = await client.put(
        f"/api/v1/channels/{secret['id']}/permissions/{w.space_id}",
        json={"type": "role", "allow": [], "deny": ["view_channel"]},
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    names = [c["name"] for c in (await client.get(url, headers=w.member.headers)).json()["data"]]
    assert names == ["general"]
    owner_names = [
        c["name"] for c in (await client.get(url, headers=w.owner.headers)).json()["data"]
    ]
    assert owner_names == ["general", "secret"]
    # A member learns the channel exists but may not view it (API.md 1.11 CHANNEL(p)).
    error = assert_error(
        await client.get(f"/api/v1/channels/{secret['id']}", headers=w.member.headers), 403
    )
    assert error["message"] == "missing permission: view_channel"
    # A member overwrite gives it back to one member.
    await client.put(
        f"/api/v1/channels/{secret['id']}/permissions/{w.member.id}",
        json={"type": "member", "allow": ["view_channel"], "deny": []},
        headers=w.owner.headers,
    )
    r = await client.get(f"/api/v1/channels/{secret['id']}", headers=w.member.headers)
    assert r.status_code == 200
    # Non-members of a private space get 403 / 401.
    assert_error(await client.get(url, headers=w.other.headers), 403)
    assert_error(await client.get(url), 401)
    assert_error(await client.get(f"/api/v1/channels/{w.general['id']}"), 401)
