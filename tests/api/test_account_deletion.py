"""Deleting one's own account (`DELETE /users/@me`, G-35): password required, refused while
owning spaces, the user anonymised (messages keep a "Deleted User" author), memberships ended
with their events, tokens revoked and the login gone."""

from __future__ import annotations

import httpx
import pytest

from tests.spaces_support import controls, drain, events, make_world, next_event
from tests.support import ServerHandle, assert_error, enable_mfa, register


async def test_delete_account(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    me = "/api/v1/users/@me"
    m = w.member.headers
    r = await client.patch(me, json={"bio": "hello", "display_name": "Mem"}, headers=m)
    assert r.status_code == 200, r.text
    messages = f"/api/v1/channels/{w.general['id']}/messages"
    sent = (await client.post(messages, json={"content": "bye"}, headers=m)).json()["data"]
    second = await client.post(
        "/api/v1/auth/login", json={"username": "member", "password": "correct horse"}
    )
    other_token = second.json()["data"]["token"]

    # The password is required and checked.
    assert_error(await client.request("DELETE", me, headers=m), 400)
    r = await client.request("DELETE", me, json={"password": "wrong password"}, headers=m)
    assert_error(r, 403)
    assert_error(await client.request("DELETE", me, json={"password": 5}, headers=m), 422)
    # An owner must hand over or delete their spaces first.
    r = await client.request(
        "DELETE", me, json={"password": "correct horse"}, headers=w.owner.headers
    )
    assert "space" in assert_error(r, 400)["message"]
    assert (await client.get(me, headers=m)).status_code == 200  # nothing happened yet

    r = await client.get("/api/v1/users/@me/spaces", headers=m)
    spaces = {space["id"] for space in r.json()["data"]}  # the test space and the default one
    assert w.space_id in spaces
    with server.ctx.bus.subscribed() as sub:
        r = await client.request("DELETE", me, json={"password": "correct horse"}, headers=m)
        assert r.status_code == 200, r.text
        update = await next_event(sub, "user.update")
        items = drain(sub)
    assert update.data["username"] == f"deleted-user-{w.member.id}"
    assert update.space_ids == {int(s) for s in spaces}
    left = events(items, "member.leave")
    assert {e.data["space_id"] for e in left} == spaces
    assert {e.data["user_id"] for e in left} == {w.member.id}
    notices = controls(items, "membership_changed")
    assert {(c.user_id, c.space_id) for c in notices} == {
        (int(w.member.id), int(s)) for s in spaces
    }
    revoked = controls(items, "token_revoked")
    assert len(revoked) == 2  # both of the member's tokens, so their sessions close

    # Tokens no longer work, and the password no longer logs in.
    assert_error(await client.get(me, headers=m), 401)
    assert_error(await client.get(me, headers={"Authorization": f"Bearer {other_token}"}), 401)
    r = await client.post(
        "/api/v1/auth/login", json={"username": "member", "password": "correct horse"}
    )
    assert_error(r, 401)
    # The user is anonymised, and so is the author of their messages.
    r = await client.get(f"/api/v1/users/{w.member.id}", headers=w.owner.headers)
    user = r.json()["data"]
    assert user["username"] == f"deleted-user-{w.member.id}"
    assert user["display_name"] == "Deleted User"
    assert (user["bio"], user["avatar"], user["banner"]) == (None, None, None)
    r = await client.get(f"{messages}/{sent['id']}", headers=w.owner.headers)
    message = r.json()["data"]
    assert message["content"] == "bye"
    assert message["author"]["username"] == f"deleted-user-{w.member.id}"
    r = await client.get(f"/api/v1/spaces/{w.space_id}/members", headers=w.owner.headers)
    assert w.member.id not in [m["user_id"] for m in r.json()["data"]]
    # The name is free again.
    again = await register(client, "member")
    assert again.id != w.member.id


async def test_owner_can_delete_after_transferring(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    await client.post(
        f"/api/v1/spaces/{w.space_id}/transfer",
        json={"owner_id": w.member.id},
        headers=w.owner.headers,
    )
    r = await client.request(
        "DELETE", "/api/v1/users/@me", json={"password": "correct horse"}, headers=w.owner.headers
    )
    assert r.status_code == 200, r.text
    r = await client.get(f"/api/v1/spaces/{w.space_id}", headers=w.member.headers)
    assert r.json()["data"]["owner_id"] == w.member.id


async def test_bots_cannot_delete_themselves(client: httpx.AsyncClient) -> None:
    seed = (await client.post("/test/seed")).json()["data"]
    bot = {"Authorization": f"Bot {seed['bot']['token']}"}
    assert_error(await client.request("DELETE", "/api/v1/users/@me", headers=bot), 403)
    assert_error(await client.request("DELETE", "/api/v1/users/@me"), 401)


async def test_two_factor_code_is_required(server: ServerHandle, client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana", password="password1")
    totp, backup_codes = await enable_mfa(server, client, ana.headers)
    me = "/api/v1/users/@me"
    body = {"password": "password1"}
    r = await client.request("DELETE", me, json=body, headers=ana.headers)
    assert "two-factor" in assert_error(r, 400)["message"]
    r = await client.request("DELETE", me, json={**body, "code": "000000"}, headers=ana.headers)
    assert_error(r, 403)
    r = await client.request("DELETE", me, json={**body, "code": 123456}, headers=ana.headers)
    assert_error(r, 422)
    assert (await client.get(me, headers=ana.headers)).status_code == 200  # nothing happened
    # A backup code does it (as it would sign in).
    r = await client.request(
        "DELETE", me, json={**body, "code": backup_codes[0]}, headers=ana.headers
    )
    assert r.status_code == 200, r.text
    assert_error(await client.get(me, headers=ana.headers), 401)
    assert totp.now()  # the TOTP secret was valid; deletion also removed it


async def test_the_users_bots_stop_working(server: ServerHandle, client: httpx.AsyncClient) -> None:
    ana = await register(client, "ana", password="password1")
    r = await client.post("/api/v1/applications", json={"name": "Helper"}, headers=ana.headers)
    assert r.status_code in (200, 201), r.text
    bot = {"Authorization": f"Bot {r.json()['data']['token']}"}
    assert (await client.get("/api/v1/users/@me", headers=bot)).status_code == 200
    with server.ctx.bus.subscribed() as sub:
        r = await client.request(
            "DELETE", "/api/v1/users/@me", json={"password": "password1"}, headers=ana.headers
        )
        assert r.status_code == 200, r.text
        items = drain(sub)
    # Both the user's token and the bot's are revoked, so every session they opened closes.
    assert len(controls(items, "token_revoked")) == 2
    assert_error(await client.get("/api/v1/users/@me", headers=bot), 401)


class TestWrongPasswordIsRateLimited:
    @pytest.fixture
    def server_env(self) -> dict[str, str]:
        return {"ACCORD_AUTH_IP_RATE": "3/min"}

    async def test_limited(self, client: httpx.AsyncClient) -> None:
        ana = await register(client, "ana", password="password1")
        me = "/api/v1/users/@me"
        for _ in range(3):
            r = await client.request("DELETE", me, json={"password": "guess"}, headers=ana.headers)
            assert_error(r, 403)
        r = await client.request("DELETE", me, json={"password": "password1"}, headers=ana.headers)
        assert_error(r, 429, "rate_limited")
        # Only the password check is limited: reading the profile still works.
        assert (await client.get(me, headers=ana.headers)).status_code == 200
