"""Numbered SQL migrations from `migrations/`, applied in order, each in one transaction.

Applied versions are recorded in `schema_migrations`. A database that records a version this
code does not know (a newer release wrote it) is refused.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from accord.times import now_ts

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """The database cannot be brought to this code's schema."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_dir() -> Path:
    """ACCORD_MIGRATIONS_DIR, else the repository's `migrations/` (a checkout or an editable
    install), else `<prefix>/share/accord/migrations` (where a regular install puts them)."""
    override = os.environ.get("ACCORD_MIGRATIONS_DIR")
    if override:
        return Path(override)
    source = Path(__file__).resolve().parents[2] / "migrations"
    if source.is_dir():
        return source
    return Path(sys.prefix) / "share" / "accord" / "migrations"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"badly named migration file: {path.name}")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text("utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migrations share a number")
    if not found:
        raise MigrationError(f"no migrations found in {directory}")
    return found


def apply_migrations(conn: sqlite3.Connection, directory: Path | None = None) -> list[int]:
    """Apply every pending migration; returns the versions applied now."""
    migrations = load_migrations(directory)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    known = {m.version for m in migrations}
    unknown = sorted(applied - known)
    if unknown:
        raise MigrationError(
            f"the database has schema version {unknown[-1]}, newer than this code "
            f"(latest {max(known)}); upgrade Accord"
        )
    done: list[int] = []
    for migration in migrations:
        if migration.version in applied:
            continue
        statements = [s for s in _split_statements(migration.sql) if s.strip()]
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, now_ts()),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        done.append(migration.version)
    return done


def _split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (sqlite3.complete_statement tells the ends)."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        if not buffer and line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise MigrationError("a migration ends with an incomplete statement")
    return statements
