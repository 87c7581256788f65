"""Per-user and per-session limits of the gateway: at most ACCORD_GATEWAY_MAX_SESSIONS_PER_USER
open or parked sessions (RT-48, one more IDENTIFY is closed 4008) and op 9's own rate bucket
(RT-21, excess updates dropped like excess op 11)."""

from __future__ import annotations

import contextlib

import httpx
import pytest
import trio

from accord.gateway.fanout import Gateway
from accord.gateway.protocol import VOICE_STATE_BURST
from tests.gateway.client import connect, connected, eventually
from tests.gateway.test_voice_and_shutdown import RecordingVoice
from tests.support import ServerHandle, register


@pytest.fixture
def server_env() -> dict[str, str]:
    return {
        "ACCORD_GATEWAY_MAX_SESSIONS_PER_USER": "3",
        "ACCORD_GATEWAY_RESUME_WINDOW_S": "1",
        "ACCORD_GATEWAY_CONNECT_RATE": "100000/min",
    }


def parked(server: ServerHandle) -> int:
    return int(server.ctx.get(Gateway).stats()["parked"])


async def test_identify_beyond_the_per_user_cap_is_4008(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob = await register(client, "ana"), await register(client, "bob")
    token = f"Bearer {ana.token}"
    async with contextlib.AsyncExitStack() as stack:
        live = [await stack.enter_async_context(connected(server.ws_url, token)) for _ in range(2)]
        async with connected(server.ws_url, token) as third:
            await third.ws.aclose(4000)  # parked: still counts (RT-48)
        await eventually(lambda: parked(server) == 1)

        async with connect(server.ws_url) as fourth:
            await fourth.send({"op": 2, "data": {"token": token, "intents": []}})
            assert await fourth.closed() == (4008, [])
        # Other users are not affected, and the refused IDENTIFY left no session behind.
        async with connected(server.ws_url, f"Bearer {bob.token}") as other:
            assert other.ready is not None
        assert len(server.ctx.get(Gateway).users[int(ana.id)].sessions) == 3

        # The parked session expires (1 s window): its slot is free again.
        await eventually(lambda: parked(server) == 0)
        async with connected(server.ws_url, token) as again:
            assert again.ready is not None
            # At the cap again: closing one of the live sockets cleanly frees a slot.
            await live[0].ws.aclose(1000)
            await eventually(lambda: len(server.ctx.get(Gateway).users[int(ana.id)].sessions) == 2)
            async with connected(server.ws_url, token) as last:
                assert last.ready is not None


async def test_voice_state_updates_have_their_own_bucket(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    voice = RecordingVoice()
    server.ctx.voice = voice
    ana = await register(client, "ana")
    async with connected(server.ws_url, f"Bearer {ana.token}") as gw:
        burst = int(VOICE_STATE_BURST)
        for i in range(burst + 5):
            await gw.send({"op": 9, "data": {"space_id": "1", "channel_id": "2", "n": i}})
        await gw.send({"op": 1, "data": None})
        assert (await gw.recv_until(lambda f: f.get("op") == 4)) == {"op": 4}
        await voice.wait_for(burst + 1)  # the held-back one comes ~2 s later
        await trio.sleep(0.3)
        states = [detail["n"] for name, _, detail in voice.calls if name == "state"]
        # The burst at once, then only the latest of the rest (a flood can't leave the
        # server on a stale state, and can't make it do more work either).
        assert states == [*range(burst), burst + 4]
        assert not gw.ws.closed  # dropped, not closed (like op 11, D13a)
