"""Two-factor authentication with TOTP (RFC 6238) and one-time backup codes.

Enabling is two steps: `begin_enable` makes a secret (not yet active), `verify` with a valid
code activates it and returns ten backup codes, shown once and stored only as SHA-256 hashes.
A TOTP code is accepted within one 30 s step either side and never twice: the last used time
step is stored, so a replayed (or older) code fails. Time comes from `self.clock`, so tests can
fix it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import sqlite3
import time
from collections.abc import Callable

import pyotp

from accord.errors import ConflictError, ForbiddenError, UnauthorizedError, ValidationError
from accord.services.context import Context, Service
from accord.storage import mfa as mfa_store
from accord.times import now_ts

STEP_S = 30
BACKUP_CODES = 10
ISSUER = "Accord"


@dataclasses.dataclass(frozen=True, slots=True)
class PendingSecret:
    secret: str
    uri: str


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


def _new_backup_code() -> str:
    raw = secrets.token_hex(5)  # 10 hex characters
    return f"{raw[:5]}-{raw[5:]}"


class MfaService(Service):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.clock: Callable[[], float] = time.time

    def matching_step(self, secret: str, code: str) -> int | None:
        """The time step (now, or one either side) whose TOTP equals `code`."""
        code = code.strip().replace(" ", "")
        if not (code.isdigit() and len(code) == 6):
            return None
        totp = pyotp.TOTP(secret)
        current = int(self.clock()) // STEP_S
        for step in (current, current - 1, current + 1):
            if hmac.compare_digest(totp.at(step * STEP_S), code):
                return step
        return None

    def consume_code(self, conn: sqlite3.Connection, user_id: int, code: str) -> bool:
        """True for a fresh TOTP code or an unused backup code (consumed either way)."""
        found = mfa_store.get_mfa(conn, user_id)
        if found is None:
            return False
        secret, _, _ = found
        step = self.matching_step(secret, code)
        if step is not None:
            return mfa_store.mark_step_used(conn, user_id, step)
        return mfa_store.use_backup_code(conn, user_id, _hash_code(code), now_ts())

    async def check_login_code(self, user_id: int, code: str) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            return self.consume_code(conn, user_id, code)

        return await self.db.write(work)

    async def begin_enable(self, user_id: int, username: str) -> PendingSecret:
        secret = pyotp.random_base32()

        def work(conn: sqlite3.Connection) -> None:
            existing = mfa_store.get_mfa(conn, user_id)
            if existing is not None and existing[1]:
                raise ConflictError("two-factor authentication is already enabled")
            mfa_store.put_pending_secret(conn, user_id, secret, now_ts())

        await self.db.write(work)
        uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)
        return PendingSecret(secret, uri)

    async def verify(self, user_id: int, code: str) -> list[str]:
        """Activate a pending secret with a valid code; returns fresh backup codes."""
        codes = [_new_backup_code() for _ in range(BACKUP_CODES)]

        def work(conn: sqlite3.Connection) -> None:
            found = mfa_store.get_mfa(conn, user_id)
            if found is None:
                raise ValidationError("two-factor set-up was not started", field="code")
            secret, enabled, _ = found
            if enabled:
                raise ConflictError("two-factor authentication is already enabled")
            step = self.matching_step(secret, code)
            if step is None or not mfa_store.mark_step_used(conn, user_id, step):
                raise ValidationError("invalid two-factor code", field="code")
            mfa_store.set_enabled(conn, user_id, True)
            mfa_store.replace_backup_codes(conn, user_id, [_hash_code(c) for c in codes])

        await self.db.write(work)
        self._forget(user_id)
        return codes

    async def disable(self, user_id: int, password_ok: bool, code: str | None) -> None:
        if not password_ok:
            raise ForbiddenError("invalid password")

        def work(conn: sqlite3.Connection) -> None:
            found = mfa_store.get_mfa(conn, user_id)
            if found is None or not found[1]:
                raise ValidationError("two-factor authentication is not enabled")
            # The password is enough (CLIENT.md 4.1: the client sends only `password`); a
            # code, when sent, must still be valid.
            if code is not None and not self.consume_code(conn, user_id, code):
                raise ForbiddenError("invalid two-factor code")
            mfa_store.delete_mfa(conn, user_id)

        await self.db.write(work)
        self._forget(user_id)

    async def regenerate_backup_codes(self, user_id: int, password_ok: bool) -> list[str]:
        if not password_ok:
            raise ForbiddenError("invalid password")
        codes = [_new_backup_code() for _ in range(BACKUP_CODES)]

        def work(conn: sqlite3.Connection) -> None:
            found = mfa_store.get_mfa(conn, user_id)
            if found is None or not found[1]:
                raise ValidationError("two-factor authentication is not enabled")
            mfa_store.replace_backup_codes(conn, user_id, [_hash_code(c) for c in codes])

        await self.db.write(work)
        return codes

    async def backup_code_status(self, user_id: int) -> tuple[bool, int, int]:
        """(enabled, unused codes, total codes)."""

        def work(conn: sqlite3.Connection) -> tuple[bool, int, int]:
            found = mfa_store.get_mfa(conn, user_id)
            enabled = found is not None and found[1]
            unused, total = mfa_store.count_backup_codes(conn, user_id)
            return enabled, unused, total

        return await self.db.read(work)

    async def is_enabled(self, user_id: int) -> bool:
        found = await self.db.read(mfa_store.get_mfa, user_id)
        return found is not None and found[1]

    def _forget(self, user_id: int) -> None:
        from accord.services.users import UserService

        self.ctx.get(UserService).forget(user_id)


class MfaRequiredError(UnauthorizedError):
    """Login needs a second factor: `details` carries `mfa_required` and a ticket."""

    code = "mfa_required"

    def __init__(self, ticket: str) -> None:
        super().__init__(
            "two-factor code required: send it as 'code' with your login",
            details={"mfa_required": True, "ticket": ticket},
        )
