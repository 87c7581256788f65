"""HELLO, IDENTIFY and READY (GATEWAY.md 4, 15; D12e), heartbeats (5) and the plain-HTTP
answers of /ws (1)."""

from __future__ import annotations

import httpx

from accord.gateway.fanout import Gateway
from tests.gateway.client import connect, connected, eventually
from tests.spaces_support import join_by_invite, make_world, put_overwrite
from tests.support import ServerHandle, register


async def test_hello_identify_ready_and_heartbeat(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    async with connect(server.ws_url) as gw:
        assert gw.hello == {"op": 5, "data": {"heartbeat_interval": 45000}}
        ready = await gw.identify(f"Bearer {ana.token}")
        assert ready["op"] == 0
        assert ready["seq"] == 1
        data = ready["data"]
        assert data["user_id"] == ana.id
        assert data["user"]["id"] == ana.id
        assert data["user"]["username"] == "ana"
        assert isinstance(data["session_id"], str)
        assert data["session_id"].isdigit()
        assert all(isinstance(s, str) for s in data["spaces"])
        assert len(data["spaces"]) == 1
        await gw.send({"op": 1, "data": 1})
        assert await gw.recv_until(lambda f: f.get("type") != "presence.update") == {"op": 4}
        await gw.ws.aclose(1000)


async def test_bot_token_identifies_as_the_bot_user(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    seed = (await client.post("/test/seed")).json()["data"]
    async with connect(server.ws_url) as gw:
        ready = await gw.identify(f"Bot {seed['bot']['token']}")
        assert ready["data"]["user_id"] == seed["bot"]["id"]
        assert ready["data"]["user"]["bot"] is True
        assert seed["space"]["id"] in ready["data"]["spaces"]


async def test_owner_sees_its_own_space_in_ready(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    seed = (await client.post("/test/seed")).json()["data"]
    async with connected(server.ws_url, f"Bearer {seed['user']['token']}") as gw:
        assert gw.ready is not None
        assert seed["space"]["id"] in gw.ready["spaces"]


async def test_bad_credentials_get_op7_then_4004(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    for token in ("Bot not-a-real-token", ana.token, f"bearer {ana.token}", f"Node {ana.token}"):
        async with connect(server.ws_url) as gw:
            await gw.send({"op": 2, "data": {"token": token, "intents": []}})
            code, frames = await gw.closed()
            assert frames == [{"op": 7, "data": {"resumable": False}}]
            assert code == 4004


async def test_expired_token_cannot_identify(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    from accord.services.auth import AuthService

    ana = await register(client, "ana")
    token = await server.ctx.get(AuthService).issue_token(
        int(ana.id), expires_at="2000-01-01T00:00:00"
    )
    async with connect(server.ws_url) as gw:
        await gw.send({"op": 2, "data": {"token": f"Bearer {token}", "intents": []}})
        code, frames = await gw.closed()
        assert frames == [{"op": 7, "data": {"resumable": False}}]
        assert code == 4004


async def test_heartbeat_before_identify_is_acknowledged(server: ServerHandle) -> None:
    async with connect(server.ws_url) as gw:
        await gw.send({"op": 1})
        assert await gw.recv() == {"op": 4}


async def test_client_close_after_hello(server: ServerHandle) -> None:
    async with connect(server.ws_url) as gw:
        await gw.ws.aclose(1000)
    await eventually(lambda: server.ctx.get(Gateway).stats()["connections"] == 0)


async def test_plain_http_on_ws_is_refused(server: ServerHandle, client: httpx.AsyncClient) -> None:
    response = await client.get("/ws")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    response = await client.post("/ws")
    assert response.status_code == 405


async def test_unsupported_version_is_4012(server: ServerHandle) -> None:
    async with connect(server.ws_url, read_hello=False, query="?v=2&encoding=json") as gw:
        code, frames = await gw.closed()
        assert (code, frames) == (4012, [])
    async with connect(server.ws_url, query="?v=1&encoding=json") as gw:
        await gw.send({"op": 1})
        assert await gw.recv() == {"op": 4}


async def test_ready_carries_spaces_and_visible_voice_states(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    """RT-15 / D12e: READY adds `space_objects` and the `voice_states` of channels the user
    can see, so a client needn't poll voice-status per channel; `spaces` stays ids."""
    w = await make_world(client)
    channels = {}
    for name in ("Open", "Staff"):
        r = await client.post(
            f"/api/v1/spaces/{w.space_id}/channels",
            json={"name": name, "type": "voice"},
            headers=w.owner.headers,
        )
        channels[name] = r.json()["data"]["id"]
    r = await put_overwrite(
        client, w.owner, channels["Staff"], w.space_id, "role", deny=("view_channel",)
    )
    assert r.status_code == 200, r.text
    for who, name in ((w.owner, "Staff"), (w.root, "Open")):
        if who is w.root:
            await join_by_invite(client, w.owner, w.root, w.space_id)
        r = await client.post(
            f"/api/v1/channels/{channels[name]}/voice/join",
            json={"self_mute": False, "self_deaf": False},
            headers=who.headers,
        )
        assert r.status_code == 200, r.text
    async with connected(server.ws_url, f"Bearer {w.member.token}") as gw:
        assert gw.ready is not None
        assert w.space_id in gw.ready["spaces"]
        [space] = [s for s in gw.ready["space_objects"] if s["id"] == w.space_id]
        assert space["name"] == "Test Space"
        states = gw.ready["voice_states"]
        assert [(s["user_id"], s["channel_id"]) for s in states] == [(w.root.id, channels["Open"])]
    async with connected(server.ws_url, f"Bearer {w.owner.token}") as gw:
        assert gw.ready is not None
        seen = {s["user_id"] for s in gw.ready["voice_states"]}
        assert seen == {w.owner.id, w.root.id}  # the owner sees the staff channel too
    # Like voice.state_update events, they need the voice_states intent.
    async with connected(server.ws_url, f"Bearer {w.owner.token}", ["spaces"]) as gw:
        assert gw.ready is not None
        assert gw.ready["voice_states"] == []
        assert [s["id"] for s in gw.ready["space_objects"]] == gw.ready["spaces"]
