"""Permission vocabulary and pure resolution (DATA.md 9, D7, D7a, D8a)."""

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
    "MODERATOR_ROLE_PERMISSIONS",
    "PERMISSION_NAMES",
    "Overwrite",
    "has_permission",
    "is_permission",
    "resolve_base_permissions",
    "resolve_channel_permissions",
]
