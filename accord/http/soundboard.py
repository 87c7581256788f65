"""Soundboard routes (CLIENT.md 4.12) and the CDN route that serves the audio."""

from __future__ import annotations

from quart import Blueprint, Response, request, send_file

from accord.errors import NotFoundError
from accord.http.body import read_object
from accord.http.context import audit_reason, get_ctx, path_id, require_principal
from accord.http.responses import ok
from accord.services.soundboard import SoundboardService

blueprint = Blueprint("soundboard", __name__)
_PREFIX = "/api/v1/spaces/<space_id>/soundboard"


def _service() -> SoundboardService:
    return get_ctx().get(SoundboardService)


@blueprint.get(_PREFIX)
async def list_sounds(space_id: str) -> Response:
    """GET /spaces/{id}/soundboard — member."""
    service = _service()
    sounds = await service.list(require_principal(), path_id(space_id, "unknown_space"))
    return ok([service.wire(s) for s in sounds])


@blueprint.get(f"{_PREFIX}/<sound_id>")
async def get_sound(space_id: str, sound_id: str) -> Response:
    """GET /spaces/{id}/soundboard/{sound_id} — member."""
    service = _service()
    sound = await service.get(
        require_principal(), path_id(space_id, "unknown_space"), path_id(sound_id, "unknown_sound")
    )
    return ok(service.wire(sound))


@blueprint.post(_PREFIX)
async def create_sound(space_id: str) -> Response:
    """POST /spaces/{id}/soundboard — manage_soundboard; `name`, `audio` (data URI), `volume`."""
    principal = require_principal()
    sid = path_id(space_id, "unknown_space")
    body = await read_object()
    service = _service()
    sound = await service.create(
        principal,
        sid,
        name=body.required_text("name"),
        audio=body.required_text("audio"),
        volume=body.number("volume"),
        reason=audit_reason(),
    )
    return ok(service.wire(sound))


@blueprint.patch(f"{_PREFIX}/<sound_id>")
async def update_sound(space_id: str, sound_id: str) -> Response:
    """PATCH /spaces/{id}/soundboard/{sound_id} — manage_soundboard; `name`, `volume`."""
    principal = require_principal()
    sid = path_id(space_id, "unknown_space")
    body = await read_object(required=False)
    service = _service()
    sound = await service.update(
        principal,
        sid,
        path_id(sound_id, "unknown_sound"),
        name=body.text("name"),
        volume=body.number("volume"),
        reason=audit_reason(),
    )
    return ok(service.wire(sound))


@blueprint.delete(f"{_PREFIX}/<sound_id>")
async def delete_sound(space_id: str, sound_id: str) -> Response:
    """DELETE /spaces/{id}/soundboard/{sound_id} — manage_soundboard."""
    principal = require_principal()
    await _service().delete(
        principal,
        path_id(space_id, "unknown_space"),
        path_id(sound_id, "unknown_sound"),
        audit_reason(),
    )
    return ok(None)


@blueprint.post(f"{_PREFIX}/<sound_id>/play")
async def play_sound(space_id: str, sound_id: str) -> Response:
    """POST /spaces/{id}/soundboard/{sound_id}/play — use_soundboard, in a voice channel."""
    principal = require_principal()
    payload = await _service().play(
        principal, path_id(space_id, "unknown_space"), path_id(sound_id, "unknown_sound")
    )
    return ok(payload)


@blueprint.get("/cdn/sounds/<name>")
async def cdn_sound(name: str) -> Response:
    """GET /cdn/sounds/{id}.{ext} — public, cacheable, with Range support."""
    stem, _, extension = name.partition(".")
    service = _service()
    sound = await service.sound_for_cdn(path_id(stem, "not found"))
    if sound is None or extension != sound.extension:
        raise NotFoundError("not found")
    found = service.audio_file(sound)
    if found is None:
        raise NotFoundError("not found")
    path, content_type = found
    response = await send_file(path, mimetype=content_type, conditional=True)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    if request.range is None:
        response.headers["Accept-Ranges"] = "bytes"
    return response
