"""Connection-rate limit per client address on /ws (RT-48) and the bot privileged-intent
policy switch (GATEWAY.md 6, off by default)."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.client import connect
from tests.support import ServerHandle


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"ACCORD_GATEWAY_CONNECT_RATE": "3/min", "ACCORD_GATEWAY_RESTRICT_BOT_INTENTS": "true"}


async def test_too_many_connections_from_one_address_are_4008(server: ServerHandle) -> None:
    for _ in range(3):
        async with connect(server.ws_url):
            pass
    async with connect(server.ws_url, read_hello=False) as gw:
        assert await gw.closed() == (4008, [])


async def test_restricted_bots_cannot_ask_for_privileged_intents(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    seed = (await client.post("/test/seed")).json()["data"]
    async with connect(server.ws_url) as gw:
        await gw.send(
            {"op": 2, "data": {"token": f"Bot {seed['bot']['token']}", "intents": ["members"]}}
        )
        code, frames = await gw.closed()
        assert code == 4014
        assert frames == [{"op": 7, "data": {"resumable": False}}]
    async with connect(server.ws_url) as gw:
        assert (await gw.identify(f"Bot {seed['bot']['token']}", ["messages"]))["type"] == "ready"
