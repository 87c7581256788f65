"""Domain events: what changed, its wire payload, and who may see it.

An `Event` is published once by a service after its transaction commits. Its `type` is the
gateway event name (`message.create`, `member.join`, ...); `data` is the payload exactly as the
client reads it (already JSON-ready: ids are strings). The audience fields let the gateway
decide delivery without knowing the resource:

- `space_id`: delivered to members of that space (with the event's intent);
- `space_ids`: delivered to members of any of these spaces, once per session (user.update and
  presence.update go to everyone sharing a space with the user, D12d);
- `channel_id`: additionally requires `view_channel` on that channel;
- `user_ids`: delivered to these users' sessions only (alone, or besides a space);
- `application_id`: delivered to that application's bot sessions (interaction.create);
- `session_id`: delivered to one gateway session only (voice.server_update).

`EventBus` subscribers also receive `SessionControl` notices that are not client events
(a token was revoked, a membership changed) so open sessions can follow them live.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

# Gateway intents per event type (GATEWAY.md, CLIENT.md 6.3, D12c). Types not listed here are
# always delivered.
INTENT_BY_EVENT: dict[str, str] = {
    "message.create": "messages",
    "message.update": "messages",
    "message.delete": "messages",
    "message.delete_bulk": "messages",
    "member.join": "members",
    "member.leave": "members",
    "member.update": "members",
    "member.chunk": "members",
    "space.create": "spaces",
    "space.update": "spaces",
    "space.delete": "spaces",
    "channel.create": "spaces",
    "channel.update": "spaces",
    "channel.delete": "spaces",
    "channel.reorder": "spaces",
    "channel.pins_update": "spaces",
    "role.create": "spaces",
    "role.update": "spaces",
    "role.delete": "spaces",
    "invite.create": "spaces",
    "invite.update": "spaces",
    "invite.delete": "spaces",
    "reaction.add": "message_reactions",
    "reaction.remove": "message_reactions",
    "reaction.clear": "message_reactions",
    "reaction.clear_emoji": "message_reactions",
    "typing.start": "message_typing",
    "presence.update": "presences",
    "voice.state_update": "voice_states",
    "voice.server_update": "voice_states",
    "voice.signal": "voice_states",
    "ban.create": "moderation",
    "ban.delete": "moderation",
    "emoji.create": "emojis",
    "emoji.update": "emojis",
    "emoji.delete": "emojis",
    # D12c: soundboard.* go to sessions that asked for `soundboard`, else to `voice_states`.
    "soundboard.create": "soundboard",
    "soundboard.update": "soundboard",
    "soundboard.delete": "soundboard",
    "soundboard.play": "soundboard",
    "audit_log.create": "moderation",
}

# Sessions without the first intent still receive these events with the second (D12c).
INTENT_FALLBACK: dict[str, str] = {"soundboard": "voice_states"}


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """A client-visible change, published after it is committed."""

    type: str
    data: dict[str, Any]
    space_id: int | None = None
    space_ids: frozenset[int] = frozenset()
    channel_id: int | None = None
    user_ids: frozenset[int] = frozenset()
    application_id: int | None = None
    session_id: str | None = None
    # A space permission the recipient must hold (e.g. audit_log.create needs view_audit_log).
    required_permission: str | None = None
    # Users in user_ids receive the event even if they are no longer space members
    # (e.g. member.leave / space.delete sent to the user who left).
    exclude_session_id: str | None = None

    @property
    def intent(self) -> str | None:
        return INTENT_BY_EVENT.get(self.type)


ControlKind = Literal[
    "token_revoked",  # close sessions opened with token_hash (or all of user_id's if None)
    "user_tokens_revoked",  # every session of user_id except those of keep_token_hash
    "membership_changed",  # user_id joined or left space_id: refresh that session's spaces
    "permissions_changed",  # roles/overwrites of space_id changed: re-evaluate visibility
    "space_deleted",
]


@dataclasses.dataclass(frozen=True, slots=True)
class SessionControl:
    """A notice for open sessions that is not itself delivered to clients."""

    kind: ControlKind
    user_id: int | None = None
    space_id: int | None = None
    token_hash: str | None = None
    keep_token_hash: str | None = None


BusItem = Event | SessionControl
