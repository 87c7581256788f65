"""Soundboard routes (CLIENT.md 4.12): CRUD, permissions, audio validation by content, caps,
events and CDN serving."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
import trio

from accord.events.types import Event
from tests.audio_samples import data_uri, mp3_bytes, ogg_opus_bytes, wav_bytes
from tests.support import ServerHandle, assert_error, register


async def _seed(client: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str], str]:
    data = (await client.post("/test/seed")).json()["data"]
    owner = {"Authorization": f"Bearer {data['user']['token']}"}
    bot = {"Authorization": f"Bot {data['bot']['token']}"}
    return owner, bot, data["space"]["id"]


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], space_id: str, **body: Any
) -> httpx.Response:
    body.setdefault("name", "airhorn")
    body.setdefault("audio", data_uri(wav_bytes(), "audio/wav"))
    return await client.post(f"/api/v1/spaces/{space_id}/soundboard", headers=headers, json=body)


async def test_create_list_get_update_delete(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    owner, bot, space = await _seed(client)
    with server.ctx.bus.subscribed() as sub:
        r = await _create(client, owner, space, volume=0.5)
        assert r.status_code == 200, r.text
        sound = r.json()["data"]
        with trio.fail_after(2):
            event = await sub.receive.receive()
    assert isinstance(event, Event)
    assert event.type == "soundboard.create"
    assert event.data["id"] == sound["id"]
    assert event.space_id == int(space)
    assert sound["name"] == "airhorn"
    assert sound["volume"] == 0.5
    assert sound["audio_url"] == f"/sounds/{sound['id']}.wav"
    assert isinstance(sound["created_at"], str)
    assert isinstance(sound["updated_at"], str)
    base = f"/api/v1/spaces/{space}/soundboard"
    # Members (the bot) can list and read.
    listed = (await client.get(base, headers=bot)).json()["data"]
    assert [s["id"] for s in listed] == [sound["id"]]
    got = (await client.get(f"{base}/{sound['id']}", headers=bot)).json()["data"]
    assert got == sound
    r = await client.patch(f"{base}/{sound['id']}", headers=owner, json={"name": "horn2"})
    assert r.json()["data"]["name"] == "horn2"
    assert r.json()["data"]["volume"] == 0.5
    assert (await client.delete(f"{base}/{sound['id']}", headers=owner)).status_code == 200
    assert_error(await client.get(f"{base}/{sound['id']}", headers=owner), 404)
    assert_error(await client.delete(f"{base}/{sound['id']}", headers=owner), 404)


async def test_opus_and_mp3_are_accepted(client: httpx.AsyncClient) -> None:
    owner, _, space = await _seed(client)
    r = await _create(
        client, owner, space, name="opus", audio=data_uri(ogg_opus_bytes(), "audio/ogg")
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["audio_url"].endswith(".ogg")
    # Bare base64 works too.
    r = await _create(
        client, owner, space, name="mp3", audio=base64.b64encode(mp3_bytes()).decode()
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["audio_url"].endswith(".mp3")


async def test_permissions(client: httpx.AsyncClient) -> None:
    owner, bot, space = await _seed(client)
    r = await _create(client, bot, space)
    assert_error(r, 403, "forbidden")
    sound = (await _create(client, owner, space)).json()["data"]
    base = f"/api/v1/spaces/{space}/soundboard/{sound['id']}"
    assert_error(await client.patch(base, headers=bot, json={"name": "x"}), 403)
    assert_error(await client.delete(base, headers=bot), 403)
    await register(client, "first-user-is-admin")  # D8: keep the stranger an ordinary user
    stranger = await client.post(
        "/api/v1/auth/register", json={"username": "stranger", "password": "password1"}
    )
    s_headers = {"Authorization": f"Bearer {stranger.json()['data']['token']}"}
    assert_error(await client.get(f"/api/v1/spaces/{space}/soundboard", headers=s_headers), 403)
    assert_error(await client.get(f"/api/v1/spaces/{space}/soundboard"), 401)
    assert_error(await client.get("/api/v1/spaces/12345/soundboard", headers=owner), 404)
    assert_error(await client.get("/api/v1/spaces/nope/soundboard", headers=owner), 404)


async def test_bad_audio_is_refused_and_nothing_stored(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    owner, _, space = await _seed(client)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    cases = [
        data_uri(png, "audio/mpeg"),  # a picture named as audio
        "data:audio/wav;base64,@@@not-base64@@@",
        "data:audio/wav,plain-text-not-base64",
        data_uri(b"RIFF\x00\x00\x00\x00WAVEjunk", "audio/wav"),  # right magic, broken file
        data_uri(wav_bytes(seconds=11), "audio/wav"),  # too long
        data_uri(b"\x00" * (1024 * 1024 + 1), "audio/wav"),  # over 1 MiB
        "",
    ]
    for audio in cases:
        error = assert_error(await _create(client, owner, space, audio=audio), 400)
        assert error["details"] == {"field": "audio"}
    for body in (
        {"name": "", "audio": data_uri(wav_bytes(), "audio/wav")},
        {"name": "x" * 33, "audio": data_uri(wav_bytes(), "audio/wav")},
    ):
        assert_error(await _create(client, owner, space, **body), 400)
    assert_error(await _create(client, owner, space, volume=2), 400)
    assert_error(await _create(client, owner, space, volume="loud"), 422)
    r = await client.post(f"/api/v1/spaces/{space}/soundboard", headers=owner, json={"name": "x"})
    assert_error(r, 422)
    listed = (await client.get(f"/api/v1/spaces/{space}/soundboard", headers=owner)).json()
    assert listed["data"] == []
    sounds_dir = trio.Path(server.ctx.settings.storage_dir) / "sounds"
    assert not await sounds_dir.exists() or not await sounds_dir.iterdir()


class TestCap:
    @pytest.fixture
    def server_env(self) -> dict[str, str]:
        return {"ACCORD_RATE_LIMIT": "1000/s"}

    async def test_duplicate_names_and_cap(self, client: httpx.AsyncClient) -> None:
        await _duplicate_names_and_cap(client)


async def _duplicate_names_and_cap(client: httpx.AsyncClient) -> None:
    owner, _, space = await _seed(client)
    assert (await _create(client, owner, space, name="dup")).status_code == 200
    assert_error(await _create(client, owner, space, name="dup"), 409)
    clip = data_uri(wav_bytes(seconds=0.05), "audio/wav")
    for i in range(99):
        r = await _create(client, owner, space, name=f"s{i}", audio=clip)
        assert r.status_code == 200, r.text
    error = assert_error(await _create(client, owner, space, name="one-too-many", audio=clip), 400)
    assert "100" in error["message"]


async def test_cdn_serves_audio_with_ranges(client: httpx.AsyncClient) -> None:
    owner, _, space = await _seed(client)
    wav = wav_bytes()
    sound = (await _create(client, owner, space, audio=data_uri(wav, "audio/wav"))).json()["data"]
    url = f"/cdn{sound['audio_url']}"
    r = await client.get(url)
    assert r.status_code == 200
    assert r.content == wav
    assert r.headers["content-type"] == "audio/wav"
    assert "max-age" in r.headers["cache-control"]
    r = await client.get(url, headers={"Range": "bytes=0-9"})
    assert r.status_code == 206
    assert r.content == wav[:10]
    assert_error(await client.get(f"/cdn/sounds/{sound['id']}.mp3"), 404)
    assert_error(await client.get("/cdn/sounds/123.wav"), 404)
    assert_error(await client.get("/cdn/sounds/..%2F..%2Fetc%2Fpasswd"), 404)


async def test_play_requires_voice(client: httpx.AsyncClient) -> None:
    owner, bot, space = await _seed(client)
    sound = (await _create(client, owner, space)).json()["data"]
    url = f"/api/v1/spaces/{space}/soundboard/{sound['id']}/play"
    error = assert_error(await client.post(url, headers=bot), 403)
    assert "voice channel" in error["message"]
