"""The SFU node registry on main (VOICE.md 7, 11; D15, D15a-d, D26): routes and their auth,
validation, allocation through voice joins with signed join tokens, heartbeat session lists,
re-homing when a node goes, the reaper, and main telling a node to end a session."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from accord.config import load_settings
from accord.sfu.control import MainLink
from accord.sfu.node import NodeContext, create_node_app
from accord.sfu.sessions import NodeParticipant, SessionTable
from accord.voice.join_token import verify_join_token
from tests.support import Account, ServerHandle, assert_error, register
from tests.voice.support import (
    gateway_session,
    make_channel,
    make_space,
    next_event,
    voice,
    wait_until,
)

SECRET = "sfu-shared-secret-for-tests"
NODE = {"Authorization": f"Node {SECRET}"}
JOIN = {"self_mute": False, "self_deaf": False}


@pytest.fixture
def server_env() -> dict[str, str]:
    return {
        "ACCORD_SFU_SECRET": SECRET,
        "ACCORD_SFU_REAPER_INTERVAL_S": "0.1",
        "ACCORD_SFU_STALE_AFTER_S": "0.6",
    }


def _node(
    node_id: str, region: str = "us-east", capacity: int = 100, **extra: object
) -> dict[str, object]:
    return {
        "id": node_id,
        "endpoint": f"ws://{node_id}:4000",
        "region": region,
        "capacity": capacity,
        **extra,
    }


async def test_reference_lifecycle_with_admin_token(client: httpx.AsyncClient) -> None:
    admin = await register(client, "admin")  # first user: instance admin (D8)
    r = await client.post("/api/v1/sfu/nodes", json=_node("test-sfu-1"), headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {
        "id": "test-sfu-1",
        "endpoint": "ws://test-sfu-1:4000/ws",  # D15b: normalised with its path
        "region": "us-east",
        "capacity": 100,
        "current_load": 0,
        "status": "online",
    }
    listed = (await client.get("/api/v1/sfu/nodes", headers=admin.headers)).json()["data"]
    assert [(n["id"], n["region"], n["capacity"]) for n in listed] == [
        ("test-sfu-1", "us-east", 100)
    ]
    r = await client.post(
        "/api/v1/sfu/nodes/test-sfu-1/heartbeat", json={"current_load": 42}, headers=admin.headers
    )
    assert r.json() == {"data": {"ok": True}}
    listed = (await client.get("/api/v1/sfu/nodes", headers=admin.headers)).json()["data"]
    assert listed[0]["current_load"] == 42
    r = await client.delete("/api/v1/sfu/nodes/test-sfu-1", headers=admin.headers)
    assert r.json() == {"data": {"ok": True}}
    assert (await client.get("/api/v1/sfu/nodes", headers=admin.headers)).json() == {"data": []}
    for _ in range(2):
        r = await client.post("/api/v1/sfu/nodes", json=_node("test-sfu-1"), headers=admin.headers)
        assert r.status_code == 200
    r = await client.delete("/api/v1/sfu/nodes/test-sfu-1", headers=admin.headers)
    assert r.status_code == 200
    r = await client.post(
        "/api/v1/sfu/nodes/test-sfu-1/heartbeat", json={"current_load": 1}, headers=admin.headers
    )
    error = assert_error(r, 404, "not_found")
    assert error["message"] == "sfu_node_not_found"  # offline: re-register (D15d)
    assert_error(await client.delete("/api/v1/sfu/nodes/ghost", headers=admin.headers), 404)


async def test_node_secret_and_admin_are_the_only_credentials(client: httpx.AsyncClient) -> None:
    await register(client, "admin")
    user = await register(client, "user")
    r = await client.post("/api/v1/sfu/nodes", json=_node("n1"), headers=NODE)
    assert r.status_code == 200
    for headers, status in (
        ({}, 401),
        ({"Authorization": "Node wrong-secret"}, 401),
        ({"Authorization": f"Node {SECRET}x"}, 401),
        (user.headers, 403),
    ):
        r = await client.post("/api/v1/sfu/nodes", json=_node("n2"), headers=headers)
        assert r.status_code == status
        r = await client.get("/api/v1/sfu/nodes", headers=headers)
        assert r.status_code == status
        r = await client.post(
            "/api/v1/sfu/nodes/n1/heartbeat", json={"current_load": 0}, headers=headers
        )
        assert r.status_code == status
        r = await client.delete("/api/v1/sfu/nodes/n1", headers=headers)
        assert r.status_code == status
    listed = (await client.get("/api/v1/sfu/nodes", headers=NODE)).json()["data"]
    assert [n["id"] for n in listed] == ["n1"]


async def test_registration_is_validated(client: httpx.AsyncClient) -> None:
    cases = [
        (_node("bad id!"), 400),
        (_node("n1") | {"endpoint": "not a url"}, 400),
        (_node("n1") | {"endpoint": "ftp://x:1"}, 400),
        (_node("n1", capacity=0), 400),
        (_node("n1", region=""), 400),
        (_node("n1") | {"capacity": "ten"}, 422),
        ({"id": "n1", "endpoint": "ws://x"}, 422),
        (_node("n1", control_url="gopher://x"), 400),
    ]
    for body, status in cases:
        r = await client.post("/api/v1/sfu/nodes", json=body, headers=NODE)
        assert_error(r, status, "invalid_request")
    r = await client.post("/api/v1/sfu/nodes/n1/heartbeat", json={}, headers=NODE)
    assert_error(r, 422, "invalid_request")
    r = await client.post(
        "/api/v1/sfu/nodes/n1/heartbeat", json={"current_load": 1, "sessions": [1]}, headers=NODE
    )
    assert_error(r, 422, "invalid_request")


async def test_node_calls_do_not_use_the_user_bucket(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/sfu/nodes", json=_node("n1"), headers=NODE)
    for _ in range(80):  # more than a user's 70-token bucket (D26)
        r = await client.post(
            "/api/v1/sfu/nodes/n1/heartbeat", json={"current_load": 0}, headers=NODE
        )
        assert r.status_code == 200


async def _voice_user(server: ServerHandle, client: httpx.AsyncClient) -> tuple[Account, int, int]:
    await register(client, "admin")
    ana = await register(client, "ana")
    space_id = await make_space(server, ana)
    return ana, space_id, await make_channel(server, space_id)


async def test_join_is_sent_to_the_best_node_with_a_join_token(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, space_id, channel_id = await _voice_user(server, client)
    await client.post("/api/v1/sfu/nodes", json=_node("full", capacity=1), headers=NODE)
    await client.post("/api/v1/sfu/nodes/full/heartbeat", json={"current_load": 1}, headers=NODE)
    await client.post("/api/v1/sfu/nodes", json=_node("eu-1", "eu", 10), headers=NODE)
    await client.post("/api/v1/sfu/nodes", json=_node("us-1", "us", 10), headers=NODE)
    r = await client.post(
        f"/api/v1/channels/{channel_id}/voice/join",
        json=JOIN | {"region": "eu"},
        headers=ana.headers,
    )
    data = r.json()["data"]
    assert data["sfu_endpoint"] == data["endpoint"] == "ws://eu-1:4000/ws"
    claims = verify_join_token(SECRET, data["token"], node_id="eu-1", now=time.time())
    assert claims.user_id == ana.id
    assert claims.channel_id == str(channel_id)
    assert claims.space_id == str(space_id)
    assert claims.speak is True
    state = voice(server).state_of(int(ana.id))
    assert state is not None
    assert claims.session_id == state.node_session
    listed = {
        n["id"]: n for n in (await client.get("/api/v1/sfu/nodes", headers=NODE)).json()["data"]
    }
    assert listed["eu-1"]["current_load"] == 1  # counted until the next heartbeat
    regions = await client.get(f"/api/v1/spaces/{space_id}/voice-regions", headers=ana.headers)
    assert {region["id"] for region in regions.json()["data"]} == {"us-east", "eu", "us"}


async def test_gone_node_rehomes_gateway_sessions(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, space_id, channel_id = await _voice_user(server, client)
    await client.post("/api/v1/sfu/nodes", json=_node("a", capacity=10), headers=NODE)
    session = await gateway_session(server, ana)
    op9 = {"space_id": str(space_id), "channel_id": str(channel_id)}
    with server.ctx.bus.subscribed() as sub:
        await voice(server).gateway_voice_state(session, op9)
        first = await next_event(sub, "voice.server_update")
        assert first.data["endpoint"] == "ws://a:4000/ws"
        await client.post("/api/v1/sfu/nodes", json=_node("b", capacity=10), headers=NODE)
        await client.delete("/api/v1/sfu/nodes/a", headers=NODE)
        moved = await next_event(sub, "voice.server_update")
        assert moved.session_id == session.session_id
        assert moved.data["endpoint"] == "ws://b:4000/ws"
        verify_join_token(SECRET, moved.data["token"], node_id="b", now=time.time())
        await client.delete("/api/v1/sfu/nodes/b", headers=NODE)
        nowhere = await next_event(sub, "voice.server_update")
    assert nowhere.data["endpoint"] is None
    assert nowhere.data["token"] is None
    assert voice(server).state_of(int(ana.id)) is not None  # the state itself stays


async def test_reaper_takes_silent_nodes_offline(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    await client.post("/api/v1/sfu/nodes", json=_node("quiet"), headers=NODE)
    await client.post("/api/v1/sfu/nodes", json=_node("chatty"), headers=NODE)
    with trio.fail_after(5):
        while True:
            await client.post(
                "/api/v1/sfu/nodes/chatty/heartbeat", json={"current_load": 0}, headers=NODE
            )
            listed = (await client.get("/api/v1/sfu/nodes", headers=NODE)).json()["data"]
            if [n["id"] for n in listed] == ["chatty"]:
                break
            await trio.sleep(0.1)
    r = await client.post(
        "/api/v1/sfu/nodes/quiet/heartbeat", json={"current_load": 0}, headers=NODE
    )
    assert_error(r, 404, "not_found")
    status = await server.ctx.db.read(
        lambda conn: conn.execute("SELECT status FROM sfu_nodes WHERE id = 'quiet'").fetchone()[0]
    )
    assert status == "offline"
    r = await client.post("/api/v1/sfu/nodes", json=_node("quiet"), headers=NODE)
    assert r.json()["data"]["status"] == "online"


@pytest.fixture
async def node_app(
    nursery: trio.Nursery, server: ServerHandle
) -> AsyncIterator[tuple[NodeContext, str]]:
    """The node's HTTP app (accord.sfu.node) in-process on port 0, to receive main's calls."""
    settings = load_settings(
        {
            "ACCORD_MODE": "sfu",
            "ACCORD_MAIN_URL": server.url,
            "ACCORD_SFU_NODE_ID": "local",
            "ACCORD_SFU_REGION": "here",
            "ACCORD_SFU_CAPACITY": "10",
            "ACCORD_SFU_ENDPOINT": "ws://127.0.0.1:1/ws",
            "ACCORD_SFU_SECRET": SECRET,
        }
    )
    assert settings.sfu is not None
    async with httpx.AsyncClient() as http:
        sessions = SessionTable()
        link = MainLink(settings.sfu, SECRET, sessions, http)
        node = NodeContext(settings, settings.sfu, SECRET, sessions, link)
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.graceful_timeout = 0.2
        stop = trio.Event()
        binds = await nursery.start(
            partial(serve, create_node_app(node), config, shutdown_trigger=stop.wait)
        )
        yield node, binds[0]
        stop.set()


async def test_heartbeat_sessions_and_main_ending_sessions_on_the_node(
    server: ServerHandle, client: httpx.AsyncClient, node_app: tuple[NodeContext, str]
) -> None:
    node, control_url = node_app
    ana, _, channel_id = await _voice_user(server, client)
    r = await client.post(
        "/api/v1/sfu/nodes", json=_node("local", control_url=control_url), headers=NODE
    )
    assert r.status_code == 200
    r = await client.post(
        f"/api/v1/channels/{channel_id}/voice/join", json=JOIN, headers=ana.headers
    )
    claims = verify_join_token(SECRET, r.json()["data"]["token"], node_id="local", now=time.time())
    # The client connects to the node: signaling would add it like this.
    ended: list[str] = []
    node.sessions.add(
        NodeParticipant(
            claims.session_id, claims.user_id, claims.channel_id, lambda: ended.append("x")
        )
    )
    node.sessions.add(NodeParticipant("stale-session", "1", "1"))
    await node.link.heartbeat()
    # Main does not know "stale-session" and tells the node to end it.
    await wait_until(lambda: node.sessions.get("stale-session") is None)
    state = voice(server).state_of(int(ana.id))
    assert state is not None
    assert state.node_reported
    # Leaving tells the node to drop the participant.
    await client.delete(f"/api/v1/channels/{channel_id}/voice/leave", headers=ana.headers)
    await wait_until(lambda: bool(ended))
    assert node.sessions.load == 0
    # A participant that drops off the node ends the voice state at the next heartbeat.
    r = await client.post(
        f"/api/v1/channels/{channel_id}/voice/join", json=JOIN, headers=ana.headers
    )
    claims = verify_join_token(SECRET, r.json()["data"]["token"], node_id="local", now=time.time())
    participant = NodeParticipant(claims.session_id, claims.user_id, claims.channel_id)
    node.sessions.add(participant)
    await node.link.heartbeat()
    node.sessions.remove(participant)
    with server.ctx.bus.subscribed() as sub:
        await node.link.heartbeat()
        left = await next_event(sub, "voice.state_update")
    assert left.data["channel_id"] is None
    # The node's end route wants main's secret.
    async with httpx.AsyncClient(base_url=control_url) as direct:
        assert (await direct.post("/sessions/x/end")).status_code == 401
        r = await direct.post("/sessions/x/end", headers={"Authorization": "Node nope"})
        assert r.status_code == 401
        r = await direct.post("/sessions/x/end", headers=NODE)
        assert r.json() == {"data": {"ok": True, "ended": False}}
        health = (await direct.get("/health")).json()
    assert health["node_id"] == "local"
    assert health["current_load"] == 0
