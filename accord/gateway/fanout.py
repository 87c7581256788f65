"""The gateway's shared state and its event dispatcher (GATEWAY.md 7, 10; D12, D12b, D12d).

One `Gateway` per server. It owns the only bus subscription of the gateway; a single
dispatcher task takes each bus item in publish order and

- routes an `Event` to the sessions that may see it (the audience rules of
  `accord/events/types.py`: space members with the event's intent and, for channel events,
  `view_channel`; `space_ids` once per session; `user_ids`; an application's bot sessions; one
  session), encoding the payload once and stamping each session's own seq when it is written
  (with ACCORD_GATEWAY_RESTRICT_BOT_INTENTS, bots without `message_content` get a second
  encoding of message events with the bodies emptied, RT-10);
- follows `SessionControl` notices so open sessions see joins, leaves, bans, role and
  overwrite changes and token revocations at once;
- performs IDENTIFY's database read and registration in the same order as the events, so a
  session sees every event committed after the state its READY describes (RT-12).

Sessions outlive their sockets: a session whose connection ends without a clean client close
is parked for the resume window and keeps collecting its events for RESUME. Presence is kept
per user here (online when the first session opens, offline when the last one ends).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from accord.auth.principal import Principal, split_authorization
from accord.events.types import INTENT_FALLBACK, BusItem, Event, SessionControl
from accord.gateway.close_codes import CloseCode
from accord.gateway.outbox import Outbox
from accord.gateway.presence import OFFLINE, Presence, parse_presence
from accord.gateway.protocol import Limits, dispatch_frame, dispatch_prefix
from accord.permissions import has_permission, resolve_channel_permissions
from accord.ratelimit import RateLimiter
from accord.services.auth import AuthService
from accord.services.context import Context
from accord.services.gateway import GatewayStateService, SpacePermissions
from accord.voice.port import GatewayVoiceSession

if TYPE_CHECKING:
    from accord.gateway.connection import Connection

log = logging.getLogger("accord.gateway")

BUS_QUEUE_SIZE = 65_536
MAX_PENDING_CHARS = 4 * 1024 * 1024
WRITE_TIMEOUT_S = 10.0
PRIVILEGED_INTENTS = frozenset({"members", "presences", "message_content"})
# Events whose `data` is a whole message object (GATEWAY.md 12): what `message_content` gates.
MESSAGE_BODY_EVENTS = frozenset({"message.create", "message.update"})
# The fields a session without `message_content` receives emptied, as values of the same type
# so clients parse them unchanged (RT-10).
_EMPTIED_FIELDS: dict[str, Any] = {"content": "", "embeds": [], "attachments": []}


class TooManySessionsError(Exception):
    """IDENTIFY refused: the user already holds the maximum of open and parked sessions."""


def sees_message_content(user_id: int, message: dict[str, Any]) -> bool:
    """Whether a user lacking `message_content` still gets this message's body: its author
    and users it mentions do (RT-10)."""
    uid = str(user_id)
    mentions = message.get("mentions")
    return message.get("author_id") == uid or (isinstance(mentions, list) and uid in mentions)


def without_message_content(message: dict[str, Any]) -> dict[str, Any]:
    """`message` with content, embeds and attachments emptied (absent fields stay absent)."""
    return message | {name: empty for name, empty in _EMPTIED_FIELDS.items() if name in message}


@dataclasses.dataclass(slots=True)
class MemberView:
    """A connected user's standing in one space: roles, base permissions, channel verdicts."""

    role_ids: frozenset[int]
    base: frozenset[str]
    visible: dict[int, bool] = dataclasses.field(default_factory=dict)


class UserEntry:
    """A user with at least one open or parked session: membership, presence, views."""

    __slots__ = ("is_admin", "presence", "sessions", "spaces", "user_id", "views")

    def __init__(self, user_id: int, is_admin: bool) -> None:
        self.user_id = user_id
        self.is_admin = is_admin
        self.spaces: set[int] = set()
        self.sessions: set[GatewaySession] = set()
        self.presence: Presence | None = None
        self.views: dict[int, MemberView] = {}


