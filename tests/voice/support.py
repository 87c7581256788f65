"""Helpers for voice and SFU tests: spaces, voice channels and members, gateway sessions,
and reading events off the bus.

Voice channels and extra members are written with the storage functions inside
`server.ctx.db.write` because channel and invite routes live on other branches; everything
else goes through the API or the voice service.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable

import httpx
import trio

from accord.auth.principal import Principal
from accord.events.bus import Subscription
from accord.events.types import BusItem, Event
from accord.services.auth import AuthService
from accord.storage.spaces import add_member, create_space, insert_channel
from accord.times import now_ts
from accord.voice.port import GatewayVoiceSession
from accord.voice.service import VoiceService
from tests.support import Account, ServerHandle, register

JOIN = {"self_mute": False, "self_deaf": False}  # a voice join body, neither muted nor deafened


def voice(server: ServerHandle) -> VoiceService:
    service = server.ctx.get(VoiceService)
    assert isinstance(service, VoiceService)
    return service


async def make_space(server: ServerHandle, owner: Account, name: str = "Voice Space") -> int:
    def write(conn: sqlite3.Connection) -> int:
        space, _ = create_space(
            conn, new_id=server.ctx.new_id, owner_id=int(owner.id), name=name, now=now_ts()
        )
        return space.id

    space_id: int = await server.ctx.db.write(write)
    return space_id


async def make_channel(
    server: ServerHandle,
    space_id: int,
    name: str = "Lounge",
    *,
    type: str = "voice",
    user_limit: int | None = None,
) -> int:
    channel_id = server.ctx.new_id()
    await server.ctx.db.write(
        lambda conn: insert_channel(
            conn,
            channel_id=channel_id,
            space_id=space_id,
            name=name,
            now=now_ts(),
            type=type,
            user_limit=user_limit,
        )
    )
    return int(channel_id)


async def setup_voice_channel(
    server: ServerHandle, client: httpx.AsyncClient
) -> tuple[Account, int, int]:
    """(owner, space_id, channel_id): `owner` with a space and a voice channel in it. An
    `admin` is registered first: the first user is instance admin (D8) and passes all checks."""
    await register(client, "admin")
    owner = await register(client, "owner")
    space_id = await make_space(server, owner)
    channel_id = await make_channel(server, space_id)
    return owner, space_id, channel_id


async def join_space(server: ServerHandle, space_id: int, *accounts: Account) -> None:
    def write(conn: sqlite3.Connection) -> None:
        for account in accounts:
            add_member(conn, space_id, int(account.id), now_ts())

    await server.ctx.db.write(write)


async def set_everyone(server: ServerHandle, space_id: int, permissions: list[str]) -> None:
    """Replace @everyone's permissions (role id == space id)."""
    await server.ctx.db.write(
        lambda conn: conn.execute(
            "UPDATE roles SET permissions = ? WHERE id = ?", (json.dumps(permissions), space_id)
        )
    )


async def principal(server: ServerHandle, account: Account) -> Principal:
    resolved: Principal | None = await server.ctx.get(AuthService).resolve_token(
        "Bearer", account.token
    )
    assert resolved is not None
    return resolved


async def gateway_session(
    server: ServerHandle, account: Account, session_id: str | None = None
) -> GatewayVoiceSession:
    resolved = await principal(server, account)
    return GatewayVoiceSession(
        session_id=session_id or f"gw-{account.username}-{server.ctx.new_id()}",
        user_id=resolved.user_id,
        principal=resolved,
    )


async def next_event(
    subscription: Subscription,
    type: str,
    where: Callable[[Event], bool] = lambda event: True,
    *,
    timeout: float = 5.0,
) -> Event:
    """The next bus Event of `type` for which `where(event)` holds."""
    with trio.fail_after(timeout):
        async for item in subscription.receive:
            if isinstance(item, Event) and item.type == type and where(item):
                return item
    raise AssertionError("bus closed")


def drain(subscription: Subscription) -> list[BusItem]:
    """Everything already queued on a subscription, without waiting."""
    items: list[BusItem] = []
    while True:
        try:
            items.append(subscription.receive.receive_nowait())
        except trio.WouldBlock:
            return items


def events(items: list[BusItem], type: str) -> list[Event]:
    return [item for item in items if isinstance(item, Event) and item.type == type]


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], *, timeout: float = 5.0, poll_s: float = 0.02
) -> None:
    """Poll `condition` (sync or async) until it holds; for state owned by another process or
    by a fake server, where there is no event to wait on."""
    with trio.fail_after(timeout):
        while True:
            result = condition()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await trio.sleep(poll_s)
