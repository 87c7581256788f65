"""`accord files sweep`: stored files no row names (left by versions before D17 cleanup, or
by a crash between a commit and its cleanup) are removed, while a server runs on the same
data; referenced, recent and shared files stay; `--dry-run` removes nothing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import trio

from tests.api.messaging import multipart, seed_world, upload
from tests.support import ServerHandle


def _orphan(root: Path, kind: str, data: bytes, age_s: float) -> Path:
    key = hashlib.sha256(data).hexdigest()
    path = root / kind / key[:2] / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


async def _sweep(server: ServerHandle, *args: str) -> subprocess.CompletedProcess[bytes]:
    settings = server.ctx.settings
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": f"sqlite:{settings.database_path}",
        "ACCORD_STORAGE_DIR": str(settings.storage_dir),
    }
    command = [sys.executable, "-m", "accord", "files", "sweep", *args]
    return await trio.run_process(
        command, env=env, capture_stdout=True, capture_stderr=True, check=False
    )


async def test_sweep_removes_only_unreferenced_old_files(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    body, ctype = multipart({"content": "kept"}, [("kept.bin", b"referenced bytes", "x/y")])
    r = await upload(client, w.owner, w.general_id, body, ctype)
    assert r.status_code == 200, r.text
    root = Path(server.ctx.settings.storage_dir)
    referenced = next((root / "attachments").glob("*/*"))
    old = time.time() - 7200
    os.utime(referenced, (old, old))  # old, but a row names it
    orphan = _orphan(root, "attachments", b"left behind", 7200)
    orphan_avatar = _orphan(root, "avatars", b"old avatar", 7200)
    recent = _orphan(root, "attachments", b"just written", 0)
    stale_tmp = root / "tmp" / "upload-crashed"
    stale_tmp.parent.mkdir(exist_ok=True)
    stale_tmp.write_bytes(b"partial")
    os.utime(stale_tmp, (old, old))
    unknown_kind = _orphan(root, "something_else", b"not ours", 7200)

    dry = await _sweep(server, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove 2 unreferenced" in dry.stderr.decode()
    assert all(path.is_file() for path in (orphan, orphan_avatar, stale_tmp))

    done = await _sweep(server)
    assert done.returncode == 0, done.stderr
    assert "removed 2 unreferenced" in done.stderr.decode()
    assert not orphan.exists()
    assert not orphan_avatar.exists()
    assert not stale_tmp.exists()
    assert referenced.is_file()  # a row names it
    assert recent.is_file()  # younger than --min-age (an upload may be about to commit)
    assert unknown_kind.is_file()  # kinds the server doesn't know are never touched
    # The server kept serving the referenced file throughout.
    message = r.json()["data"]
    got = await client.get(message["attachments"][0]["url"])
    assert got.content == b"referenced bytes"


async def test_sweep_refuses_a_newer_database(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    """A database from a newer version is left alone (its tables may name files we don't
    know about): the sweep stops before touching anything."""
    await server.ctx.db.write(
        lambda conn: conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 'x')"
        )
    )
    orphan = _orphan(Path(server.ctx.settings.storage_dir), "attachments", b"maybe used", 7200)
    result = await _sweep(server)
    assert result.returncode == 1
    assert "newer than this code" in result.stderr.decode()
    assert orphan.is_file()
