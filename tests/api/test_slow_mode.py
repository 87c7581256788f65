"""Slow mode (G-32): `rate_limit_per_user` (alias of `rate_limit`, 0..21600 s) on channel
create and update, enforced per user per channel on send and upload with a 429 envelope and
Retry-After; manage_messages and manage_channels are exempt."""

from __future__ import annotations

import httpx
import trio

from tests.api.messaging import multipart, upload
from tests.spaces_support import World, make_world
from tests.support import Account, assert_error


async def _send(client: httpx.AsyncClient, who: Account, channel_id: str) -> httpx.Response:
    return await client.post(
        f"/api/v1/channels/{channel_id}/messages", json={"content": "hi"}, headers=who.headers
    )


async def _slow_channel(client: httpx.AsyncClient, w: World, seconds: int) -> str:
    r = await client.post(
        f"/api/v1/spaces/{w.space_id}/channels",
        json={"name": "slow", "rate_limit_per_user": seconds},
        headers=w.owner.headers,
    )
    assert r.status_code == 200, r.text
    channel = r.json()["data"]
    assert channel["rate_limit_per_user"] == seconds
    assert channel["rate_limit"] == seconds
    return str(channel["id"])


async def test_slow_mode_limits_each_user_per_channel(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    channel_id = await _slow_channel(client, w, 1)
    assert (await _send(client, w.member, channel_id)).status_code == 200
    refused = await _send(client, w.member, channel_id)
    error = assert_error(refused, 429, "rate_limited")
    assert "slow mode" in error["message"]
    assert refused.headers["Retry-After"] == "1"
    # Uploads count as sends too.
    body, ctype = multipart({"content": "file"}, [("a.txt", b"hello", "text/plain")])
    assert_error(await upload(client, w.member.headers, channel_id, body, ctype), 429)
    # Other channels and the moderators are unaffected.
    assert (await _send(client, w.member, w.general["id"])).status_code == 200
    for _ in range(3):
        assert (await _send(client, w.owner, channel_id)).status_code == 200
    with trio.fail_after(5):
        await trio.sleep(1.05)
    assert (await _send(client, w.member, channel_id)).status_code == 200
    assert_error(await _send(client, w.member, channel_id), 429)


async def test_slow_mode_can_be_changed_and_turned_off(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    url = f"/api/v1/channels/{w.general['id']}"
    for bad in (-1, 21601):
        r = await client.patch(url, json={"rate_limit_per_user": bad}, headers=w.owner.headers)
        assert_error(r, 400)
    assert_error(
        await client.patch(url, json={"rate_limit_per_user": "5"}, headers=w.owner.headers), 422
    )
    r = await client.patch(url, json={"rate_limit_per_user": 21600}, headers=w.owner.headers)
    assert r.json()["data"]["rate_limit_per_user"] == 21600
    assert (await _send(client, w.member, w.general["id"])).status_code == 200
    refused = await _send(client, w.member, w.general["id"])
    assert_error(refused, 429)
    assert 21000 < int(refused.headers["Retry-After"]) <= 21600
    # A member cannot change it; turning it off lets the member send at once.
    r = await client.patch(url, json={"rate_limit_per_user": 0}, headers=w.member.headers)
    assert_error(r, 403)
    r = await client.patch(url, json={"rate_limit_per_user": 0}, headers=w.owner.headers)
    assert r.json()["data"]["rate_limit_per_user"] == 0
    assert (await _send(client, w.member, w.general["id"])).status_code == 200
    assert (await _send(client, w.member, w.general["id"])).status_code == 200


async def test_refused_send_does_not_start_the_wait(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    channel_id = await _slow_channel(client, w, 60)
    r = await client.post(
        f"/api/v1/channels/{channel_id}/messages", json={"content": ""}, headers=w.member.headers
    )
    assert_error(r, 400)
    assert (await _send(client, w.member, channel_id)).status_code == 200
