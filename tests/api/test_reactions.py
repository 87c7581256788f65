"""Reactions end to end (API.md 3.8, D-react): unicode and custom emojis (percent-encoded),
summaries on messages, listing, removal and clearing, permissions and events."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import trio

from tests.api.messaging import data_uri, next_event, png_bytes, seed_world, send, set_overwrite
from tests.support import ServerHandle, assert_error

THUMBS = "\U0001f44d"


async def test_add_list_and_summaries(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    msg = await send(client, w.owner, w.general_id, "react to me")
    base = f"/api/v1/channels/{w.general_id}/messages/{msg['id']}/reactions"
    with server.ctx.bus.subscribed() as sub:
        r = await client.put(f"{base}/{quote(THUMBS)}/@me", headers=w.bot)
        assert r.json() == {"data": None}
        with trio.fail_after(2):
            event = await next_event(sub, "reaction.add")
    assert event.data == {
        "channel_id": w.general_id,
        "message_id": msg["id"],
        "space_id": w.space_id,
        "user_id": w.bot_id,
        "emoji": {"id": None, "name": THUMBS},
    }
    # Idempotent, and with a JSON content type but no body (CLIENT.md 2).
    r = await client.put(
        f"{base}/{quote(THUMBS)}/@me", headers={**w.bot, "Content-Type": "application/json"}
    )
    assert r.status_code == 200
    await client.put(f"{base}/{quote(THUMBS)}/@me", headers=w.owner)
    await client.put(f"{base}/{quote('🎉')}/@me", headers=w.owner)
    got = await client.get(f"/api/v1/channels/{w.general_id}/messages/{msg['id']}", headers=w.bot)
    reactions = got.json()["data"]["reactions"]
    assert reactions == [
        {"emoji": {"id": None, "name": THUMBS}, "count": 2, "includes_me": True, "me": True},
        {"emoji": {"id": None, "name": "🎉"}, "count": 1, "includes_me": False, "me": False},
    ]
    users = (await client.get(f"{base}/{quote(THUMBS)}", headers=w.bot)).json()["data"]
    assert [u["id"] for u in users] == sorted([w.owner_id, w.bot_id], key=int)
    first = await client.get(f"{base}/{quote(THUMBS)}", params={"limit": 1}, headers=w.bot)
    assert len(first.json()["data"]) == 1
    after = await client.get(
        f"{base}/{quote(THUMBS)}", params={"after": first.json()["data"][0]["id"]}, headers=w.bot
    )
    assert len(after.json()["data"]) == 1


async def test_remove_own_and_others(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    msg = await send(client, w.owner, w.general_id, "x")
    base = f"/api/v1/channels/{w.general_id}/messages/{msg['id']}/reactions/{quote(THUMBS)}"
    await client.put(f"{base}/@me", headers=w.bot)
    await client.put(f"{base}/@me", headers=w.owner)
    r = await client.delete(f"{base}/{w.owner_id}", headers=w.bot)
    assert r.json()["error"]["message"] == "missing permission: manage_messages"
    with server.ctx.bus.subscribed() as sub:
        assert (await client.delete(f"{base}/@me", headers=w.bot)).status_code == 200
        with trio.fail_after(2):
            event = await next_event(sub, "reaction.remove")
    assert event.data["user_id"] == w.bot_id
    assert (await client.delete(f"{base}/@me", headers=w.bot)).status_code == 200  # idempotent
    assert (await client.delete(f"{base}/{w.bot_id}", headers=w.owner)).status_code == 200
    assert (await client.delete(f"{base}/{w.owner_id}", headers=w.owner)).status_code == 200
    got = await client.get(f"/api/v1/channels/{w.general_id}/messages/{msg['id']}", headers=w.bot)
    assert got.json()["data"]["reactions"] == []


async def test_clear_emoji_and_all(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    msg = await send(client, w.owner, w.general_id, "x")
    base = f"/api/v1/channels/{w.general_id}/messages/{msg['id']}/reactions"
    for emoji in (THUMBS, "🎉"):
        await client.put(f"{base}/{quote(emoji)}/@me", headers=w.bot)
    assert_error(await client.delete(base, headers=w.bot), 403)
    with server.ctx.bus.subscribed() as sub:
        assert (await client.delete(f"{base}/{quote(THUMBS)}", headers=w.owner)).status_code == 200
        with trio.fail_after(2):
            event = await next_event(sub, "reaction.clear_emoji")
        assert event.data["emoji"] == {"id": None, "name": THUMBS}
        assert (await client.delete(base, headers=w.owner)).status_code == 200
        with trio.fail_after(2):
            cleared = await next_event(sub, "reaction.clear")
    assert cleared.data["message_id"] == msg["id"]
    assert (await client.get(f"{base}/{quote('🎉')}", headers=w.bot)).json()["data"] == []


async def test_custom_emoji_reactions(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    r = await client.post(
        f"/api/v1/spaces/{w.space_id}/emojis",
        json={"name": "party", "image": data_uri(png_bytes())},
        headers=w.owner,
    )
    emoji_id = r.json()["data"]["id"]
    msg = await send(client, w.owner, w.general_id, "x")
    base = f"/api/v1/channels/{w.general_id}/messages/{msg['id']}/reactions"
    key = quote(f"party:{emoji_id}")
    assert (await client.put(f"{base}/{key}/@me", headers=w.bot)).status_code == 200
    # The name part is informational: the id decides (renames keep reactions together).
    assert (
        await client.put(f"{base}/{quote(f'old:{emoji_id}')}/@me", headers=w.owner)
    ).status_code == 200
    got = await client.get(f"/api/v1/channels/{w.general_id}/messages/{msg['id']}", headers=w.bot)
    assert got.json()["data"]["reactions"] == [
        {"emoji": {"id": emoji_id, "name": "party"}, "count": 2, "includes_me": True, "me": True}
    ]
    assert_error(await client.put(f"{base}/{quote('ghost:99999999999')}/@me", headers=w.bot), 404)


async def test_bad_emoji_and_bad_targets(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    msg = await send(client, w.owner, w.general_id, "x")
    other = await send(client, w.owner, w.testing_id, "other channel")
    base = f"/api/v1/channels/{w.general_id}/messages"
    for bad in ("hello", "a b", "👍 👍", "x" * 40):
        r = await client.put(f"{base}/{msg['id']}/reactions/{quote(bad)}/@me", headers=w.bot)
        assert_error(r, 400, "invalid_request")
    r = await client.put(f"{base}/{other['id']}/reactions/{quote(THUMBS)}/@me", headers=w.bot)
    assert_error(r, 404, "not_found")
    await client.delete(f"{base}/{msg['id']}", headers=w.owner)
    r = await client.put(f"{base}/{msg['id']}/reactions/{quote(THUMBS)}/@me", headers=w.bot)
    assert_error(r, 404, "not_found")


async def test_add_reactions_permission(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    msg = await send(client, w.owner, w.general_id, "x")
    await set_overwrite(server, w.general_id, w.space_id, deny=("add_reactions",))
    r = await client.put(
        f"/api/v1/channels/{w.general_id}/messages/{msg['id']}/reactions/{quote(THUMBS)}/@me",
        headers=w.bot,
    )
    assert r.json()["error"]["message"] == "missing permission: add_reactions"
