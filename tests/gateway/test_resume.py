"""RESUME (GATEWAY.md 10.2, D12a, D12b): parking on unclean ends, replay of missed events in
order then `resumed`, op 7 when the window or the buffer is gone, ownership checks, and the
slow consumer that is closed with 4000 and resumes."""

from __future__ import annotations

import httpx
import pytest
import trio

from accord.gateway.fanout import Gateway
from tests.gateway.client import GatewayClient, connect, connected, eventually
from tests.gateway.state import create_space
from tests.gateway.test_fanout import msg
from tests.support import ServerHandle, register

OP7 = {"op": 7, "data": {"resumable": False}}


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"ACCORD_GATEWAY_RESUME_WINDOW_S": "1.5", "ACCORD_GATEWAY_QUEUE_SIZE": "16"}


async def drop(gw: GatewayClient, code: int = 4000) -> None:
    await gw.ws.aclose(code)


async def wait_parked(server: ServerHandle, count: int = 1) -> None:
    await eventually(lambda: server.ctx.get(Gateway).stats()["parked"] >= count)


async def test_resume_replays_missed_events_in_order(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    space = await create_space(server, ana.id, "s")
    channel = space["channels"][0]
    async with connected(server.ws_url, f"Bearer {ana.token}", ["messages"]) as first:
        server.ctx.publish(msg(space["id"], channel, "seen"))
        assert (await first.recv_event("message.create"))["seq"] == 2
        session_id = first.session_id
        await drop(first, 4000)  # a 4000 close from the client parks (D12b)
    await wait_parked(server)
    for i in range(3):
        server.ctx.publish(msg(space["id"], channel, f"missed {i}"))
    async with connect(server.ws_url) as second:
        await second.resume(f"Bearer {ana.token}", session_id, 2)
        frames = [await second.recv() for _ in range(4)]
        assert [f["data"]["content"] for f in frames[:3]] == ["missed 0", "missed 1", "missed 2"]
        assert [f["seq"] for f in frames[:3]] == [3, 4, 5]
        assert frames[3] == {
            "op": 0,
            "type": "resumed",
            "seq": 5,
            "data": {"session_id": session_id, "seq": 5, "replayed": 3},
        }
        server.ctx.publish(msg(space["id"], channel, "live"))
        live = await second.recv_event("message.create")
        assert (live["seq"], live["data"]["content"]) == (6, "live")
        await second.send({"op": 1})
        assert await second.recv_until(lambda f: f.get("op") == 4) == {"op": 4}


async def test_resume_with_current_seq_replays_nothing(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    async with connected(server.ws_url, f"Bearer {ana.token}", ["messages"]) as first:
        session_id = first.session_id
        await drop(first, 4001)
    await wait_parked(server)
    async with connect(server.ws_url) as second:
        await second.resume(f"Bearer {ana.token}", session_id, 1)
        resumed = await second.recv()
        assert resumed["type"] == "resumed"
        assert resumed["data"]["replayed"] == 0


async def test_clean_close_ends_the_session(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    for code in (1000, 1001):
        async with connected(server.ws_url, f"Bearer {ana.token}") as first:
            session_id = first.session_id
            await drop(first, code)
        gone = session_id
        await eventually(lambda: gone not in server.ctx.get(Gateway).sessions)  # noqa: B023 - awaited at once
        async with connect(server.ws_url) as second:
            await second.resume(f"Bearer {ana.token}", session_id, 1)
            assert await second.recv() == OP7


async def test_parked_sessions_expire_after_the_window(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    async with connected(server.ws_url, f"Bearer {ana.token}") as first:
        session_id = first.session_id
        await drop(first)
    await wait_parked(server)
    await trio.sleep(1.8)
    async with connect(server.ws_url) as second:
        await second.resume(f"Bearer {ana.token}", session_id, 1)
        assert await second.recv() == OP7


async def test_a_foreign_session_id_neither_resumes_nor_evicts(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, eve = await register(client, "ana"), await register(client, "eve")
    async with connected(server.ws_url, f"Bearer {ana.token}") as first:
        session_id = first.session_id
        await drop(first)
    await wait_parked(server)
    async with connect(server.ws_url) as thief:
        await thief.resume(f"Bearer {eve.token}", session_id, 1)
        assert await thief.recv() == OP7
    async with connect(server.ws_url) as owner:
        await owner.resume(f"Bearer {ana.token}", session_id, 1)
        assert (await owner.recv_event("resumed"))["data"]["session_id"] == session_id


async def test_a_seq_never_issued_or_no_longer_buffered_is_refused(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    space = await create_space(server, ana.id, "s")
    async with connected(server.ws_url, f"Bearer {ana.token}", ["messages"]) as first:
        session_id = first.session_id
        await drop(first)
    await wait_parked(server)
    async with connect(server.ws_url) as second:
        await second.resume(f"Bearer {ana.token}", session_id, 99)
        assert await second.recv() == OP7
    # The refused RESUME ended the session; a new one overflows its 256-frame buffer.
    async with connected(server.ws_url, f"Bearer {ana.token}", ["messages"]) as third:
        session_id = third.session_id
        await drop(third)
    await wait_parked(server)
    for i in range(300):
        server.ctx.publish(msg(space["id"], space["channels"][0], str(i)))
    parked = server.ctx.get(Gateway).sessions[session_id]
    await eventually(lambda: parked.outbox.seq >= 301)  # the dispatcher took every event
    async with connect(server.ws_url) as fourth:
        await fourth.resume(f"Bearer {ana.token}", session_id, 1)
        assert await fourth.recv() == OP7


async def test_resume_takes_over_a_socket_that_is_still_open(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    async with (
        connected(server.ws_url, f"Bearer {ana.token}") as old,
        connect(server.ws_url) as new,
    ):
        await new.resume(f"Bearer {ana.token}", old.session_id, 1)
        assert (await new.recv_event("resumed"))["data"]["session_id"] == old.session_id
        code, _ = await old.closed()
        assert code == 4000


async def test_slow_consumer_is_closed_4000_and_resumes(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob = await register(client, "ana"), await register(client, "bob")
    space = await create_space(server, ana.id, "s")
    channel = space["channels"][0]
    big = "x" * 60_000
    async with (
        connected(server.ws_url, f"Bearer {bob.token}", ["messages"]) as bystander,
        connected(server.ws_url, f"Bearer {ana.token}", ["messages"]) as slow,
    ):
        # `slow` stops reading; the server keeps writing until socket buffers and then its
        # 16-frame queue are full, and closes it with 4000 instead of blocking anyone.
        with trio.fail_after(15):
            while server.ctx.get(Gateway).stats()["parked"] == 0:
                server.ctx.publish(msg(space["id"], channel, big))
                await trio.sleep(0.002)
        async with connected(server.ws_url, f"Bearer {ana.token}", ["messages"]) as fresh:
            server.ctx.publish(msg(space["id"], channel, "after"))
            assert (await fresh.recv_event("message.create"))["data"]["content"] == "after"
        await bystander.send({"op": 1})
        assert await bystander.recv_until(lambda f: f.get("op") == 4, timeout_s=10) == {"op": 4}
        # The slow client reads what reached it, then sees its close frame.
        code, frames = await slow.closed(timeout_s=20)
        assert code == 4000
        last = max([f["seq"] for f in frames if "seq" in f] + [slow.last_seq])
        async with connect(server.ws_url) as again:
            await again.resume(f"Bearer {ana.token}", slow.session_id, last)
            replayed = await again.recv_until(lambda f: f.get("type") == "resumed", timeout_s=10)
            assert replayed["data"]["session_id"] == slow.session_id
