"""SFU join tokens (MEDIA.md 1 and 5a): main signs, the node verifies offline.

A join token is an HS256 JWT over the claims `sub` (user id), `session_id` (voice session id),
`channel_id`, `space_id`, `node_id`, `speak`, `iat`, `exp` (= iat + 60 s) and `jti`, plus the
optional `deaf` (server-deafened; absent = false, RT-33). The HMAC
key is derived from `ACCORD_SFU_SECRET` (SHA-256 with a purpose label), so any secret length
gives a full-strength key and the node secret itself never signs anything else.

Pure: time comes in as `now` (unix seconds); no I/O, no trio. `UsedTokenIds` is the node's
single-use memory of `jti`s, bounded by token lifetime.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from typing import Any, Literal

import jwt

JOIN_TOKEN_TTL_S = 60
_ALGORITHM = "HS256"
_KEY_LABEL = b"accord sfu join token v1\x00"
_REQUIRED = ("sub", "session_id", "channel_id", "space_id", "node_id", "speak", "iat", "exp", "jti")

JoinTokenFailure = Literal["invalid", "expired", "wrong_node", "reused"]


class JoinTokenError(Exception):
    """A join token the node must refuse; `reason` picks the close code (MEDIA.md 5a)."""

    def __init__(self, reason: JoinTokenFailure, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class JoinClaims:
    user_id: str
    session_id: str
    channel_id: str
    space_id: str | None
    node_id: str
    speak: bool
    issued_at: int
    expires_at: int
    token_id: str
    deaf: bool = False  # server-deafened (optional claim; absent means not deafened)


def _key(secret: str) -> bytes:
    return hashlib.sha256(_KEY_LABEL + secret.encode()).digest()


def sign_join_token(
    secret: str,
    *,
    user_id: int | str,
    session_id: str,
    channel_id: int | str,
    space_id: int | str | None,
    node_id: str,
    speak: bool,
    now: float,
    ttl_s: int = JOIN_TOKEN_TTL_S,
    token_id: str | None = None,
    deaf: bool = False,
) -> str:
    """A signed join token for one voice session on one node."""
    issued = int(now)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "session_id": str(session_id),
        "channel_id": str(channel_id),
        "space_id": None if space_id is None else str(space_id),
        "node_id": node_id,
        "speak": bool(speak),
        "deaf": bool(deaf),
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": token_id or secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, _key(secret), algorithm=_ALGORITHM)


def verify_join_token(secret: str, token: str, *, node_id: str, now: float) -> JoinClaims:
    """Check signature, expiry and node. Raises JoinTokenError (never anything else)."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise JoinTokenError("invalid", "malformed token")
    try:
        claims = jwt.decode(
            token,
            _key(secret),
            algorithms=[_ALGORITHM],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.PyJWTError as exc:
        raise JoinTokenError("invalid", f"bad token: {exc}") from None
    if not isinstance(claims, dict) or any(name not in claims for name in _REQUIRED):
        raise JoinTokenError("invalid", "token is missing claims")
    expires_at, issued_at = claims["exp"], claims["iat"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (expires_at, issued_at)):
        raise JoinTokenError("invalid", "token times are not integers")
    strings = ("sub", "session_id", "channel_id", "node_id", "jti")
    if not all(isinstance(claims[name], str) for name in strings):
        raise JoinTokenError("invalid", "token ids are not strings")
    if not isinstance(claims["speak"], bool) or not isinstance(claims.get("deaf", False), bool):
        raise JoinTokenError("invalid", "token claims have the wrong types")
    if not (claims["space_id"] is None or isinstance(claims["space_id"], str)):
        raise JoinTokenError("invalid", "token claims have the wrong types")
    if claims["node_id"] != node_id:
        raise JoinTokenError("wrong_node", "token is for another node")
    if now >= expires_at:
        raise JoinTokenError("expired", "token expired")
    return JoinClaims(
        user_id=claims["sub"],
        session_id=claims["session_id"],
        channel_id=claims["channel_id"],
        space_id=claims["space_id"],
        node_id=claims["node_id"],
        speak=claims["speak"],
        issued_at=issued_at,
        expires_at=expires_at,
        token_id=claims["jti"],
        deaf=claims.get("deaf", False),
    )


class UsedTokenIds:
    """The `jti`s a node has accepted, kept until their token expires (single use, 5a)."""

    def __init__(self) -> None:
        self._expiry: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._expiry)

    def claim(self, claims: JoinClaims, now: float) -> None:
        """Record the token as used; JoinTokenError("reused") if it already was."""
        self._expiry = {jti: exp for jti, exp in self._expiry.items() if exp > now}
        if claims.token_id in self._expiry:
            raise JoinTokenError("reused", "token already used")
        self._expiry[claims.token_id] = claims.expires_at
