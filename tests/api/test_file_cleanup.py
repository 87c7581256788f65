"""Stored files go once no row names them (D17, G-14), and a ban's message cleanup behaves like
any other message delete (G-23).

Every deleting path (channel, space, ban purge, emoji, sound, replaced or cleared avatar,
banner, space icon and application icon, account deletion) removes the files it dropped after
its transaction commits; files shared with surviving rows (content addressing makes equal
bytes one file, across rows and tables) stay, and so does every unrelated file. A rolled-back
delete keeps its files; a file that cannot be removed is logged, not turned into an error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from accord.storage.files import FileStore
from tests.api.messaging import data_uri, gif_animated_bytes, multipart, png_bytes, upload
from tests.audio_samples import data_uri as audio_uri
from tests.audio_samples import wav_bytes
from tests.spaces_support import World, create_space, drain, events, make_world
from tests.support import Account, ServerHandle, assert_error, register

RED = data_uri(png_bytes(colour=(200, 10, 10)))
BLUE = data_uri(png_bytes(colour=(10, 10, 200)))
GREEN = data_uri(png_bytes(colour=(10, 200, 10)))
ANIMATED = data_uri(gif_animated_bytes(), "image/gif")


def stored(server: ServerHandle) -> set[str]:
    """Every stored file, as `kind/xx/key` (the upload staging folder left out)."""
    root = Path(server.ctx.settings.storage_dir)
    if not root.exists():
        return set()
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != "tmp"
    }


def kinds(paths: set[str]) -> list[str]:
    return sorted(p.split("/")[0] for p in paths)


async def send_file(
    client: httpx.AsyncClient,
    who: Account,
    channel_id: str,
    data: bytes,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body, ctype = multipart(payload or {"content": "file"}, [("f.bin", data, "text/plain")])
    r = await upload(client, who.headers, channel_id, body, ctype)
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


async def send(
    client: httpx.AsyncClient, who: Account, channel_id: str, **body: Any
) -> dict[str, Any]:
    body.setdefault("content", "hi")
    r = await client.post(f"/api/v1/channels/{channel_id}/messages", json=body, headers=who.headers)
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


async def new_channel(client: httpx.AsyncClient, w: World, name: str) -> str:
    r = await client.post(
        f"/api/v1/spaces/{w.space_id}/channels", json={"name": name}, headers=w.owner.headers
    )
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["id"])


async def patch(client: httpx.AsyncClient, who: Account, path: str, **body: Any) -> Any:
    r = await client.patch(f"/api/v1{path}", json=body, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def last_message_id(client: httpx.AsyncClient, who: Account, channel_id: str) -> Any:
    r = await client.get(f"/api/v1/channels/{channel_id}", headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]["last_message_id"]


# -- channels and spaces -------------------------------------------------------------------


async def test_channel_delete_removes_its_files(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    scratch = await new_channel(client, w, "scratch")
    await send_file(client, w.owner, w.general["id"], b"shared by both channels")
    kept = stored(server)
    parent = await send_file(client, w.owner, scratch, b"scratch only")
    await send_file(client, w.member, scratch, b"shared by both channels")
    await send_file(
        client, w.member, scratch, b"a thread reply's file", {"thread_id": parent["id"]}
    )
    assert len(stored(server) - kept) == 2
    r = await client.delete(f"/api/v1/channels/{scratch}", headers=w.owner.headers)
    assert r.status_code == 200, r.text
    assert stored(server) == kept


async def test_failed_channel_delete_keeps_its_files(
    server: ServerHandle, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files go only after the commit: a delete that rolls back leaves channel and file."""
    w = await make_world(client)
    scratch = await new_channel(client, w, "scratch")
    message = await send_file(client, w.owner, scratch, b"survives the rollback")
    before = stored(server)

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("audit write failed")

    monkeypatch.setattr("accord.services.channels._audit_channel", fail)
    r = await client.delete(f"/api/v1/channels/{scratch}", headers=w.owner.headers)
    assert_error(r, 500)
    assert stored(server) == before
    r = await client.get(
        f"/api/v1/channels/{scratch}/messages/{message['id']}", headers=w.owner.headers
    )
    assert r.status_code == 200, r.text


