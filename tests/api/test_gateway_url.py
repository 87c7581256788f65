"""Without ACCORD_PUBLIC_URL the gateway URL comes from the request's own host."""

from __future__ import annotations

import httpx

from tests.support import ServerHandle


async def test_gateway_url_from_request(server: ServerHandle, client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/gateway")
    host = server.url.removeprefix("http://")
    assert r.json() == {"data": {"url": f"ws://{host}/ws"}}
