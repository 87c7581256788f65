"""Which rows name a stored file (D17), so files nothing references any more can be removed.

Files are content-addressed (`accord.storage.files`): rows holding equal bytes share one file,
across users, spaces and even tables (user and space banners both live under `banners`). A file
may go only when no row of any table names it. Image columns hold a hash: the key of the PNG
rendition, or `a_` + key for an animated image, whose GIF rendition is `{kind}_gif/{key}`;
emojis hold the key and an `animated` flag.

Callers collect the files a write drops (`StoredFile`s) inside its transaction and, once it
has committed, ask `unreferenced` in a later write (writes are serialized, and files are
written only inside write transactions, so no new reference can appear between the check and
the unlink).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable, Sequence

from accord.storage.files import FileStore

StoredFile = tuple[str, str]  # (kind, key)

# Image kinds and the columns holding their hashes.
_IMAGE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "avatars": (("users", "avatar"),),
    "banners": (("users", "banner"), ("spaces", "banner")),
    "icons": (("spaces", "icon"),),
    "app_icons": (("applications", "icon"),),
    "role_icons": (("roles", "icon"),),
}
_GIF = "_gif"


def image_files(kind: str, image_hash: str | None) -> list[StoredFile]:
    """The files behind an image hash a row stored (none for a cleared image)."""
    if not image_hash:
        return []
    if image_hash.startswith("a_"):
        key = image_hash[2:]
        return [(kind, key), (kind + _GIF, key)]
    return [(kind, image_hash)]


def emoji_files(image_key: str | None, animated: bool) -> list[StoredFile]:
    if not image_key:
        return []
    files = [("emojis", image_key)]
    if animated:
        files.append(("emojis" + _GIF, image_key))
    return files


def _exists(conn: sqlite3.Connection, sql: str, params: Sequence[object]) -> bool:
    return conn.execute(sql, tuple(params)).fetchone() is not None


def is_referenced(conn: sqlite3.Connection, kind: str, key: str) -> bool:
    """Whether any row names the file. Unknown kinds count as referenced (never removed)."""
    if kind == "attachments":
        return _exists(conn, "SELECT 1 FROM attachments WHERE storage_key = ? LIMIT 1", (key,))
    if kind == "sounds":
        return _exists(conn, "SELECT 1 FROM soundboard_sounds WHERE audio_key = ? LIMIT 1", (key,))
    if kind == "emojis":
        return _exists(conn, "SELECT 1 FROM emojis WHERE image_key = ? LIMIT 1", (key,))
    if kind == "emojis" + _GIF:
        return _exists(
            conn, "SELECT 1 FROM emojis WHERE image_key = ? AND animated = 1 LIMIT 1", (key,)
        )
    gif = kind.endswith(_GIF)
    columns = _IMAGE_COLUMNS.get(kind.removesuffix(_GIF))
    if columns is None:
        return True
    # The PNG rendition serves both the static and the animated hash; the GIF only the latter.
    hashes = (f"a_{key}",) if gif else (key, f"a_{key}")
    marks = ",".join("?" * len(hashes))
    return any(
        _exists(conn, f"SELECT 1 FROM {table} WHERE {column} IN ({marks}) LIMIT 1", hashes)
        for table, column in columns
    )


def unreferenced(conn: sqlite3.Connection, files: Iterable[StoredFile]) -> list[StoredFile]:
    """Those of `files` that no row names any more (each once, in a stable order)."""
    return [f for f in sorted(set(files)) if not is_referenced(conn, *f)]


def channel_files(conn: sqlite3.Connection, channel_id: int) -> list[StoredFile]:
    """The files of a channel's rows (its messages' attachments)."""
    rows = conn.execute(
        "SELECT DISTINCT a.storage_key FROM messages m JOIN attachments a ON a.message_id = m.id"
        " WHERE m.channel_id = ?",
        (channel_id,),
    )
    return [("attachments", row[0]) for row in rows]


def space_files(conn: sqlite3.Connection, space_id: int) -> list[StoredFile]:
    """The files of everything a space's deletion cascades to: its own icon and banner, its
    roles' icons, its messages' attachments, its emojis and its soundboard sounds."""
    files: list[StoredFile] = []
    row = conn.execute("SELECT icon, banner FROM spaces WHERE id = ?", (space_id,)).fetchone()
    if row is not None:
        files += image_files("icons", row[0])
        files += image_files("banners", row[1])
    for (icon,) in conn.execute(
        "SELECT icon FROM roles WHERE space_id = ? AND icon IS NOT NULL", (space_id,)
    ):
        files += image_files("role_icons", icon)
    for (key,) in conn.execute(
        "SELECT DISTINCT a.storage_key FROM channels c JOIN messages m ON m.channel_id = c.id"
        " JOIN attachments a ON a.message_id = m.id WHERE c.space_id = ?",
        (space_id,),
    ):
        files.append(("attachments", key))
    for key, animated in conn.execute(
        "SELECT image_key, animated FROM emojis WHERE space_id = ?", (space_id,)
    ):
        files += emoji_files(key, bool(animated))
    for (key,) in conn.execute(
        "SELECT audio_key FROM soundboard_sounds WHERE space_id = ?", (space_id,)
    ):
        files.append(("sounds", key))
    return files


@dataclasses.dataclass(slots=True)
class SweepReport:
    checked: int = 0
    removed: int = 0
    removed_bytes: int = 0
    temporaries: int = 0


def sweep(
    conn: sqlite3.Connection,
    store: FileStore,
    *,
    older_than: float,
    dry_run: bool = False,
    batch: int = 500,
) -> SweepReport:
    """Remove stored files no row names (left behind before D17 cleanup existed, or by a
    crash between a commit and its cleanup), and stale temporaries. Only files last modified
    before `older_than` (unix time) are considered. Each batch is checked and unlinked inside
    `BEGIN IMMEDIATE`, so it is serialized with a running server's writes (which write files
    inside their own transactions) and no file can gain a reference between check and unlink.
    """
    report = SweepReport()
    candidates = [(kind, key) for kind, key, mtime in store.walk() if mtime < older_than]
    for start in range(0, len(candidates), batch):
        chunk = candidates[start : start + batch]
        report.checked += len(chunk)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for kind, key in unreferenced(conn, chunk):
                path = store.path_of(kind, key)
                size = path.stat().st_size if path is not None and path.is_file() else 0
                if not dry_run:
                    store.remove(kind, key)
                report.removed += 1
                report.removed_bytes += size
        finally:
            conn.execute("COMMIT")
    for path in store.stale_temporaries(older_than):
        if not dry_run:
            path.unlink(missing_ok=True)
        report.temporaries += 1
    return report
