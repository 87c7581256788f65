"""SQL for the SFU node registry (VOICE.md 7.1, 7.5; RT-37, RT-39).

The table is the source of truth; the voice registry keeps a cache of online rows. Heartbeat
times are stored with microseconds (`HEARTBEAT_FORMAT`) so staleness works below one second;
they never reach the wire. The reaper's sweep is one atomic UPDATE ... RETURNING, so a
heartbeat racing it either keeps the node online or is refused, never both (RT-39).
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from accord.models.sfu_nodes import SfuNode

HEARTBEAT_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
_COLUMNS = "id, endpoint, region, capacity, current_load, status, control_url"


def heartbeat_ts(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(HEARTBEAT_FORMAT)


def _node(row: sqlite3.Row | tuple[object, ...]) -> SfuNode:
    node_id, endpoint, region, capacity, load, status, control_url = tuple(row)
    return SfuNode(
        id=str(node_id),
        endpoint=str(endpoint),
        region=str(region),
        capacity=int(str(capacity)),
        current_load=int(str(load)),
        status=str(status),
        control_url=str(control_url or ""),
    )


def upsert_node(
    conn: sqlite3.Connection,
    *,
    node_id: str,
    endpoint: str,
    control_url: str,
    region: str,
    capacity: int,
    now: str,
    heartbeat: str,
) -> SfuNode:
    """Insert or overwrite a node as online with load 0 (a re-registering node restarts)."""
    conn.execute(
        "INSERT INTO sfu_nodes (id, endpoint, control_url, region, capacity, current_load, status,"
        " last_heartbeat, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, 'online', ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET endpoint = excluded.endpoint,"
        " control_url = excluded.control_url, region = excluded.region,"
        " capacity = excluded.capacity, current_load = 0, status = 'online',"
        " last_heartbeat = excluded.last_heartbeat, updated_at = excluded.updated_at",
        (node_id, endpoint, control_url, region, capacity, heartbeat, now, now),
    )
    node = get_node(conn, node_id)
    assert node is not None
    return node


def get_node(conn: sqlite3.Connection, node_id: str) -> SfuNode | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM sfu_nodes WHERE id = ?", (node_id,)).fetchone()
    return _node(row) if row else None


def record_heartbeat(
    conn: sqlite3.Connection, node_id: str, current_load: int, now: str, heartbeat: str
) -> SfuNode | None:
    """Update load and heartbeat time of an online node; None if unknown or offline."""
    cursor = conn.execute(
        "UPDATE sfu_nodes SET current_load = ?, last_heartbeat = ?, updated_at = ?"
        " WHERE id = ? AND status = 'online'",
        (current_load, heartbeat, now, node_id),
    )
    if cursor.rowcount == 0:
        return None
    return get_node(conn, node_id)


def mark_offline(conn: sqlite3.Connection, node_id: str, now: str) -> bool:
    """Set a node offline whatever its status; False when there is no such node."""
    cursor = conn.execute(
        "UPDATE sfu_nodes SET status = 'offline', updated_at = ? WHERE id = ?", (now, node_id)
    )
    return cursor.rowcount > 0


def online_nodes(conn: sqlite3.Connection) -> list[SfuNode]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM sfu_nodes WHERE status = 'online' ORDER BY id"
    ).fetchall()
    return [_node(row) for row in rows]


def reap_stale(conn: sqlite3.Connection, stale_before: str, now: str) -> list[str]:
    """Mark offline every online node whose last heartbeat is older than `stale_before`."""
    rows = conn.execute(
        "UPDATE sfu_nodes SET status = 'offline', updated_at = ?"
        " WHERE status = 'online' AND (last_heartbeat IS NULL OR last_heartbeat < ?)"
        " RETURNING id",
        (now, stale_before),
    ).fetchall()
    return sorted(str(row[0]) for row in rows)
