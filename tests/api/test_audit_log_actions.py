"""Audit entries for every moderation and admin action (CLIENT.md 4.15, G-35): each action
writes one entry in its own transaction, with actor, target, action type, before/after changes
and the `X-Audit-Log-Reason`; a refused action writes nothing; `audit_log.create` follows."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from accord.times import ts_after
from tests.api.messaging import data_uri, png_bytes
from tests.spaces_support import World, join_by_invite, make_world, next_event, roles_by_name
from tests.support import Account, ServerHandle, assert_error


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"ACCORD_RATE_LIMIT": "1000/s"}


def _reason(text: str, who: Account) -> dict[str, str]:
    return {**who.headers, "X-Audit-Log-Reason": text}


async def _log(
    client: httpx.AsyncClient, w: World, *, after: int = 0, who: Account | None = None
) -> list[dict[str, Any]]:
    """The space's entries newer than the entry id `after`, newest first."""
    r = await client.get(f"/api/v1/spaces/{w.space_id}/audit-log", headers=(who or w.owner).headers)
    assert r.status_code == 200, r.text
    return [e for e in r.json()["data"] if int(e["id"]) > after]


async def _mark(client: httpx.AsyncClient, w: World) -> int:
    """The newest entry id so far (make_world's invite wrote one)."""
    entries = await _log(client, w)
    return max((int(e["id"]) for e in entries), default=0)


