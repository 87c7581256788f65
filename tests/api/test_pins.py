"""Pins end to end: manage_messages, only messages of the channel (G-04), the pinned flag,
ordering, idempotent unpin and channel.pins_update events."""

from __future__ import annotations

import httpx
import trio

from tests.api.messaging import next_event, seed_world, send
from tests.support import ServerHandle, assert_error


async def test_pin_list_unpin(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    a = await send(client, w.bot, w.general_id, "a")
    b = await send(client, w.bot, w.general_id, "b")
    pins = f"/api/v1/channels/{w.general_id}/pins"
    r = await client.put(f"{pins}/{a['id']}", headers=w.bot)
    assert r.json()["error"]["message"] == "missing permission: manage_messages"
    with server.ctx.bus.subscribed() as sub:
        assert (await client.put(f"{pins}/{a['id']}", headers=w.owner)).json() == {"data": None}
        with trio.fail_after(2):
            event = await next_event(sub, "channel.pins_update")
    assert event.data["channel_id"] == w.general_id
    assert event.data["last_pin_timestamp"] is not None
    await client.put(f"{pins}/{b['id']}", headers=w.owner)
    await client.put(f"{pins}/{b['id']}", headers=w.owner)  # idempotent
    listed = (await client.get(pins, headers=w.bot)).json()["data"]
    assert [m["id"] for m in listed] == [b["id"], a["id"]]
    assert all(m["pinned"] for m in listed)
    assert (await client.delete(f"{pins}/{a['id']}", headers=w.owner)).status_code == 200
    assert (await client.delete(f"{pins}/{a['id']}", headers=w.owner)).status_code == 200
    got = await client.get(f"/api/v1/channels/{w.general_id}/messages/{a['id']}", headers=w.bot)
    assert got.json()["data"]["pinned"] is False
    assert [m["id"] for m in (await client.get(pins, headers=w.bot)).json()["data"]] == [b["id"]]


async def test_pin_only_messages_of_the_channel(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    other = await send(client, w.bot, w.testing_id, "elsewhere")
    pins = f"/api/v1/channels/{w.general_id}/pins"
    assert_error(await client.put(f"{pins}/{other['id']}", headers=w.owner), 404, "not_found")
    assert_error(await client.put(f"{pins}/99999999999", headers=w.owner), 404, "not_found")
    # Unpinning through the wrong channel leaves the real pin alone (G-23).
    await client.put(f"/api/v1/channels/{w.testing_id}/pins/{other['id']}", headers=w.owner)
    await client.delete(f"{pins}/{other['id']}", headers=w.owner)
    got = await client.get(f"/api/v1/channels/{w.testing_id}/messages/{other['id']}", headers=w.bot)
    assert got.json()["data"]["pinned"] is True
