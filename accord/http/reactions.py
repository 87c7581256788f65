"""Reaction routes (API.md 3.8, CLIENT.md 4.11). `{emoji}` is percent-decoded by routing:
a unicode emoji or `name:id` of a custom emoji."""

from __future__ import annotations

from quart import Blueprint, Response

from accord.http.context import (
    get_ctx,
    message_path_ids,
    path_id,
    query_id,
    query_int,
    require_principal,
)
from accord.http.responses import ok
from accord.services.reactions import REACTION_USERS_DEFAULT, REACTION_USERS_MAX, ReactionService

blueprint = Blueprint(
    "reactions",
    __name__,
    url_prefix="/api/v1/channels/<channel_id>/messages/<message_id>/reactions",
)


@blueprint.put("/<emoji>/@me")
async def add_reaction(channel_id: str, message_id: str, emoji: str) -> Response:
    """PUT …/reactions/{emoji}/@me — add_reactions; idempotent."""
    principal = require_principal()
    cid, mid = message_path_ids(channel_id, message_id)
    await get_ctx().get(ReactionService).add(principal, cid, mid, emoji)
    return ok(None)


@blueprint.delete("/<emoji>/@me")
async def remove_own_reaction(channel_id: str, message_id: str, emoji: str) -> Response:
    """DELETE …/reactions/{emoji}/@me — view_channel."""
    principal = require_principal()
    cid, mid = message_path_ids(channel_id, message_id)
    await get_ctx().get(ReactionService).remove(principal, cid, mid, emoji)
    return ok(None)


@blueprint.delete("/<emoji>/<user_id>")
async def remove_user_reaction(
    channel_id: str, message_id: str, emoji: str, user_id: str
) -> Response:
    """DELETE …/reactions/{emoji}/{user_id} — manage_messages (unless it is the caller)."""
    principal = require_principal()
    cid, mid = message_path_ids(channel_id, message_id)
    uid = path_id(user_id, "unknown_user")
    await get_ctx().get(ReactionService).remove(principal, cid, mid, emoji, uid)
    return ok(None)


@blueprint.get("/<emoji>")
async def list_reaction_users(channel_id: str, message_id: str, emoji: str) -> Response:
    """GET …/reactions/{emoji}?after=&limit= — view_channel; User objects by id (D-react)."""
    principal = require_principal()
    cid, mid = message_path_ids(channel_id, message_id)
    after = query_id("after") or 0
    limit = query_int("limit", REACTION_USERS_DEFAULT, 1, REACTION_USERS_MAX)
    users = (
        await get_ctx()
        .get(ReactionService)
        .list_users(principal, cid, mid, emoji, after=after, limit=limit)
    )
    return ok(users)


@blueprint.delete("/<emoji>")
async def clear_emoji(channel_id: str, message_id: str, emoji: str) -> Response:
    """DELETE …/reactions/{emoji} — manage_messages."""
    principal = require_principal()
    cid, mid = message_path_ids(channel_id, message_id)
    await get_ctx().get(ReactionService).clear(principal, cid, mid, emoji)
    return ok(None)


@blueprint.delete("")
async def clear_all(channel_id: str, message_id: str) -> Response:
    """DELETE …/reactions — manage_messages."""
    principal = require_principal()
    cid, mid = message_path_ids(channel_id, message_id)
    await get_ctx().get(ReactionService).clear(principal, cid, mid)
    return ok(None)
