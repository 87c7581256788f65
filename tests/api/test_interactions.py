"""Interactions (API.md 3.17, G-09, G-34, D12d): invoking a stored command publishes
interaction.create to the application's bots; the token-checked callback answers with a
message; webhook follow-ups and @original edits and deletes."""

from __future__ import annotations

import httpx
import trio

from tests.api.messaging import World, next_event, seed_world
from tests.support import ServerHandle, assert_error


async def _setup(client: httpx.AsyncClient) -> World:
    w = await seed_world(client)
    r = await client.post(
        f"/api/v1/applications/{w.app_id}/commands", json={"name": "ping"}, headers=w.bot
    )
    assert r.status_code == 200, r.text
    return w


async def test_invoke_and_answer(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await _setup(client)
    body = {
        "type": "command",
        "application_id": w.app_id,
        "channel_id": w.general_id,
        "data": {"name": "ping", "options": [{"name": "x", "value": 1}]},
    }
    with server.ctx.bus.subscribed() as sub:
        r = await client.post("/api/v1/interactions", json=body, headers=w.owner)
        assert r.status_code == 200, r.text
        with trio.fail_after(2):
            event = await next_event(sub, "interaction.create")
    interaction = r.json()["data"]
    assert "token" not in interaction
    assert event.application_id == int(w.app_id)
    assert event.space_id is None
    token = event.data["token"]
    assert event.data["data"]["name"] == "ping"
    assert event.data["user"]["id"] == w.owner_id
    url = f"/api/v1/interactions/{interaction['id']}"
    assert_error(
        await client.post(f"{url}/wrong/callback", json={"type": 4, "data": {"content": "x"}}), 404
    )
    assert_error(await client.post(f"{url}/{token}/callback", json={"type": 99}), 400)
    assert_error(
        await client.post(f"{url}/{token}/callback", json={"type": 4, "data": {"content": ""}}), 400
    )
    with server.ctx.bus.subscribed() as sub:
        r = await client.post(
            f"{url}/{token}/callback", json={"type": 4, "data": {"content": "pong"}}
        )
        assert r.json() == {"data": None}
        with trio.fail_after(2):
            created = await next_event(sub, "message.create")
    assert created.data["content"] == "pong"
    assert created.data["author_id"] == w.bot_id
    again = await client.post(f"{url}/{token}/callback", json={"type": 4, "data": {"content": "2"}})
    assert_error(again, 400)
    hook = f"/api/v1/webhooks/{w.app_id}/{token}"
    follow = await client.post(hook, json={"content": "follow-up"})
    assert follow.json()["data"]["content"] == "follow-up"
    edited = await client.patch(f"{hook}/messages/@original", json={"content": "pong!"})
    assert edited.json()["data"]["content"] == "pong!"
    assert edited.json()["data"]["id"] == created.data["id"]
    assert (await client.delete(f"{hook}/messages/@original")).status_code == 200
    r = await client.get(
        f"/api/v1/channels/{w.general_id}/messages/{created.data['id']}", headers=w.owner
    )
    assert_error(r, 404)
    assert_error(
        await client.post(f"/api/v1/webhooks/{w.app_id}/wrong", json={"content": "x"}), 404
    )


async def test_deferred_answer_then_original(
    client: httpx.AsyncClient, server: ServerHandle
) -> None:
    w = await _setup(client)
    body = {"application_id": w.app_id, "channel_id": w.general_id, "data": {"name": "ping"}}
    with server.ctx.bus.subscribed() as sub:
        r = await client.post("/api/v1/interactions", json=body, headers=w.owner)
        with trio.fail_after(2):
            event = await next_event(sub, "interaction.create")
    token = event.data["token"]
    url = f"/api/v1/interactions/{r.json()['data']['id']}/{token}/callback"
    assert (await client.post(url, json={"type": "deferred_channel_message"})).status_code == 200
    r = await client.patch(
        f"/api/v1/webhooks/{w.app_id}/{token}/messages/@original", json={"content": "done"}
    )
    assert r.json()["data"]["content"] == "done"


async def test_invoke_refusals(client: httpx.AsyncClient) -> None:
    w = await _setup(client)
    url = "/api/v1/interactions"
    base = {"application_id": w.app_id, "channel_id": w.general_id}
    assert_error(
        await client.post(url, json={**base, "data": {"name": "nope"}}, headers=w.owner), 404
    )
    assert_error(
        await client.post(url, json={**base, "data": {"name": "ping"}}, headers=w.bot), 403
    )
    assert_error(
        await client.post(
            url,
            json={**base, "application_id": "99999999999", "data": {"name": "ping"}},
            headers=w.owner,
        ),
        404,
    )
    assert_error(
        await client.post(
            url,
            json={**base, "channel_id": "99999999999", "data": {"name": "ping"}},
            headers=w.owner,
        ),
        404,
    )
    assert_error(
        await client.post(
            url, json={**base, "type": "modal", "data": {"name": "ping"}}, headers=w.owner
        ),
        400,
    )
    assert_error(await client.post(url, json=base, headers=w.owner), 422)
    assert_error(await client.post(url, json={**base, "data": {"name": "ping"}}), 401)
