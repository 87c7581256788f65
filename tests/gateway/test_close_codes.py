"""Every close code path (GATEWAY.md 11, D12, D12a) and bad input (the issue's list): each
answered with its code; binary frames and ops 1/8/9/10/11 before READY are ignored; the server
stays healthy for everyone else."""

from __future__ import annotations

import httpx
import pytest
import trio

from tests.gateway.client import GatewayClient, connect, connected
from tests.support import Account, ServerHandle, register

OP7 = {"op": 7, "data": {"resumable": False}}


@pytest.fixture
def server_env() -> dict[str, str]:
    return {
        "ACCORD_GATEWAY_IDENTIFY_TIMEOUT_S": "0.5",
        "ACCORD_GATEWAY_HEARTBEAT_MS": "300",
        "ACCORD_GATEWAY_INBOUND_PER_MINUTE": "20",
    }


@pytest.fixture
async def ana(client: httpx.AsyncClient) -> Account:
    return await register(client, "ana")


async def test_undecodable_before_identify_is_op7_then_4002(server: ServerHandle) -> None:
    for garbage in (
        "not json",
        "[1,2]",
        '{"op":"2"}',
        '{"op":256}',
        '{"op":1.5}',
        '{"op":2,"seq":-1}',
    ):
        async with connect(server.ws_url) as gw:
            await gw.send(garbage)
            assert await gw.closed() == (4002, [OP7]), garbage


async def test_undecodable_after_ready_is_4002(server: ServerHandle, ana: Account) -> None:
    async with connected(server.ws_url, f"Bearer {ana.token}") as gw:
        await gw.send("{nope")
        code, frames = await gw.closed()
        assert code == 4002
        assert OP7 not in frames


async def test_unknown_and_server_only_opcodes_are_4001(server: ServerHandle, ana: Account) -> None:
    for op in (99, 12, 255, 0, 4, 5, 6, 7):
        async with connected(server.ws_url, f"Bearer {ana.token}") as gw:
            await gw.send({"op": op, "data": {}})
            code, _ = await gw.closed()
            assert code == 4001, op
    async with connect(server.ws_url) as gw:
        await gw.send({"op": 99})
        assert await gw.closed() == (4001, [OP7])


async def test_identify_or_resume_twice_is_4005(server: ServerHandle, ana: Account) -> None:
    for again in (
        {"op": 2, "data": {"token": f"Bearer {ana.token}", "intents": []}},
        {"op": 3, "data": {"token": f"Bearer {ana.token}", "session_id": "1", "seq": 1}},
    ):
        async with connected(server.ws_url, f"Bearer {ana.token}") as gw:
            await gw.send(again)
            code, _ = await gw.closed()
            assert code == 4005


async def test_malformed_identify_is_op7_then_4002(server: ServerHandle) -> None:
    cases: list[object] = [
        None,
        "x",
        {"token": 5, "intents": []},
        {"intents": []},
        {"token": "Bot x", "presence": 3},
    ]
    for data in cases:
        async with connect(server.ws_url) as gw:
            await gw.send({"op": 2, "data": data})
            assert await gw.closed() == (4002, [OP7]), data


async def test_intents_that_are_not_names_are_4013(server: ServerHandle, ana: Account) -> None:
    for intents in (513, "messages", [1, 2], {"messages": True}):
        async with connect(server.ws_url) as gw:
            await gw.send({"op": 2, "data": {"token": f"Bearer {ana.token}", "intents": intents}})
            assert await gw.closed() == (4013, [OP7]), intents


async def test_missing_intents_and_unknown_names_are_accepted(
    server: ServerHandle, ana: Account
) -> None:
    async with connect(server.ws_url) as gw:
        await gw.send({"op": 2, "data": {"token": f"Bearer {ana.token}"}})
        assert (await gw.recv_until(lambda f: f.get("op") == 0))["type"] == "ready"
    async with connected(server.ws_url, f"Bearer {ana.token}", ["spaces", "sparkles", "guilds"]):
        pass


