"""The permission vocabulary: CLIENT.md 10 (39 names, D7a) and the default role sets."""

from __future__ import annotations

PERMISSION_NAMES: tuple[str, ...] = (
    "create_invites",
    "kick_members",
    "ban_members",
    "administrator",
    "manage_channels",
    "manage_space",
    "add_reactions",
    "view_audit_log",
    "priority_speaker",
    "stream",
    "view_channel",
    "send_messages",
    "send_tts",
    "manage_messages",
    "embed_links",
    "attach_files",
    "read_history",
    "mention_everyone",
    "use_external_emojis",
    "connect",
    "speak",
    "mute_members",
    "deafen_members",
    "move_members",
    "use_vad",
    "change_nickname",
    "manage_nicknames",
    "manage_roles",
    "manage_webhooks",
    "manage_emojis",
    "use_commands",
    "manage_events",
    "manage_threads",
    "create_threads",
    "use_external_stickers",
    "send_in_threads",
    "moderate_members",
    "manage_soundboard",
    "use_soundboard",
)

ALL_PERMISSIONS: frozenset[str] = frozenset(PERMISSION_NAMES)

# DATA.md 9.3, in stored order; D7a adds use_soundboard to @everyone, manage_soundboard to Admin.
DEFAULT_EVERYONE_PERMISSIONS: tuple[str, ...] = (
    "view_channel",
    "send_messages",
    "read_history",
    "add_reactions",
    "create_invites",
    "change_nickname",
    "connect",
    "speak",
    "use_vad",
    "embed_links",
    "attach_files",
    "use_external_emojis",
    "stream",
    "use_soundboard",
)

_MODERATION_SET: tuple[str, ...] = (
    "kick_members",
    "ban_members",
    "manage_messages",
    "mute_members",
    "deafen_members",
    "move_members",
    "manage_nicknames",
    "moderate_members",
    "mention_everyone",
    "manage_threads",
    "manage_events",
)

_ADMIN_SET: tuple[str, ...] = (
    "manage_channels",
    "manage_space",
    "manage_roles",
    "manage_webhooks",
    "manage_emojis",
    "view_audit_log",
    "priority_speaker",
    "manage_soundboard",
)

MODERATOR_ROLE_PERMISSIONS: tuple[str, ...] = DEFAULT_EVERYONE_PERMISSIONS + _MODERATION_SET
ADMIN_ROLE_PERMISSIONS: tuple[str, ...] = MODERATOR_ROLE_PERMISSIONS + _ADMIN_SET


def is_permission(name: object) -> bool:
    return isinstance(name, str) and name in ALL_PERMISSIONS
