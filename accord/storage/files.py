"""Content-addressed file storage under ACCORD_STORAGE_DIR (D17).

Files are named by the SHA-256 of their bytes inside a folder per kind (`avatars`, `icons`,
`emojis`, `attachments`, `sounds`, ...), never by anything a user supplied, so no path a client
sends can reach outside the store. Writes go to a temporary file first and are renamed into
place, so a failed write leaves nothing behind. Blocking: call from a worker thread.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

_KEY = re.compile(r"^[0-9a-f]{64}$")
_KIND = re.compile(r"^[a-z_]{1,32}$")


class FileStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, kind: str) -> Path:
        if not _KIND.fullmatch(kind):
            raise ValueError(f"bad file kind {kind!r}")
        return self.root / kind

    def path_of(self, kind: str, key: str) -> Path | None:
        """The path of a stored file, or None for a malformed key (never outside the store)."""
        if not _KEY.fullmatch(key):
            return None
        return self._dir(kind) / key[:2] / key

    def exists(self, kind: str, key: str) -> bool:
        path = self.path_of(kind, key)
        return path is not None and path.is_file()

    def save(self, kind: str, data: bytes) -> str:
        """Store `data`; returns its key (SHA-256 hex). Idempotent for equal bytes."""
        key = hashlib.sha256(data).hexdigest()
        path = self.path_of(kind, key)
        assert path is not None
        if path.is_file():
            return key
        self.save_as(kind, key, data)
        return key

    def save_as(self, kind: str, key: str, data: bytes) -> None:
        """Store `data` under a key derived elsewhere (e.g. a rendition of another file)."""
        path = self.path_of(kind, key)
        if path is None:
            raise ValueError("bad key")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def adopt(self, kind: str, tmp_path: Path, key: str) -> None:
        """Move an already-hashed temporary file (e.g. a streamed upload) into the store."""
        path = self.path_of(kind, key)
        if path is None:
            raise ValueError("bad key")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            tmp_path.unlink(missing_ok=True)
        else:
            os.replace(tmp_path, path)

    def walk(self) -> Iterator[tuple[str, str, float]]:
        """Every stored file as (kind, key, modification time); temporaries are skipped."""
        if not self.root.is_dir():
            return
        for kind_dir in sorted(self.root.iterdir()):
            if not kind_dir.is_dir() or not _KIND.fullmatch(kind_dir.name):
                continue
            for shard in sorted(kind_dir.iterdir()):
                if not shard.is_dir():
                    continue
                for path in sorted(shard.iterdir()):
                    if _KEY.fullmatch(path.name) and path.name[:2] == shard.name:
                        yield kind_dir.name, path.name, path.stat().st_mtime

    def stale_temporaries(self, older_than: float) -> list[Path]:
        """Temporary files (a crashed upload or write) last modified before `older_than`."""
        found = list((self.root / "tmp").glob("upload-*"))
        found += self.root.glob("*/*/.tmp-*")
        return [path for path in found if path.is_file() and path.stat().st_mtime < older_than]

    def temp_file(self) -> tuple[int, Path]:
        """A new temporary file inside the store (same filesystem, so `adopt` can rename)."""
        directory = self.root / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-")
        return fd, Path(name)

    def remove(self, kind: str, key: str) -> None:
        """Delete a stored file if it exists (callers check nothing references it)."""
        path = self.path_of(kind, key)
        if path is not None:
            path.unlink(missing_ok=True)

    def read(self, kind: str, key: str) -> bytes | None:
        path = self.path_of(kind, key)
        if path is None or not path.is_file():
            return None
        return path.read_bytes()