async def test_space_delete_removes_everything_under_it(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    # Outside the doomed space: an upload and the owner's banner, both shared with it below.
    await send_file(client, w.owner, w.general["id"], b"in two spaces")
    user = await patch(client, w.owner, "/users/@me", banner=GREEN)
    kept = stored(server)
    doomed = await create_space(client, w.owner, "Doomed")
    sid = str(doomed["id"])
    space = await patch(client, w.owner, f"/spaces/{sid}", icon=RED, banner=GREEN)
    assert space["banner"] == user["banner"]  # one file for the user's and the space's banner
    for name, image in (("still", BLUE), ("moving", ANIMATED)):
        r = await client.post(
            f"/api/v1/spaces/{sid}/emojis",
            json={"name": name, "image": image},
            headers=w.owner.headers,
        )
        assert r.status_code == 200, r.text
    r = await client.post(
        f"/api/v1/spaces/{sid}/soundboard",
        json={"name": "horn", "audio": audio_uri(wav_bytes(), "audio/wav")},
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    r = await client.get(f"/api/v1/spaces/{sid}/channels", headers=w.owner.headers)
    channel = r.json()["data"][0]["id"]
    await send_file(client, w.owner, channel, b"doomed upload")
    await send_file(client, w.owner, channel, b"in two spaces")
    added = stored(server) - kept
    assert kinds(added) == ["attachments", "emojis", "emojis", "emojis_gif", "icons", "sounds"]
    r = await client.delete(f"/api/v1/spaces/{sid}", headers=w.owner.headers)
    assert r.status_code == 200, r.text
    assert stored(server) == kept


# -- bans (G-14, G-23) -------------------------------------------------------------------------


async def test_ban_purge_removes_files_refreshes_last_message_and_lists_replies(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    general = w.general["id"]
    side = await new_channel(client, w, "side")
    survivor = await send_file(client, w.owner, general, b"the owner's file")
    kept = stored(server)
    parent = await send_file(client, w.member, general, b"the member's file")
    # Someone else's thread reply goes with its parent (cascade) and must be announced too.
    reply = await send_file(
        client, w.owner, general, b"a reply's file", {"thread_id": parent["id"]}
    )
    latest = await send(client, w.member, general, content="newest")
    only = await send(client, w.member, side, content="alone")
    assert await last_message_id(client, w.owner, general) == latest["id"]
    sub = server.ctx.bus.subscribe()
    r = await client.put(
        f"/api/v1/spaces/{w.space_id}/bans/{w.member.id}",
        json={"delete_message_seconds": 3600},
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    bulk = {e.data["channel_id"]: e.data["ids"] for e in events(drain(sub), "message.delete_bulk")}
    gone = sorted((parent["id"], reply["id"], latest["id"]), key=int)
    assert bulk == {general: gone, side: [only["id"]]}
    # last_message_id never dangles: the newest surviving top-level message, or null.
    assert await last_message_id(client, w.owner, general) == survivor["id"]
    assert await last_message_id(client, w.owner, side) is None
    assert stored(server) == kept
    for message_id in gone:
        r = await client.get(
            f"/api/v1/channels/{general}/messages/{message_id}", headers=w.owner.headers
        )
        assert_error(r, 404)


async def test_bulk_delete_lists_thread_replies(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    general = w.general["id"]
    parent = await send(client, w.owner, general)
    reply = await send_file(client, w.member, general, b"reply file", {"thread_id": parent["id"]})
    sub = server.ctx.bus.subscribe()
    r = await client.post(
        f"/api/v1/channels/{general}/messages/bulk-delete",
        json={"messages": [parent["id"]]},
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    [bulk] = events(drain(sub), "message.delete_bulk")
    assert bulk.data["ids"] == [parent["id"], reply["id"]]
    assert stored(server) == set()


# -- emojis and sounds -------------------------------------------------------------------------


async def test_emoji_delete_removes_its_image_unless_shared(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    base = f"/api/v1/spaces/{w.space_id}/emojis"
    ids = []
    for name, image in (("one", RED), ("two", RED), ("moving", ANIMATED), ("other", BLUE)):
        r = await client.post(base, json={"name": name, "image": image}, headers=w.owner.headers)
        assert r.status_code == 200, r.text
        ids.append(r.json()["data"]["id"])
    everything = stored(server)
    assert kinds(everything) == ["emojis", "emojis", "emojis", "emojis_gif"]
    assert (await client.delete(f"{base}/{ids[0]}", headers=w.owner.headers)).status_code == 200
    assert stored(server) == everything  # "two" still uses the red image
    assert (await client.delete(f"{base}/{ids[1]}", headers=w.owner.headers)).status_code == 200
    assert (await client.delete(f"{base}/{ids[2]}", headers=w.owner.headers)).status_code == 200
    left = stored(server)
    assert kinds(left) == ["emojis"]
    assert (await client.get(f"/cdn/emojis/{ids[3]}.png")).status_code == 200


async def test_sound_delete_removes_its_audio_unless_shared(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    base = f"/api/v1/spaces/{w.space_id}/soundboard"
    ids = []
    for name, audio in (("a", wav_bytes()), ("b", wav_bytes()), ("c", wav_bytes(seconds=0.25))):
        r = await client.post(
            base,
            json={"name": name, "audio": audio_uri(audio, "audio/wav")},
            headers=w.owner.headers,
        )
        assert r.status_code == 200, r.text
        ids.append(r.json()["data"]["id"])
    everything = stored(server)
    assert kinds(everything) == ["sounds", "sounds"]
    assert (await client.delete(f"{base}/{ids[0]}", headers=w.owner.headers)).status_code == 200
    assert stored(server) == everything
    assert (await client.delete(f"{base}/{ids[1]}", headers=w.owner.headers)).status_code == 200
    assert len(stored(server)) == 1
    assert (await client.get(f"/cdn/sounds/{ids[2]}.wav")).status_code == 200


async def test_refused_sound_leaves_no_file(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    """The audio is written inside the transaction: a duplicate name stores nothing."""
    w = await make_world(client)
    base = f"/api/v1/spaces/{w.space_id}/soundboard"
    body = {"name": "horn", "audio": audio_uri(wav_bytes(), "audio/wav")}
    assert (await client.post(base, json=body, headers=w.owner.headers)).status_code == 200
    before = stored(server)
    body["audio"] = audio_uri(wav_bytes(seconds=0.3), "audio/wav")
    assert_error(await client.post(base, json=body, headers=w.owner.headers), 409)
    assert stored(server) == before


# -- replaced and cleared images ---------------------------------------------------------------


async def test_replaced_and_cleared_avatars_are_removed_unless_shared(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client)
    bob = await register(client)
    first = await patch(client, ana, "/users/@me", avatar=RED)
    assert (await patch(client, bob, "/users/@me", avatar=RED))["avatar"] == first["avatar"]
    assert kinds(stored(server)) == ["avatars"]
    await patch(client, ana, "/users/@me", avatar=ANIMATED)
    assert kinds(stored(server)) == ["avatars", "avatars", "avatars_gif"]  # bob keeps red
    await patch(client, bob, "/users/@me", avatar=None)
    assert kinds(stored(server)) == ["avatars", "avatars_gif"]
    animated = stored(server)
    await patch(client, ana, "/users/@me", avatar=BLUE, banner=GREEN)
    now = stored(server)
    assert not now & animated
    assert kinds(now) == ["avatars", "banners"]
    await patch(client, ana, "/users/@me", avatar=None, banner=None)
    assert stored(server) == set()


async def test_account_deletion_removes_avatar_and_banner(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client)
    await patch(client, ana, "/users/@me", avatar=RED, banner=BLUE)
    assert kinds(stored(server)) == ["avatars", "banners"]
    r = await client.request(
        "DELETE", "/api/v1/users/@me", json={"password": "correct horse"}, headers=ana.headers
    )
    assert r.status_code == 200, r.text
    assert stored(server) == set()


async def test_space_icon_and_banner_replaced_and_cleared(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    path = f"/spaces/{w.space_id}"
    await patch(client, w.owner, path, icon=RED, banner=BLUE)
    first = stored(server)
    assert kinds(first) == ["banners", "icons"]
    await patch(client, w.owner, path, icon=GREEN)
    now = stored(server)
    assert kinds(now) == ["banners", "icons"]
    assert len(now & first) == 1  # the banner
    await patch(client, w.owner, path, icon=None, banner=None)
    assert stored(server) == set()


async def test_app_icon_replaced_and_cleared(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client)
    r = await client.post("/api/v1/applications", json={"name": "Helper"}, headers=ana.headers)
    assert r.status_code == 200, r.text
    app_id = r.json()["data"]["application"]["id"]
    await patch(client, ana, f"/applications/{app_id}", icon=RED)
    first = stored(server)
    assert kinds(first) == ["app_icons"]
    await patch(client, ana, f"/applications/{app_id}", icon=BLUE)
    now = stored(server)
    assert kinds(now) == ["app_icons"]
    assert now != first
    await patch(client, ana, f"/applications/{app_id}", icon=None)
    assert stored(server) == set()


# -- failures ------------------------------------------------------------------------------


async def test_unlink_failure_is_logged_not_raised(
    server: ServerHandle,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = await make_world(client)
    message = await send_file(client, w.owner, w.general["id"], b"stuck on disk")

    def refuse(self: FileStore, kind: str, key: str) -> None:
        raise PermissionError("read-only filesystem")

    monkeypatch.setattr(FileStore, "remove", refuse)
    with caplog.at_level(logging.WARNING, logger="accord.files"):
        r = await client.delete(
            f"/api/v1/channels/{w.general['id']}/messages/{message['id']}", headers=w.owner.headers
        )
    assert r.status_code == 200, r.text
    assert len(stored(server)) == 1
    assert any("could not remove stored file" in rec.getMessage() for rec in caplog.records)
