"""SQL for applications, their bot users and bot tokens, and their application commands."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import orjson

from accord.models.applications import Application, Command, CommandSpec
from accord.storage.users import insert_user


def create_application(
    conn: sqlite3.Connection,
    *,
    new_id: Callable[[], int],
    owner_id: int,
    name: str,
    description: str,
    bot_username: str,
    token_hash: str,
    now: str,
) -> tuple[int, int]:
    """Insert an application, its bot user and one bot token; returns (app id, bot user id)."""
    bot_id = new_id()
    insert_user(
        conn, user_id=bot_id, username=bot_username, display_name=bot_username, now=now, bot=True
    )
    app_id = new_id()
    conn.execute(
        "INSERT INTO applications (id, name, description, owner_id, bot_user_id, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (app_id, name, description, owner_id, bot_id, now, now),
    )
    insert_bot_token(conn, token_hash, app_id, bot_id, now)
    return app_id, bot_id


def insert_bot_token(
    conn: sqlite3.Connection, token_hash: str, application_id: int, user_id: int, now: str
) -> None:
    conn.execute(
        "INSERT INTO bot_tokens (token_hash, application_id, user_id, created_at)"
        " VALUES (?, ?, ?, ?)",
        (token_hash, application_id, user_id, now),
    )


def replace_bot_tokens(
    conn: sqlite3.Connection, application_id: int, user_id: int, token_hash: str, now: str
) -> list[str]:
    """Delete every bot token of an application, issue `token_hash`; returns the old hashes."""
    old = conn.execute(
        "DELETE FROM bot_tokens WHERE application_id = ? RETURNING token_hash", (application_id,)
    ).fetchall()
    insert_bot_token(conn, token_hash, application_id, user_id, now)
    return [row[0] for row in old]


def revoke_owned_bot_tokens(conn: sqlite3.Connection, owner_id: int) -> list[str]:
    """Delete every bot token of the owner's applications; returns the deleted hashes."""
    rows = conn.execute(
        "DELETE FROM bot_tokens WHERE application_id IN"
        " (SELECT id FROM applications WHERE owner_id = ?) RETURNING token_hash",
        (owner_id,),
    ).fetchall()
    return [row[0] for row in rows]


def first_application_of(conn: sqlite3.Connection, owner_id: int) -> tuple[int, int] | None:
    """(application id, bot user id) of the owner's oldest application."""
    row = conn.execute(
        "SELECT id, bot_user_id FROM applications WHERE owner_id = ? ORDER BY id LIMIT 1",
        (owner_id,),
    ).fetchone()
    return (row[0], row[1]) if row else None


# -- reading and editing applications (G-34) -------------------------------------------------

_APP_COLUMNS = "id, name, owner_id, created_at, description, icon, bot_public, flags, bot_user_id"


def _app_from_row(row: sqlite3.Row | tuple[object, ...]) -> Application:
    return Application(
        id=row[0],  # type: ignore[arg-type]
        name=row[1],  # type: ignore[arg-type]
        owner_id=row[2],  # type: ignore[arg-type]
        created_at=row[3],  # type: ignore[arg-type]
        description=row[4],  # type: ignore[arg-type]
        icon=row[5],  # type: ignore[arg-type]
        bot_public=bool(row[6]),
        flags=row[7],  # type: ignore[arg-type]
        bot_user_id=row[8],  # type: ignore[arg-type]
    )


def get_application(conn: sqlite3.Connection, app_id: int) -> Application | None:
    row = conn.execute(
        f"SELECT {_APP_COLUMNS} FROM applications WHERE id = ?", (app_id,)
    ).fetchone()
    return _app_from_row(row) if row else None


def list_owned_applications(conn: sqlite3.Connection, owner_id: int) -> list[Application]:
    rows = conn.execute(
        f"SELECT {_APP_COLUMNS} FROM applications WHERE owner_id = ? ORDER BY id", (owner_id,)
    )
    return [_app_from_row(row) for row in rows]


_APP_UPDATABLE = frozenset({"name", "description", "icon", "bot_public"})


def update_application(
    conn: sqlite3.Connection, app_id: int, fields: dict[str, Any], now: str
) -> None:
    unknown = set(fields) - _APP_UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if not fields:
        return
    assignments = ", ".join(f"{name} = ?" for name in fields)
    conn.execute(
        f"UPDATE applications SET {assignments}, updated_at = ? WHERE id = ?",
        (*fields.values(), now, app_id),
    )


# -- application commands --------------------------------------------------------------------

