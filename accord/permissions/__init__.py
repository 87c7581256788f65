"""Permission vocabulary and pure resolution (DATA.md 9, D7, D7a, D8a)."""

from accord.permissions.hierarchy import (
    INSTANCE_ADMIN_POSITION,
    OWNER_POSITION,
    hierarchy_position,
    outranks,
    reorder_positions,
    ungrantable,
    unknown_permissions,
)
from accord.permissions.names import (
    ADMIN_ROLE_PERMISSIONS,
    ALL_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    MODERATOR_ROLE_PERMISSIONS,
    PERMISSION_NAMES,
    is_permission,
)
from accord.permissions.resolve import (
    Overwrite,
    has_permission,
    resolve_base_permissions,
    resolve_channel_permissions,
)

__all__ = [
    "ADMIN_ROLE_PERMISSIONS",
    "ALL_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "INSTANCE_ADMIN_POSITION",
    "MODERATOR_ROLE_PERMISSIONS",
    "OWNER_POSITION",
    "PERMISSION_NAMES",
    "Overwrite",
    "has_permission",
    "hierarchy_position",
    "is_permission",
    "outranks",
    "reorder_positions",
    "resolve_base_permissions",
    "resolve_channel_permissions",
    "ungrantable",
    "unknown_permissions",
]
