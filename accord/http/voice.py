"""Voice REST routes (VOICE.md 3, API.md 3.14, CLIENT.md 4.14, D14, D14c, D15a).

`GET /api/v1/voice/info` answers un-enveloped, as the client reads it. Join and leave go
through `VoiceService`, which applies the same checks as gateway op 9. Moderators change a
member's server mute/deafen or move/disconnect them with
`PATCH /api/v1/spaces/{space_id}/voice-states/{user_id}`.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from accord.errors import NotFoundError
from accord.http.body import read_object
from accord.http.context import get_ctx, path_id, require_principal
from accord.http.responses import json_response, ok
from accord.ids import parse_id
from accord.voice.service import VoiceService
from accord.voice.states import VoiceFlags

blueprint = Blueprint("voice", __name__, url_prefix="/api/v1")


def _voice() -> VoiceService:
    return get_ctx().get(VoiceService)


@blueprint.get("/voice/info")
async def voice_info() -> Response:
    """GET /api/v1/voice/info — no auth; not enveloped (VOICE.md 3.1)."""
    return json_response(_voice().backend_info())


@blueprint.get("/spaces/<space_id>/voice-regions")
async def voice_regions(space_id: str) -> Response:
    """GET /api/v1/spaces/{space_id}/voice-regions — MEMBER."""
    principal = require_principal()
    sid = path_id(space_id, "unknown_space")
    return ok(await _voice().voice_regions(principal, sid))


@blueprint.get("/channels/<channel_id>/voice-status")
async def voice_status(channel_id: str) -> Response:
    """GET /api/v1/channels/{channel_id}/voice-status — CHANNEL(view_channel)."""
    principal = require_principal()
    cid = path_id(channel_id, "unknown_channel")
    return ok(await _voice().voice_status(principal, cid))


@blueprint.post("/channels/<channel_id>/voice/join")
async def voice_join(channel_id: str) -> Response:
    """POST /api/v1/channels/{channel_id}/voice/join — CHANNEL(view_channel, connect), voice."""
    principal = require_principal()
    cid = path_id(channel_id, "unknown_channel")
    body = await read_object(required=True)
    flags = VoiceFlags(
        self_mute=bool(body.boolean("self_mute")),
        self_deaf=bool(body.boolean("self_deaf")),
        self_video=bool(body.boolean("self_video")),
        self_stream=bool(body.boolean("self_stream")),
    )
    region = body.text("region") or body.text("rtc_region")
    result = await _voice().join_rest(principal, cid, flags, region=region)
    return ok(result.rest_reply())


@blueprint.delete("/channels/<channel_id>/voice/leave")
async def voice_leave(channel_id: str) -> Response:
    """DELETE /api/v1/channels/{channel_id}/voice/leave — CHANNEL(connect) on the path channel."""
    principal = require_principal()
    cid = path_id(channel_id, "unknown_channel")
    await _voice().leave_rest(principal, cid)
    return ok({"ok": True})


@blueprint.patch("/spaces/<space_id>/voice-states/<user_id>")
async def moderate_voice(space_id: str, user_id: str) -> Response:
    """PATCH /api/v1/spaces/{space_id}/voice-states/{user_id} — `mute` (mute_members), `deaf`
    (deafen_members), `channel_id` (move_members; null disconnects); role above the target's."""
    principal = require_principal()
    sid = path_id(space_id, "unknown_space")
    target = path_id(user_id, "member not found") if user_id != "@me" else principal.user_id
    body = await read_object(required=True)
    changes: dict[str, Any] = {"mute": body.boolean("mute"), "deaf": body.boolean("deaf")}
    if body.provided("channel_id"):
        if body.is_null("channel_id"):
            changes["channel_id"] = None
        else:
            channel = parse_id(body.data["channel_id"])
            if channel is None:
                raise NotFoundError("unknown_channel")
            changes["channel_id"] = channel
    state = await _voice().moderate(principal, sid, target, **changes)
    return ok(None if state is None else state.to_wire())
