"""The LiveKit backend against a fake Twirp RoomService (VOICE.md 4.2-4.3, D14, D16, D16a,
RT-29, RT-31, RT-32): token grants and TTL, room creation before any state is stored, cleanup
on leave, move and shutdown, the internal/external URL split, and outages (error status,
malformed reply, timeout) that answer clearly and leave nothing half-set."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
import trio

from accord.voice.livekit import room_name
from tests.fakes.fake_livekit import FakeLiveKit
from tests.support import ServerHandle, assert_error, register
from tests.voice.support import (
    JOIN,
    drain,
    events,
    gateway_session,
    join_space,
    make_channel,
    next_event,
    set_everyone,
    setup_voice_channel,
    voice,
    wait_until,
)

KEY = "devkey"
SECRET = "a-livekit-api-secret-of-at-least-32-bytes"
PUBLIC_URL = "wss://livekit.example.com"


@pytest.fixture
async def fake(nursery: trio.Nursery) -> AsyncIterator[FakeLiveKit]:
    fake = FakeLiveKit(KEY, SECRET)
    await fake.start(nursery)
    yield fake
    fake.stop()


@pytest.fixture
def server_env(fake: FakeLiveKit) -> dict[str, str]:
    return {
        "ACCORD_VOICE_BACKEND": "livekit",
        "LIVEKIT_URL": PUBLIC_URL,
        "LIVEKIT_INTERNAL_URL": fake.url,
        "LIVEKIT_API_KEY": KEY,
        "LIVEKIT_API_SECRET": SECRET,
        "LIVEKIT_TIMEOUT_S": "0.5",
    }


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, SECRET, algorithms=["HS256"])
    return claims


async def test_join_creates_room_and_mints_a_scoped_token(
    server: ServerHandle, client: httpx.AsyncClient, fake: FakeLiveKit
) -> None:
    owner, space_id, channel_id = await setup_voice_channel(server, client)
    assert (await client.get("/api/v1/voice/info")).json() == {"backend": "livekit"}
    regions = await client.get(f"/api/v1/spaces/{space_id}/voice-regions", headers=owner.headers)
    assert regions.json()["data"] == [
        {"id": "livekit", "name": "LiveKit", "optimal": True, "custom": False}
    ]
    r = await client.post(
        f"/api/v1/channels/{channel_id}/voice/join", json=JOIN, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["backend"] == "livekit"
    assert data["livekit_url"] == PUBLIC_URL  # the external URL; calls went to the fake
    assert data["url"] == PUBLIC_URL
    claims = _claims(data["token"])
    assert claims["sub"] == owner.id
    assert claims["iss"] == KEY
    assert isinstance(claims["exp"], int)
    assert isinstance(claims["nbf"], int)
    assert claims["exp"] - claims["nbf"] == 6 * 3600
    assert claims["video"] == {
        "roomJoin": True,
        "room": room_name(channel_id),
        "canPublish": True,
        "canSubscribe": True,
        "canPublishData": True,
    }
    assert fake.methods() == ["CreateRoom"]
    [create] = [call for call in fake.calls if call.method == "CreateRoom"]
    assert create.grants.get("roomCreate") is True
    assert room_name(channel_id) in fake.rooms
    assert fake.refused == []


async def test_publish_needs_speak(
    server: ServerHandle, client: httpx.AsyncClient, fake: FakeLiveKit
) -> None:
    _, space_id, channel_id = await setup_voice_channel(server, client)
    member = await register(client, "member")
    await join_space(server, space_id, member)
    await set_everyone(server, space_id, ["view_channel", "connect"])
    r = await client.post(
        f"/api/v1/channels/{channel_id}/voice/join", json=JOIN, headers=member.headers
    )
    video = _claims(r.json()["data"]["token"])["video"]
    assert isinstance(video, dict)
    assert video["canPublish"] is False
    assert video["canSubscribe"] is True


async def test_leave_and_move_clean_up_rooms(
    server: ServerHandle, client: httpx.AsyncClient, fake: FakeLiveKit
) -> None:
    owner, space_id, first = await setup_voice_channel(server, client)
    second = await make_channel(server, space_id, "Second")
    await client.post(f"/api/v1/channels/{first}/voice/join", json=JOIN, headers=owner.headers)
    fake.add_participant(room_name(first), owner.id)  # the client connected to LiveKit
    r = await client.post(f"/api/v1/channels/{second}/voice/join", json=JOIN, headers=owner.headers)
    assert r.status_code == 200
    await wait_until(lambda: room_name(first) not in fake.rooms)
    assert fake.methods()[-3:] == ["RemoveParticipant", "ListParticipants", "DeleteRoom"]
    assert fake.calls[-3].identity == owner.id
    fake.add_participant(room_name(second), owner.id)
    await client.delete(f"/api/v1/channels/{second}/voice/leave", headers=owner.headers)
    await wait_until(lambda: room_name(second) not in fake.rooms)
    assert fake.refused == []


@pytest.mark.parametrize("failure", ["status", "malformed", "timeout"])
async def test_outage_is_a_clear_error_and_leaves_nothing(
    server: ServerHandle, client: httpx.AsyncClient, fake: FakeLiveKit, failure: str
) -> None:
    owner, space_id, channel_id = await setup_voice_channel(server, client)
    if failure == "status":
        fake.fail["CreateRoom"] = 500
    elif failure == "malformed":
        fake.malformed.add("CreateRoom")
    else:
        fake.hang.add("CreateRoom")
    with server.ctx.bus.subscribed() as sub:
        with trio.fail_after(5):
            r = await client.post(
                f"/api/v1/channels/{channel_id}/voice/join", json=JOIN, headers=owner.headers
            )
        assert_error(r, 503, "service_unavailable")
        session = await gateway_session(server, owner)
        op9 = {"space_id": str(space_id), "channel_id": str(channel_id)}
        await voice(server).gateway_voice_state(session, op9)
        update = await next_event(sub, "voice.server_update")
        assert events(drain(sub), "voice.state_update") == []
    assert update.session_id == session.session_id
    assert update.data["error"] == "voice backend unavailable"
    assert "token" not in update.data
    assert voice(server).state_of(int(owner.id)) is None
    status = await client.get(f"/api/v1/channels/{channel_id}/voice-status", headers=owner.headers)
    assert status.json() == {"data": []}


async def test_flag_update_reissues_a_fresh_token_and_shutdown_deletes_rooms(
    server: ServerHandle, client: httpx.AsyncClient, fake: FakeLiveKit
) -> None:
    owner, space_id, channel_id = await setup_voice_channel(server, client)
    session = await gateway_session(server, owner)
    service = voice(server)
    op9 = {"space_id": str(space_id), "channel_id": str(channel_id)}
    with server.ctx.bus.subscribed() as sub:
        await service.gateway_voice_state(session, op9)
        first = await next_event(sub, "voice.server_update")
        await service.gateway_voice_state(session, {**op9, "self_mute": True})
        second = await next_event(sub, "voice.server_update")
    assert first.data["url"] == PUBLIC_URL
    assert _claims(second.data["token"])["sub"] == owner.id
    assert fake.methods() == ["CreateRoom"]  # D14a: no teardown, no second room call
    with server.ctx.bus.subscribed() as sub:
        server.shutdown.set()
        left = await next_event(sub, "voice.state_update")
    assert left.data["channel_id"] is None
    await wait_until(lambda: room_name(channel_id) not in fake.rooms)
    assert fake.methods()[-1] == "DeleteRoom"


async def test_server_mute_and_deaf_apply_to_the_live_participant(
    server: ServerHandle, client: httpx.AsyncClient, fake: FakeLiveKit
) -> None:
    """RT-33: a moderator's mute or deafen changes the connected participant's rights at once
    (UpdateParticipant), and new tokens carry them."""
    owner, space_id, channel_id = await setup_voice_channel(server, client)
    session = await gateway_session(server, owner)
    service = voice(server)
    op9 = {"space_id": str(space_id), "channel_id": str(channel_id)}
    await service.gateway_voice_state(session, op9)
    room = room_name(channel_id)
    fake.add_participant(room, owner.id)  # the client connected to LiveKit
    url = f"/api/v1/spaces/{space_id}/voice-states/{owner.id}"
    with server.ctx.bus.subscribed() as sub:
        r = await client.patch(url, json={"mute": True, "deaf": True}, headers=owner.headers)
        assert r.status_code == 200, r.text
        update = await next_event(sub, "voice.server_update")
    grants = _claims(update.data["token"])["video"]
    assert isinstance(grants, dict)
    assert grants["canPublish"] is False
    assert grants["canSubscribe"] is False
    await wait_until(lambda: (room, owner.id) in fake.permissions)
    permission = fake.permissions[(room, owner.id)]
    assert (permission.can_publish, permission.can_subscribe) == (False, False)
    r = await client.patch(url, json={"mute": False, "deaf": False}, headers=owner.headers)
    assert r.status_code == 200
    await wait_until(lambda: fake.permissions[(room, owner.id)].can_subscribe)
    assert fake.permissions[(room, owner.id)].can_publish is True
    assert "UpdateParticipant" in fake.methods()


async def test_start_up_checks_that_livekit_answers(
    server: ServerHandle, fake: FakeLiveKit
) -> None:
    """RT-32: the server asks LiveKit (ListRooms, with a room-list grant) once at start-up."""
    await wait_until(lambda: [c.method for c in fake.calls] == ["ListRooms"])
    assert not fake.refused


class TestUnreachableLiveKitAtStartUp:
    @pytest.fixture
    def server_env(self, fake: FakeLiveKit) -> dict[str, str]:
        fake.fail["ListRooms"] = 500
        return {
            "ACCORD_VOICE_BACKEND": "livekit",
            "LIVEKIT_URL": PUBLIC_URL,
            "LIVEKIT_INTERNAL_URL": fake.url,
            "LIVEKIT_API_KEY": KEY,
            "LIVEKIT_API_SECRET": SECRET,
            "LIVEKIT_TIMEOUT_S": "0.5",
        }

    async def test_warns_and_keeps_serving(
        self, server: ServerHandle, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        await wait_until(
            lambda: any("LiveKit is not reachable" in r.getMessage() for r in caplog.records)
        )
        assert (await client.get("/health")).status_code == 200
