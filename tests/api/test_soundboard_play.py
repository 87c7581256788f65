"""Playing a soundboard sound (CLIENT.md 4.12): only while in a voice channel of that space, as
the voice service knows it (REST voice join), with `use_soundboard`; `soundboard.play` names
the sound, the player and the voice channel."""

from __future__ import annotations

from typing import Any

import httpx

from tests.audio_samples import data_uri, wav_bytes
from tests.spaces_support import create_space, make_world, next_event
from tests.support import Account, ServerHandle, assert_error

JOIN = {"self_mute": False, "self_deaf": False}


async def _voice_channel(client: httpx.AsyncClient, who: Account, space_id: str) -> str:
    r = await client.post(
        f"/api/v1/spaces/{space_id}/channels",
        json={"name": "Lounge", "type": "voice"},
        headers=who.headers,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["id"])


async def _join(client: httpx.AsyncClient, who: Account, channel_id: str) -> None:
    r = await client.post(
        f"/api/v1/channels/{channel_id}/voice/join", json=JOIN, headers=who.headers
    )
    assert r.status_code == 200, r.text


async def _sound(client: httpx.AsyncClient, who: Account, space_id: str) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/spaces/{space_id}/soundboard",
        json={"name": "horn", "audio": data_uri(wav_bytes(seconds=0.1), "audio/wav")},
        headers=who.headers,
    )
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def test_play_in_voice_publishes_soundboard_play(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    channel_id = await _voice_channel(client, w.owner, w.space_id)
    sound = await _sound(client, w.owner, w.space_id)
    url = f"/api/v1/spaces/{w.space_id}/soundboard/{sound['id']}/play"
    # Not in voice: refused.
    error = assert_error(await client.post(url, headers=w.member.headers), 403, "forbidden")
    assert "voice channel" in error["message"]
    await _join(client, w.member, channel_id)
    with server.ctx.bus.subscribed() as sub:
        r = await client.post(url, headers=w.member.headers)
        assert r.status_code == 200, r.text
        played = await next_event(sub, "soundboard.play")
    assert played.space_id == int(w.space_id)
    assert played.data["sound_id"] == sound["id"]
    assert played.data["user_id"] == w.member.id
    assert played.data["channel_id"] == channel_id
    assert played.data["space_id"] == w.space_id
    assert r.json()["data"]["channel_id"] == channel_id
    # After leaving voice, refused again.
    r = await client.delete(f"/api/v1/channels/{channel_id}/voice/leave", headers=w.member.headers)
    assert r.status_code == 200
    assert_error(await client.post(url, headers=w.member.headers), 403)


async def test_play_while_in_voice_elsewhere_is_refused(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    sound = await _sound(client, w.owner, w.space_id)
    other_space = await create_space(client, w.member, "Elsewhere")
    elsewhere = await _voice_channel(client, w.member, other_space["id"])
    await _join(client, w.member, elsewhere)
    url = f"/api/v1/spaces/{w.space_id}/soundboard/{sound['id']}/play"
    error = assert_error(await client.post(url, headers=w.member.headers), 403, "forbidden")
    assert "voice channel" in error["message"]


async def test_play_needs_use_soundboard_and_a_real_sound(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    channel_id = await _voice_channel(client, w.owner, w.space_id)
    sound = await _sound(client, w.owner, w.space_id)
    await _join(client, w.member, channel_id)
    base = f"/api/v1/spaces/{w.space_id}"
    r = await client.get(f"{base}/roles", headers=w.owner.headers)
    everyone = next(role for role in r.json()["data"] if role["id"] == w.space_id)
    kept = [p for p in everyone["permissions"] if p != "use_soundboard"]
    r = await client.patch(
        f"{base}/roles/{w.space_id}", json={"permissions": kept}, headers=w.owner.headers
    )
    assert r.status_code == 200, r.text
    r = await client.post(f"{base}/soundboard/{sound['id']}/play", headers=w.member.headers)
    assert_error(r, 403, "forbidden")
    assert_error(await client.post(f"{base}/soundboard/123/play", headers=w.owner.headers), 404)
