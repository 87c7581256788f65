"""Shared fixtures: a real server (hypercorn on 127.0.0.1:0, SQLite file in tmp_path) and an
HTTP client that talks to it. Helpers (register, assert_error, ...) live in tests/support.py.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.support import ServerHandle, make_settings, start_server


@pytest.fixture
def server_env() -> dict[str, str]:
    """Extra environment for the `server` fixture; override in a test module to change it."""
    return {}


@pytest.fixture
async def server(
    nursery: trio.Nursery, tmp_path: Path, server_env: dict[str, str]
) -> AsyncIterator[ServerHandle]:
    handle = await start_server(nursery, make_settings(tmp_path, **server_env))
    yield handle
    handle.shutdown.set()


@pytest.fixture
async def client(server: ServerHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as http:
        yield http


# Keep subprocess-spawning tests from inheriting a developer's configuration.
for _name in list(os.environ):
    if _name.startswith("ACCORD_") or _name in ("PORT", "DATABASE_URL", "RUST_LOG"):
        del os.environ[_name]