_COMMAND_COLUMNS = "id, application_id, name, description, options, type, space_id"


def _command_from_row(row: sqlite3.Row | tuple[object, ...]) -> Command:
    options = orjson.loads(row[4])  # type: ignore[arg-type]
    return Command(
        id=row[0],  # type: ignore[arg-type]
        application_id=row[1],  # type: ignore[arg-type]
        name=row[2],  # type: ignore[arg-type]
        description=row[3],  # type: ignore[arg-type]
        options=tuple(options) if isinstance(options, list) else (),
        type=row[5],  # type: ignore[arg-type]
        space_id=row[6],  # type: ignore[arg-type]
    )


def list_commands(conn: sqlite3.Connection, app_id: int, space_id: int | None) -> list[Command]:
    rows = conn.execute(
        f"SELECT {_COMMAND_COLUMNS} FROM application_commands WHERE application_id = ?"
        " AND space_id IS ? ORDER BY name",
        (app_id, space_id),
    )
    return [_command_from_row(row) for row in rows]


def get_command(
    conn: sqlite3.Connection, app_id: int, command_id: int, space_id: int | None
) -> Command | None:
    row = conn.execute(
        f"SELECT {_COMMAND_COLUMNS} FROM application_commands WHERE id = ?"
        " AND application_id = ? AND space_id IS ?",
        (command_id, app_id, space_id),
    ).fetchone()
    return _command_from_row(row) if row else None


def find_invocable_command(
    conn: sqlite3.Connection, app_id: int, space_id: int | None, name: str
) -> Command | None:
    """The command `name` of an app as seen in a space: the space's own first, then global."""
    row = conn.execute(
        f"SELECT {_COMMAND_COLUMNS} FROM application_commands WHERE application_id = ?"
        " AND name = ? AND (space_id IS ? OR space_id IS NULL) ORDER BY space_id IS NULL LIMIT 1",
        (app_id, name, space_id),
    ).fetchone()
    return _command_from_row(row) if row else None


def count_commands(conn: sqlite3.Connection, app_id: int, space_id: int | None) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM application_commands WHERE application_id = ? AND space_id IS ?",
        (app_id, space_id),
    ).fetchone()
    return int(row[0])


def upsert_command(
    conn: sqlite3.Connection,
    *,
    new_id: Callable[[], int],
    app_id: int,
    space_id: int | None,
    spec: CommandSpec,
    now: str,
) -> Command:
    """Create a command, or overwrite the one of the same name in the same scope."""
    options = orjson.dumps(list(spec.options)).decode()
    row = conn.execute(
        "SELECT id FROM application_commands WHERE application_id = ? AND space_id IS ?"
        " AND name = ?",
        (app_id, space_id, spec.name),
    ).fetchone()
    if row is None:
        command_id = new_id()
        conn.execute(
            "INSERT INTO application_commands (id, application_id, space_id, name, description,"
            " options, type, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                command_id,
                app_id,
                space_id,
                spec.name,
                spec.description,
                options,
                spec.type,
                now,
                now,
            ),
        )
    else:
        command_id = row[0]
        update_command(conn, command_id, spec, now)
    found = get_command(conn, app_id, command_id, space_id)
    assert found is not None
    return found


def update_command(conn: sqlite3.Connection, command_id: int, spec: CommandSpec, now: str) -> None:
    conn.execute(
        "UPDATE application_commands SET name = ?, description = ?, options = ?, type = ?,"
        " updated_at = ? WHERE id = ?",
        (
            spec.name,
            spec.description,
            orjson.dumps(list(spec.options)).decode(),
            spec.type,
            now,
            command_id,
        ),
    )


def command_name_taken(
    conn: sqlite3.Connection, app_id: int, space_id: int | None, name: str, except_id: int
) -> bool:
    row = conn.execute(
        "SELECT 1 FROM application_commands WHERE application_id = ? AND space_id IS ?"
        " AND name = ? AND id != ?",
        (app_id, space_id, name, except_id),
    ).fetchone()
    return row is not None


def delete_command(
    conn: sqlite3.Connection, app_id: int, command_id: int, space_id: int | None
) -> bool:
    cursor = conn.execute(
        "DELETE FROM application_commands WHERE id = ? AND application_id = ? AND space_id IS ?",
        (command_id, app_id, space_id),
    )
    return cursor.rowcount > 0


def delete_commands(conn: sqlite3.Connection, app_id: int, space_id: int | None) -> None:
    conn.execute(
        "DELETE FROM application_commands WHERE application_id = ? AND space_id IS ?",
        (app_id, space_id),
    )
