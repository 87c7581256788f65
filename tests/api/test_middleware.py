"""Middleware behaviour that depends on configuration: CORS allow-lists, trusted proxies,
access logs that never carry secrets (D9, D19, OPERATIONS.md 5, 7)."""

from __future__ import annotations

import logging

import httpx
import pytest

from accord.http.middleware import redact_path
from tests.support import assert_error, register


class TestCorsAllowList:
    @pytest.fixture
    def server_env(self) -> dict[str, str]:
        return {"ACCORD_CORS_ORIGINS": "https://app.example"}

    async def test_only_listed_origins(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/health", headers={"Origin": "https://app.example"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        r = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


class TestTrustedProxy:
    @pytest.fixture
    def server_env(self) -> dict[str, str]:
        return {"ACCORD_TRUSTED_PROXIES": "127.0.0.1/32", "ACCORD_TEST_MODE": "false"}

    async def test_forwarded_for_keys_anonymous_buckets(self, client: httpx.AsyncClient) -> None:
        a = {"X-Forwarded-For": "198.51.100.1"}
        b = {"X-Forwarded-For": "198.51.100.2, 127.0.0.1"}
        for _ in range(70):
            await client.get("/api/v1/gateway", headers=a)
        assert_error(await client.get("/api/v1/gateway", headers=a), 429)
        assert (await client.get("/api/v1/gateway", headers=b)).status_code == 200


class TestUntrustedProxy:
    @pytest.fixture
    def server_env(self) -> dict[str, str]:
        return {"ACCORD_TEST_MODE": "false"}

    async def test_forwarded_for_is_ignored(self, client: httpx.AsyncClient) -> None:
        for i in range(70):
            await client.get("/api/v1/gateway", headers={"X-Forwarded-For": f"203.0.113.{i}"})
        r = await client.get("/api/v1/gateway", headers={"X-Forwarded-For": "203.0.113.200"})
        assert_error(r, 429)


class TestAccessLog:
    @pytest.fixture
    def server_env(self) -> dict[str, str]:
        return {"ACCORD_LOG": "accord=info"}

    async def test_one_line_per_request_without_secrets(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="accord.http.access")
        ana = await register(client, "ana", password="hunter2hunter2")
        await client.get("/api/v1/users/@me", headers=ana.headers)
        await client.post("/api/v1/invites/SECRETCODE/accept", headers=ana.headers)
        lines = [r.getMessage() for r in caplog.records if r.name == "accord.http.access"]
        assert any(line.startswith("GET /api/v1/users/@me 200") for line in lines)
        assert len([line for line in lines if "/users/@me" in line]) == 1
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert ana.token not in text
        assert "hunter2hunter2" not in text
        assert "SECRETCODE" not in text
        assert all("req=" in line for line in lines)


def test_redact_path() -> None:
    assert redact_path("/api/v1/invites/abc123/accept") == "/api/v1/invites/[redacted]/accept"
    assert (
        redact_path("/api/v1/interactions/1/tok3n/callback")
        == "/api/v1/interactions/1/[redacted]/callback"
    )
    assert redact_path("/api/v1/users/@me") == "/api/v1/users/@me"
