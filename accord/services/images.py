"""Images sent as data URIs or bare base64 (avatars, banners, space icons, emojis; D17a, D17b).

Only PNG, JPEG, GIF and WebP are accepted, recognised by their magic bytes (never by a name or
a declared type). Every image is re-encoded as PNG (the first frame); an animated GIF is also
kept as GIF. Stored content-addressed; the returned hash is what the resource stores, and the
CDN serves `{hash}.png` (and `.gif` for animated ones). Images are prepared first and written by
`save_prepared` inside the transaction that stores their hash, never outside one: the cleanup
of unreferenced files (`FileCleanup`) relies on that.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import io
import re

import trio

from accord.errors import ValidationError
from accord.services.context import Context, Service
from accord.storage.files import FileStore

_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.IGNORECASE)

MAGIC_TYPES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)


def sniff_image(data: bytes) -> str | None:
    """The image format by magic bytes, or None."""
    for magic, kind in MAGIC_TYPES:
        if data.startswith(magic):
            return kind
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def decode_base64_payload(raw: str, *, field: str, max_bytes: int) -> bytes:
    """Bytes of a `data:...;base64,` URI or of bare base64; 400 naming `field` otherwise."""
    text = raw.strip()
    match = _DATA_URI.match(text)
    if match:
        text = text[match.end() :]
    elif text.startswith("data:"):
        raise ValidationError("must be a base64 data URI", field=field)
    if len(text) > (max_bytes * 4) // 3 + 8:
        raise ValidationError(f"must be at most {max_bytes} bytes", field=field)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("is not valid base64", field=field) from None
    if not data:
        raise ValidationError("must not be empty", field=field)
    if len(data) > max_bytes:
        raise ValidationError(f"must be at most {max_bytes} bytes", field=field)
    return data


@dataclasses.dataclass(frozen=True, slots=True)
class StoredImage:
    hash: str  # what the resource stores; "a_" + key for animated images
    key: str  # content key of the PNG rendition
    animated: bool


@dataclasses.dataclass(frozen=True, slots=True)
class PreparedImage:
    """A validated, re-encoded image not yet written: `save_prepared` stores it."""

    stored: StoredImage
    png: bytes
    gif: bytes | None


def _render(
    data: bytes, *, field: str, max_dimension: int, fit: int | None = None
) -> tuple[bytes, bytes | None]:
    """PNG bytes (and the GIF bytes when animated), shrunk to fit `fit` px. ValidationError."""
    from PIL import Image, UnidentifiedImageError  # loaded on first use: keeps idle RSS low

    kind = sniff_image(data)
    if kind is None:
        raise ValidationError("must be a PNG, JPEG, GIF or WebP image", field=field)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            if image.width > max_dimension or image.height > max_dimension:
                raise ValidationError(
                    f"must be at most {max_dimension}x{max_dimension} pixels", field=field
                )
            animated = kind == "gif" and getattr(image, "n_frames", 1) > 1
            image.seek(0)
            frame = image.convert("RGBA")
            if fit is not None and (frame.width > fit or frame.height > fit):
                frame.thumbnail((fit, fit))
            out = io.BytesIO()
            frame.save(out, format="PNG", optimize=False)
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ValidationError("is not a readable image", field=field) from None
    return out.getvalue(), (data if animated else None)


class ImageService(Service):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.files = FileStore(ctx.settings.storage_dir)

    async def prepare(
        self,
        raw: str,
        *,
        field: str,
        max_bytes: int = 8 * 1024 * 1024,
        max_dimension: int = 4096,
        fit: int | None = None,
    ) -> PreparedImage:
        """Decode, validate and re-encode an image without storing it (see `save_prepared`).

        Lets a service check everything else first and write the files inside its
        transaction, so a refused request leaves no file behind.
        """
        data = decode_base64_payload(raw, field=field, max_bytes=max_bytes)

        def work() -> PreparedImage:
            png, gif = _render(data, field=field, max_dimension=max_dimension, fit=fit)
            key = hashlib.sha256(png).hexdigest()
            animated = gif is not None
            stored = StoredImage(hash=f"a_{key}" if animated else key, key=key, animated=animated)
            return PreparedImage(stored, png, gif)

        return await trio.to_thread.run_sync(work, limiter=self.ctx.file_limiter)

    def save_prepared(self, prepared: PreparedImage, kind: str) -> StoredImage:
        """Write a prepared image under `kind` (and `{kind}_gif`). Blocking: a worker thread."""
        key = self.files.save(kind, prepared.png)
        if prepared.gif is not None:
            self.files.save_as(f"{kind}_gif", key, prepared.gif)
        return prepared.stored