def _changes(entry: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {c["key"]: (c["old_value"], c["new_value"]) for c in entry["changes"]}


async def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_space_channel_overwrite_and_role_actions(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await make_world(client)
    o = w.owner.headers
    base = f"/api/v1/spaces/{w.space_id}"
    mark = await _mark(client, w)
    with server.ctx.bus.subscribed() as sub:
        await _ok(
            await client.patch(base, json={"name": "Renamed"}, headers=_reason("tidy", w.owner))
        )
        published = await next_event(sub, "audit_log.create")
    assert published.space_id == int(w.space_id)
    assert published.data["action_type"] == "space_update"
    channel = await _ok(
        await client.post(f"{base}/channels", json={"name": "news", "topic": "t"}, headers=o)
    )
    cid = channel["id"]
    await _ok(await client.patch(f"/api/v1/channels/{cid}", json={"topic": "new"}, headers=o))
    await _ok(await client.patch(f"/api/v1/channels/{cid}", json={"topic": "new"}, headers=o))
    ow = f"/api/v1/channels/{cid}/permissions/{w.space_id}"
    await _ok(
        await client.put(
            ow, json={"type": "role", "allow": [], "deny": ["send_messages"]}, headers=o
        )
    )
    await _ok(
        await client.put(
            ow,
            json={"type": "role", "allow": ["add_reactions"], "deny": ["send_messages"]},
            headers=o,
        )
    )
    await _ok(await client.delete(ow, headers=o))
    await _ok(await client.delete(ow, headers=o))  # nothing left: no entry
    role = await _ok(
        await client.post(
            f"{base}/roles", json={"name": "Helpers", "permissions": ["kick_members"]}, headers=o
        )
    )
    await _ok(await client.patch(f"{base}/roles/{role['id']}", json={"color": 255}, headers=o))
    member_role = f"{base}/members/{w.member.id}/roles/{role['id']}"
    await _ok(await client.put(member_role, headers=o))
    await _ok(await client.put(member_role, headers=o))  # already held: no entry
    await _ok(await client.delete(member_role, headers=o))
    await _ok(await client.delete(f"{base}/roles/{role['id']}", headers=o))
    await _ok(await client.delete(f"/api/v1/channels/{cid}", headers=o))

    entries = await _log(client, w, after=mark)
    assert [e["action_type"] for e in entries] == [
        "channel_delete",
        "role_delete",
        "member_role_update",
        "member_role_update",
        "role_update",
        "role_create",
        "channel_overwrite_delete",
        "channel_overwrite_update",
        "channel_overwrite_create",
        "channel_update",
        "channel_create",
        "space_update",
    ]
    assert all(e["user_id"] == w.owner.id for e in entries)
    by_type = {e["action_type"]: e for e in reversed(entries)}
    space = by_type["space_update"]
    assert (space["target_id"], space["target_type"], space["reason"]) == (
        w.space_id,
        "space",
        "tidy",
    )
    assert _changes(space) == {"name": ("Test Space", "Renamed")}
    created = by_type["channel_create"]
    assert (created["target_id"], created["target_type"]) == (cid, "channel")
    assert _changes(created)["name"] == (None, "news")
    assert _changes(by_type["channel_update"]) == {"topic": ("t", "new")}
    assert _changes(by_type["channel_delete"])["name"] == ("news", None)
    overwrite = _changes(by_type["channel_overwrite_update"])["permission_overwrite"]
    assert overwrite[0]["allow"] == []
    assert overwrite[1] == {
        "id": w.space_id,
        "type": "role",
        "allow": ["add_reactions"],
        "deny": ["send_messages"],
    }
    assert _changes(by_type["channel_overwrite_delete"])["permission_overwrite"][1] is None
    assert _changes(by_type["role_create"])["permissions"] == (None, ["kick_members"])
    assert _changes(by_type["role_update"]) == {"color": (0, 255)}
    assert by_type["role_delete"]["target_id"] == role["id"]
    assign, unassign = entries[3], entries[2]
    assert (assign["target_id"], assign["target_type"]) == (w.member.id, "user")
    assert _changes(assign) == {"roles": ([], [role["id"]])}
    assert _changes(unassign) == {"roles": ([role["id"]], [])}


async def test_member_ban_invite_emoji_and_message_actions(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    o = w.owner.headers
    base = f"/api/v1/spaces/{w.space_id}"
    member = f"{base}/members/{w.member.id}"
    mark = await _mark(client, w)
    await _ok(await client.patch(member, json={"nick": "Mo"}, headers=o))
    await _ok(await client.patch(f"{base}/members/@me", json={"nick": "Boss"}, headers=o))
    until = "2099-01-01T00:00:00"
    r = await client.patch(member, json={"timed_out_until": until}, headers=o)
    assert_error(r, 400)  # more than 28 days ahead: refused, nothing written
    soon = ts_after(3600)
    await _ok(
        await client.patch(
            member, json={"timed_out_until": soon}, headers=_reason("cool%20down", w.owner)
        )
    )
    await _ok(await client.patch(member, json={"timed_out_until": None}, headers=o))
    # Messages: a moderator delete and a bulk delete are audited, deleting one's own is not.
    messages = f"/api/v1/channels/{w.general['id']}/messages"
    ids = [
        (
            await _ok(
                await client.post(messages, json={"content": f"m{i}"}, headers=w.member.headers)
            )
        )["id"]
        for i in range(4)
    ]
    await _ok(await client.delete(f"{messages}/{ids[0]}", headers=o))
    await _ok(await client.delete(f"{messages}/{ids[1]}", headers=w.member.headers))
    await _ok(await client.post(f"{messages}/bulk-delete", json={"messages": ids[2:]}, headers=o))
    # Invites.
    invite = await _ok(await client.post(f"{base}/invites", json={}, headers=o))
    code = invite["code"]
    await _ok(await client.patch(f"/api/v1/invites/{code}", json={"max_uses": 5}, headers=o))
    await _ok(await client.delete(f"/api/v1/invites/{code}", headers=o))
    # Emojis.
    emoji = await _ok(
        await client.post(
            f"{base}/emojis", json={"name": "blob", "image": data_uri(png_bytes())}, headers=o
        )
    )
    await _ok(await client.patch(f"{base}/emojis/{emoji['id']}", json={"name": "blob2"}, headers=o))
    await _ok(await client.delete(f"{base}/emojis/{emoji['id']}", headers=o))
    await _ok(await client.delete(f"{base}/emojis/{emoji['id']}", headers=o))  # gone: no entry
    # Kick, ban, unban; ownership transfer.
    await _ok(await client.delete(member, headers=_reason("spam", w.owner)))
    await _ok(await client.put(f"{base}/bans/{w.other.id}", json={"reason": "raid"}, headers=o))
    await _ok(await client.delete(f"{base}/bans/{w.other.id}", headers=o))
    await _ok(await client.delete(f"{base}/bans/{w.other.id}", headers=o))  # no ban: no entry
    await join_by_invite(client, w.owner, w.member, w.space_id)
    await _ok(await client.post(f"{base}/transfer", json={"owner_id": w.member.id}, headers=o))

    entries = await _log(client, w, after=mark, who=w.member)  # the new owner may read it
    assert [e["action_type"] for e in entries] == [
        "owner_transfer",
        "invite_create",  # join_by_invite
        "member_ban_remove",
        "member_ban_add",
        "member_kick",
        "emoji_delete",
        "emoji_update",
        "emoji_create",
        "invite_delete",
        "invite_update",
        "invite_create",
        "message_bulk_delete",
        "message_delete",
        "member_timeout",
        "member_timeout",
        "member_update",
    ]
    by_type = {e["action_type"]: e for e in entries}
    assert _changes(by_type["member_update"]) == {"nickname": (None, "Mo")}
    timeout_set, timeout_cleared = entries[14], entries[13]
    assert timeout_set["reason"] == "cool down"
    assert _changes(timeout_set)["timed_out_until"][1] is not None
    assert _changes(timeout_cleared)["timed_out_until"][1] is None
    deleted = by_type["message_delete"]
    assert (deleted["target_id"], deleted["target_type"]) == (ids[0], "message")
    assert _changes(deleted)["author_id"] == (w.member.id, None)
    bulk = by_type["message_bulk_delete"]
    assert (bulk["target_id"], _changes(bulk)) == (w.general["id"], {"count": (None, 2)})
    assert by_type["invite_create"]["target_id"] == code
    assert by_type["invite_create"]["target_type"] == "invite"
    assert _changes(by_type["invite_update"]) == {"max_uses": (None, 5)}
    assert _changes(by_type["emoji_update"]) == {"name": ("blob", "blob2")}
    kick = by_type["member_kick"]
    assert (kick["target_id"], kick["reason"]) == (w.member.id, "spam")
    ban = by_type["member_ban_add"]
    assert (ban["target_id"], ban["reason"]) == (w.other.id, "raid")
    transfer = by_type["owner_transfer"]
    assert (transfer["user_id"], transfer["target_id"]) == (w.owner.id, w.member.id)
    assert _changes(transfer) == {"owner_id": (w.owner.id, w.member.id)}

    # Filters: by actor, by action type, paging with before and limit.
    assert await _log_as(client, w, w.member, user_id=w.member.id) == []
    kinds = await _log_as(client, w, w.member, action_type="member_timeout")
    assert [e["id"] for e in kinds] == [entries[13]["id"], entries[14]["id"]]
    page = await _log_as(client, w, w.member, before=entries[3]["id"], limit=2)
    assert [e["id"] for e in page] == [entries[4]["id"], entries[5]["id"]]
    everything = await _log_as(client, w, w.member, user_id=w.owner.id)
    assert len(everything) == len(entries) + 1  # and make_world's invite


async def _log_as(
    client: httpx.AsyncClient, w: World, who: Account, **params: Any
) -> list[dict[str, Any]]:
    r = await client.get(
        f"/api/v1/spaces/{w.space_id}/audit-log", params=params, headers=who.headers
    )
    data: list[dict[str, Any]] = await _ok(r)
    return data


async def test_refused_actions_write_no_entries(client: httpx.AsyncClient) -> None:
    w = await make_world(client)
    m = w.member.headers
    base = f"/api/v1/spaces/{w.space_id}"
    mark = await _mark(client, w)
    roles = await roles_by_name(client, w.owner, w.space_id)
    admin_role = roles["Admin"]["id"]
    general = w.general["id"]
    refused = [
        await client.patch(base, json={"name": "Mine"}, headers=m),
        await client.patch(base, json={"name": ""}, headers=w.owner.headers),
        await client.post(f"{base}/channels", json={"name": "x"}, headers=m),
        await client.patch(f"/api/v1/channels/{general}", json={"topic": "x"}, headers=m),
        await client.delete(f"/api/v1/channels/{general}", headers=m),
        await client.put(
            f"/api/v1/channels/{general}/permissions/{w.space_id}",
            json={"type": "role", "allow": [], "deny": ["send_messages"]},
            headers=m,
        ),
        await client.post(f"{base}/roles", json={"name": "r"}, headers=m),
        await client.patch(f"{base}/roles/{admin_role}", json={"color": 1}, headers=m),
        await client.delete(f"{base}/roles/{admin_role}", headers=m),
        await client.put(f"{base}/members/{w.member.id}/roles/{admin_role}", headers=m),
        await client.delete(f"{base}/members/{w.owner.id}", headers=m),
        await client.put(f"{base}/bans/{w.other.id}", json={}, headers=m),
        await client.delete(f"{base}/bans/{w.other.id}", headers=m),
        await client.patch(
            f"{base}/members/{w.owner.id}", json={"timed_out_until": ts_after(3600)}, headers=m
        ),
        await client.post(f"{base}/emojis", json={"name": "e1", "image": "x"}, headers=m),
        await client.post(f"{base}/transfer", json={"owner_id": w.member.id}, headers=m),
        await client.post(
            f"{base}/transfer", json={"owner_id": w.other.id}, headers=w.owner.headers
        ),
        await client.patch(base, json={"owner_id": w.member.id}, headers=m),
        await client.post(
            f"/api/v1/channels/{general}/messages/bulk-delete", json={"messages": []}, headers=m
        ),
        # A reason that is too long refuses the whole action.
        await client.patch(base, json={"name": "Long"}, headers=_reason("r" * 600, w.owner)),
    ]
    for response in refused:
        assert 400 <= response.status_code < 500, (response.request.url, response.text)
    invite = await _ok(await client.post(f"{base}/invites", json={}, headers=w.owner.headers))
    assert_error(
        await client.patch(f"/api/v1/invites/{invite['code']}", json={"max_uses": 1}, headers=m),
        403,
    )
    assert_error(await client.delete(f"/api/v1/invites/{invite['code']}", headers=m), 403)
    message = await _ok(
        await client.post(
            f"/api/v1/channels/{general}/messages", json={"content": "hi"}, headers=w.owner.headers
        )
    )
    r = await client.delete(f"/api/v1/channels/{general}/messages/{message['id']}", headers=m)
    assert_error(r, 403)
    entries = await _log(client, w, after=mark)
    assert [e["action_type"] for e in entries] == ["invite_create"]
