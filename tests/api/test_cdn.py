"""CDN serving (CLIENT.md 8, D17a, D17b): content types, Cache-Control, ETag, Range requests
(206, suffix, 416), wrong names and traversal attempts (404), default avatars."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.messaging import (
    data_uri,
    gif_animated_bytes,
    multipart,
    png_bytes,
    seed_world,
    upload,
)
from tests.support import assert_error, register


async def _attachment(
    client: httpx.AsyncClient, data: bytes, name: str = "data.bin"
) -> dict[str, Any]:
    w = await seed_world(client)
    body, ctype = multipart({"content": "file"}, [(name, data, "application/octet-stream")])
    r = await upload(client, w.bot, w.general_id, body, ctype)
    assert r.status_code == 200, r.text
    return dict(r.json()["data"]["attachments"][0])


async def test_ranges_and_caching(client: httpx.AsyncClient) -> None:
    data = bytes(range(256)) * 8
    att = await _attachment(client, data)
    url = att["url"]
    full = await client.get(url)
    assert full.status_code == 200
    assert full.content == data
    assert full.headers["content-type"] == "application/octet-stream"
    assert full.headers["accept-ranges"] == "bytes"
    assert "max-age" in full.headers["cache-control"]
    assert full.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in full.headers["content-security-policy"]
    part = await client.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = await client.get(url, headers={"Range": "bytes=-5"})
    assert tail.content == data[-5:]
    open_end = await client.get(url, headers={"Range": f"bytes={len(data) - 3}-"})
    assert open_end.content == data[-3:]
    clipped = await client.get(url, headers={"Range": "bytes=2040-99999"})
    assert clipped.content == data[2040:]
    bad = await client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert_error(bad, 416)
    assert bad.headers["content-range"] == f"bytes */{len(data)}"
    multi = await client.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert multi.status_code == 200
    cached = await client.get(url, headers={"If-None-Match": full.headers["etag"]})
    assert cached.status_code == 304


async def test_names_and_traversal(client: httpx.AsyncClient) -> None:
    att = await _attachment(client, b"secret", "a.txt")
    base = att["url"].rsplit("/", 1)[0]
    assert (await client.get(f"{base}/a.txt")).status_code == 200
    assert_error(await client.get(f"{base}/b.txt"), 404)
    for path in (
        f"{base}/..%2F..%2Faccord.db",
        "/cdn/attachments/1/2/../../../accord.db",
        "/cdn/attachments/x/y/a.txt",
        "/cdn/avatars/1/..%2F..%2Faccord.db.png",
        "/cdn/avatars/1/" + "0" * 64 + ".png",
        "/cdn/emojis/../accord.db",
        "/cdn/emojis/123.png",
        "/cdn/embed/avatars/9.png",
    ):
        r = await client.get(path)
        assert r.status_code == 404, path


async def test_images_are_served_as_png_and_gif(client: httpx.AsyncClient) -> None:
    user = await register(client, "pic")
    r = await client.patch(
        "/api/v1/users/@me",
        json={"avatar": data_uri(gif_animated_bytes(), "image/gif")},
        headers=user.headers,
    )
    avatar = r.json()["data"]["avatar"]
    assert avatar.startswith("a_")
    png = await client.get(f"/cdn/avatars/{user.id}/{avatar}.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    assert "immutable" in png.headers["cache-control"]
    gif = await client.get(f"/cdn/avatars/{user.id}/{avatar}.gif")
    assert gif.headers["content-type"] == "image/gif"
    assert gif.content.startswith(b"GIF8")
    assert_error(await client.get(f"/cdn/avatars/{user.id}/{avatar}.webp"), 404)
    default = await client.get("/cdn/embed/avatars/0.png")
    assert default.status_code == 200
    assert default.content.startswith(b"\x89PNG")
    r = await client.patch(
        "/api/v1/users/@me", json={"banner": data_uri(png_bytes((300, 100)))}, headers=user.headers
    )
    banner = r.json()["data"]["banner"]
    assert (await client.get(f"/cdn/banners/{user.id}/{banner}.png")).status_code == 200
    assert_error(await client.get(f"/cdn/banners/{user.id}/{banner}.gif"), 404)
