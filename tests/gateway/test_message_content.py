"""The `message_content` intent under ACCORD_GATEWAY_RESTRICT_BOT_INTENTS (RT-10, GATEWAY.md
6): bots without it get message events with content, embeds and attachments emptied, except
for messages they wrote or that mention them; users and the switch left off are unaffected."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from accord.gateway import protocol
from accord.gateway.fanout import sees_message_content, without_message_content
from tests.api.messaging import multipart, seed_world, upload
from tests.gateway.client import connected
from tests.support import ServerHandle

RESTRICTED = {"ACCORD_GATEWAY_RESTRICT_BOT_INTENTS": "true"}
EMBED = {"title": "secret embed", "description": "more secret"}


async def post(
    client: httpx.AsyncClient, headers: dict[str, str], channel_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    r = await client.post(f"/api/v1/channels/{channel_id}/messages", json=body, headers=headers)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def post_with_file(
    client: httpx.AsyncClient, headers: dict[str, str], channel_id: str
) -> dict[str, Any]:
    body, ctype = multipart(
        {"content": "secret words", "embeds": [EMBED]}, [("notes.txt", b"hello\n", "text/plain")]
    )
    r = await upload(client, headers, channel_id, body, ctype)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    assert data["attachments"]
    assert data["embeds"]
    return data


@pytest.mark.parametrize("server_env", [RESTRICTED])
async def test_bots_without_message_content_get_bodies_emptied(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    channel = w.general_id
    async with (
        connected(server.ws_url, f"Bot {w.bot_token}", ["messages"]) as bot,
        connected(server.ws_url, w.owner["Authorization"], ["messages"]) as owner,
    ):
        sent = await post_with_file(client, w.owner, channel)
        seen = (await bot.recv_event("message.create"))["data"]
        assert seen == sent | {"content": "", "embeds": [], "attachments": []}
        # A user session without message_content is not a bot: nothing is withheld.
        assert (await owner.recv_event("message.create"))["data"] == sent

        # Edits are message bodies too.
        r = await client.patch(
            f"/api/v1/channels/{channel}/messages/{sent['id']}",
            json={"content": "edited secret"},
            headers=w.owner,
        )
        assert r.status_code == 200, r.text
        updated = (await bot.recv_event("message.update"))["data"]
        assert updated["id"] == sent["id"]
        assert (updated["content"], updated["embeds"], updated["attachments"]) == ("", [], [])
        assert (await owner.recv_event("message.update"))["data"]["content"] == "edited secret"

        # A message mentioning the bot, and the bot's own message, arrive whole.
        mention = await post(
            client, w.owner, channel, {"content": f"hey <@{w.bot_id}>", "embeds": [EMBED]}
        )
        assert mention["mentions"] == [w.bot_id]
        assert (await bot.recv_event("message.create"))["data"] == mention
        own = await post(client, w.bot, channel, {"content": "the bot speaks"})
        assert (await bot.recv_event("message.create"))["data"] == own
        assert (await owner.recv_event("message.create"))["data"] == mention
        assert (await owner.recv_event("message.create"))["data"] == own


@pytest.mark.parametrize("server_env", [RESTRICTED])
async def test_the_emptied_copy_is_encoded_once_per_event(
    server: ServerHandle, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = await seed_world(client)
    encoded: list[str] = []
    real = protocol.dispatch_prefix

    def counting(event_type: str, data: Any) -> str:
        encoded.append(event_type)
        return real(event_type, data)

    monkeypatch.setattr("accord.gateway.fanout.dispatch_prefix", counting)
    bot = f"Bot {w.bot_token}"
    async with (
        connected(server.ws_url, bot, ["messages"]) as first,
        connected(server.ws_url, bot, ["messages"]) as second,
        connected(server.ws_url, w.owner["Authorization"], ["messages"]) as owner,
    ):
        encoded.clear()
        await post(client, w.owner, w.general_id, {"content": "secret"})
        for gw in (first, second):
            assert (await gw.recv_event("message.create"))["data"]["content"] == ""
        assert (await owner.recv_event("message.create"))["data"]["content"] == "secret"
        assert encoded.count("message.create") == 2  # the full payload and one emptied copy


async def test_without_the_switch_bots_get_everything(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    async with connected(server.ws_url, f"Bot {w.bot_token}", ["messages"]) as bot:
        sent = await post_with_file(client, w.owner, w.general_id)
        assert (await bot.recv_event("message.create"))["data"] == sent


def test_redaction_keeps_the_shape() -> None:
    message = {"id": "9", "author_id": "1", "mentions": ["2"], "content": "x", "embeds": [{}]}
    assert without_message_content(message) == message | {"content": "", "embeds": []}
    assert message["content"] == "x"  # the shared payload is not modified
    assert "attachments" not in without_message_content(message)
    assert sees_message_content(1, message)  # the author
    assert sees_message_content(2, message)  # mentioned
    assert not sees_message_content(3, message)
    assert not sees_message_content(3, {"author_id": "1", "mentions": None})
