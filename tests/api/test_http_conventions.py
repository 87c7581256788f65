"""HTTP conventions shared by every route: envelopes, framework errors, CORS, health,
gateway discovery, body limits (API.md 1, OPERATIONS.md 4, 7, 8; D5, D6, D6a, D25)."""

from __future__ import annotations

import httpx
import pytest

from tests.spaces_support import make_world, roles_by_name
from tests.support import assert_error, register


async def test_health_is_plain_ok(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.content == b"ok"
    assert r.headers["content-type"].startswith("text/plain")
    assert "x-ratelimit-limit" not in r.headers


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/v1/nope"), 404, "not_found")
    assert_error(await client.get("/nothing/here"), 404, "not_found")
    r = await client.put("/api/v1/users/@me")  # DELETE exists now (account deletion)
    assert_error(r, 405, "method_not_allowed")
    # A known path with the wrong method is rate limited; an unknown path is not.
    assert "x-ratelimit-limit" in r.headers
    assert "x-ratelimit-limit" not in (await client.get("/api/v1/nope")).headers


async def test_bad_json_wrong_type_wrong_shape(client: httpx.AsyncClient) -> None:
    url = "/api/v1/auth/register"
    json_type = {"Content-Type": "application/json"}
    assert_error(
        await client.post(url, content=b"{not json", headers=json_type), 400, "invalid_request"
    )
    assert_error(
        await client.post(url, content=b'{"username":"a"}', headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    assert_error(await client.post(url, content=b'{"username":"a"}'), 415)
    assert_error(
        await client.post(url, content=b"[1,2]", headers=json_type), 422, "invalid_request"
    )
    assert_error(await client.post(url, content=b'"str"', headers=json_type), 422)
    error = assert_error(await client.post(url, json={"username": "a", "password": 12345678}), 422)
    assert error["details"] == {"field": "password"}
    assert error["message"].startswith("password:")
    # A required body that is empty is a 400 (bad JSON), not a 500.
    assert_error(await client.post(url, content=b"", headers=json_type), 400)
    # application/*+json is JSON too.
    r = await client.post(
        url,
        content=b'{"username":"vendor","password":"password1"}',
        headers={"Content-Type": "application/vnd.accord+json"},
    )
    assert r.status_code == 200


async def test_empty_body_with_json_type_where_body_is_optional(client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana")
    headers = {**ana.headers, "Content-Type": "application/json"}
    r = await client.patch("/api/v1/users/@me", content=b"", headers=headers)
    assert r.status_code == 200
    assert r.json()["data"]["username"] == "ana"
    # Routes without a body ignore a JSON content type with an empty body (CLIENT.md 2).
    r = await client.get("/api/v1/users/@me", headers=headers)
    assert r.status_code == 200
    r = await client.post("/api/v1/auth/logout", content=b"", headers=headers)
    assert r.status_code == 200


# httpx leaves its request-body iterator unfinished when the server answers 413 early.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_body_over_two_mib_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"username":"' + b"a" * (2 * 1024 * 1024 + 10) + b'","password":"password1"}'
    r = await client.post(
        "/api/v1/auth/register", content=big, headers={"Content-Type": "application/json"}
    )
    assert_error(r, 413, "payload_too_large")


async def test_unknown_fields_are_ignored(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/auth/register",
        json={"username": "ana", "password": "password1", "favourite": "colour"},
    )
    assert r.status_code == 200


async def test_cors_on_responses_and_preflight(client: httpx.AsyncClient) -> None:
    r = await client.get("/health", headers={"Origin": "http://example.test"})
    assert r.headers["access-control-allow-origin"] == "*"
    r = await client.get("/api/v1/users/@me", headers={"Origin": "http://example.test"})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-expose-headers"] == "*"
    r = await client.options(
        "/api/v1/users/@me",
        headers={
            "Origin": "http://example.test",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-methods"] == "*"
    assert r.headers["access-control-allow-headers"] == "*"
    assert "x-ratelimit-limit" not in r.headers
    # Preflights to paths that do not exist are still answered (never routed).
    r = await client.options(
        "/api/v1/whatever",
        headers={"Origin": "http://x", "Access-Control-Request-Method": "GET"},
    )
    assert r.status_code == 200


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"ACCORD_PUBLIC_URL": "https://chat.example.test"}


async def test_gateway_discovery_advertises_public_url(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/gateway")
    assert r.status_code == 200
    assert r.json() == {"data": {"url": "wss://chat.example.test/ws"}}
    assert_error(await client.get("/api/v1/gateway/bot"), 401, "unauthorized")
    ana = await register(client, "ana")
    r = await client.get("/api/v1/gateway/bot", headers=ana.headers)
    data = r.json()["data"]
    assert data["url"] == "wss://chat.example.test/ws"
    assert data["shards"] == 1
    assert data["session_start_limit"]["max_concurrency"] == 1


async def test_permission_comes_before_body_validation(client: httpx.AsyncClient) -> None:
    """API.md 3 "Checks (in evaluation order)": a caller without the permission gets 403 even
    when the body (or an id inside the path) is invalid; the owner sees the validation error."""
    w = await make_world(client)
    roles = await roles_by_name(client, w.owner, w.space_id)
    space = f"/api/v1/spaces/{w.space_id}"
    channel = f"/api/v1/channels/{w.general['id']}"
    role = f"{space}/roles/{roles['Moderator']['id']}"
    overwrite = {"type": "role", "allow": [], "deny": []}
    cases: list[tuple[str, str, object, int]] = [
        ("PUT", f"{channel}/permissions/{w.space_id}", {}, 422),
        ("PUT", f"{channel}/permissions/{w.space_id}", {**overwrite, "type": "x"}, 400),
        ("PUT", f"{channel}/permissions/not-an-id", overwrite, 404),
        ("POST", f"{space}/emojis", {"name": "no-hyphens", "image": "x"}, 400),
        ("POST", f"{space}/emojis", {}, 422),
        ("PATCH", f"{space}/emojis/12345", {"name": "no-hyphens"}, 400),
        ("POST", f"{space}/roles", {"name": "r", "color": -1}, 400),
        ("POST", f"{space}/roles", {"name": 5}, 422),
        ("PATCH", role, {"permissions": ["no_such_permission"]}, 400),
        ("PATCH", role, {"hoist": "yes"}, 422),
        ("PATCH", f"{space}/roles", [{"id": "x", "position": 1}], 404),
        ("POST", f"{space}/channels", {"name": "c", "type": "hologram"}, 400),
        ("POST", f"{space}/channels", {}, 422),
        ("PATCH", channel, {"rate_limit": -1}, 400),
        ("PATCH", channel, {"position": "top"}, 422),
        ("PATCH", f"{space}/channels", [{"id": w.general["id"]}], 422),
        ("PATCH", space, {"afk_timeout": -5}, 400),
        ("PATCH", space, {"public": "yes"}, 422),
    ]
    for method, url, body, invalid_status in cases:
        r = await client.request(method, url, json=body, headers=w.member.headers)
        error = assert_error(r, 403, "forbidden")
        assert error["message"].startswith("missing permission: "), (method, url, body)
        r = await client.request(method, url, json=body, headers=w.owner.headers)
        assert r.status_code == invalid_status, (method, url, body, r.text)
    # DELETE of an emoji is idempotent; a malformed id is no exception to the permission.
    r = await client.delete(f"{space}/emojis/not-an-id", headers=w.member.headers)
    assert_error(r, 403, "forbidden")
    r = await client.delete(f"{space}/emojis/not-an-id", headers=w.owner.headers)
    assert r.json() == {"data": None}
