"""REST voice routes end to end on the custom backend (VOICE.md 3, D14, D14b, D14c, D15a, D24):
info, join, leave, status, regions, the denials, moves, user limits and REST-state expiry."""

from __future__ import annotations

import httpx
import pytest
import trio

from accord.events.types import Event
from tests.support import ServerHandle, assert_error, register
from tests.voice.support import (
    JOIN,
    drain,
    events,
    join_space,
    make_channel,
    make_space,
    next_event,
    set_everyone,
    setup_voice_channel,
    voice,
)


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"ACCORD_REST_VOICE_TTL_S": "1"}


async def test_voice_info_is_not_enveloped(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/voice/info")
    assert r.status_code == 200
    assert r.json() == {"backend": "custom"}


async def test_join_returns_state_and_server_fields(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    owner, space_id, channel_id = await setup_voice_channel(server, client)
    with server.ctx.bus.subscribed() as sub:
        r = await client.post(
            f"/api/v1/channels/{channel_id}/voice/join",
            json={"self_mute": True, "self_deaf": False},
            headers=owner.headers,
        )
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        update = await next_event(sub, "voice.state_update")
    state = data["voice_state"]
    assert state["user_id"] == owner.id
    assert state["channel_id"] == str(channel_id)
    assert state["space_id"] == str(space_id)
    assert state["self_mute"] is True
    assert int(state["session_id"]) > 0
    assert data["backend"] == "custom"
    assert data["space_id"] == str(space_id)
    assert data["channel_id"] == str(channel_id)
    # D15a: no online node -> both endpoint keys null, still 200.
    assert data["sfu_endpoint"] is None
    assert data["endpoint"] is None
    assert update.data == state
    assert update.space_id == space_id
    assert update.session_id is None  # a REST join pushes no gateway server update
    status = await client.get(f"/api/v1/channels/{channel_id}/voice-status", headers=owner.headers)
    assert status.json() == {"data": [state]}


async def test_join_denials_leave_no_state(server: ServerHandle, client: httpx.AsyncClient) -> None:
    owner, space_id, channel_id = await setup_voice_channel(server, client)
    outsider = await register(client, "outsider")
    text = await make_channel(server, space_id, "chat", type="text")
    other_space = await make_space(server, outsider, "Elsewhere")
    foreign = await make_channel(server, other_space)

    r = await client.post(f"/api/v1/channels/{text}/voice/join", json=JOIN, headers=owner.headers)
    error = assert_error(r, 400, "invalid_request")
    assert error["message"] == "channel_not_voice"
    r = await client.post(f"/api/v1/channels/{channel_id}/voice/join", json=JOIN)
    assert_error(r, 401, "unauthorized")
    r = await client.post(
        f"/api/v1/channels/{foreign}/voice/join", json=JOIN, headers=owner.headers
    )
    assert_error(r, 403, "forbidden")
    for bad in ("999999999", "abc", "0"):
        r = await client.post(
            f"/api/v1/channels/{bad}/voice/join", json=JOIN, headers=owner.headers
        )
        assert_error(r, 404, "not_found")
    r = await client.post(
        f"/api/v1/channels/{channel_id}/voice/join", content=b"{", headers=owner.headers
    )
    assert r.status_code in (400, 415)
    r = await client.post(
        f"/api/v1/channels/{channel_id}/voice/join",
        json={"self_mute": "yes"},
        headers=owner.headers,
    )
    assert_error(r, 422, "invalid_request")
    assert voice(server).state_of(int(owner.id)) is None


async def test_join_needs_connect_and_no_timeout(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    _, space_id, channel_id = await setup_voice_channel(server, client)
    member = await register(client, "member")
    await join_space(server, space_id, member)
    await set_everyone(server, space_id, ["view_channel", "speak"])
    r = await client.post(
        f"/api/v1/channels/{channel_id}/voice/join", json=JOIN, headers=member.headers
    )
    error = assert_error(r, 403, "forbidden")
    assert error["message"] == "missing permission: connect"
    await set_everyone(server, space_id, ["view_channel", "connect"])
    await server.ctx.db.write(
        lambda conn: conn.execute(
            "UPDATE members SET timed_out_until = '2999-01-01T00:00:00' WHERE user_id = ?",
            (int(member.id),),
        )
    )
    r = await client.post(
        f"/api/v1/channels/{channel_id}/voice/join", json=JOIN, headers=member.headers
    )
    assert_error(r, 403, "forbidden")
    assert voice(server).state_of(int(member.id)) is None


async def test_leave_publishes_left_state_and_is_lenient(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    owner, space_id, channel_id = await setup_voice_channel(server, client)
    r = await client.delete(f"/api/v1/channels/{channel_id}/voice/leave", headers=owner.headers)
    assert r.json() == {"data": {"ok": True}}  # not in voice: still ok
    joined = await client.post(
        f"/api/v1/channels/{channel_id}/voice/join", json=JOIN, headers=owner.headers
    )
    session_id = joined.json()["data"]["voice_state"]["session_id"]
    other = await make_channel(server, space_id, "Other")
    with server.ctx.bus.subscribed() as sub:
        # The path channel only gates the call; the state goes wherever it is (VOICE.md 3.5).
        r = await client.delete(f"/api/v1/channels/{other}/voice/leave", headers=owner.headers)
        assert r.json() == {"data": {"ok": True}}
        left = await next_event(sub, "voice.state_update")
    assert left.data["channel_id"] is None
    assert left.data["session_id"] == session_id
    assert left.data["space_id"] == str(space_id)
    assert not any(value is True for value in left.data.values())
    assert voice(server).state_of(int(owner.id)) is None
    r = await client.delete("/api/v1/channels/abc/voice/leave", headers=owner.headers)
    assert_error(r, 404, "not_found")


async def test_move_sends_one_non_null_update(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    owner, space_id, first = await setup_voice_channel(server, client)
    second = await make_channel(server, space_id, "Second")
    await client.post(f"/api/v1/channels/{first}/voice/join", json=JOIN, headers=owner.headers)
    with server.ctx.bus.subscribed() as sub:
        r = await client.post(
            f"/api/v1/channels/{second}/voice/join", json=JOIN, headers=owner.headers
        )
        assert r.status_code == 200
        moved = await next_event(sub, "voice.state_update")
        updates = events(drain(sub), "voice.state_update")
    assert moved.data["channel_id"] == str(second)
    assert updates == []  # exactly one update, and it is non-null (D14b)
    for channel, expected in ((first, 0), (second, 1)):
        status = await client.get(f"/api/v1/channels/{channel}/voice-status", headers=owner.headers)
        assert len(status.json()["data"]) == expected


async def test_user_limit_is_enforced_except_for_movers(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    owner, space_id, _ = await setup_voice_channel(server, client)
    small = await make_channel(server, space_id, "Duo", user_limit=1)
    ana = await register(client, "ana")
    bob = await register(client, "bob")
    await join_space(server, space_id, ana, bob)
    r = await client.post(f"/api/v1/channels/{small}/voice/join", json=JOIN, headers=ana.headers)
    assert r.status_code == 200
    r = await client.post(f"/api/v1/channels/{small}/voice/join", json=JOIN, headers=bob.headers)
    error = assert_error(r, 403, "forbidden")
    assert error["message"] == "voice channel is full"
    assert voice(server).state_of(int(bob.id)) is None
    # Rejoining the channel one already occupies is not blocked by the limit.
    r = await client.post(f"/api/v1/channels/{small}/voice/join", json=JOIN, headers=ana.headers)
    assert r.status_code == 200
    # The owner holds move_members and may exceed the limit (D14c).
    r = await client.post(f"/api/v1/channels/{small}/voice/join", json=JOIN, headers=owner.headers)
    assert r.status_code == 200


async def test_voice_regions_and_status_permissions(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    owner, space_id, channel_id = await setup_voice_channel(server, client)
    outsider = await register(client, "outsider")
    r = await client.get(f"/api/v1/spaces/{space_id}/voice-regions", headers=owner.headers)
    assert r.json() == {
        "data": [{"id": "us-east", "name": "US East", "optimal": True, "custom": False}]
    }
    r = await client.get(f"/api/v1/spaces/{space_id}/voice-regions", headers=outsider.headers)
    assert_error(r, 403, "forbidden")
    r = await client.get("/api/v1/spaces/nope/voice-regions", headers=owner.headers)
    assert_error(r, 404, "not_found")
    r = await client.get(f"/api/v1/channels/{channel_id}/voice-status", headers=outsider.headers)
    assert_error(r, 403, "forbidden")
    text = await make_channel(server, space_id, "chat", type="text")
    r = await client.get(f"/api/v1/channels/{text}/voice-status", headers=owner.headers)
    assert r.json() == {"data": []}


async def test_rest_state_expires_without_a_gateway_session(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    owner, _, channel_id = await setup_voice_channel(server, client)
    with server.ctx.bus.subscribed() as sub:
        await client.post(
            f"/api/v1/channels/{channel_id}/voice/join", json=JOIN, headers=owner.headers
        )
        joined = await next_event(sub, "voice.state_update")
        assert joined.data["channel_id"] == str(channel_id)
        started = trio.current_time()
        left = await next_event(sub, "voice.state_update", timeout=5)
    assert left.data["channel_id"] is None
    assert trio.current_time() - started >= 0.9  # ACCORD_REST_VOICE_TTL_S=1
    assert voice(server).state_of(int(owner.id)) is None


async def test_shutdown_ends_every_state(server: ServerHandle, client: httpx.AsyncClient) -> None:
    owner, _, channel_id = await setup_voice_channel(server, client)
    await client.post(f"/api/v1/channels/{channel_id}/voice/join", json=JOIN, headers=owner.headers)
    with server.ctx.bus.subscribed() as sub:
        server.shutdown.set()
        left = await next_event(sub, "voice.state_update")
    assert isinstance(left, Event)
    assert left.data["channel_id"] is None
    assert left.data["user_id"] == owner.id
