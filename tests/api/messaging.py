"""Fixtures shared by the message-area API tests: the seeded world and a few setups that
need the spaces engineer's routes (extra channels, overwrites, roles, timeouts), written
through storage helpers until those routes are merged (the lead can switch them to REST).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from typing import Any

import httpx
from PIL import Image

from accord.storage import spaces as space_store
from accord.times import now_ts, ts_after
from tests.support import ServerHandle


@dataclasses.dataclass
class World:
    owner_id: str
    owner: dict[str, str]
    bot_id: str
    bot: dict[str, str]
    bot_token: str
    app_id: str
    space_id: str
    general_id: str
    testing_id: str


async def seed_world(client: httpx.AsyncClient) -> World:
    """POST /test/seed: test_user owns "Test Space"; the bot is a plain member."""
    r = await client.post("/test/seed", json={})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    channels = {c["name"]: c["id"] for c in data["channels"]}
    return World(
        owner_id=data["user"]["id"],
        owner={"Authorization": f"Bearer {data['user']['token']}"},
        bot_id=data["bot"]["id"],
        bot={"Authorization": f"Bot {data['bot']['token']}"},
        bot_token=data["bot"]["token"],
        app_id=data["bot"]["application_id"],
        space_id=data["space"]["id"],
        general_id=channels["general"],
        testing_id=channels["testing"],
    )


async def add_member(server: ServerHandle, space_id: str, user_id: str) -> None:
    await server.ctx.db.write(space_store.add_member, int(space_id), int(user_id), now_ts())


async def add_channel(server: ServerHandle, space_id: str, name: str) -> str:
    channel_id = server.ctx.new_id()

    def write(conn: Any) -> None:
        space_store.insert_channel(
            conn, channel_id=channel_id, space_id=int(space_id), name=name, now=now_ts()
        )

    await server.ctx.db.write(write)
    return str(channel_id)


async def set_overwrite(
    server: ServerHandle,
    channel_id: str,
    target_id: str,
    *,
    allow: tuple[str, ...] = (),
    deny: tuple[str, ...] = (),
    kind: str = "role",
) -> None:
    def write(conn: Any) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO permission_overwrites (channel_id, target_id, type, allow,"
            " deny) VALUES (?, ?, ?, ?, ?)",
            (int(channel_id), int(target_id), kind, json.dumps(allow), json.dumps(deny)),
        )

    await server.ctx.db.write(write)


async def grant_role(
    server: ServerHandle, space_id: str, user_id: str, permissions: tuple[str, ...]
) -> str:
    role_id = server.ctx.new_id()

    def write(conn: Any) -> None:
        space_store.insert_role(
            conn,
            role_id=role_id,
            space_id=int(space_id),
            name=f"role{role_id}",
            position=1,
            permissions=permissions,
            now=now_ts(),
        )
        space_store.assign_role(conn, int(space_id), int(user_id), role_id)

    await server.ctx.db.write(write)
    return str(role_id)


async def time_out(server: ServerHandle, space_id: str, user_id: str) -> None:
    def write(conn: Any) -> None:
        conn.execute(
            "UPDATE members SET timed_out_until = ? WHERE space_id = ? AND user_id = ?",
            (ts_after(3600), int(space_id), int(user_id)),
        )

    await server.ctx.db.write(write)


async def send(
    client: httpx.AsyncClient, headers: dict[str, str], channel_id: str, content: str, **extra: Any
) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/channels/{channel_id}/messages",
        json={"content": content, **extra},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


def png_bytes(
    size: tuple[int, int] = (16, 16), colour: tuple[int, int, int] = (200, 10, 10)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def gif_animated_bytes() -> bytes:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def next_event(sub: Any, kind: str) -> Any:
    """The next bus Event of `kind` (other items are skipped); call under trio.fail_after."""
    from accord.events.types import Event

    async for item in sub.receive:
        if isinstance(item, Event) and item.type == kind:
            return item
    raise AssertionError("bus closed")


def multipart(
    payload: dict[str, Any] | None, files: list[tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    """A body laid out like AccordKit's (CLIENT.md 4.5)."""
    boundary = "----AccordForm12345"
    parts = []
    if payload is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="payload_json"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(payload)}\r\n".encode()
        )
    for index, (name, data, ctype) in enumerate(files):
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files[{index}]";'
            f' filename="{name}"\r\nContent-Type: {ctype}\r\n\r\n'
        ).encode()
        parts.append(head + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], channel_id: str, body: bytes, ctype: str
) -> httpx.Response:
    return await client.post(
        f"/api/v1/channels/{channel_id}/messages/upload",
        content=body,
        headers={**headers, "Content-Type": ctype},
    )
