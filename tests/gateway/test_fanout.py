"""Fan-out and filtering (GATEWAY.md 7, D12, D12d): membership, intents, channel view
permission, user/application/session targets; live joins, kicks, bans, space deletion and
role/overwrite changes; and 200 clients that each get every event exactly once, in order."""

from __future__ import annotations

import importlib.util

import httpx
import pytest
import trio

from accord.events.types import Event, SessionControl
from tests.gateway.client import ALL_INTENTS, GatewayClient, connect, connected
from tests.gateway.state import (
    create_channel,
    create_space,
    join_space,
    publish,
    remove_member,
    set_overwrite,
)
from tests.support import ServerHandle, register


@pytest.fixture
def server_env() -> dict[str, str]:
    # 200 clients share 10 accounts: 20 sessions each, above the default cap of 10 (RT-48).
    return {
        "ACCORD_GATEWAY_CONNECT_RATE": "100000/min",
        "ACCORD_GATEWAY_MAX_SESSIONS_PER_USER": "50",
    }


def msg(space_id: str, channel_id: str, content: str) -> Event:
    return Event(
        type="message.create",
        data={"id": "1", "channel_id": channel_id, "space_id": space_id, "content": content},
        space_id=int(space_id),
        channel_id=int(channel_id),
    )


async def test_space_events_reach_members_with_the_intent_only(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob = await register(client, "ana"), await register(client, "bob")
    space = await create_space(server, ana.id, "private")
    channel = space["channels"][0]
    async with (
        connected(server.ws_url, f"Bearer {ana.token}") as owner,
        connected(server.ws_url, f"Bearer {ana.token}", ["spaces"]) as no_messages,
        connected(server.ws_url, f"Bearer {bob.token}") as outsider,
    ):
        server.ctx.publish(msg(space["id"], channel, "hello"))
        frame = await owner.recv_event("message.create")
        assert frame["data"]["content"] == "hello"
        assert frame["seq"] == owner.last_seq
        await no_messages.expect_silence(0.3, ignore=("presence.update",))
        await outsider.expect_silence(0.1, ignore=("presence.update",))


async def test_sequence_numbers_are_per_session_and_gap_free(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    space = await create_space(server, ana.id, "s")
    async with connected(server.ws_url, f"Bearer {ana.token}", ["messages"]) as gw:
        for i in range(5):
            server.ctx.publish(msg(space["id"], space["channels"][0], str(i)))
        frames = [await gw.recv_event("message.create") for _ in range(5)]
        assert [f["seq"] for f in frames] == [2, 3, 4, 5, 6]
        assert [f["data"]["content"] for f in frames] == ["0", "1", "2", "3", "4"]
        assert list(frames[0]) == ["op", "type", "data", "seq"]


async def test_channel_view_permission_filters_events_live(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob = await register(client, "ana"), await register(client, "bob")
    space = await create_space(server, ana.id, "s")
    await join_space(server, space["id"], bob.id)
    secret = await create_channel(server, space["id"], "secret")
    async with (
        connected(server.ws_url, f"Bearer {ana.token}", ["messages"]) as owner,
        connected(server.ws_url, f"Bearer {bob.token}", ["messages"]) as member,
    ):
        await set_overwrite(server, secret, space["id"], "role", allow=[], deny=["view_channel"])
        server.ctx.publish(msg(space["id"], secret, "hidden"))
        server.ctx.publish(msg(space["id"], space["channels"][0], "public"))
        assert (await member.recv_event("message.create"))["data"]["content"] == "public"
        assert (await owner.recv_event("message.create"))["data"]["content"] == "hidden"
        # A member overwrite lets bob in again, at once.
        await set_overwrite(server, secret, bob.id, "member", allow=["view_channel"], deny=[])
        server.ctx.publish(msg(space["id"], secret, "now visible"))
        assert (await member.recv_event("message.create"))["data"]["content"] == "now visible"


async def test_joining_after_identify_starts_delivery_and_leaving_stops_it(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob = await register(client, "ana"), await register(client, "bob")
    space = await create_space(server, ana.id, "s")
    channel = space["channels"][0]
    async with connected(server.ws_url, f"Bearer {bob.token}", ALL_INTENTS) as gw:
        assert gw.ready is not None
        assert space["id"] not in gw.ready["spaces"]
        server.ctx.publish(msg(space["id"], channel, "before"))
        await join_space(server, space["id"], bob.id)
        joined = await gw.recv_event("member.join")
        assert joined["data"]["user_id"] == bob.id
        assert joined["data"]["space_id"] == space["id"]
        server.ctx.publish(msg(space["id"], channel, "after"))
        assert (await gw.recv_event("message.create"))["data"]["content"] == "after"
        await remove_member(server, space["id"], bob.id)
        left = await gw.recv_event("member.leave")
        assert left["data"]["user_id"] == bob.id
        server.ctx.publish(msg(space["id"], channel, "gone"))
        await gw.expect_silence(0.3, ignore=("presence.update",))


async def test_space_deletion_stops_delivery(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    space = await create_space(server, ana.id, "s")
    async with connected(server.ws_url, f"Bearer {ana.token}") as gw:
        publish(server, "space.delete", {"id": space["id"]}, space_id=int(space["id"]))
        server.ctx.publish(SessionControl(kind="space_deleted", space_id=int(space["id"])))
        assert (await gw.recv_event("space.delete"))["data"] == {"id": space["id"]}
        server.ctx.publish(msg(space["id"], space["channels"][0], "late"))
        await gw.expect_silence(0.3, ignore=("presence.update",))


async def test_targets_users_applications_and_one_session(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    seed = (await client.post("/test/seed")).json()["data"]
    ana = await register(client, "ana")
    async with (
        connected(server.ws_url, f"Bearer {ana.token}") as first,
        connected(server.ws_url, f"Bearer {ana.token}") as second,
        connected(server.ws_url, f"Bot {seed['bot']['token']}") as bot,
    ):
        publish(server, "relationship.add", {"id": "9"}, user_ids=frozenset({int(ana.id)}))
        for gw in (first, second):
            assert (await gw.recv_event("relationship.add"))["data"] == {"id": "9"}
        await bot.expect_silence(0.2, ignore=("presence.update",))
        publish(
            server,
            "interaction.create",
            {"id": "7"},
            application_id=int(seed["bot"]["application_id"]),
        )
        assert (await bot.recv_event("interaction.create"))["data"] == {"id": "7"}
        publish(server, "voice.server_update", {"endpoint": None}, session_id=first.session_id)
        direct = await first.recv_event("voice.server_update")
        assert "seq" not in direct
        publish(
            server,
            "typing.start",
            {"user_id": ana.id},
            user_ids=frozenset({int(ana.id)}),
            exclude_session_id=first.session_id,
        )
        assert (await second.recv_event("typing.start"))["data"] == {"user_id": ana.id}
        await first.expect_silence(0.3, ignore=("presence.update",))


async def test_user_update_reaches_space_mates_once(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob = await register(client, "ana"), await register(client, "bob")
    second = await create_space(server, ana.id, "second")
    await join_space(server, second["id"], bob.id)
    async with connected(server.ws_url, f"Bearer {bob.token}", ["spaces"]) as gw:
        response = await client.patch(
            "/api/v1/users/@me", json={"display_name": "Ana!"}, headers=ana.headers
        )
        assert response.status_code == 200
        update = await gw.recv_event("user.update")
        assert update["data"]["display_name"] == "Ana!"
        await gw.expect_silence(0.3, ignore=("presence.update",))


async def test_logout_closes_that_tokens_sessions(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    other = await client.post(
        "/api/v1/auth/login", json={"username": "ana", "password": "correct horse"}
    )
    other_token = other.json()["data"]["token"]
    async with (
        connected(server.ws_url, f"Bearer {ana.token}") as doomed,
        connected(server.ws_url, f"Bearer {other_token}") as kept,
    ):
        assert (await client.post("/api/v1/auth/logout", headers=ana.headers)).status_code == 200
        code, frames = await doomed.closed()
        assert code == 4004
        assert frames[-1] == {"op": 7, "data": {"resumable": False}}
        await kept.send({"op": 1})
        assert await kept.recv_until(lambda f: f.get("op") == 4) == {"op": 4}
    async with connect(server.ws_url) as gw:
        await gw.resume(f"Bearer {ana.token}", doomed.session_id, 1)
        assert (await gw.closed())[0] == 4004


async def test_seed_rotation_closes_bot_sessions(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    seed = (await client.post("/test/seed")).json()["data"]
    async with connected(server.ws_url, f"Bot {seed['bot']['token']}") as bot:
        await client.post("/test/seed")
        assert (await bot.closed())[0] == 4004


async def test_user_tokens_revoked_keeps_the_current_token(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    other = await client.post(
        "/api/v1/auth/login", json={"username": "ana", "password": "correct horse"}
    )
    from accord.auth.tokens import hash_token

    async with (
        connected(server.ws_url, f"Bearer {ana.token}") as kept,
        connected(server.ws_url, f"Bearer {other.json()['data']['token']}") as doomed,
    ):
        server.ctx.publish(
            SessionControl(
                kind="user_tokens_revoked",
                user_id=int(ana.id),
                keep_token_hash=hash_token(ana.token),
            )
        )
        assert (await doomed.closed())[0] == 4004
        await kept.send({"op": 1})
        assert await kept.recv_until(lambda f: f.get("op") == 4) == {"op": 4}


async def test_message_create_over_rest_reaches_members(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    if importlib.util.find_spec("accord.http.messages") is None:
        pytest.skip("message routes are not on this branch yet")
    seed = (await client.post("/test/seed")).json()["data"]
    channel = seed["channels"][0]["id"]
    async with connected(server.ws_url, f"Bearer {seed['user']['token']}") as gw:
        response = await client.post(
            f"/api/v1/channels/{channel}/messages",
            json={"content": "over rest"},
            headers={"Authorization": f"Bot {seed['bot']['token']}"},
        )
        assert response.status_code == 200, response.text
        frame = await gw.recv_event("message.create", timeout_s=10)
        assert frame["data"]["content"] == "over rest"
        assert frame["data"]["channel_id"] == channel


async def test_two_hundred_clients_get_every_event_once_in_order(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    accounts = [await register(client, f"fan{i}") for i in range(10)]
    space = await create_space(server, accounts[0].id, "crowd")
    for account in accounts[1:]:
        await join_space(server, space["id"], account.id)
    events = 30
    clients: list[GatewayClient] = []
    results: dict[int, list[int]] = {}

    async def run_client(index: int, ready: trio.Event, task_status: trio.TaskStatus[None]) -> None:
        account = accounts[index % len(accounts)]
        async with connected(server.ws_url, f"Bearer {account.token}", ["messages"]) as gw:
            clients.append(gw)
            task_status.started()
            seen: list[int] = []
            seqs: list[int] = []
            while len(seen) < events:
                frame = await gw.recv_event("message.create", timeout_s=15)
                seen.append(int(frame["data"]["content"]))
                seqs.append(frame["seq"])
            assert seqs == list(range(seqs[0], seqs[0] + events))
            results[index] = seen
            await gw.expect_silence(0.2)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            ready = trio.Event()
            for index in range(200):
                await nursery.start(run_client, index, ready)
            for i in range(events):
                server.ctx.publish(msg(space["id"], space["channels"][0], str(i)))
    assert len(results) == 200
    assert all(seen == list(range(events)) for seen in results.values())
