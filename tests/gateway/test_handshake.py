"""HELLO, IDENTIFY and READY (GATEWAY.md 4, 15; D12e), heartbeats (5) and the plain-HTTP
answers of /ws (1)."""

from __future__ import annotations

import httpx
import trio

from tests.gateway.client import connect, connected
from tests.support import ServerHandle, register


async def test_hello_identify_ready_and_heartbeat(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    async with connect(server.ws_url) as gw:
        assert gw.hello == {"op": 5, "data": {"heartbeat_interval": 45000}}
        ready = await gw.identify(f"Bearer {ana.token}")
        assert ready["op"] == 0 and ready["seq"] == 1
        data = ready["data"]
        assert data["user_id"] == ana.id
        assert data["user"]["id"] == ana.id and data["user"]["username"] == "ana"
        assert isinstance(data["session_id"], str) and data["session_id"].isdigit()
        assert all(isinstance(s, str) for s in data["spaces"]) and len(data["spaces"]) == 1
        await gw.send({"op": 1, "data": 1})
        assert await gw.recv_until(lambda f: f.get("type") != "presence.update") == {"op": 4}
        await gw.ws.aclose(1000)