async def test_oversized_frame_is_4002(server: ServerHandle, ana: Account) -> None:
    async with connected(server.ws_url, f"Bearer {ana.token}") as gw:
        await gw.send('{"op":8,"data":{"status":"online","pad":"' + "x" * 70_000 + '"}}')
        code, _ = await gw.closed()
        assert code == 4002


async def test_flood_is_4008_but_heartbeats_are_exempt(server: ServerHandle, ana: Account) -> None:
    async with connected(server.ws_url, f"Bearer {ana.token}") as gw:
        for _ in range(50):
            await gw.send({"op": 1})
        acks = 0
        with trio.fail_after(5):
            while acks < 1:
                frame = await gw.recv()
                acks += frame == {"op": 4}
        # IDENTIFY and 19 updates fill the window of 20; the 20th update is one too many. Nothing
        # is sent after it, so no data is in flight when the server closes.
        for _ in range(20):
            await gw.send({"op": 8, "data": {"status": "online"}})
        code, _ = await gw.closed()
        assert code == 4008


async def test_identify_timeout_is_op7_then_4003(server: ServerHandle) -> None:
    async with connect(server.ws_url) as gw:
        await gw.send({"op": 99 - 90})  # op 9 before READY: ignored, not closed (D12a)
        await gw.send(b"\x00\x01binary is ignored")
        with trio.fail_after(3):
            assert await gw.closed() == (4003, [OP7])


async def test_ops_before_ready_are_ignored(server: ServerHandle, ana: Account) -> None:
    async with connect(server.ws_url) as gw:
        for op in (8, 9, 10, 11):
            await gw.send({"op": op, "data": {"space_id": "1"}})
        await gw.send(b"binary")
        ready = await gw.identify(f"Bearer {ana.token}")
        assert ready["seq"] == 1


async def test_heartbeat_silence_is_4009(server: ServerHandle, ana: Account) -> None:
    async with connected(server.ws_url, f"Bearer {ana.token}") as gw:
        assert gw.hello == {"op": 5, "data": {"heartbeat_interval": 300}}
        with trio.fail_after(4):
            code, _ = await gw.closed()
        assert code == 4009


async def test_heartbeats_keep_the_session_alive(server: ServerHandle, ana: Account) -> None:
    async with connected(server.ws_url, f"Bearer {ana.token}") as gw:
        for _ in range(8):
            await trio.sleep(0.2)
            await gw.send({"op": 1, "data": gw.last_seq})
            assert await gw.recv_until(lambda f: f.get("op") == 4) == {"op": 4}


async def _resume_unknown_session(gw: GatewayClient, ana: Account) -> None:
    """A resume with good credentials but an unknown session: answered with op 7."""
    await gw.resume(f"Bearer {ana.token}", "123", 4)
    assert await gw.recv() == OP7


async def test_unusable_resume_leaves_the_socket_open_then_4009(
    server: ServerHandle, ana: Account
) -> None:
    async with connect(server.ws_url) as gw:
        await _resume_unknown_session(gw, ana)
        with trio.fail_after(3):
            assert await gw.closed() == (4009, [])


async def test_identify_on_the_same_socket_after_a_failed_resume(
    server: ServerHandle, ana: Account
) -> None:
    async with connect(server.ws_url) as gw:
        await _resume_unknown_session(gw, ana)
        assert (await gw.identify(f"Bearer {ana.token}"))["type"] == "ready"


async def test_resume_with_bad_credentials_is_op7_then_4004(server: ServerHandle) -> None:
    async with connect(server.ws_url) as gw:
        await gw.resume("Bearer nope", "123", 4)
        assert await gw.closed() == (4004, [OP7])


async def test_bad_input_leaves_other_sessions_healthy(server: ServerHandle, ana: Account) -> None:
    async with connected(server.ws_url, f"Bearer {ana.token}") as healthy:
        async with connect(server.ws_url) as bad:
            await bad.send("\xff garbage")
            await bad.closed()
        await healthy.send({"op": 1})
        assert await healthy.recv_until(lambda f: f.get("op") == 4) == {"op": 4}
