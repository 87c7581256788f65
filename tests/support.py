"""Test helpers shared by every test package: settings, server start-up, accounts, asserts.

async def test_x(server, client):
    ana = await register(client, "ana")
    r = await client.get("/api/v1/users/@me", headers=ana.headers)
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import httpx
import pyotp
import trio

from accord.app import RunningServer, run_server
from accord.config import Settings, load_settings
from accord.services.mfa import MfaService

_names = itertools.count(1)


def make_settings(tmp_path: Path, **env: str) -> Settings:
    """Settings for a test server: loopback, port 0, files under tmp_path, fast timers."""
    base = {
        "ACCORD_BIND": "127.0.0.1",
        "PORT": "0",
        "DATABASE_URL": f"sqlite:{tmp_path}/accord.db",
        "ACCORD_STORAGE_DIR": str(tmp_path / "files"),
        "ACCORD_LOG": "accord=warning,hypercorn=warning",
        "ACCORD_TEST_MODE": "true",
    }
    base.update(env)
    return load_settings(base)


@dataclasses.dataclass
class ServerHandle:
    running: RunningServer
    shutdown: trio.Event

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    @property
    def ctx(self) -> Any:
        return self.running.ctx


async def start_server(
    nursery: trio.Nursery, settings: Settings, *, graceful_timeout_s: float = 1.0
) -> ServerHandle:
    shutdown = trio.Event()
    running = await nursery.start(
        lambda task_status: run_server(
            settings,
            shutdown=shutdown,
            graceful_timeout_s=graceful_timeout_s,
            task_status=task_status,
        )
    )
    return ServerHandle(running, shutdown)


@dataclasses.dataclass
class Account:
    id: str
    username: str
    token: str
    user: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register(
    client: httpx.AsyncClient, username: str | None = None, password: str = "correct horse"
) -> Account:
    """Register a user through the API and return its id, token and headers."""
    name = username or f"user{next(_names)}"
    response = await client.post(
        "/api/v1/auth/register", json={"username": name, "password": password}
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    return Account(data["user"]["id"], name, data["token"], data["user"])


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert the contract's error envelope (D6) and return the error object."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


T0 = 1_800_000_000.0  # a fixed instant, on a 30 s step boundary (two-factor tests)


async def enable_mfa(
    server: ServerHandle, client: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[pyotp.TOTP, list[str]]:
    """Turn on TOTP for the caller with MfaService's clock pinned at T0; (totp, backup codes)."""
    mfa = server.ctx.get(MfaService)
    mfa.clock = lambda: T0
    r = await client.post("/api/v1/auth/2fa/enable", headers=headers, json={})
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["uri"].startswith("otpauth://totp/Accord:")
    totp = pyotp.TOTP(data["secret"])
    # Not active until verified: login needs no code yet.
    r = await client.post("/api/v1/auth/2fa/verify", headers=headers, json={"code": "000000"})
    assert_error(r, 400, "invalid_request")
    r = await client.post("/api/v1/auth/2fa/verify", headers=headers, json={"code": totp.at(T0)})
    assert r.status_code == 200
    codes = r.json()["data"]["backup_codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    return totp, codes
