"""Direct messages (API.md 3.4, CLIENT.md 4.2): opening DMs and group DMs, listing them,
messaging in them, and their privacy (outsiders get 404)."""

from __future__ import annotations

import httpx
import trio

from tests.api.messaging import next_event, seed_world, send
from tests.support import ServerHandle, assert_error, register


async def test_open_list_and_message(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    with server.ctx.bus.subscribed() as sub:
        r = await client.post(
            "/api/v1/users/@me/channels", json={"recipient_id": w.bot_id}, headers=w.owner
        )
        assert r.status_code == 200, r.text
        with trio.fail_after(2):
            created = await next_event(sub, "channel.create")
    dm = r.json()["data"]
    assert dm["type"] == "dm"
    assert dm["space_id"] is None
    assert [u["id"] for u in dm["recipients"]] == [w.bot_id]
    assert created.user_ids == frozenset({int(w.owner_id), int(w.bot_id)})
    again = await client.post(
        "/api/v1/users/@me/channels", json={"recipients": [w.bot_id]}, headers=w.owner
    )
    assert again.json()["data"]["id"] == dm["id"]  # the DM is reused
    with server.ctx.bus.subscribed() as sub:
        sent = await send(client, w.bot, dm["id"], "psst")
        with trio.fail_after(2):
            event = await next_event(sub, "message.create")
    assert sent["space_id"] is None
    assert event.user_ids == frozenset({int(w.owner_id), int(w.bot_id)})
    listed = (await client.get("/api/v1/users/@me/channels", headers=w.bot)).json()["data"]
    assert [c["id"] for c in listed] == [dm["id"]]
    assert listed[0]["last_message_id"] == sent["id"]
    assert [u["id"] for u in listed[0]["recipients"]] == [w.owner_id]
    history = await client.get(f"/api/v1/channels/{dm['id']}/messages", headers=w.owner)
    assert [m["content"] for m in history.json()["data"]] == ["psst"]
    await register(client, "admin0")
    outsider = await register(client, "outsider")
    assert_error(
        await client.get(f"/api/v1/channels/{dm['id']}/messages", headers=outsider.headers), 404
    )
    assert_error(await send_raw(client, outsider.headers, dm["id"]), 404)
    assert_error(await client.get(f"/api/v1/channels/{dm['id']}/messages"), 401)
    # DM participants cannot delete each other's messages.
    r = await client.delete(f"/api/v1/channels/{dm['id']}/messages/{sent['id']}", headers=w.owner)
    assert_error(r, 403)


async def send_raw(
    client: httpx.AsyncClient, headers: dict[str, str], channel_id: str
) -> httpx.Response:
    return await client.post(
        f"/api/v1/channels/{channel_id}/messages", json={"content": "x"}, headers=headers
    )


async def test_group_dm_and_refusals(client: httpx.AsyncClient) -> None:
    await register(client, "admin0")
    a = await register(client, "ana")
    b = await register(client, "bob")
    c = await register(client, "cid")
    r = await client.post(
        "/api/v1/users/@me/channels", json={"recipients": [b.id, c.id]}, headers=a.headers
    )
    group = r.json()["data"]
    assert group["type"] == "group_dm"
    assert group["owner_id"] == a.id
    assert sorted(u["id"] for u in group["recipients"]) == sorted([b.id, c.id])
    w = await seed_world(client)  # test_user shares no space with ana
    r = await client.post(
        "/api/v1/users/@me/channels", json={"recipient_id": w.owner_id}, headers=a.headers
    )
    assert_error(r, 403, "forbidden")
    r = await client.post(
        "/api/v1/users/@me/channels", json={"recipient_id": "99999999999"}, headers=a.headers
    )
    assert_error(r, 404, "not_found")
    assert_error(await client.post("/api/v1/users/@me/channels", json={}, headers=a.headers), 422)
    many = [str(i) for i in range(1, 12)]
    assert_error(
        await client.post(
            "/api/v1/users/@me/channels", json={"recipients": many}, headers=a.headers
        ),
        400,
    )
