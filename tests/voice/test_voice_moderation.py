"""Server mute/deafen, move and disconnect by moderators
(`PATCH /api/v1/spaces/{space_id}/voice-states/{user_id}`), with permission and hierarchy
checks; server mute sticks to the member for later joins."""

from __future__ import annotations

import httpx
import trio

from tests.spaces_support import drain
from tests.support import ServerHandle, assert_error, register
from tests.voice.support import JOIN, join_space, make_channel, make_space, next_event, voice


async def test_moderator_mutes_moves_and_disconnects(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    await register(client, "admin")
    owner = await register(client, "owner")
    member = await register(client, "member")
    space_id = await make_space(server, owner)
    await join_space(server, space_id, member)
    first = await make_channel(server, space_id, "First")
    second = await make_channel(server, space_id, "Second", user_limit=1)
    text = await make_channel(server, space_id, "chat", type="text")
    url = f"/api/v1/spaces/{space_id}/voice-states/{member.id}"

    r = await client.post(f"/api/v1/channels/{first}/voice/join", json=JOIN, headers=member.headers)
    assert r.status_code == 200
    # A plain member may not mute the owner or anyone else.
    r = await client.patch(
        f"/api/v1/spaces/{space_id}/voice-states/{owner.id}",
        json={"mute": True},
        headers=member.headers,
    )
    assert_error(r, 403, "forbidden")
    with server.ctx.bus.subscribed() as sub:
        r = await client.patch(url, json={"mute": True, "deaf": True}, headers=owner.headers)
        assert r.status_code == 200, r.text
        edited = await next_event(sub, "member.update")
        update = await next_event(sub, "voice.state_update")
        await trio.sleep(0.1)
        # One state update: the member.update's recheck found the live state already right.
        assert not [e for e in drain(sub) if getattr(e, "type", "") == "voice.state_update"]
    assert r.json()["data"]["mute"] is True
    assert update.data["mute"] is True
    assert update.data["deaf"] is True
    # Member lists follow server mute/deaf like any member edit.
    assert (edited.data["user_id"], edited.data["mute"], edited.data["deaf"]) == (
        member.id,
        True,
        True,
    )

    # Move into a full-sized channel: movers bypass the limit; the target must be in voice.
    r = await client.patch(url, json={"channel_id": str(second)}, headers=owner.headers)
    assert r.json()["data"]["channel_id"] == str(second)
    r = await client.patch(url, json={"channel_id": str(text)}, headers=owner.headers)
    assert_error(r, 400, "invalid_request")
    r = await client.patch(url, json={"channel_id": None}, headers=owner.headers)
    assert r.json() == {"data": None}
    assert voice(server).state_of(int(member.id)) is None
    r = await client.patch(url, json={"channel_id": str(first)}, headers=owner.headers)
    assert_error(r, 400, "invalid_request")

    # Server mute is stored on the member: the next join starts muted.
    r = await client.post(f"/api/v1/channels/{first}/voice/join", json=JOIN, headers=member.headers)
    assert r.json()["data"]["voice_state"]["mute"] is True
    r = await client.patch(
        f"/api/v1/spaces/{space_id}/voice-states/123", json={"mute": True}, headers=owner.headers
    )
    assert_error(r, 404, "not_found")
    r = await client.patch(url, json={"mute": "yes"}, headers=owner.headers)
    assert_error(r, 422, "invalid_request")
