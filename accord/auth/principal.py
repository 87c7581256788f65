"""Who is making a request: resolved from an Authorization header or a gateway IDENTIFY."""

from __future__ import annotations

import dataclasses
from typing import Literal

TokenKind = Literal["bearer", "bot", "node"]


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    kind: TokenKind
    is_admin: bool
    token_hash: str
    application_id: int | None = None

    @property
    def is_bot(self) -> bool:
        return self.kind == "bot"


@dataclasses.dataclass(frozen=True, slots=True)
class NodePrincipal:
    """An SFU node authenticated with `Authorization: Node <ACCORD_SFU_SECRET>` (D15)."""

    kind: Literal["node"] = "node"


def split_authorization(header: str | None) -> tuple[str, str] | None:
    """Split `Bearer x` / `Bot x` / `Node x` (case-sensitive scheme, one space; API.md 1.2)."""
    if not header:
        return None
    for scheme in ("Bearer ", "Bot ", "Node "):
        if header.startswith(scheme):
            credential = header[len(scheme) :]
            if not credential:
                return None
            return scheme[:-1], credential
    return None
