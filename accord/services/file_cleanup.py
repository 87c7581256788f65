"""Removing stored files once no row names them (D17, G-14).

A write that drops rows naming files (a message, channel, space, emoji or sound deleted, an
avatar, banner or icon replaced or cleared) collects them as `StoredFile`s inside its
transaction and hands them to `FileCleanup.release` after it has committed, so a rolled-back
write never loses a file. Files are content-addressed and may be shared, so `release` removes
only those no row references any more. It asks in a write of its own: writes are serialized and
files are only ever written inside write transactions, so nobody can start using a file between
the check and the unlink. A file that cannot be removed is logged, never raised: the request
that dropped it has already succeeded.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable

from accord.services.context import Context, Service
from accord.storage import file_refs
from accord.storage.file_refs import StoredFile
from accord.storage.files import FileStore

log = logging.getLogger("accord.files")


class FileCleanup(Service):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.files = FileStore(ctx.settings.storage_dir)

    def _sweep(self, conn: sqlite3.Connection, candidates: list[StoredFile]) -> int:
        removed = 0
        for kind, key in file_refs.unreferenced(conn, candidates):
            try:
                self.files.remove(kind, key)
            except OSError as exc:
                log.warning("could not remove stored file %s/%s: %s", kind, key, exc)
            else:
                removed += 1
        return removed

    async def release(self, candidates: Iterable[StoredFile]) -> None:
        """Remove those of `candidates` that no row references (call after the commit)."""
        wanted = sorted(set(candidates))
        if not wanted:
            return
        try:
            removed = await self.db.write(self._sweep, wanted)
        except Exception:
            log.exception("stored file cleanup failed; %d file(s) stay on disk", len(wanted))
            return
        log.debug("released %d stored file(s), removed %d", len(wanted), removed)
