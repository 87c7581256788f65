"""Events with extra delivery rules: `audit_log.create` only reaches holders of
`view_audit_log`; `soundboard.*` reach sessions with the `soundboard` intent or, failing that,
`voice_states` (D12c)."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from tests.audio_samples import data_uri, wav_bytes
from tests.gateway.client import connected
from tests.support import ServerHandle, register


async def test_audit_and_soundboard_events_follow_their_rules(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    seed = (await client.post("/test/seed")).json()["data"]
    space_id = seed["space"]["id"]
    owner = f"Bearer {seed['user']['token']}"
    bot = f"Bot {seed['bot']['token']}"
    await register(client, "first-user-is-admin")
    async with (
        connected(server.ws_url, owner, ["moderation", "voice_states"]) as owner_ws,
        connected(server.ws_url, bot, ["moderation", "voice_states"]) as member_ws,
        connected(server.ws_url, bot, ["soundboard"]) as soundboard_ws,
        connected(server.ws_url, bot, ["messages"]) as neither_ws,
    ):
        r = await client.post(
            f"/api/v1/spaces/{space_id}/soundboard",
            headers={"Authorization": owner},
            json={"name": "horn", "audio": data_uri(wav_bytes(), "audio/wav")},
        )
        assert r.status_code == 200, r.text

        async def types(ws: Any) -> list[str]:
            seen = []
            with trio.move_on_after(1.0):
                while True:
                    frame = await ws.recv(timeout_s=2)
                    if frame.get("op") == 0:
                        seen.append(frame["type"])
            return seen

        owner_types = await types(owner_ws)
        assert "audit_log.create" in owner_types  # the owner holds view_audit_log
        assert "soundboard.create" in owner_types  # via voice_states
        member_types = await types(member_ws)
        assert "audit_log.create" not in member_types  # a plain member does not
        assert "soundboard.create" in member_types
        assert "soundboard.create" in await types(soundboard_ws)
        assert await types(neither_ws) == []
