"""Files in and out: receiving uploads (D17, D25) and locating stored files for the CDN.

Uploads are streamed to temporary files, never held in memory.

The HTTP layer decodes the multipart stream and hands each file part to an `UploadReceiver`,
which writes it to a temporary file inside the file store, hashes it as it goes and enforces
the limits (files per message, bytes per file, bytes per request). When the message is
created, `MessageService` moves the files into the content-addressed store inside its
transaction; whatever was not adopted (a refused or failed request) is deleted when the
receiver closes, so no orphan file or row is left.

`CdnService` answers which stored file a `/cdn/...` path names (CLIENT.md 8, D17a, D17b):
always through a database row or a content hash, never by joining a client's text into a
path, so path traversal cannot reach anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import sqlite3
from pathlib import Path
from types import TracebackType

import trio

from accord.auth.principal import Principal
from accord.errors import PayloadTooLargeError, ValidationError
from accord.models.messages import FILES_PER_MESSAGE_MAX, clean_content_type, validate_filename
from accord.services.context import Context, Service
from accord.services.dms import load_channel_access
from accord.services.images import sniff_image
from accord.storage.attachments import get_attachment
from accord.storage.emojis import image_key_of
from accord.storage.files import FileStore

_FLUSH_BYTES = 256 * 1024
_IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


@dataclasses.dataclass(frozen=True, slots=True)
class StagedFile:
    """A received file waiting in a temporary file for its message."""

    path: Path
    key: str  # SHA-256 of the bytes: the content-addressed storage key
    size: int
    filename: str
    content_type: str
    width: int | None = None
    height: int | None = None


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image, UnidentifiedImageError  # loaded on first use: keeps idle RSS low

    try:
        with Image.open(path) as image:
            return int(image.width), int(image.height)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


class UploadReceiver:
    """One request's files. Use as `async with service.receive() as receiver:`."""

    def __init__(self, service: UploadService) -> None:
        self._service = service
        self._files = service.files
        self._limiter = service.ctx.file_limiter
        self.max_file_bytes = service.settings.max_file_bytes
        self.max_request_bytes = service.settings.max_upload_bytes
        self.files: list[StagedFile] = []
        self._temp_paths: list[Path] = []
        self._total = 0
        self._current: _OpenFile | None = None

    async def __aenter__(self) -> UploadReceiver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with trio.CancelScope(shield=True):
            current = self._current
            self._current = None
            paths = list(self._temp_paths)

            def cleanup() -> None:
                if current is not None:
                    current.close()
                for path in paths:
                    path.unlink(missing_ok=True)  # adopted files are already gone

            await trio.to_thread.run_sync(cleanup, limiter=self._limiter)

    def count_request_bytes(self, n: int) -> None:
        """Every byte of the request body counts against ACCORD_MAX_UPLOAD_BYTES (D25)."""
        self._total += n
        if self._total > self.max_request_bytes:
            raise PayloadTooLargeError(
                f"an upload may be at most {self.max_request_bytes} bytes in total"
            )

    async def begin_file(self, filename: str, content_type: str | None) -> None:
        index = len(self.files)
        field = f"files[{index}]"
        if index >= FILES_PER_MESSAGE_MAX:
            raise ValidationError(
                f"a message can have at most {FILES_PER_MESSAGE_MAX} files", field="files"
            )
        name = validate_filename(filename, field)
        fd, path = await trio.to_thread.run_sync(self._files.temp_file, limiter=self._limiter)
        self._temp_paths.append(path)
        self._current = _OpenFile(fd, path, name, clean_content_type(content_type), field)

    async def write(self, data: bytes) -> None:
        current = self._current
        if current is None:
            return
        current.size += len(data)
        if current.size > self.max_file_bytes:
            raise PayloadTooLargeError(
                f"{current.field}: a file may be at most {self.max_file_bytes} bytes"
            )
        current.hash.update(data)
        if len(current.head) < 64:
            current.head += data[: 64 - len(current.head)]
        current.buffer.write(data)
        if current.buffer.tell() >= _FLUSH_BYTES:
            await trio.to_thread.run_sync(current.flush, limiter=self._limiter)

    async def end_file(self) -> None:
        current = self._current
        if current is None:
            return
        self._current = None

        def finish() -> StagedFile:
            current.flush()
            current.close()
            kind = sniff_image(current.head)
            content_type = current.content_type
            size: tuple[int, int] | None = None
            if kind is not None:
                size = _image_size(current.path)
                if size is not None:
                    content_type = _IMAGE_TYPES[kind]
            elif content_type.startswith("image/"):
                # Declared an image but is not one we can read: never serve it as an image.
                content_type = "application/octet-stream"
            return StagedFile(
                path=current.path,
                key=current.hash.hexdigest(),
                size=current.size,
                filename=current.filename,
                content_type=content_type,
                width=size[0] if size else None,
                height=size[1] if size else None,
            )

        self.files.append(await trio.to_thread.run_sync(finish, limiter=self._limiter))


