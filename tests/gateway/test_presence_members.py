"""Presence (GATEWAY.md 8.2, D-pres, D12d) with several sessions of one user, and
REQUEST_MEMBERS answered with member.chunk frames (GATEWAY.md 8.3, D12f)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from tests.gateway.client import GatewayClient, connected
from tests.gateway.state import create_space, join_space
from tests.support import ServerHandle, register


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"ACCORD_GATEWAY_RESUME_WINDOW_S": "0.5", "ACCORD_GATEWAY_INBOUND_PER_MINUTE": "1000"}


async def presence_of(gw: GatewayClient, user_id: str) -> dict[str, Any]:
    frame = await gw.recv_until(
        lambda f: f.get("type") == "presence.update" and f["data"]["user_id"] == user_id
    )
    return dict(frame["data"])


async def test_online_on_first_session_offline_after_the_last(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob = await register(client, "ana"), await register(client, "bob")
    async with connected(server.ws_url, f"Bearer {bob.token}", ["presences"]) as watcher:
        async with connected(server.ws_url, f"Bearer {ana.token}", ["presences"]) as first:
            online = await presence_of(watcher, ana.id)
            assert online == {
                "user_id": ana.id,
                "user": {"id": ana.id},
                "status": "online",
                "client_status": {"desktop": "online"},
                "activities": [],
                "space_id": None,
            }
            async with connected(server.ws_url, f"Bearer {ana.token}", ["presences"]):
                pass  # a second session opens and closes: ana stays online
            await watcher.expect_silence(0.3)
            await first.ws.aclose(1000)
        offline = await presence_of(watcher, ana.id)
        assert offline["status"] == "offline"
        assert offline["client_status"] == {}
        assert offline["activities"] == []


async def test_a_dropped_last_session_goes_offline_when_its_window_ends(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob = await register(client, "ana"), await register(client, "bob")
    async with connected(server.ws_url, f"Bearer {bob.token}", ["presences"]) as watcher:
        async with connected(server.ws_url, f"Bearer {ana.token}", []) as gone:
            await presence_of(watcher, ana.id)
            await gone.ws.aclose(4000)
        await watcher.expect_silence(0.2)  # parked: still online during the resume window
        with trio.fail_after(3):
            assert (await presence_of(watcher, ana.id))["status"] == "offline"


async def test_op8_updates_and_broadcasts_presence(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob = await register(client, "ana"), await register(client, "bob")
    async with (
        connected(server.ws_url, f"Bearer {bob.token}", ["presences"]) as watcher,
        connected(server.ws_url, f"Bearer {bob.token}", ["messages"]) as no_intent,
        connected(server.ws_url, f"Bearer {ana.token}", []) as gw,
    ):
        await presence_of(watcher, ana.id)
        await gw.send(
            {"op": 8, "data": {"status": "dnd", "activity": {"name": "chess", "type": "playing"}}}
        )
        dnd = await presence_of(watcher, ana.id)
        assert dnd["status"] == "dnd"
        assert dnd["client_status"] == {"desktop": "dnd"}
        assert dnd["activities"][0]["name"] == "chess"
        assert dnd["activities"][0]["type"] == "playing"
        for requested, published in (
            ("invisible", "offline"),
            ("offline", None),
            ("sparkly", "online"),
        ):
            await gw.send({"op": 8, "data": {"status": requested}})
            if published is None:
                await watcher.expect_silence(0.2)  # invisible -> offline is no change to others
            else:
                assert (await presence_of(watcher, ana.id))["status"] == published
        await no_intent.expect_silence(0.1)
        await gw.send({"op": 8, "data": {"status": "idle", "activity": "not an object"}})
        assert (await gw.closed())[0] == 4002


async def test_presence_reaches_each_space_mate_once(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob = await register(client, "ana"), await register(client, "bob")
    second = await create_space(server, ana.id, "second")
    await join_space(server, second["id"], bob.id)
    async with (
        connected(server.ws_url, f"Bearer {bob.token}", ["presences"]) as watcher,
        connected(server.ws_url, f"Bearer {ana.token}", []) as gw,
    ):
        await presence_of(watcher, ana.id)
        await gw.send({"op": 8, "data": {"status": "idle"}})
        assert (await presence_of(watcher, ana.id))["status"] == "idle"
        await watcher.expect_silence(0.3)


async def test_request_members_chunks(server: ServerHandle, client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana")
    others = [await register(client, f"member{i}") for i in range(3)]
    space = await create_space(server, ana.id, "s")
    for other in others:
        await join_space(server, space["id"], other.id)
    async with connected(server.ws_url, f"Bearer {ana.token}", ["members"]) as gw:
        await gw.send(
            {"op": 10, "data": {"space_id": space["id"], "query": "", "limit": 0, "nonce": "n1"}}
        )
        chunk = await gw.recv_event("member.chunk")
        assert "seq" not in chunk
        data = chunk["data"]
        assert (data["space_id"], data["chunk_index"], data["chunk_count"], data["nonce"]) == (
            space["id"],
            0,
            1,
            "n1",
        )
        assert sorted(m["user_id"] for m in data["members"]) == sorted(
            [ana.id] + [o.id for o in others]
        )
        member = next(m for m in data["members"] if m["user_id"] == others[0].id)
        assert member["user"]["username"] == "member0"
        assert member["space_id"] == space["id"]
        assert data["not_found"] == []

        await gw.send({"op": 10, "data": {"space_id": space["id"], "query": "member", "limit": 2}})
        data = (await gw.recv_event("member.chunk"))["data"]
        assert len(data["members"]) == 2
        assert all(m["user"]["username"].startswith("member") for m in data["members"])

        await gw.send({"op": 10, "data": {"space_id": space["id"], "user_ids": [ana.id, "123"]}})
        data = (await gw.recv_event("member.chunk"))["data"]
        assert [m["user_id"] for m in data["members"]] == [ana.id]
        assert data["not_found"] == ["123"]

        await gw.send({"op": 10, "data": {"space_id": "999", "limit": 0}})  # not a member: ignored
        await gw.expect_silence(0.3)
        await gw.send({"op": 10, "data": {"space_id": space["id"], "limit": "all"}})
        assert (await gw.closed())[0] == 4002


async def test_request_members_needs_the_members_intent(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    async with connected(server.ws_url, f"Bearer {ana.token}", ["messages"]) as gw:
        assert gw.ready is not None
        await gw.send({"op": 10, "data": {"space_id": gw.ready["spaces"][0], "limit": 0}})
        await gw.expect_silence(0.3)
