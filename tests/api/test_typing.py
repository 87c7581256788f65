"""Typing indicator: send_messages, not while timed out (D-to), typing.start event."""

from __future__ import annotations

import httpx
import trio

from tests.api.messaging import next_event, seed_world, time_out
from tests.support import ServerHandle, assert_error, register


async def test_typing_publishes_event(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    url = f"/api/v1/channels/{w.general_id}/typing"
    with server.ctx.bus.subscribed() as sub:
        # The client sends a JSON content type with no body (CLIENT.md 2).
        r = await client.post(url, headers={**w.bot, "Content-Type": "application/json"})
        assert r.json() == {"data": None}
        with trio.fail_after(2):
            event = await next_event(sub, "typing.start")
    assert event.data["user_id"] == w.bot_id
    assert event.data["channel_id"] == w.general_id
    assert "T" in event.data["timestamp"]
    assert event.channel_id == int(w.general_id)


async def test_typing_denials(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    await register(client, "admin0")
    outsider = await register(client, "outsider")
    url = f"/api/v1/channels/{w.general_id}/typing"
    assert_error(await client.post(url, headers=outsider.headers), 403, "forbidden")
    assert_error(await client.post(url), 401)
    assert_error(await client.post("/api/v1/channels/99999999999/typing", headers=w.bot), 404)
    await time_out(server, w.space_id, w.bot_id)
    assert_error(await client.post(url, headers=w.bot), 403, "forbidden")
