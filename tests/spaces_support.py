"""Helpers for the space-resource API tests: a world of accounts around one space, and reading
what the event bus published.

The first account registered on a server becomes instance admin (D8), which passes every
permission check (D8a); `make_world` registers it first as `root` so the accounts a test acts
with are ordinary users.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import trio

from accord.events.bus import Subscription
from accord.events.types import BusItem, Event, SessionControl
from tests.support import Account, register


@dataclasses.dataclass
class World:
    root: Account  # instance admin
    owner: Account
    member: Account
    other: Account  # registered, not a member of the space
    space: dict[str, Any]
    general: dict[str, Any]

    @property
    def space_id(self) -> str:
        return str(self.space["id"])


async def create_space(client: httpx.AsyncClient, who: Account, name: str, **extra: Any) -> Any:
    r = await client.post("/api/v1/spaces", json={"name": name, **extra}, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def join_by_invite(
    client: httpx.AsyncClient, inviter: Account, who: Account, space_id: str
) -> None:
    r = await client.post(f"/api/v1/spaces/{space_id}/invites", json={}, headers=inviter.headers)
    assert r.status_code == 200, r.text
    code = r.json()["data"]["code"]
    r = await client.post(f"/api/v1/invites/{code}/accept", headers=who.headers)
    assert r.status_code == 200, r.text


async def roles_by_name(client: httpx.AsyncClient, who: Account, space_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/spaces/{space_id}/roles", headers=who.headers)
    assert r.status_code == 200, r.text
    return {role["name"]: role for role in r.json()["data"]}


async def give_role(
    client: httpx.AsyncClient, by: Account, space_id: str, user: Account, role_id: str
) -> None:
    r = await client.put(
        f"/api/v1/spaces/{space_id}/members/{user.id}/roles/{role_id}", headers=by.headers
    )
    assert r.status_code == 200, r.text


async def put_overwrite(
    client: httpx.AsyncClient,
    by: Account,
    channel_id: str,
    target_id: str,
    kind: str,
    *,
    allow: tuple[str, ...] = (),
    deny: tuple[str, ...] = (),
) -> httpx.Response:
    """PUT a permission overwrite (`kind` "role" or "member") on a channel, as `by`."""
    return await client.put(
        f"/api/v1/channels/{channel_id}/permissions/{target_id}",
        json={"type": kind, "allow": list(allow), "deny": list(deny)},
        headers=by.headers,
    )


async def make_world(client: httpx.AsyncClient, *, public: bool = False) -> World:
    root = await register(client, "root")
    owner = await register(client, "owner")
    member = await register(client, "member")
    other = await register(client, "other")
    space = await create_space(client, owner, "Test Space", public=public)
    await join_by_invite(client, owner, member, space["id"])
    r = await client.get(f"/api/v1/spaces/{space['id']}/channels", headers=owner.headers)
    general = r.json()["data"][0]
    return World(root, owner, member, other, space, general)


def drain(sub: Subscription) -> list[BusItem]:
    """Everything published so far, without waiting."""
    items: list[BusItem] = []
    while True:
        try:
            items.append(sub.receive.receive_nowait())
        except trio.WouldBlock:
            return items


async def next_event(sub: Subscription, kind: str, timeout_s: float = 2.0) -> Event:
    """The next published Event of type `kind` (other items are skipped)."""
    with trio.fail_after(timeout_s):
        while True:
            item = await sub.receive.receive()
            if isinstance(item, Event) and item.type == kind:
                return item


def events(items: list[BusItem], kind: str) -> list[Event]:
    return [i for i in items if isinstance(i, Event) and i.type == kind]


def controls(items: list[BusItem], kind: str) -> list[SessionControl]:
    return [i for i in items if isinstance(i, SessionControl) and i.kind == kind]