class GatewaySession:
    """One resumable gateway session (READY's session_id)."""

    __slots__ = (
        "connection",
        "id",
        "intents",
        "outbox",
        "parked_until",
        "principal",
        "redact_content",
        "user",
    )

    def __init__(
        self,
        session_id: str,
        principal: Principal,
        user: UserEntry,
        intents: frozenset[str],
        outbox: Outbox,
    ) -> None:
        self.id = session_id
        self.principal = principal
        self.user = user
        self.intents = intents
        self.outbox = outbox
        self.connection: Connection | None = None
        self.parked_until: float | None = None
        # RT-10: a bot without `message_content` while the policy switch is on gets message
        # bodies emptied (it cannot change: intents are fixed and a session keeps its user).
        self.redact_content = False

    @property
    def voice(self) -> GatewayVoiceSession:
        return GatewayVoiceSession(self.id, self.principal.user_id, self.principal)


@dataclasses.dataclass(eq=False, slots=True)
class _IdentifyRequest:
    connection: Connection
    principal: Principal
    intents: frozenset[str]
    presence: Presence | None
    done: trio.Event = dataclasses.field(default_factory=trio.Event)
    session: GatewaySession | None = None
    over_session_limit: bool = False


class Gateway:
    """Every session of this process, the routing tables, and the tasks that serve them."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.limits = Limits(
            heartbeat_interval_ms=settings.gateway_heartbeat_ms,
            identify_timeout_s=settings.gateway_identify_timeout_s,
            max_frame_bytes=settings.gateway_max_frame_bytes,
            inbound_per_minute=settings.gateway_inbound_per_minute,
        )
        self.connect_limiter = RateLimiter(
            settings.gateway_connect_rate.capacity,
            settings.gateway_connect_rate.refill_per_s,
            max_buckets=settings.rate_limit_max_buckets,
        )
        self.state = ctx.get(GatewayStateService)
        self.connections: set[Connection] = set()
        self.sessions: dict[str, GatewaySession] = {}
        self.users: dict[int, UserEntry] = {}
        self.space_users: dict[int, set[UserEntry]] = {}
        self.token_sessions: dict[str, set[GatewaySession]] = {}
        self.app_sessions: dict[int, set[GatewaySession]] = {}
        self.parked: dict[str, GatewaySession] = {}
        self.space_permissions: dict[int, SpacePermissions] = {}
        self._unknown_channels: dict[int, set[int]] = {}
        self._requests_send, self._requests = trio.open_memory_channel[BusItem | _IdentifyRequest](
            1024
        )
        self._nursery: trio.Nursery | None = None
        self.shutting_down = False
        # RT-10: message bodies are withheld from bots without `message_content` only when
        # ACCORD_GATEWAY_RESTRICT_BOT_INTENTS is on (off: every session gets them, as the seed).
        self.redacting = not settings.gateway_bot_privileged_intents
        self.delivered = 0  # frames handed to session queues (for benchmarks and tests)

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Dispatcher, reaper and shutdown watcher; returns only when cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            subscription = self.ctx.bus.subscribe(BUS_QUEUE_SIZE)
            nursery.start_soon(self._pump, subscription)
            nursery.start_soon(self._dispatch)
            nursery.start_soon(self._reap)
            nursery.start_soon(self._watch_shutdown)
            task_status.started()

    async def _pump(self, subscription: Any) -> None:
        """Move bus items into the dispatcher's queue, where IDENTIFYs are ordered with them."""
        while True:
            try:
                async for item in subscription.receive:
                    await self._requests_send.send(item)
            finally:
                subscription.close()
            # The bus dropped us (we fell 65k items behind): every session may have missed
            # events, so none can be resumed. Start over with a fresh subscription.
            log.error("gateway fell behind the event bus; closing every session")
            self._reset_all()
            subscription = self.ctx.bus.subscribe(BUS_QUEUE_SIZE)

    def _reset_all(self) -> None:
        for connection in list(self.connections):
            connection.close(CloseCode.UNKNOWN_ERROR, park=False)
        for session in list(self.sessions.values()):
            self._destroy(session)

    async def _watch_shutdown(self) -> None:
        await self.ctx.shutting_down.wait()
        self.shutting_down = True
        # OPERATIONS.md 10: op 6 RECONNECT, then close 1001; hypercorn would otherwise drop
        # the sockets without a close frame when its graceful timeout ends (STACK-NOTES 2).
        for connection in list(self.connections):
            connection.close(CloseCode.GOING_AWAY, reconnect=True, park=False, clean=True)

    def spawn(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run `fn(*args)` in the gateway's nursery, logging (not raising) its errors."""
        if self._nursery is None:
            return

        async def guarded() -> None:
            try:
                await fn(*args)
            except Exception:
                name = getattr(getattr(fn, "func", fn), "__name__", repr(fn))
                log.exception("gateway background call %s failed", name)

        self._nursery.start_soon(guarded)

    # -- the dispatcher -----------------------------------------------------------------------

    async def _dispatch(self) -> None:
        receive = self._requests
        item: BusItem | _IdentifyRequest | None = None
        while True:
            if item is None:
                item = await receive.receive()
            if isinstance(item, _IdentifyRequest):
                batch = [item]
                item = None
                while True:
                    try:
                        following = receive.receive_nowait()
                    except trio.WouldBlock:
                        break
                    if isinstance(following, _IdentifyRequest):
                        batch.append(following)
                    else:
                        item = following
                        break
                await self._identify_batch(batch)
                continue
            current, item = item, None
            try:
                if isinstance(current, Event):
                    await self._route(current)
                else:
                    await self._control(current)
            except Exception:
                log.exception("gateway dispatch of %r failed", current)

    async def _route(self, event: Event) -> None:
        if event.session_id is not None:
            session = self.sessions.get(event.session_id)
            if session is not None and session.connection is not None:
                frame = dispatch_frame(event.type, event.data)
                if not session.outbox.push_direct(frame):
                    self._overflow(session)
            return
        intent = event.intent
        space_id = event.space_id
        channel_id = event.channel_id
        required = event.required_permission
        if (
            space_id is not None
            and space_id in self.space_users
            and (channel_id is not None or required is not None)
        ):
            await self._ensure_views(space_id, channel_id)
        recipients: list[GatewaySession] = []
        several = (
            (space_id is not None)
            + bool(event.space_ids)
            + bool(event.user_ids)
            + (event.application_id is not None)
        ) > 1
        seen: set[GatewaySession] = set()

        fallback = INTENT_FALLBACK.get(intent) if intent is not None else None

        def take(sessions: set[GatewaySession]) -> None:
            for session in sessions:
                if (
                    intent is not None
                    and intent not in session.intents
                    and (fallback is None or fallback not in session.intents)
                ):
                    continue
                if several:
                    if session in seen:
                        continue
                    seen.add(session)
                recipients.append(session)

        if space_id is not None:
            for user in self.space_users.get(space_id, ()):
                if channel_id is not None and not self._can_view(user, space_id, channel_id):
                    continue
                if required is not None and not self._holds(user, space_id, required):
                    continue
                take(user.sessions)
        for other_space in event.space_ids:
            for user in self.space_users.get(other_space, ()):
                take(user.sessions)
        for user_id in event.user_ids:
            target = self.users.get(user_id)
            if target is not None:
                take(target.sessions)
        if event.application_id is not None:
            take(self.app_sessions.get(event.application_id, set()))
        if not recipients:
            return
        try:
            prefix = dispatch_prefix(event.type, event.data)
        except TypeError:
            log.exception("event %s is not JSON-serialisable; dropped", event.type)
            return
        now = trio.current_time()
        excluded = event.exclude_session_id
        if self.redacting and event.type in MESSAGE_BODY_EVENTS:
            self._deliver_message(event, prefix, recipients, now)
            return
        for session in recipients:
            if session.id == excluded:
                continue
            if not session.outbox.push_event(prefix, now):
                self._overflow(session)
        self.delivered += len(recipients)

    def _deliver_message(
        self, event: Event, prefix: str, recipients: list[GatewaySession], now: float
    ) -> None:
        """`_route`'s delivery for message bodies under the bot-intent policy (RT-10): sessions
        that may not read them get a copy without content, encoded once for all of them."""
        excluded = event.exclude_session_id
        redacted: str | None = None
        for session in recipients:
            if session.id == excluded:
                continue
            frame = prefix
            if session.redact_content and not sees_message_content(
                session.principal.user_id, event.data
            ):
                if redacted is None:
                    redacted = dispatch_prefix(event.type, without_message_content(event.data))
                frame = redacted
            if not session.outbox.push_event(frame, now):
                self._overflow(session)
        self.delivered += len(recipients)

    def _overflow(self, session: GatewaySession) -> None:
        """A slow consumer: close 4000 and park, so it can RESUME (D12b)."""
        connection = session.connection
        if connection is not None:
            log.info("session %s fell behind; closing 4000", session.id)
            connection.close(CloseCode.UNKNOWN_ERROR, park=True)

    # -- channel visibility -------------------------------------------------------------------

    async def _ensure_views(self, space_id: int, channel_id: int | None) -> None:
        """Load a space's role/overwrite data (and connected members' roles) when missing or
        when an event names a channel it does not know yet (created since)."""
        permissions = self.space_permissions.get(space_id)
        unknown = self._unknown_channels.setdefault(space_id, set())
        stale = permissions is None or (
            channel_id is not None
            and channel_id not in permissions.overwrites
            and channel_id not in unknown
        )
        users = self.space_users.get(space_id, set())
        missing = [u for u in users if space_id not in u.views]
        if not stale and not missing:
            return
        if stale:
            loaded = await self.state.space_permissions(space_id)
            if loaded is None:
                return
            permissions = loaded
            self.space_permissions[space_id] = loaded
            if channel_id is not None and channel_id not in loaded.overwrites:
                unknown.add(channel_id)  # deleted or foreign: decided on base permissions
            users = self.space_users.get(space_id, set())
            missing = list(users)
        assert permissions is not None
        roles = await self.state.member_roles(space_id, [u.user_id for u in missing])
        permissions = self.space_permissions.get(space_id, permissions)
        for user in missing:
            role_ids = roles.get(user.user_id)
            if role_ids is None:
                continue  # left meanwhile: its membership notice follows
            user.views[space_id] = MemberView(
                role_ids,
                permissions.base_permissions(user.user_id, role_ids, is_admin=user.is_admin),
            )

    def _holds(self, user: UserEntry, space_id: int, permission: str) -> bool:
        """Whether the user holds a space-level permission (owner and admins hold all)."""
        view = user.views.get(space_id)
        return view is not None and has_permission(view.base, permission)

    def _can_view(self, user: UserEntry, space_id: int, channel_id: int) -> bool:
        view = user.views.get(space_id)
        permissions = self.space_permissions.get(space_id)
        if view is None or permissions is None:
            return False
        verdict = view.visible.get(channel_id)
        if verdict is None:
            overwrites = permissions.overwrites.get(channel_id)
            if overwrites is None:
                verdict = has_permission(view.base, "view_channel")
            else:
                resolved = resolve_channel_permissions(
                    view.base,
                    everyone_role_id=space_id,
                    member_role_ids=view.role_ids,
                    user_id=user.user_id,
                    overwrites=overwrites,
                )
                verdict = has_permission(resolved, "view_channel")
            view.visible[channel_id] = verdict
        return verdict

    # -- live state -----------------------------------------------------------------------------

    async def _control(self, notice: SessionControl) -> None:
        kind = notice.kind
        if kind == "membership_changed":
            if notice.user_id is not None and notice.space_id is not None:
                await self._refresh_membership(notice.user_id, notice.space_id)
        elif kind == "permissions_changed":
            if notice.space_id is not None:
                self._forget_permissions(notice.space_id)
        elif kind == "space_deleted":
            if notice.space_id is not None:
                for user in self.space_users.pop(notice.space_id, set()):
                    user.spaces.discard(notice.space_id)
                    user.views.pop(notice.space_id, None)
                self._forget_permissions(notice.space_id)
        elif kind == "token_revoked":
            if notice.token_hash is not None:
                targets = set(self.token_sessions.get(notice.token_hash, ()))
            elif notice.user_id is not None and notice.user_id in self.users:
                targets = set(self.users[notice.user_id].sessions)
            else:
                targets = set()
            self._revoke(targets)
        elif kind == "user_tokens_revoked" and notice.user_id in self.users:
            user = self.users[notice.user_id]
            self._revoke(
                {s for s in user.sessions if s.principal.token_hash != notice.keep_token_hash}
            )

    async def _refresh_membership(self, user_id: int, space_id: int) -> None:
        if user_id not in self.users:
            return
        roles = await self.state.member_roles(space_id, [user_id])
        user = self.users.get(user_id)
        if user is None:
            return
        role_ids = roles.get(user_id)
        if role_ids is not None:
            user.spaces.add(space_id)
            self.space_users.setdefault(space_id, set()).add(user)
            permissions = self.space_permissions.get(space_id)
            if permissions is not None:
                user.views[space_id] = MemberView(
                    role_ids,
                    permissions.base_permissions(user_id, role_ids, is_admin=user.is_admin),
                )
            else:
                user.views.pop(space_id, None)
        else:
            self._leave_space(user, space_id)

    def _forget_permissions(self, space_id: int) -> None:
        self.space_permissions.pop(space_id, None)
        self._unknown_channels.pop(space_id, None)
        for user in self.space_users.get(space_id, ()):
            user.views.pop(space_id, None)

    def _drop_space(self, space_id: int) -> None:
        self.space_users.pop(space_id, None)
        self.space_permissions.pop(space_id, None)
        self._unknown_channels.pop(space_id, None)

    def _revoke(self, sessions: set[GatewaySession]) -> None:
        """D10a: op 7, then 4004; the session cannot be resumed."""
        for session in sessions:
            connection = session.connection
            if connection is not None:
                connection.close(CloseCode.AUTHENTICATION_FAILED, invalid_session=True, park=False)
            else:
                self._destroy(session)

    # -- IDENTIFY and RESUME --------------------------------------------------------------------

    async def resolve(self, token: str) -> Principal | None:
        """A `Bearer`/`Bot` credential as REST resolves it (expiry included, RT-01)."""
        parts = split_authorization(token)
        if parts is None or parts[0] not in ("Bearer", "Bot"):
            return None
        return await self.ctx.get(AuthService).resolve_token(*parts)

    def intents_allowed(self, principal: Principal, intents: frozenset[str]) -> bool:
        """Privileged intents for bots, behind ACCORD_GATEWAY_RESTRICT_BOT_INTENTS (off by
        default, GATEWAY.md 6)."""
        if self.ctx.settings.gateway_bot_privileged_intents or not principal.is_bot:
            return True
        return not intents & PRIVILEGED_INTENTS

    async def identify(
        self,
        connection: Connection,
        principal: Principal,
        intents: frozenset[str],
        presence: Presence | None,
    ) -> GatewaySession | None:
        """Open a session for `connection` and queue READY; None if the user or token is
        gone. Runs in the dispatcher's order (see the module docstring). Raises TooManySessionsError
        when the user already holds ACCORD_GATEWAY_MAX_SESSIONS_PER_USER sessions (RT-48)."""
        request = _IdentifyRequest(connection, principal, intents, presence)
        await self._requests_send.send(request)
        await request.done.wait()
        if request.over_session_limit:
            raise TooManySessionsError
        return request.session

    async def _identify_batch(self, batch: list[_IdentifyRequest]) -> None:
        try:
            identities = await self.state.load_identities([r.principal for r in batch])
        except BaseException:
            for request in batch:
                request.done.set()
            raise
        now = trio.current_time()
        cap = self.ctx.settings.gateway_max_sessions_per_user
        for request in batch:
            principal = request.principal
            identity = identities.get((principal.user_id, principal.token_hash))
            holder = self.users.get(principal.user_id)
            if identity is not None and holder is not None and len(holder.sessions) >= cap:
                # Parked sessions stay in `holder.sessions` until they expire or are resumed,
                # so they count too (RT-48).
                request.over_session_limit = True
            elif identity is not None and not request.connection.is_closing:
                request.session = self._open_session(request, identity.space_ids, now)
                request.connection.attach(request.session)
                ready = {
                    "session_id": request.session.id,
                    "user_id": str(principal.user_id),
                    "user": identity.user.to_wire(),
                    "spaces": [str(space_id) for space_id in identity.space_ids],
                    # D12e extras under new keys (RT-15): the spaces themselves and who is in
                    # voice where the user can see, so a client paints without N REST calls.
                    "space_objects": [space.to_wire() for space in identity.spaces],
                    "voice_states": await self._ready_voice_states(
                        request.session, identity.space_ids
                    ),
                }
                request.session.outbox.push_direct(dispatch_frame("ready", ready, seq=1))
                self._announce(request.session.user, request.presence, new_session=True)
            request.done.set()

    async def _ready_voice_states(
        self, session: GatewaySession, space_ids: list[int]
    ) -> list[dict[str, Any]]:
        """What `voice.state_update` events would tell this session: the `voice_states`
        intent, channels it can see."""
        voice = self.ctx.voice
        if voice is None or not space_ids or "voice_states" not in session.intents:
            return []
        visible = []
        for space_id, channel_id, state in voice.voice_states_in(space_ids):
            await self._ensure_views(space_id, channel_id)
            if self._can_view(session.user, space_id, channel_id):
                visible.append(state)
        return visible

    def _open_session(
        self, request: _IdentifyRequest, space_ids: list[int], now: float
    ) -> GatewaySession:
        principal = request.principal
        user = self.users.get(principal.user_id)
        if user is None:
            user = UserEntry(principal.user_id, principal.is_admin)
            self.users[principal.user_id] = user
        elif user.is_admin != principal.is_admin:
            user.is_admin = principal.is_admin
            user.views.clear()
        # Memberships are the same for all of a user's sessions; the newest read wins.
        for space_id in user.spaces - set(space_ids):
            self._leave_space(user, space_id)
        for space_id in space_ids:
            user.spaces.add(space_id)
            self.space_users.setdefault(space_id, set()).add(user)
        settings = self.ctx.settings
        outbox = Outbox(
            max_pending=settings.gateway_queue_size,
            max_pending_chars=MAX_PENDING_CHARS,
            replay_frames=settings.gateway_replay_frames,
            replay_age_s=settings.gateway_resume_window_s,
        )
        session = GatewaySession(str(self.ctx.new_id()), principal, user, request.intents, outbox)
        session.redact_content = (
            self.redacting and principal.is_bot and "message_content" not in request.intents
        )
        self._register(session)
        return session

    def _leave_space(self, user: UserEntry, space_id: int) -> None:
        user.spaces.discard(space_id)
        user.views.pop(space_id, None)
        members = self.space_users.get(space_id)
        if members is not None:
            members.discard(user)
            if not members:
                self._drop_space(space_id)

    def _register(self, session: GatewaySession) -> None:
        self.sessions[session.id] = session
        session.user.sessions.add(session)
        self.token_sessions.setdefault(session.principal.token_hash, set()).add(session)
        app_id = session.principal.application_id
        if session.principal.is_bot and app_id is not None:
            self.app_sessions.setdefault(app_id, set()).add(session)

    def _unregister_credentials(self, session: GatewaySession) -> None:
        token_hash = session.principal.token_hash
        holders = self.token_sessions.get(token_hash)
        if holders is not None:
            holders.discard(session)
            if not holders:
                del self.token_sessions[token_hash]
        app_id = session.principal.application_id
        if app_id is not None and app_id in self.app_sessions:
            self.app_sessions[app_id].discard(session)
            if not self.app_sessions[app_id]:
                del self.app_sessions[app_id]

    def resume(
        self, connection: Connection, principal: Principal, session_id: str, client_seq: int
    ) -> list[str] | None:
        """Hand a parked (or still attached) session to `connection`: the frames to replay
        followed by `resumed`, or None when it cannot be resumed (GATEWAY.md 10.2)."""
        session = self.sessions.get(session_id)
        if session is None or session.principal.user_id != principal.user_id:
            return None  # a foreign session id must not evict the owner's session
        now = trio.current_time()
        previous = session.connection
        if previous is not None:
            # The old socket is still open (the client noticed the drop first): retire it.
            previous.detach_session()
            session.connection = None
            session.outbox.detach(now)
        frames = session.outbox.replay_after(client_seq, now)
        if frames is None:
            self._destroy(session)
            return None
        self.parked.pop(session.id, None)
        session.parked_until = None
        if principal.token_hash != session.principal.token_hash:
            self._unregister_credentials(session)
            session.principal = principal
            self._register(session)
        session.outbox.attach()
        connection.attach(session)
        resumed = {"session_id": session.id, "seq": session.outbox.seq, "replayed": len(frames)}
        frames.append(dispatch_frame("resumed", resumed, seq=session.outbox.seq))
        voice = self.ctx.voice
        if voice is not None:
            self.spawn(voice.gateway_session_resumed, session.voice)
        return frames

    # -- ending sessions ---------------------------------------------------------------------

    def release(self, session: GatewaySession, *, park: bool, clean: bool) -> None:
        """The session's socket is gone: park it for RESUME or end it (D12b, D24)."""
        session.connection = None
        now = trio.current_time()
        window = self.ctx.settings.gateway_resume_window_s
        voice = self.ctx.voice
        if park and not self.shutting_down and session.id in self.sessions:
            session.outbox.detach(now)
            session.parked_until = now + window
            self.parked[session.id] = session
            if voice is not None:
                self.spawn(partial(voice.gateway_session_ended, session.voice, clean=False))
            return
        was_live = session.id in self.sessions
        self._destroy(session)
        if voice is not None and was_live:
            self.spawn(partial(voice.gateway_session_ended, session.voice, clean=clean))

    def _destroy(self, session: GatewaySession) -> None:
        if self.sessions.pop(session.id, None) is None:
            return
        self.parked.pop(session.id, None)
        self._unregister_credentials(session)
        user = session.user
        user.sessions.discard(session)
        connection = session.connection
        session.connection = None
        if connection is not None:
            connection.close(CloseCode.UNKNOWN_ERROR, invalid_session=True, park=False)
        if not user.sessions:
            if user.presence is not None and user.presence.published_status != "offline":
                self._publish_presence(user, OFFLINE)
            for space_id in list(user.spaces):
                self._leave_space(user, space_id)
            self.users.pop(user.user_id, None)

    # -- presence -------------------------------------------------------------------------------

    def _announce(self, user: UserEntry, wanted: Presence | None, *, new_session: bool) -> None:
        if user.presence is None:
            user.presence = wanted or Presence()
            if user.presence.published_status != "offline":
                self._publish_presence(user, user.presence)
        elif wanted is not None and wanted != user.presence:
            self._set_presence(user, wanted)

    def update_presence(self, session: GatewaySession, data: dict[str, Any]) -> None:
        """Op 8 (D-pres). Raises PresenceError on wrong types."""
        user = session.user
        self._set_presence(user, parse_presence(data, fallback=user.presence))

    def _set_presence(self, user: UserEntry, presence: Presence) -> None:
        previous = user.presence
        user.presence = presence
        if previous is not None and previous == presence:
            return
        if (
            previous is not None
            and previous.published_status == "offline"
            and presence.published_status == "offline"
        ):
            return
        self._publish_presence(user, presence)

    def _publish_presence(self, user: UserEntry, presence: Presence) -> None:
        if self.shutting_down:
            return
        # D12d: the user's own sessions and every session sharing a space, once each.
        self.ctx.publish(
            Event(
                type="presence.update",
                data=presence.to_wire(user.user_id),
                space_ids=frozenset(user.spaces),
                user_ids=frozenset({user.user_id}),
            )
        )

    # -- the reaper -----------------------------------------------------------------------------

    async def _reap(self) -> None:
        """Deadlines of every connection (identify timeout, heartbeat silence, stalled writes),
        parked sessions past their window, and replay buffers past their age."""
        settings = self.ctx.settings
        tick = max(
            0.02,
            min(
                1.0,
                settings.gateway_heartbeat_ms / 4000,
                settings.gateway_identify_timeout_s / 4,
                settings.gateway_resume_window_s / 4,
            ),
        )
        last_trim = trio.current_time()
        frozen = False
        while True:
            await trio.sleep(tick)
            if not frozen:
                # Start-up is over: move every object that exists now (modules, the app, its
                # routes) out of the collector's reach. Full collections otherwise rescan them
                # all and pause the loop for ~60 ms, the whole fan-out p99 budget (measured in
                # bench/gateway_bench.py). Once per process: several servers in one process
                # (tests) must not pin each other's garbage.
                if gc.get_freeze_count() == 0:
                    gc.freeze()
                frozen = True
            now = trio.current_time()
            for connection in list(self.connections):
                connection.check(now, WRITE_TIMEOUT_S)
            for session in list(self.parked.values()):
                if session.parked_until is not None and now >= session.parked_until:
                    self._destroy(session)
            if now - last_trim >= 5.0:
                last_trim = now
                for session in list(self.sessions.values()):
                    session.outbox.trim(now)

    # -- introspection (tests, benchmarks) -----------------------------------------------------

    def stats(self) -> dict[str, int]:
        return {
            "connections": len(self.connections),
            "sessions": len(self.sessions),
            "parked": len(self.parked),
            "users": len(self.users),
            "delivered": self.delivered,
        }
