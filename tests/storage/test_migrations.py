"""Migrations: empty -> latest, re-run is a no-op, a newer database is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from accord.storage.db import Database, connect
from accord.storage.migrate import MigrationError, apply_migrations, load_migrations


def test_empty_to_latest_and_rerun(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "a.db"))
    applied = apply_migrations(conn)
    assert applied == [m.version for m in load_migrations()]
    assert apply_migrations(conn) == []
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "spaces", "channels", "messages", "roles", "members", "invites"} <= tables
    # Ids are integers (D3) and there is a composite index for message paging (G-38).
    cols = {r[1]: r[2] for r in conn.execute("PRAGMA table_info(messages)")}
    assert cols["id"] == "INTEGER"
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(messages)")}
    assert "idx_messages_channel_id" in indexes
    conn.close()


def test_newer_database_is_refused(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "b.db"))
    apply_migrations(conn)
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 'x')"
    )
    with pytest.raises(MigrationError, match="newer than this code"):
        apply_migrations(conn)
    conn.close()


def test_failed_migration_is_rolled_back(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_ok.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (migrations / "0002_bad.sql").write_text(
        "CREATE TABLE b (y INTEGER);\nINSERT INTO nowhere VALUES (1);\n"
    )
    conn = connect(str(tmp_path / "c.db"))
    with pytest.raises(sqlite3.OperationalError):
        apply_migrations(conn, migrations)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "a" in tables
    assert "b" not in tables
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [1]
    conn.close()


async def test_database_write_rolls_back_on_error(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "d.db"))
    await db.open()
    try:

        def insert_then_fail(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO users (id, username, display_name, created_at, updated_at)"
                " VALUES (1, 'x', 'x', 't', 't')"
            )
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await db.write(insert_then_fail)
        count = await db.read(lambda c: c.execute("SELECT COUNT(*) FROM users").fetchone()[0])
        assert count == 0
        # Readers cannot write.
        with pytest.raises(sqlite3.OperationalError):
            await db.read(lambda c: c.execute("DELETE FROM users"))
        mode = await db.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        assert mode == "wal"
        fk = await db.read(lambda c: c.execute("PRAGMA foreign_keys").fetchone()[0])
        assert fk == 1
    finally:
        await db.close()


async def test_in_memory_database(tmp_path: Path) -> None:
    db = Database(":memory:")
    await db.open()
    try:
        await db.write(
            lambda c: c.execute(
                "INSERT INTO users (id, username, display_name, created_at, updated_at)"
                " VALUES (1, 'x', 'x', 't', 't')"
            )
        )
        assert await db.read(lambda c: c.execute("SELECT COUNT(*) FROM users").fetchone()[0]) == 1
    finally:
        await db.close()


async def test_expired_tokens_are_purged(tmp_path: Path) -> None:
    from accord.storage.users import insert_user, insert_user_token, purge_expired_tokens

    db = Database(str(tmp_path / "e.db"))
    await db.open()
    try:

        def seed(conn: sqlite3.Connection) -> None:
            insert_user(conn, user_id=1, username="u", display_name="u", now="2026-01-01T00:00:00")
            insert_user_token(conn, "old", 1, "2026-01-01T00:00:00", "2025-12-01T00:00:00")
            insert_user_token(conn, "new", 1, "2099-01-01T00:00:00", "2025-12-01T00:00:00")

        await db.write(seed)
        assert await db.write(purge_expired_tokens, "2026-06-01T00:00:00") == 1
        left = await db.read(
            lambda c: [r[0] for r in c.execute("SELECT token_hash FROM user_tokens")]
        )
        assert left == ["new"]
    finally:
        await db.close()
