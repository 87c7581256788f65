"""Registration, login, logout and credential resolution (API.md 3.2, 1.2; D8, D10, D11).

Passwords are hashed in a worker thread under the context's password limiter. Resolved tokens
are cached for a short time so most requests cost no database hop; every revocation goes
through this service, which drops the cache entry and tells open gateway sessions.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import sqlite3
import time

import trio

from accord.auth.passwords import hash_password, verify_password
from accord.auth.principal import NodePrincipal, Principal, split_authorization
from accord.auth.tokens import hash_token, new_token
from accord.errors import (
    ConflictError,
    ForbiddenError,
    RateLimitedError,
    UnauthorizedError,
    ValidationError,
)
from accord.events.types import SessionControl
from accord.models.members import Member
from accord.models.spaces import Space
from accord.models.users import User
from accord.ratelimit import RateLimiter
from accord.services.context import Context, Service
from accord.services.members import member_joined
from accord.services.mfa import MfaRequiredError, MfaService
from accord.storage import members as member_store
from accord.storage import spaces as space_store
from accord.storage import users as user_store
from accord.times import now_ts, ts_after

log = logging.getLogger("accord.auth")

_CACHE_TTL_S = 30.0
_TICKET_TTL_S = 300.0
LOGIN_FAILURE_BURST = 10  # failed sign-ins per account, then one more every 90 s
_CACHE_MAX = 50_000


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    user: User
    token: str


def validate_username(raw: str) -> str:
    """Register rules (API.md 3.2): trimmed, 1-32 UTF-8 bytes."""
    username = raw.strip()
    if not 1 <= len(username.encode("utf-8", "surrogatepass")) <= 32:
        raise ValidationError("username must be between 1 and 32 characters", field="username")
    return username


def validate_password(raw: str, field: str = "password") -> str:
    if not 8 <= len(raw.encode("utf-8", "surrogatepass")) <= 128:
        raise ValidationError("password must be between 8 and 128 characters", field=field)
    return raw


def validate_display_name(raw: str) -> str:
    name = raw.strip()
    if not 1 <= len(name) <= 64:
        raise ValidationError("must be between 1 and 64 characters", field="display_name")
    return name


def default_space(conn: sqlite3.Connection, configured: str | None) -> Space | None:
    """The space new users join: ACCORD_DEFAULT_SPACE (id or slug) or the oldest space."""
    if configured:
        space = None
        if configured.isdigit():
            space = space_store.get_space(conn, int(configured))
        return space or space_store.get_space_by_slug(conn, configured)
    return space_store.oldest_space(conn)


class AuthService(Service):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        # token hash -> (principal, expires_at or None, cached at)
        self._cache: dict[str, tuple[Principal, str | None, float]] = {}
        # MFA login ticket -> (user id, expires at monotonic)
        self._tickets: dict[str, tuple[int, float]] = {}
        # Failed sign-ins per account (G-12, RT-46): many addresses guessing one account's
        # password or second factor are limited together, whatever the per-IP buckets allow.
        self._failures = RateLimiter(
            LOGIN_FAILURE_BURST, LOGIN_FAILURE_BURST / 900, max_buckets=50_000
        )

    # -- passwords -------------------------------------------------------------------------

    async def hash_password(self, password: str) -> str:
        return await trio.to_thread.run_sync(
            hash_password, password, limiter=self.ctx.password_limiter
        )

    async def verify_password(self, stored_hash: str | None, password: str) -> bool:
        return await trio.to_thread.run_sync(
            verify_password, stored_hash, password, limiter=self.ctx.password_limiter
        )

    # -- register / login / logout ------------------------------------------------------------

    async def register(self, username: str, password: str, display_name: str | None) -> Session:
        username = validate_username(username)
        validate_password(password)
        display = validate_display_name(display_name) if display_name is not None else username
        if await self.db.read(user_store.username_taken, username):
            raise ConflictError("username already taken")
        password_hash = await self.hash_password(password)
        token = new_token()
        user_id = self.ctx.new_id()
        now = now_ts()
        expires = ts_after(self.settings.token_ttl_days * 86400)

        def write(conn: sqlite3.Connection) -> tuple[User, Member | None]:
            if user_store.username_taken(conn, username):
                raise ConflictError("username already taken")
            first = user_store.count_human_users(conn) == 0  # D8: first user is admin
            user = user_store.insert_user(
                conn,
                user_id=user_id,
                username=username,
                display_name=display,
                password_hash=password_hash,
                is_admin=first,
                now=now,
            )
            user_store.insert_user_token(conn, hash_token(token), user_id, expires, now)
            # Every new user joins the default space (API.md 3.2, D22a ACCORD_DEFAULT_SPACE).
            space = default_space(conn, self.settings.default_space)
            if space is None or space_store.is_banned(conn, space.id, user_id):
                return user, None
            space_store.add_member(conn, space.id, user_id, now)
            return user, member_store.get_member(conn, space.id, user_id)

        user, member = await self.db.write(write)
        if member is not None:
            self.ctx.publish(*member_joined(member, user))
        log.info("registered user %s (%s)%s", user.id, user.username, " as admin" * user.is_admin)
        return Session(user=user, token=token)

    async def login(self, username: str, password: str, code: str | None = None) -> Session:
        """Check the password (and the second factor when enabled) and issue a token.

        Without a valid `code` for a user with two-factor auth, raises MfaRequiredError whose
        ticket lets `login_with_ticket` finish without sending the password again.
        """
        record = await self.db.read(user_store.get_login_record, username)
        user, stored = record if record else (None, None)
        account = f"user:{user.id}" if user is not None else f"name:{username.casefold()}"
        self._check_failures(account)
        can_login = user is not None and not user.bot and not user.deleted
        ok = await self.verify_password(stored if can_login else None, password)
        if not ok or user is None:
            self._record_failure(account)
            raise UnauthorizedError("invalid credentials")
        if user.mfa_enabled:
            mfa = self.ctx.get(MfaService)
            if code is None:
                raise MfaRequiredError(self._new_ticket(user.id))
            if not await mfa.check_login_code(user.id, code):
                self._record_failure(account)
                raise UnauthorizedError("invalid two-factor code")
        return Session(user=user, token=await self.issue_token(user.id))

    def _check_failures(self, account: str) -> None:
        """Refuse a sign-in attempt on an account with too many recent failures (429), before
        any check, so a right guess can't be told apart during the lock-out. Exempt in test
        mode like the other login limits (D9)."""
        if self.settings.test_mode:
            return
        decision = self._failures.peek(account, time.monotonic())
        if not decision.allowed:
            raise RateLimitedError(
                decision.retry_after_s, "too many failed sign-ins for this account, retry later"
            )

    def _record_failure(self, account: str) -> None:
        if not self.settings.test_mode:
            self._failures.take(account, time.monotonic())

    async def login_with_ticket(self, ticket: str, code: str) -> Session:
        entry = self._tickets.pop(ticket, None)
        if entry is None or entry[1] < time.monotonic():
            raise UnauthorizedError("login ticket expired, log in again")
        user_id = entry[0]
        self._check_failures(f"user:{user_id}")
        if not await self.ctx.get(MfaService).check_login_code(user_id, code):
            self._tickets[ticket] = entry  # a wrong code may be retried until the ticket expires
            self._record_failure(f"user:{user_id}")
            raise UnauthorizedError("invalid two-factor code")
        user = await self.db.read(user_store.get_user, user_id)
        if user is None or user.deleted:
            raise UnauthorizedError("invalid credentials")
        return Session(user=user, token=await self.issue_token(user.id))

    def _new_ticket(self, user_id: int) -> str:
        now = time.monotonic()
        if len(self._tickets) > 10_000:
            self._tickets = {k: v for k, v in self._tickets.items() if v[1] > now}
        ticket = new_token()
        self._tickets[ticket] = (user_id, now + _TICKET_TTL_S)
        return ticket

    async def check_password(self, user_id: int, password: str) -> bool:
        stored = await self.db.read(user_store.get_password_hash, user_id)
        return await self.verify_password(stored, password)

    async def change_password(self, principal: Principal, current: str, new: str) -> None:
        """Set a new password; every other token of the user is revoked (sessions closed)."""
        validate_password(new, field="new_password")
        if principal.kind != "bearer":
            raise ForbiddenError("bots have no password")
        if not await self.check_password(principal.user_id, current):
            raise ForbiddenError("current password is incorrect")
        new_hash = await self.hash_password(new)

        def write(conn: sqlite3.Connection) -> list[str]:
            user_store.update_user(conn, principal.user_id, {"password_hash": new_hash}, now_ts())
            return user_store.delete_user_tokens(conn, principal.user_id, principal.token_hash)

        self.forget_tokens(await self.db.write(write))

    async def issue_token(self, user_id: int, *, expires_at: str | None = None) -> str:
        token = new_token()
        expires = expires_at or ts_after(self.settings.token_ttl_days * 86400)
        await self.db.write(
            user_store.insert_user_token, hash_token(token), user_id, expires, now_ts()
        )
        return token

    async def logout(self, principal: Principal) -> None:
        """Revoke the presented bearer token (bot tokens are left alone, API.md 3.2)."""
        if principal.kind != "bearer":
            return
        await self.db.write(user_store.delete_user_token, principal.token_hash)
        self.forget_tokens([principal.token_hash])

    async def revoke_all_tokens(self, user_id: int, *, keep_hash: str | None = None) -> None:
        """Revoke every bearer token of a user except `keep_hash` (password change, deletion)."""
        hashes = await self.db.write(user_store.delete_user_tokens, user_id, keep_hash)
        self.forget_tokens(hashes)

    def forget_tokens(self, token_hashes: list[str]) -> None:
        """Drop revoked tokens from the cache and close the gateway sessions they opened."""
        for token_hash in token_hashes:
            self._cache.pop(token_hash, None)
            self.ctx.publish(SessionControl(kind="token_revoked", token_hash=token_hash))

    def forget_user(self, user_id: int) -> None:
        """Drop cached principals of a user (its admin flag or state changed)."""
        for key in [k for k, v in self._cache.items() if v[0].user_id == user_id]:
            self._cache.pop(key, None)

    # -- resolution --------------------------------------------------------------------------

    async def authenticate(self, header: str | None) -> Principal | NodePrincipal | None:
        """Resolve an Authorization header; None when absent, malformed, unknown or expired."""
        parts = split_authorization(header)
        if parts is None:
            return None
        scheme, credential = parts
        if scheme == "Node":
            secret = self.settings.sfu_secret
            if secret and hmac.compare_digest(credential.encode(), secret.encode()):
                return NodePrincipal()
            return None
        return await self.resolve_token(scheme, credential)

    async def resolve_token(self, scheme: str, credential: str) -> Principal | None:
        token_hash = hash_token(credential)
        now = time.monotonic()
        cached = self._cache.get(token_hash)
        if cached is not None and now - cached[2] < _CACHE_TTL_S:
            principal, expires_at, _ = cached
            if principal.kind != ("bearer" if scheme == "Bearer" else "bot"):
                return None
            if expires_at is not None and expires_at < now_ts():
                self._cache.pop(token_hash, None)
                return None
            return principal
        if scheme == "Bearer":
            found = await self.db.read(user_store.lookup_bearer, token_hash)
            if found is None:
                return None
            user_id, is_admin, expires_at = found
            if expires_at < now_ts():
                return None
            principal = Principal(user_id, "bearer", is_admin, token_hash)
            self._remember(token_hash, principal, expires_at, now)
            return principal
        if scheme == "Bot":
            bot = await self.db.read(user_store.lookup_bot, token_hash)
            if bot is None:
                return None
            user_id, is_admin, app_id = bot
            principal = Principal(user_id, "bot", is_admin, token_hash, application_id=app_id)
            self._remember(token_hash, principal, None, now)
            return principal
        return None

    def _remember(
        self, token_hash: str, principal: Principal, expires_at: str | None, now: float
    ) -> None:
        if len(self._cache) >= _CACHE_MAX:
            for key in list(self._cache)[: _CACHE_MAX // 4]:
                del self._cache[key]
        self._cache[token_hash] = (principal, expires_at, now)

    # -- background ----------------------------------------------------------------------------

    async def run_token_purger(
        self,
        interval_s: float = 3600.0,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Delete expired bearer tokens now and then every `interval_s` (G-11)."""
        task_status.started()
        while True:
            purged = await self.db.write(user_store.purge_expired_tokens, now_ts())
            if purged:
                log.info("purged %d expired token(s)", purged)
            await trio.sleep(interval_s)
