"""CDN routes (CLIENT.md 8, D17, D17a, D17b): stored files with their content type,
long-lived `Cache-Control`, an `ETag`, and single `Range` requests (206/416).

Which file a path names is decided by CdnService from a database row or a content hash;
nothing from the URL is ever joined into a filesystem path. Attachments that are not
images, audio or video are sent as downloads with a sandboxing CSP, so an uploaded HTML
page cannot run on this origin.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import quote

import trio
from quart import Blueprint, Response, request

from accord.http.context import get_ctx
from accord.http.responses import error_body, json_response
from accord.ids import parse_id
from accord.services.uploads import CdnService, ServedFile

blueprint = Blueprint("cdn", __name__, url_prefix="/cdn")

_CHUNK = 64 * 1024
_IMMUTABLE = "public, max-age=31536000, immutable"
_HASH = re.compile(r"^(a_)?[0-9a-f]{64}$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _not_found() -> Response:
    return json_response(error_body("not_found", "not found"), 404)


def _split(name: str) -> tuple[str, str] | None:
    stem, dot, fmt = name.rpartition(".")
    if not dot:
        return None
    return stem, fmt.lower()


async def _chunks(path: str, start: int, length: int) -> AsyncIterator[bytes]:
    async with await trio.open_file(path, "rb") as handle:
        await handle.seek(start)
        remaining = length
        while remaining > 0:
            data = await handle.read(min(_CHUNK, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data


def _byte_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end) of a single satisfiable range; None to ignore; False if unsatisfiable."""
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # multi-range or another unit: send the whole file (RFC 9110 14.2)
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return False
    return start, min(end, size - 1)


def serve(file: ServedFile, cache_control: str = _IMMUTABLE) -> Response:
    headers = {
        "Cache-Control": cache_control,
        "ETag": file.etag,
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
    }
    if file.filename is not None:
        disposition = "inline" if file.inline else "attachment"
        headers["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(file.filename)}"
    if not file.inline:
        headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    if file.etag in request.headers.get("If-None-Match", ""):
        return Response(b"", status=304, headers=headers)
    start, length, status = 0, file.size, 200
    header = request.headers.get("Range")
    if header and request.headers.get("If-Range", file.etag) == file.etag:
        wanted = _byte_range(header, file.size)
        if wanted is False:
            response = json_response(
                error_body("range_not_satisfiable", "requested range not satisfiable"), 416
            )
            response.headers["Content-Range"] = f"bytes */{file.size}"
            return response
        if isinstance(wanted, tuple):
            start, end = wanted
            length, status = end - start + 1, 206
            headers["Content-Range"] = f"bytes {start}-{end}/{file.size}"
    headers["Content-Length"] = str(length)
    response = Response(
        _chunks(str(file.path), start, length),
        status=status,
        headers=headers,
        content_type=file.content_type,
    )
    return response


@blueprint.get("/attachments/<channel_id>/<attachment_id>/<path:filename>")
async def attachment(channel_id: str, attachment_id: str, filename: str) -> Response:
    """GET /cdn/attachments/{channel_id}/{attachment_id}/{filename}."""
    cid, aid = parse_id(channel_id), parse_id(attachment_id)
    if cid is None or aid is None:
        return _not_found()
    found = await get_ctx().get(CdnService).attachment(cid, aid, filename)
    return serve(found) if found else _not_found()


async def _image(kind: str, owner_id: str, name: str) -> Response:
    parts = _split(name)
    if parse_id(owner_id) is None or parts is None or not _HASH.match(parts[0]):
        return _not_found()
    found = await get_ctx().get(CdnService).image(kind, parts[0], parts[1])
    return serve(found) if found else _not_found()


@blueprint.get("/avatars/<user_id>/<name>")
async def avatar(user_id: str, name: str) -> Response:
    """GET /cdn/avatars/{user_id}/{hash}.png (.gif for `a_` hashes)."""
    return await _image("avatars", user_id, name)


@blueprint.get("/banners/<owner_id>/<name>")
async def banner(owner_id: str, name: str) -> Response:
    """GET /cdn/banners/{user_or_space_id}/{hash}.png."""
    return await _image("banners", owner_id, name)


@blueprint.get("/space-icons/<space_id>/<name>")
async def space_icon(space_id: str, name: str) -> Response:
    """GET /cdn/space-icons/{space_id}/{hash}.png."""
    return await _image("icons", space_id, name)


@blueprint.get("/app-icons/<app_id>/<name>")
async def app_icon(app_id: str, name: str) -> Response:
    """GET /cdn/app-icons/{application_id}/{hash}.png."""
    return await _image("app_icons", app_id, name)


@blueprint.get("/role-icons/<role_id>/<name>")
async def role_icon(role_id: str, name: str) -> Response:
    """GET /cdn/role-icons/{role_id}/{hash}.png."""
    return await _image("role_icons", role_id, name)


@blueprint.get("/emojis/<name>")
async def emoji(name: str) -> Response:
    """GET /cdn/emojis/{emoji_id}.png (.gif for animated emojis)."""
    parts = _split(name)
    emoji_id = parse_id(parts[0]) if parts else None
    if parts is None or emoji_id is None:
        return _not_found()
    found = await get_ctx().get(CdnService).emoji(emoji_id, parts[1])
    # The id names an emoji whose image may change only by re-upload under a new id.
    return serve(found, "public, max-age=86400") if found else _not_found()


@blueprint.get("/embed/avatars/<name>")
async def default_avatar(name: str) -> Response:
    """GET /cdn/embed/avatars/{index}.png."""
    parts = _split(name)
    if parts is None or parts[1] != "png" or not parts[0].isdigit() or len(parts[0]) > 2:
        return _not_found()
    data = await get_ctx().get(CdnService).default_avatar(int(parts[0]))
    if data is None:
        return _not_found()
    return Response(
        data,
        content_type="image/png",
        headers={"Cache-Control": _IMMUTABLE, "X-Content-Type-Options": "nosniff"},
    )
