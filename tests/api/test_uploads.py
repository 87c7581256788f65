"""Multipart message uploads (D17, D25, CLIENT.md 4.5): good uploads, limits (per file,
per request, file count), wrong types, traversal names, permissions; a failed upload leaves
no file and no row behind."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.messaging import multipart, png_bytes, seed_world, set_overwrite, upload
from tests.support import ServerHandle, assert_error


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"ACCORD_MAX_FILE_BYTES": "4096", "ACCORD_MAX_UPLOAD_BYTES": "16384"}


def stored_files(server: ServerHandle) -> list[Path]:
    root = Path(server.ctx.settings.storage_dir)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def count_rows(server: ServerHandle) -> tuple[int, int]:
    def read(conn: object) -> tuple[int, int]:
        messages = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]  # type: ignore[attr-defined]
        attachments = conn.execute("SELECT COUNT(*) FROM attachments").fetchone()[0]  # type: ignore[attr-defined]
        return messages, attachments

    rows: tuple[int, int] = await server.ctx.db.read(read)
    return rows


async def test_upload_with_payload_and_files(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    image = png_bytes((20, 10))
    body, ctype = multipart(
        {"content": "look", "nonce": "u1", "attachments": [{"id": 1, "description": "notes"}]},
        [("pic.png", image, "application/octet-stream"), ("notes é.txt", b"hello\n", "text/plain")],
    )
    r = await upload(client, w.bot, w.general_id, body, ctype)
    assert r.status_code == 200, r.text
    message = r.json()["data"]
    assert message["content"] == "look"
    assert message["nonce"] == "u1"
    pic, notes = message["attachments"]
    assert pic["filename"] == "pic.png"
    assert pic["content_type"] == "image/png"  # sniffed, not the declared type
    assert (pic["width"], pic["height"], pic["size"]) == (20, 10, len(image))
    assert pic["url"] == f"/cdn/attachments/{w.general_id}/{pic['id']}/pic.png"
    assert notes["filename"] == "notes é.txt"
    assert notes["content_type"] == "text/plain"
    assert notes["description"] == "notes"
    assert notes["url"].endswith("/notes%20%C3%A9.txt")
    served = await client.get(notes["url"])
    assert served.content == b"hello\n"
    listed = await client.get(f"/api/v1/channels/{w.general_id}/messages", headers=w.bot)
    assert listed.json()["data"][0]["attachments"][0]["id"] == pic["id"]
    root = Path(server.ctx.settings.storage_dir)
    assert not [p for p in stored_files(server) if p.relative_to(root).parts[0] == "tmp"]


async def test_files_without_payload_and_empty_content(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    body, ctype = multipart(None, [("a.bin", b"\x00\x01", "application/octet-stream")])
    r = await upload(client, w.bot, w.general_id, body, ctype)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["content"] == ""
    body, ctype = multipart({"content": ""}, [])
    assert_error(await upload(client, w.bot, w.general_id, body, ctype), 400, "invalid_request")


async def test_refused_uploads_leave_nothing(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    before_rows = await count_rows(server)
    cases = [
        (multipart({"content": "big"}, [("big.bin", b"x" * 5000, "text/plain")]), 413),
        (
            multipart(
                {"content": "total"}, [(f"f{i}.bin", b"y" * 3000, "text/plain") for i in range(6)]
            ),
            413,
        ),
        (multipart({"content": "many"}, [(f"f{i}", b"z", "text/plain") for i in range(11)]), 400),
        (multipart({"content": "trav"}, [("../../etc/passwd", b"root", "text/plain")]), 400),
        (multipart({"content": "trav"}, [("..\\\\win.ini", b"x", "text/plain")]), 400),
        (multipart({"content": "trav"}, [("", b"x", "text/plain")]), 400),
        (multipart({"content": 5}, [("ok.txt", b"x", "text/plain")]), 422),
        (
            multipart(
                {"content": "bad reply", "reply_to": "99999999999"},
                [("ok.txt", b"x", "text/plain")],
            ),
            404,
        ),
    ]
    for (body, ctype), status in cases:
        r = await upload(client, w.bot, w.general_id, body, ctype)
        assert_error(r, status)
    r = await upload(
        client, w.bot, w.general_id, b"--x\r\nbroken", "multipart/form-data; boundary=x"
    )
    assert_error(r, 400)
    r = await upload(client, w.bot, w.general_id, b"{}", "application/json")
    assert_error(r, 415, "unsupported_media_type")
    assert await count_rows(server) == before_rows
    assert stored_files(server) == []


async def test_upload_permissions(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    body, ctype = multipart({"content": "x"}, [("a.txt", b"a", "text/plain")])
    assert_error(await upload(client, {}, w.general_id, body, ctype), 401)
    await set_overwrite(server, w.general_id, w.space_id, deny=("attach_files",))
    r = await upload(client, w.bot, w.general_id, body, ctype)
    assert r.json()["error"]["message"] == "missing permission: attach_files"
    assert_error(await upload(client, w.bot, "99999999999", body, ctype), 404)
    assert stored_files(server) == []


async def test_deleting_the_message_removes_its_file(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    body, ctype = multipart({"content": "tmp"}, [("a.txt", b"unique bytes", "text/plain")])
    message = (await upload(client, w.bot, w.general_id, body, ctype)).json()["data"]
    assert len(stored_files(server)) == 1
    url = message["attachments"][0]["url"]
    await client.delete(f"/api/v1/channels/{w.general_id}/messages/{message['id']}", headers=w.bot)
    assert stored_files(server) == []
    assert_error(await client.get(url), 404)
