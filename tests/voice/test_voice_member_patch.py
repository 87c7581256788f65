"""Member changes that reach a live voice session (G-13, D-to, RT-22): server mute/deafen set
with `PATCH /spaces/{id}/members/{uid}` follow into the voice state with a fresh join token; a
member timed out while in voice is disconnected (the node is told); and a gateway session that
RESUMEs while in voice gets a fresh `voice.server_update` in place of the ones it missed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import trio

from accord.events.bus import Subscription
from accord.events.types import BusItem, Event
from accord.gateway.fanout import Gateway
from accord.sfu.node import NodeContext
from accord.sfu.sessions import NodeParticipant
from accord.voice.join_token import verify_join_token
from tests.gateway.client import connect, connected, eventually
from tests.sfu.test_nodes_api import NODE, SECRET, _node, node_app  # noqa: F401
from tests.support import Account, ServerHandle, register
from tests.voice.support import (
    gateway_session,
    join_space,
    make_channel,
    make_space,
    next_event,
    voice,
    wait_until,
)


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"ACCORD_SFU_SECRET": SECRET}


async def _world(
    server: ServerHandle, client: httpx.AsyncClient, node: dict[str, object]
) -> tuple[Account, Account, int, int]:
    """(owner, member, space_id, channel_id) with one SFU node registered."""
    await register(client, "admin")
    owner = await register(client, "owner")
    member = await register(client, "member")
    space_id = await make_space(server, owner)
    await join_space(server, space_id, member)
    channel_id = await make_channel(server, space_id)
    r = await client.post("/api/v1/sfu/nodes", json=node, headers=NODE)
    assert r.status_code == 200, r.text
    return owner, member, space_id, channel_id


async def _until(
    sub: Subscription, type: str, user_id: str, timeout: float = 5.0
) -> tuple[Event, list[BusItem]]:
    """The next `type` event about `user_id`, and every bus item seen before it."""
    seen: list[BusItem] = []
    with trio.fail_after(timeout):
        async for item in sub.receive:
            if isinstance(item, Event) and item.type == type and item.data["user_id"] == user_id:
                return item, seen
            seen.append(item)
    raise AssertionError("bus closed")


def _speak(update: Event | dict[str, object]) -> bool:
    data = update.data if isinstance(update, Event) else update
    token = data["token"]
    assert isinstance(token, str)
    return verify_join_token(SECRET, token, node_id="n1", now=time.time()).speak


async def test_member_patch_mute_and_deaf_reach_the_live_voice_state(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    owner, member, space_id, channel_id = await _world(server, client, _node("n1"))
    service = voice(server)
    session = await gateway_session(server, member)
    url = f"/api/v1/spaces/{space_id}/members/{member.id}"
    with server.ctx.bus.subscribed() as sub:
        await service.gateway_voice_state(
            session, {"space_id": str(space_id), "channel_id": str(channel_id)}
        )
        joined = await next_event(sub, "voice.server_update")
        assert _speak(joined)

        r = await client.patch(url, json={"mute": True}, headers=owner.headers)
        assert r.status_code == 200, r.text
        update, _ = await _until(sub, "voice.state_update", member.id)
        assert (update.data["mute"], update.data["deaf"]) == (True, False)
        assert update.data["channel_id"] == str(channel_id)
        # The holding session gets a fresh token that no longer lets it publish.
        server_update = await next_event(sub, "voice.server_update")
        assert server_update.session_id == session.session_id
        assert not _speak(server_update)
        state = service.state_of(int(member.id))
        assert state is not None
        assert (state.mute, state.deaf) == (True, False)
        assert state.session_id == session.session_id  # same voice session, no teardown

        r = await client.patch(url, json={"deaf": True}, headers=owner.headers)
        assert r.status_code == 200, r.text
        update, _ = await _until(sub, "voice.state_update", member.id)
        assert (update.data["mute"], update.data["deaf"]) == (True, True)
        assert not _speak(await next_event(sub, "voice.server_update"))

        # A change that is not about voice moves nothing; unmuting gives the voice back.
        r = await client.patch(url, json={"nickname": "Mem"}, headers=owner.headers)
        assert r.status_code == 200, r.text
        r = await client.patch(url, json={"mute": False}, headers=owner.headers)
        assert r.status_code == 200, r.text
        update, before = await _until(sub, "voice.state_update", member.id)
        assert (update.data["mute"], update.data["deaf"]) == (False, True)
        assert not [i for i in before if isinstance(i, Event) and i.type.startswith("voice.")]
        assert _speak(await next_event(sub, "voice.server_update"))
    state = service.state_of(int(member.id))
    assert state is not None
    assert (state.mute, state.deaf) == (False, True)


async def test_timeout_while_in_voice_disconnects(
    server: ServerHandle,
    client: httpx.AsyncClient,
    node_app: tuple[NodeContext, str],  # noqa: F811
) -> None:
    node, control_url = node_app
    owner, member, space_id, channel_id = await _world(
        server, client, _node("local", control_url=control_url)
    )
    r = await client.post(
        f"/api/v1/channels/{channel_id}/voice/join",
        json={"self_mute": False, "self_deaf": False},
        headers=member.headers,
    )
    assert r.status_code == 200, r.text
    token = r.json()["data"]["token"]
    claims = verify_join_token(SECRET, token, node_id="local", now=time.time())
    ended: list[str] = []
    node.sessions.add(
        NodeParticipant(
            claims.session_id, claims.user_id, claims.channel_id, lambda: ended.append("x")
        )
    )
    until = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    with server.ctx.bus.subscribed() as sub:
        r = await client.patch(
            f"/api/v1/spaces/{space_id}/members/{member.id}",
            json={"communication_disabled_until": until},
            headers=owner.headers,
        )
        assert r.status_code == 200, r.text
        left, _ = await _until(sub, "voice.state_update", member.id)
    assert left.data["channel_id"] is None
    assert voice(server).state_of(int(member.id)) is None
    await wait_until(lambda: bool(ended))  # the node was told to drop the participant
    assert node.sessions.get(claims.session_id) is None


async def test_resume_in_voice_gets_a_fresh_server_update(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    owner, member, space_id, channel_id = await _world(server, client, _node("n1"))
    gateway = server.ctx.get(Gateway)
    token = f"Bearer {member.token}"
    async with connected(server.ws_url, token, ["voice_states"]) as first:
        await first.send(
            {"op": 9, "data": {"space_id": str(space_id), "channel_id": str(channel_id)}}
        )
        # The two may arrive in either order (GATEWAY.md 8).
        frames = [
            await first.recv_until(lambda f: str(f.get("type")).startswith("voice."))
            for _ in range(2)
        ]
        assert sorted(f["type"] for f in frames) == ["voice.server_update", "voice.state_update"]
        joined = next(f for f in frames if f["type"] == "voice.server_update")
        assert _speak(joined["data"])
        session_id, seq = first.session_id, first.last_seq
        await first.ws.aclose(4000)  # an unclean end: the session is parked (D12b)
    await eventually(lambda: gateway.stats()["parked"] >= 1)
    # While parked, a server mute re-issues the session's server update: it is lost.
    with server.ctx.bus.subscribed() as sub:
        r = await client.patch(
            f"/api/v1/spaces/{space_id}/members/{member.id}",
            json={"mute": True},
            headers=owner.headers,
        )
        assert r.status_code == 200, r.text
        lost = await next_event(sub, "voice.server_update")
    assert lost.session_id == session_id
    async with connect(server.ws_url) as second:
        await second.resume(token, session_id, seq)
        missed = await second.recv_event("voice.state_update")
        assert missed["data"]["mute"] is True  # replayed from the buffer, with its seq
        resumed = await second.recv_event("resumed")
        assert resumed["data"]["session_id"] == session_id
        fresh = await second.recv_event("voice.server_update")
        state = voice(server).state_of(int(member.id))
        assert state is not None
        assert state.owner_session == session_id
    assert "seq" not in fresh
    assert fresh["data"]["channel_id"] == str(channel_id)
    assert fresh["data"]["endpoint"] == "ws://n1:4000/ws"
    assert fresh["data"]["token"] != joined["data"]["token"]
    assert not _speak(fresh["data"])  # minted now: it carries the mute set while parked


async def test_resume_out_of_voice_gets_no_server_update(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    await register(client, "admin")
    ana = await register(client, "ana")
    token = f"Bearer {ana.token}"
    gateway = server.ctx.get(Gateway)
    async with connected(server.ws_url, token, ["voice_states"]) as first:
        session_id, seq = first.session_id, first.last_seq
        await first.ws.aclose(4000)
    await eventually(lambda: gateway.stats()["parked"] >= 1)
    async with connect(server.ws_url) as second:
        await second.resume(token, session_id, seq)
        assert (await second.recv_event("resumed"))["data"]["session_id"] == session_id
        await second.expect_silence(0.5)
