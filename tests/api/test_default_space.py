"""ACCORD_DEFAULT_SPACE (D22a): new users join the named space; a name that matches no space is
said at start-up (D22: no silent fallback) and registration then joins no space."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import trio

from tests.support import make_settings, register, start_server


async def test_new_users_join_the_configured_space(nursery: trio.Nursery, tmp_path: Path) -> None:
    first = await start_server(nursery, make_settings(tmp_path))
    async with httpx.AsyncClient(base_url=first.url, timeout=10.0) as client:
        owner = await register(client, "owner")
        r = await client.post(
            "/api/v1/spaces", json={"name": "Lobby", "slug": "lobby"}, headers=owner.headers
        )
        assert r.status_code in (200, 201), r.text
        lobby = r.json()["data"]["id"]
    first.shutdown.set()
    await trio.sleep(0.2)
    second = await start_server(nursery, make_settings(tmp_path, ACCORD_DEFAULT_SPACE="lobby"))
    try:
        async with httpx.AsyncClient(base_url=second.url, timeout=10.0) as client:
            newcomer = await register(client, "newcomer")
            r = await client.get("/api/v1/users/@me/spaces", headers=newcomer.headers)
            assert [s["id"] for s in r.json()["data"]] == [lobby]
    finally:
        second.shutdown.set()


async def test_an_unknown_default_space_is_reported(
    nursery: trio.Nursery, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="accord"):
        server = await start_server(
            nursery, make_settings(tmp_path, ACCORD_DEFAULT_SPACE="no-such-space")
        )
    try:
        assert any("ACCORD_DEFAULT_SPACE" in r.getMessage() for r in caplog.records)
        async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as client:
            ana = await register(client, "ana")
            r = await client.get("/api/v1/users/@me/spaces", headers=ana.headers)
            assert r.json()["data"] == []
    finally:
        server.shutdown.set()
