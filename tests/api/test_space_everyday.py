"""Everyday space endpoints (G-35): leaving a space, ownership transfer, editing an invite and
previewing one before joining."""

from __future__ import annotations

import httpx

from tests.spaces_support import (
    controls,
    create_space,
    drain,
    join_by_invite,
    make_world,
    next_event,
    roles_by_name,
)
from tests.support import ServerHandle, assert_error


async def test_leave_publishes_events_and_the_owner_must_transfer_first(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    me = f"/api/v1/spaces/{w.space_id}/members/@me"
    error = assert_error(await client.delete(me, headers=w.owner.headers), 403, "forbidden")
    assert "transfer ownership first" in error["message"]
    assert_error(await client.delete(me, headers=w.other.headers), 403)
    with server.ctx.bus.subscribed() as sub:
        r = await client.delete(me, headers=w.member.headers)
        assert r.status_code == 200, r.text
        left = await next_event(sub, "member.leave")
        items = drain(sub)
    assert left.data["user_id"] == w.member.id
    assert left.data["space_id"] == w.space_id
    assert int(w.member.id) in left.user_ids  # the leaver's own sessions hear it too
    notices = controls(items, "membership_changed")
    assert [(n.user_id, n.space_id) for n in notices] == [(int(w.member.id), int(w.space_id))]
    r = await client.get(f"/api/v1/spaces/{w.space_id}/members", headers=w.member.headers)
    assert_error(r, 403)


async def test_transfer_ownership(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    base = f"/api/v1/spaces/{w.space_id}"
    transfer = f"{base}/transfer"
    # Only the owner, only to a member; bad bodies are refused.
    assert_error(
        await client.post(transfer, json={"owner_id": w.member.id}, headers=w.member.headers),
        403,
    )
    r = await client.post(transfer, json={"owner_id": w.other.id}, headers=w.owner.headers)
    assert assert_error(r, 400)["details"] == {"field": "owner_id"}
    assert_error(await client.post(transfer, json={}, headers=w.owner.headers), 422)
    assert_error(await client.post(transfer, json={"owner_id": "x"}, headers=w.owner.headers), 400)
    assert_error(
        await client.post(
            "/api/v1/spaces/123/transfer", json={"owner_id": w.member.id}, headers=w.owner.headers
        ),
        404,
    )
    # Self-transfer is a no-op.
    r = await client.post(transfer, json={"owner_id": w.owner.id}, headers=w.owner.headers)
    assert r.json()["data"]["owner_id"] == w.owner.id

    with server.ctx.bus.subscribed() as sub:
        r = await client.post(transfer, json={"owner_id": w.member.id}, headers=w.owner.headers)
        assert r.status_code == 200, r.text
        updated = await next_event(sub, "space.update")
        items = drain(sub)
    assert r.json()["data"]["owner_id"] == w.member.id
    assert updated.data["owner_id"] == w.member.id
    assert controls(items, "permissions_changed")
    # The new owner holds every permission (may rename and delete); the old owner keeps the
    # Admin role they had but no longer owns the space.
    r = await client.patch(base, json={"name": "Now mine"}, headers=w.member.headers)
    assert r.status_code == 200, r.text
    roles = await roles_by_name(client, w.owner, w.space_id)
    r = await client.get(f"{base}/members/{w.owner.id}", headers=w.owner.headers)
    assert roles["Admin"]["id"] in r.json()["data"]["roles"]
    assert_error(await client.delete(base, headers=w.owner.headers), 403)
    # The old owner may now leave; the new one may not.
    assert_error(await client.delete(f"{base}/members/@me", headers=w.member.headers), 403)
    r = await client.delete(f"{base}/members/@me", headers=w.owner.headers)
    assert r.status_code == 200, r.text


async def test_owner_id_in_patch_transfers_too(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    base = f"/api/v1/spaces/{w.space_id}"
    r = await client.patch(
        base, json={"owner_id": w.other.id, "name": "X"}, headers=w.owner.headers
    )
    assert_error(r, 400)
    r = await client.get(base, headers=w.owner.headers)
    assert r.json()["data"]["name"] == "Test Space"  # nothing half-applied
    r = await client.patch(
        base, json={"owner_id": w.member.id, "description": "handed over"}, headers=w.owner.headers
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["owner_id"], data["description"]) == (w.member.id, "handed over")
    # A manager who is not the owner cannot hand the space away.
    r = await client.patch(base, json={"owner_id": w.owner.id}, headers=w.owner.headers)
    assert_error(r, 403)


async def test_edit_invite(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    r = await client.post(
        f"/api/v1/spaces/{w.space_id}/invites", json={"max_age": 60}, headers=w.member.headers
    )
    invite = r.json()["data"]
    url = f"/api/v1/invites/{invite['code']}"
    assert invite["expires_at"] is not None
    with server.ctx.bus.subscribed() as sub:
        r = await client.patch(
            url, json={"max_uses": 3, "max_age": 0, "temporary": True}, headers=w.member.headers
        )
        assert r.status_code == 200, r.text
        updated = await next_event(sub, "invite.update")
    edited = r.json()["data"]
    assert (edited["max_uses"], edited["max_age"], edited["expires_at"], edited["temporary"]) == (
        3,
        None,
        None,
        True,
    )
    assert updated.data == edited
    assert edited["code"] == invite["code"]
    assert edited["created_at"] == invite["created_at"]
    # max_age counts from creation; null and 0 both mean unlimited (D-inv).
    r = await client.patch(url, json={"max_age": 3600, "max_uses": None}, headers=w.owner.headers)
    edited = r.json()["data"]
    assert edited["max_age"] == 3600
    assert edited["max_uses"] is None
    assert edited["expires_at"] > edited["created_at"]
    # An empty edit changes nothing.
    r = await client.patch(url, json={}, headers=w.owner.headers)
    assert r.json()["data"] == edited
    # Others need manage_channels / manage_space; bad values are refused.
    assert_error(await client.patch(url, json={"max_uses": 1}, headers=w.other.headers), 403)
    await join_by_invite(client, w.owner, w.other, w.space_id)
    assert_error(await client.patch(url, json={"max_uses": 1}, headers=w.other.headers), 403)
    assert_error(await client.patch(url, json={"max_uses": -1}, headers=w.owner.headers), 400)
    assert_error(await client.patch(url, json={"max_age": "1"}, headers=w.owner.headers), 422)
    assert_error(await client.patch(url, json=[], headers=w.owner.headers), 422)
    assert_error(
        await client.patch("/api/v1/invites/nothing1", json={}, headers=w.owner.headers), 404
    )
    # Shrinking max_uses to what is already used makes the invite unusable.
    r = await client.patch(url, json={"max_uses": 1}, headers=w.owner.headers)
    assert r.status_code == 200
    stranger = await client.post(
        "/api/v1/auth/register", json={"username": "late", "password": "password1"}
    )
    late = {"Authorization": f"Bearer {stranger.json()['data']['token']}"}
    r = await client.post(f"{url}/accept", headers=late)
    assert r.status_code == 200, r.text  # first use
    r = await client.post(f"/api/v1/invites/{invite['code']}/accept", headers=w.root.headers)
    assert_error(r, 400)


async def test_invite_preview_shows_the_space_without_joining(
    client: httpx.AsyncClient,
) -> None:
    w = await make_world(client)
    space = await create_space(client, w.owner, "Preview Me", description="come in")
    r = await client.post(f"/api/v1/spaces/{space['id']}/invites", json={}, headers=w.owner.headers)
    code = r.json()["data"]["code"]
    r = await client.get(f"/api/v1/invites/{code}", headers=w.other.headers)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["code"] == code
    assert data["space_id"] == space["id"]
    assert data["uses"] == 0
    assert isinstance(data["temporary"], bool)
    assert isinstance(data["created_at"], str)
    preview = data["space"]
    assert preview["id"] == space["id"]
    assert preview["name"] == "Preview Me"
    assert preview["description"] == "come in"
    assert preview["icon"] is None
    assert preview["member_count"] == 1
    assert preview["approximate_member_count"] == 1
    assert data["approximate_member_count"] == 1
    assert data["inviter"]["id"] == w.owner.id
    # Previewing did not join; accepting does, and the count follows.
    r = await client.get(f"/api/v1/spaces/{space['id']}/channels", headers=w.other.headers)
    assert_error(r, 403)
    await client.post(f"/api/v1/invites/{code}/accept", headers=w.other.headers)
    r = await client.get(f"/api/v1/invites/{code}", headers=w.member.headers)
    assert r.json()["data"]["space"]["member_count"] == 2
    assert_error(await client.get(f"/api/v1/invites/{code}"), 401)