class _OpenFile:
    def __init__(self, fd: int, path: Path, filename: str, content_type: str, field: str) -> None:
        self.fd: int | None = fd
        self.path = path
        self.filename = filename
        self.content_type = content_type
        self.field = field
        self.size = 0
        self.hash = hashlib.sha256()
        self.head = b""
        self.buffer = io.BytesIO()

    def flush(self) -> None:
        data = self.buffer.getvalue()
        self.buffer = io.BytesIO()
        view = memoryview(data)
        while view and self.fd is not None:
            written = os.write(self.fd, view)
            view = view[written:]

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class UploadService(Service):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.files = FileStore(ctx.settings.storage_dir)

    def receive(self) -> UploadReceiver:
        return UploadReceiver(self)

    async def check_can_upload(self, principal: Principal, channel_id: int) -> None:
        """Refuse early, before reading any body: the same checks the send repeats."""

        def read(conn: sqlite3.Connection) -> None:
            access = load_channel_access(conn, channel_id, principal)
            access.require("view_channel")
            access.require("send_messages")
            access.require("attach_files")
            access.require_not_timed_out()

        await self.db.read(read)


@dataclasses.dataclass(frozen=True, slots=True)
class ServedFile:
    """A stored file the CDN may send."""

    path: Path
    content_type: str
    size: int
    etag: str
    inline: bool  # images (and media) are shown inline; anything else is a download
    filename: str | None = None


_INLINE_PREFIXES = ("image/", "video/", "audio/")
_IMAGE_KINDS = {"avatars", "banners", "icons", "app_icons", "role_icons"}
_DEFAULT_AVATAR_COLOURS = (
    (88, 101, 242),
    (116, 127, 141),
    (59, 165, 92),
    (250, 166, 26),
    (237, 66, 69),
    (235, 69, 158),
)


def _stat(path: Path) -> int | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size if path.is_file() else None


class CdnService(Service):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.files = FileStore(ctx.settings.storage_dir)
        self._default_avatars: dict[int, bytes] = {}

    async def _file(
        self, kind: str, key: str, content_type: str, *, inline: bool, filename: str | None = None
    ) -> ServedFile | None:
        path = self.files.path_of(kind, key)
        if path is None:
            return None
        size = await trio.to_thread.run_sync(_stat, path, limiter=self.ctx.file_limiter)
        if size is None:
            return None
        return ServedFile(path, content_type, size, f'"{key}"', inline, filename)

    async def image(self, kind: str, image_hash: str, fmt: str) -> ServedFile | None:
        """An avatar, banner, space, application or role icon by its hash (D17a): `.png`
        always, `.gif` for animated (`a_`) hashes."""
        if kind not in _IMAGE_KINDS:
            return None
        animated = image_hash.startswith("a_")
        key = image_hash[2:] if animated else image_hash
        if fmt == "png":
            return await self._file(kind, key, "image/png", inline=True)
        if fmt == "gif" and animated:
            return await self._file(f"{kind}_gif", key, "image/gif", inline=True)
        return None

    async def emoji(self, emoji_id: int, fmt: str) -> ServedFile | None:
        """`/cdn/emojis/{id}.png` (and `.gif` for animated emojis, D17b)."""
        found = await self.db.read(image_key_of, emoji_id)
        if found is None:
            return None
        key, animated = found
        if key is None:
            return None
        if fmt == "png":
            return await self._file("emojis", key, "image/png", inline=True)
        if fmt == "gif" and animated:
            return await self._file("emojis_gif", key, "image/gif", inline=True)
        return None

    async def attachment(
        self, channel_id: int, attachment_id: int, filename: str
    ) -> ServedFile | None:
        """An attachment by its row; the name in the URL must be the stored one."""
        found = await self.db.read(get_attachment, channel_id, attachment_id)
        if found is None or found.filename != filename:
            return None
        content_type = found.content_type or "application/octet-stream"
        return await self._file(
            "attachments",
            found.storage_key,
            content_type,
            inline=content_type.startswith(_INLINE_PREFIXES),
            filename=found.filename,
        )

    async def default_avatar(self, index: int) -> bytes | None:
        """`/cdn/embed/avatars/{index}.png`: a plain coloured square per index."""
        if not 0 <= index < len(_DEFAULT_AVATAR_COLOURS):
            return None
        cached = self._default_avatars.get(index)
        if cached is None:

            def render() -> bytes:
                from PIL import Image

                out = io.BytesIO()
                Image.new("RGB", (128, 128), _DEFAULT_AVATAR_COLOURS[index]).save(out, "PNG")
                return out.getvalue()

            cached = await trio.to_thread.run_sync(render, limiter=self.ctx.file_limiter)
            self._default_avatars[index] = cached
        return cached
