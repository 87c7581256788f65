"""The Space resource (API.md 2.2, D-feat) and slug rules (DATA.md 6, D-slug)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

SLUG_MAX = 100
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@dataclasses.dataclass(frozen=True, slots=True)
class Space:
    id: int
    name: str
    slug: str
    owner_id: int
    created_at: str
    updated_at: str
    description: str | None = None
    icon: str | None = None
    banner: str | None = None
    splash: str | None = None
    verification_level: str = "none"
    default_notifications: str = "all"
    explicit_content_filter: str = "disabled"
    vanity_url_code: str | None = None
    preferred_locale: str = "en-US"
    afk_channel_id: int | None = None
    afk_timeout: int = 300
    system_channel_id: int | None = None
    rules_channel_id: int | None = None
    nsfw_level: str = "default"
    premium_tier: str = "none"
    premium_subscription_count: int = 0
    max_members: int = 500000
    public: bool = False

    @property
    def everyone_role_id(self) -> int:
        """@everyone's role id equals the space id (G-03)."""
        return self.id

    def to_wire(self, **extra: Any) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "slug": self.slug,
            "description": self.description,
            "icon": self.icon,
            "banner": self.banner,
            "splash": self.splash,
            "owner_id": str(self.owner_id),
            "verification_level": self.verification_level,
            "default_notifications": self.default_notifications,
            "explicit_content_filter": self.explicit_content_filter,
            "vanity_url_code": self.vanity_url_code,
            "preferred_locale": self.preferred_locale,
            "afk_channel_id": _sid(self.afk_channel_id),
            "afk_timeout": self.afk_timeout,
            "system_channel_id": _sid(self.system_channel_id),
            "rules_channel_id": _sid(self.rules_channel_id),
            "nsfw_level": self.nsfw_level,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": self.premium_subscription_count,
            "max_members": self.max_members,
            "public": self.public,
            "features": ["public"] if self.public else [],
            "created_at": self.created_at,
            **extra,
        }


def _sid(value: int | None) -> str | None:
    return None if value is None else str(value)


def derive_slug(name: str) -> str:
    """DATA.md 6: lower-case, non-alphanumerics to '-', collapse, strip, cut to 100."""
    slug = _NON_ALNUM.sub("-", name.lower()).strip("-")
    if len(slug) > SLUG_MAX:
        slug = slug[:SLUG_MAX].rstrip("-")
    return slug


def slug_error(slug: str) -> str | None:
    """The first rule a supplied slug breaks (DATA.md 6, D-slug), or None."""
    if not slug:
        return "slug must not be empty"
    if len(slug) > SLUG_MAX:
        return "slug must be 100 characters or fewer"
    if re.fullmatch(r"[a-z0-9-]+", slug) is None:
        return "slug may only contain lowercase letters, digits, and hyphens"
    if slug.startswith("-") or slug.endswith("-"):
        return "slug must not start or end with a hyphen"
    if "--" in slug:
        return "slug must not contain consecutive hyphens"
    if slug == "public" or slug.isdigit():
        return "slug must not be 'public' or all digits"
    return None


def slug_candidates(base: str) -> Any:
    """`base`, `base-2`, `base-3`, ... each kept within 100 characters."""
    yield base
    n = 2
    while True:
        suffix = f"-{n}"
        yield base[: SLUG_MAX - len(suffix)].rstrip("-") + suffix
        n += 1
