"""The voice service: voice states, joins and leaves, signals, SFU sessions, LiveKit rooms.

Implements `VoicePort` for the gateway (op 9, op 11, session end/resume) and the REST voice
routes (VOICE.md 3) with one set of checks (D14): the channel exists and is a voice channel,
the caller is a member who can see it and has `connect`, is not timed out, and the channel has
room (D14c; `move_members` bypasses). Publishing is granted only with `speak`, and never while
server-muted.

Lifecycle rules: one voice state per user (D14b: a join elsewhere moves it with one non-null
update); a state is held by the gateway session that joined it (or by nobody when joined over
REST). A clean gateway close ends the held state at once, any other end after the grace period
unless the session resumes; a REST-held state expires when its user has no live gateway session
for `rest_voice_ttl_s` (D24). Leaving the space, losing `connect`, a timeout (D-to), channel or
space deletion end states too (bus notices); server mute/deafen set on the member follow into
the live state (G-13). A resumed gateway session in voice gets a fresh server update (RT-22).
On shutdown every state ends with its update and LiveKit rooms are deleted.

Backend work that the client must wait for (LiveKit CreateRoom) happens before any state is
stored, so an outage leaves nothing half-set; cleanup (RemoveParticipant, DeleteRoom, telling a
node to drop a session) goes through a bounded queue served by one worker task, never inline.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

import orjson
import trio

if TYPE_CHECKING:
    import httpx

from accord.auth.principal import Principal
from accord.errors import (
    AccordError,
    ForbiddenError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)
from accord.events.bus import Subscription
from accord.events.types import BusItem, Event, SessionControl
from accord.ids import parse_id
from accord.models.sfu_nodes import SfuNode
from accord.ratelimit import RateLimiter
from accord.services.context import Context, Service
from accord.services.members import member_updated
from accord.services.permissions import channel_access, space_access, space_access_for
from accord.storage import members as member_store
from accord.storage import users as user_store
from accord.storage import voice as voice_store
from accord.voice.allocation import voice_regions
from accord.voice.join_token import sign_join_token
from accord.voice.livekit import LiveKit, LiveKitError, room_name
from accord.voice.nodes import (
    NodeRegistration,
    SfuRegistry,
    end_node_session,
    set_node_session_rights,
)
from accord.voice.port import GatewayVoiceSession
from accord.voice.states import VoiceFlags, VoiceState, VoiceStates

log = logging.getLogger("accord.voice")

CHANNEL_FULL = "voice channel is full"
# D13, D13a, VOICE.md 6: op 11 limits.
MAX_SIGNAL_PAYLOAD_BYTES = 16 * 1024
SIGNAL_RATE_PER_S = 50.0
SIGNAL_BURST = 200
_SIGNAL_TYPE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
CLEANUP_QUEUE_SIZE = 4096
SHUTDOWN_CLEANUP_S = 5.0
_UNSET: Any = object()


@dataclasses.dataclass(frozen=True, slots=True)
class JoinResult:
    state: VoiceState
    server_update: dict[str, Any]

    def rest_reply(self) -> dict[str, Any]:
        """D15a: every voice.server_update field plus voice_state."""
        return {"voice_state": self.state.to_wire(), **self.server_update}


@dataclasses.dataclass(frozen=True, slots=True)
class _JoinCheck:
    channel_id: int
    space_id: int
    user_limit: int | None
    speak: bool
    may_bypass_limit: bool
    mute: bool
    deaf: bool


@dataclasses.dataclass(frozen=True, slots=True)
class _EndOnNode:
    node_id: str
    node_session: str


@dataclasses.dataclass(frozen=True, slots=True)
class _LeaveRoom:
    channel_id: int
    identity: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Rights:
    """Tell the media side what a live participant may do now (RT-33)."""

    node_id: str | None  # custom backend: the node holding `node_session`
    node_session: str | None
    channel_id: int  # LiveKit: the room, with `identity`
    identity: str
    speak: bool  # may publish: the speak permission and not server-muted
    deaf: bool  # server-deafened: nothing is forwarded to it


_Cleanup = _EndOnNode | _LeaveRoom | _Rights
_DeadlineKind = Literal["grace", "rest"]


@dataclasses.dataclass(frozen=True, slots=True)
class _Deadline:
    at: float
    kind: _DeadlineKind
    session_id: str | None = None


def _check_join(conn: sqlite3.Connection, channel_id: int, principal: Principal) -> _JoinCheck:
    access = channel_access(conn, channel_id, principal)
    access.require("view_channel")
    access.require("connect")
    if access.channel.type != "voice":
        raise ValidationError("channel_not_voice")
    access.space_access.require_not_timed_out()
    flags = voice_store.member_voice_flags(conn, access.space.id, principal.user_id)
    mute, deaf = flags or (False, False)
    return _JoinCheck(
        channel_id=channel_id,
        space_id=access.space.id,
        user_limit=access.channel.user_limit,
        speak=access.has("speak"),
        may_bypass_limit=access.has("move_members"),
        mute=mute,
        deaf=deaf,
    )


def _standing(conn: sqlite3.Connection, state: VoiceState) -> _JoinCheck | None:
    """The join check of a user already in voice (their `speak` and server mute/deafen), or
    None when they may no longer be in the channel (left, lost `connect`, timed out)."""
    is_admin = voice_store.user_is_admin(conn, state.user_id)
    if is_admin is None:
        return None
    principal = Principal(state.user_id, "bearer", is_admin, "")
    try:
        return _check_join(conn, state.channel_id, principal)
    except AccordError:
        return None


class VoiceService(Service):
    """Voice states and everything that follows from them. One instance per server."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.states = VoiceStates()
        self.nodes = ctx.get(SfuRegistry)
        self.backend = self.settings.voice_backend
        self._http: httpx.AsyncClient | None = None
        livekit = self.settings.livekit
        self.livekit = LiveKit(livekit, self.http) if livekit is not None else None
        self.signal_drops: Counter[str] = Counter()
        self._signal_limiter = RateLimiter(SIGNAL_BURST, SIGNAL_RATE_PER_S, max_buckets=100_000)
        self._locks: dict[int, trio.Lock] = {}
        self._live: dict[int, set[str]] = {}  # user -> gateway sessions known to be open
        self._parked: set[str] = set()  # sessions that dropped and may still resume
        self._deadlines: dict[int, _Deadline] = {}
        self._deadlines_changed = trio.Event()
        self._cleanup_send, self._cleanup_receive = trio.open_memory_channel[_Cleanup](
            CLEANUP_QUEUE_SIZE
        )
        self._closing = False
        self._shut_down = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Background work: cleanup worker, timers, bus notices, node reaper, shutdown."""
        try:
            await self.nodes.load()
            subscription = self.ctx.bus.subscribe(4096)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._follow_bus, subscription)
                nursery.start_soon(self._serve_cleanups)
                nursery.start_soon(self._serve_deadlines)
                nursery.start_soon(self._reap_nodes)
                nursery.start_soon(self._watch_shutdown)
                if self.livekit is not None:
                    nursery.start_soon(self._check_livekit, self.livekit)
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(SHUTDOWN_CLEANUP_S):
                    await self._shut_down_voice()
                    await self._drain_cleanups()
                if self._http is not None:
                    await self._http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        """The client for node and LiveKit calls, made on first use: httpx is imported then,
        so a main server that never calls a node doesn't carry it (idle memory)."""
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
        return self._http

    async def _check_livekit(self, livekit: LiveKit) -> None:
        """RT-32: say at start-up whether LiveKit answers with these credentials. Not fatal:
        LiveKit may start later; joins report the outage meanwhile."""
        try:
            rooms = await livekit.check()
        except LiveKitError as exc:
            log.warning("LiveKit is not reachable with the configured key and URL: %s", exc)
            return
        log.info("LiveKit reachable (%d room(s) open)", rooms)

    async def _watch_shutdown(self) -> None:
        await self.ctx.shutting_down.wait()
        await self._shut_down_voice()

    async def _shut_down_voice(self) -> None:
        """End every state (with its update) and delete the LiveKit rooms they used."""
        if self._shut_down:
            return
        self._shut_down = True
        self._closing = True
        rooms = sorted({state.channel_id for state in self.states})
        for state in self.states:
            self._end(state.user_id, reason="server shutting down", leave_room=False)
        livekit = self.livekit
        if livekit is None or not rooms:
            return

        async def delete(channel_id: int) -> None:
            try:
                await livekit.delete_room(room_name(channel_id))
            except LiveKitError as exc:
                log.warning("failed to delete LiveKit room %s: %s", room_name(channel_id), exc)

        async with trio.open_nursery() as nursery:
            for channel_id in rooms:
                nursery.start_soon(delete, channel_id)

    def _check_open(self) -> None:
        if self._closing:
            raise UnavailableError("the server is shutting down")

    @asynccontextmanager
    async def _user_lock(self, user_id: int) -> AsyncIterator[None]:
        """Serialise one user's voice changes (REST, gateway, moderation, timers)."""
        lock = self._locks.setdefault(user_id, trio.Lock())
        async with lock:
            try:
                yield
            finally:
                if lock.statistics().tasks_waiting == 0:
                    self._locks.pop(user_id, None)

    # -- VoicePort (gateway) -----------------------------------------------------------------

    async def gateway_voice_state(self, session: GatewayVoiceSession, data: dict[str, Any]) -> None:
        """Op 9: join, move, flag change or leave. Refusals go to the session as `voice.error`."""
        self._mark_live(session)
        space_id: int | None = None
        channel_id: int | None = None
        try:
            channel_id, space_id, flags = _parse_voice_state(data)
            if channel_id is None:
                await self.leave(session.user_id)
                return
            result = await self.join(
                session.principal, channel_id, flags, gateway=session, space_hint=space_id
            )
        except LiveKitError as exc:
            log.warning("voice join of user %s failed: %s", session.user_id, exc)
            update = {
                "space_id": None if space_id is None else str(space_id),
                "channel_id": None if channel_id is None else str(channel_id),
                "backend": self.backend,
                "error": "voice backend unavailable",
            }
            self.ctx.publish(Event("voice.server_update", update, session_id=session.session_id))
        except AccordError as exc:
            error = {
                "op": 9,
                "code": exc.code,
                "message": exc.message,
                "space_id": None if space_id is None else str(space_id),
                "channel_id": None if channel_id is None else str(channel_id),
            }
            self.ctx.publish(Event("voice.error", error, session_id=session.session_id))
        else:
            self.ctx.publish(
                Event("voice.server_update", result.server_update, session_id=session.session_id)
            )

    async def gateway_voice_signal(
        self, session: GatewayVoiceSession, data: dict[str, Any]
    ) -> None:
        """Op 11 (D13, D13a): relay to the intended peers in the sender's channel only."""
        self._mark_live(session)
        if self.backend != "custom":
            return self._drop_signal("livekit backend")
        decision = self._signal_limiter.take(session.session_id, trio.current_time())
        if not decision.allowed:
            return self._drop_signal("rate")
        untrusted: Any = data
        if not isinstance(untrusted, dict):
            return self._drop_signal("malformed")
        kind = data.get("type")
        if kind is None:
            kind = data.get("signal_type")
        if not isinstance(kind, str) or not _SIGNAL_TYPE_RE.match(kind):
            return self._drop_signal("malformed")
        payload = data.get("payload")
        try:
            size = len(orjson.dumps(payload))
        except (TypeError, orjson.JSONEncodeError):
            return self._drop_signal("malformed")
        if size > MAX_SIGNAL_PAYLOAD_BYTES:
            return self._drop_signal("size")
        state = self.states.get(session.user_id)
        if state is None:
            return self._drop_signal("not in voice")
        named_channel = data.get("channel_id")
        if named_channel is not None and parse_id(named_channel) != state.channel_id:
            return self._drop_signal("wrong channel")
        peers = [
            peer
            for peer in self.states.in_channel(state.channel_id)
            if peer.user_id != session.user_id
        ]
        target_raw = data.get("target_user_id")
        if target_raw is not None:
            target = parse_id(target_raw)
            peers = [peer for peer in peers if peer.user_id == target]
            if not peers:
                return self._drop_signal("target not in channel")
        out: dict[str, Any] = {
            "user_id": str(session.user_id),
            "session_id": session.session_id,
            "channel_id": str(state.channel_id),
            "space_id": None if state.space_id is None else str(state.space_id),
            "signal_type": kind,
            "type": kind,
            "payload": payload,
        }
        if target_raw is not None:
            out["target_user_id"] = str(target_raw)
        for peer in peers:
            if peer.owner_session is not None:
                event = Event("voice.signal", out, session_id=peer.owner_session)
            else:
                event = Event("voice.signal", out, user_ids=frozenset({peer.user_id}))
            self.ctx.publish(event)
        return None

    def _drop_signal(self, reason: str) -> None:
        self.signal_drops[reason] += 1
        log.debug("dropped a voice signal: %s", reason)

    def voice_states_in(self, space_ids: Iterable[int]) -> list[tuple[int, int, dict[str, Any]]]:
        """Everyone in voice in these spaces (READY's `voice_states`, RT-15)."""
        wanted = set(space_ids)
        return [
            (state.space_id, state.channel_id, state.to_wire())
            for state in self.states
            if state.space_id is not None and state.space_id in wanted
        ]

    async def gateway_session_opened(self, session: GatewayVoiceSession) -> None:
        """A gateway session became READY: it keeps its user's REST-held state alive (D24)."""
        self._mark_live(session)

    async def gateway_session_ended(self, session: GatewayVoiceSession, *, clean: bool) -> None:
        """D24: a clean close ends the state it holds now; any other end after the grace."""
        sessions = self._live.get(session.user_id)
        if sessions is not None:
            sessions.discard(session.session_id)
            if not sessions:
                del self._live[session.user_id]
        state = self.states.get(session.user_id)
        if state is not None and state.owner_session == session.session_id:
            if clean or self.settings.voice_grace_s <= 0:
                async with self._user_lock(session.user_id):
                    current = self.states.get(session.user_id)
                    if current is not None and current.owner_session == session.session_id:
                        self._end(session.user_id, reason="gateway session closed")
            else:
                self._parked.add(session.session_id)
                self._set_deadline(
                    session.user_id,
                    _Deadline(
                        trio.current_time() + self.settings.voice_grace_s,
                        "grace",
                        session.session_id,
                    ),
                )
        self._refresh_rest_deadline(session.user_id)

    async def gateway_session_resumed(self, session: GatewayVoiceSession) -> None:
        """D24: a resume within the grace period keeps the voice state. Session-targeted frames
        are not replayed, so a `voice.server_update` sent while the session was parked is lost:
        a session that holds a voice state gets a fresh one, with a new join token (RT-22)."""
        self._mark_live(session)
        async with self._user_lock(session.user_id):
            state = self.states.get(session.user_id)
            if self._closing or state is None or state.owner_session != session.session_id:
                return
            self._send_server_update(state)

    def _mark_live(self, session: GatewayVoiceSession) -> None:
        self._live.setdefault(session.user_id, set()).add(session.session_id)
        if session.session_id in self._parked:
            self._parked.discard(session.session_id)
        deadline = self._deadlines.get(session.user_id)
        if deadline is not None and (
            deadline.kind == "rest" or deadline.session_id == session.session_id
        ):
            self._clear_deadline(session.user_id)

    def _refresh_rest_deadline(self, user_id: int) -> None:
        """A REST-held state of a user with no live gateway session expires (D24)."""
        state = self.states.get(user_id)
        if state is None or state.owner_session is not None or self._live.get(user_id):
            return
        current = self._deadlines.get(user_id)
        if current is None or current.kind != "rest":
            self._set_deadline(
                user_id, _Deadline(trio.current_time() + self.settings.rest_voice_ttl_s, "rest")
            )

    # -- joining and leaving ------------------------------------------------------------------

    async def join_rest(
        self,
        principal: Principal,
        channel_id: int,
        flags: VoiceFlags,
        *,
        region: str | None = None,
    ) -> JoinResult:
        """POST /channels/{id}/voice/join: a new REST-held voice session (VOICE.md 3.4)."""
        return await self.join(principal, channel_id, flags, gateway=None, region=region)

    async def join(
        self,
        principal: Principal,
        channel_id: int,
        flags: VoiceFlags,
        *,
        gateway: GatewayVoiceSession | None,
        space_hint: int | None = None,
        region: str | None = None,
    ) -> JoinResult:
        """Join, move or (op 9 to the current channel, D14a) update flags."""
        self._check_open()
        user_id = principal.user_id
        async with self._user_lock(user_id):
            check = await self.db.read(_check_join, channel_id, principal)
            if space_hint is not None and space_hint != check.space_id:
                raise ValidationError("channel is not in this space", field="channel_id")
            current = self.states.get(user_id)
            if gateway is not None and current is not None and current.channel_id == channel_id:
                return self._update_flags(current, check, flags, gateway)
            self._require_room(check, user_id)
            session_id = gateway.session_id if gateway is not None else str(self.ctx.new_id())
            state = VoiceState(
                user_id=user_id,
                space_id=check.space_id,
                channel_id=channel_id,
                session_id=session_id,
                flags=flags,
                mute=check.mute,
                deaf=check.deaf,
                owner_session=gateway.session_id if gateway is not None else None,
                speak=check.speak,
            )
            if self.livekit is not None:
                await self.livekit.create_room(room_name(channel_id))
                self._check_open()
                self._require_room(check, user_id)  # others may have joined meanwhile
            state, update = self._assign_backend(state, region=region)
            self._commit(state)
            self._clear_deadline(user_id)
            if gateway is None and not self._live.get(user_id):
                # A REST join refreshes the expiry of a REST-held state (D24).
                expires = trio.current_time() + self.settings.rest_voice_ttl_s
                self._set_deadline(user_id, _Deadline(expires, "rest"))
            return JoinResult(state, update)

    def _require_room(self, check: _JoinCheck, user_id: int) -> None:
        limit = check.user_limit
        if not limit or limit <= 0 or check.may_bypass_limit:
            return
        if self.states.count_in_channel(check.channel_id, excluding_user=user_id) >= limit:
            raise ForbiddenError(CHANNEL_FULL)

    def _update_flags(
        self,
        current: VoiceState,
        check: _JoinCheck,
        flags: VoiceFlags,
        gateway: GatewayVoiceSession,
    ) -> JoinResult:
        """D14a, D16a: same voice session, no teardown, one update, a fresh server update."""
        state = dataclasses.replace(
            current,
            flags=flags,
            owner_session=gateway.session_id,
            speak=check.speak,
            mute=check.mute,
            deaf=check.deaf,
        )
        self.states.put(state)
        self._clear_deadline(state.user_id)
        self._publish_state(state)
        return JoinResult(state, self._server_update(state))

    def _assign_backend(
        self, state: VoiceState, *, region: str | None = None, exclude: str | None = None
    ) -> tuple[VoiceState, dict[str, Any]]:
        """Pick the node (custom backend) for a new assignment; the server update to send."""
        if self.backend == "custom":
            node = self.nodes.allocate(region, exclude=exclude)
            state = dataclasses.replace(
                state,
                node_id=None if node is None else node.id,
                node_session=None if node is None else str(self.ctx.new_id()),
                node_reported=False,
            )
        return state, self._server_update(state)

    def _server_update(self, state: VoiceState) -> dict[str, Any]:
        """The `voice.server_update` payload (GATEWAY.md 9.2, D15, D15a; both key spellings)."""
        update: dict[str, Any] = {
            "space_id": None if state.space_id is None else str(state.space_id),
            "channel_id": str(state.channel_id),
            "backend": self.backend,
        }
        if self.livekit is not None:
            update["token"] = self.livekit.join_token(
                identity=str(state.user_id),
                room=room_name(state.channel_id),
                can_publish=state.speak and not state.mute,
                can_subscribe=not state.deaf,
            )
            update.update(url=self.livekit.client_url, livekit_url=self.livekit.client_url)
            return update
        node = None if state.node_id is None else self.nodes.get(state.node_id)
        token: str | None = None
        if node is not None and state.node_session is not None and self.settings.sfu_secret:
            token = sign_join_token(
                self.settings.sfu_secret,
                user_id=state.user_id,
                session_id=state.node_session,
                channel_id=state.channel_id,
                space_id=state.space_id,
                node_id=node.id,
                speak=state.speak and not state.mute,
                deaf=state.deaf,
                now=time.time(),
            )
        endpoint = None if node is None else node.endpoint
        update.update(endpoint=endpoint, sfu_endpoint=endpoint, token=token)
        return update

    def _commit(self, state: VoiceState) -> None:
        """Store `state` as its user's state; the replaced one is cleaned up (D14b, RT-29)."""
        previous = self.states.put(state)
        self._publish_state(state)
        if previous is None:
            return
        if previous.space_id != state.space_id and previous.space_id is not None:
            # The old space's members must see the user leave its channel: they get the new
            # (non-null) state scoped to the channel they can see (D14b: never a null here).
            self.ctx.publish(
                Event(
                    "voice.state_update",
                    state.to_wire(),
                    space_id=previous.space_id,
                    channel_id=previous.channel_id,
                )
            )
        if previous.node_session is not None and previous.node_session != state.node_session:
            self._queue(_EndOnNode(previous.node_id or "", previous.node_session))
        if self.livekit is not None and previous.channel_id != state.channel_id:
            self._queue(_LeaveRoom(previous.channel_id, str(previous.user_id)))

    def _publish_state(self, state: VoiceState) -> None:
        self.ctx.publish(
            Event(
                "voice.state_update",
                state.to_wire(),
                space_id=state.space_id,
                channel_id=state.channel_id,
            )
        )

    async def leave(self, user_id: int) -> VoiceState | None:
        """End the user's voice state wherever it is (op 9 leave, REST leave)."""
        async with self._user_lock(user_id):
            return self._end(user_id, reason="left")

    async def leave_rest(self, principal: Principal, channel_id: int) -> None:
        """DELETE /channels/{id}/voice/leave: `connect` on the path channel (VOICE.md 3.5)."""

        def check(conn: sqlite3.Connection) -> None:
            channel_access(conn, channel_id, principal).require("connect")

        await self.db.read(check)
        await self.leave(principal.user_id)

    def _end(self, user_id: int, *, reason: str, leave_room: bool = True) -> VoiceState | None:
        """Remove the user's state, publish the "left" update, queue node/LiveKit cleanup."""
        state = self.states.remove(user_id)
        self._clear_deadline(user_id)
        if state is None:
            return None
        log.debug("voice state of user %s ended: %s", user_id, reason)
        if state.space_id is not None:
            self.ctx.publish(
                Event(
                    "voice.state_update",
                    state.left_wire(),
                    space_id=state.space_id,
                    channel_id=state.channel_id,
                )
            )
        if state.node_session is not None:
            self._queue(_EndOnNode(state.node_id or "", state.node_session))
        if self.livekit is not None and leave_room:
            self._queue(_LeaveRoom(state.channel_id, str(user_id)))
        return state

    async def _end_if(self, user_id: int, reason: str, keep: Callable[[VoiceState], bool]) -> None:
        async with self._user_lock(user_id):
            state = self.states.get(user_id)
            if state is not None and not keep(state):
                self._end(user_id, reason=reason)

    # -- reads --------------------------------------------------------------------------------

    def backend_info(self) -> dict[str, str]:
        return {"backend": self.backend}

    async def voice_status(self, principal: Principal, channel_id: int) -> list[dict[str, Any]]:
        """GET /channels/{id}/voice-status: CHANNEL(view_channel) (VOICE.md 3.3)."""

        def check(conn: sqlite3.Connection) -> None:
            channel_access(conn, channel_id, principal).require("view_channel")

        await self.db.read(check)
        return [state.to_wire() for state in self.states.in_channel(channel_id)]

    async def voice_regions(self, principal: Principal, space_id: int) -> list[dict[str, Any]]:
        """GET /spaces/{id}/voice-regions: MEMBER (VOICE.md 3.2, deduplicated, RT-34)."""

        def check(conn: sqlite3.Connection) -> None:
            space_access(conn, space_id, principal).require_member()

        await self.db.read(check)
        if self.backend == "livekit":
            return [{"id": "livekit", "name": "LiveKit", "optimal": True, "custom": False}]
        return voice_regions(self.nodes.online, self.nodes.preview())

    def state_of(self, user_id: int) -> VoiceState | None:
        return self.states.get(user_id)

    # -- moderation ----------------------------------------------------------------------------

    async def moderate(
        self,
        principal: Principal,
        space_id: int,
        target_id: int,
        *,
        mute: bool | None = None,
        deaf: bool | None = None,
        channel_id: int | None = _UNSET,
    ) -> VoiceState | None:
        """Server mute/deafen (stored on the member), move or disconnect a member's voice.

        Needs `mute_members` / `deafen_members` / `move_members` for what is changed, and a
        role above the target's (the owner and instance admins excepted). A move needs the
        target to have `connect` on the new channel and ignores its user limit (D14c).
        """
        moving = channel_id is not _UNSET
        flags_changed: list[Event] = []

        def work(conn: sqlite3.Connection) -> _JoinCheck | None:
            actor = space_access(conn, space_id, principal)
            if mute is not None:
                actor.require("mute_members")
            if deaf is not None:
                actor.require("deafen_members")
            if moving:
                actor.require("move_members")
            target_admin = voice_store.user_is_admin(conn, target_id)
            target_principal = Principal(target_id, "bearer", bool(target_admin), "")
            target = space_access_for(conn, actor.space, target_principal)
            if target_admin is None or not target.is_member:
                raise NotFoundError("member not found")
            outranked = target.is_owner or actor.highest_position <= target.highest_position
            privileged = actor.is_owner or actor.is_instance_admin
            if target_id != principal.user_id and not privileged and outranked:
                raise ForbiddenError("the member has an equal or higher role")
            voice_store.set_member_voice_flags(conn, space_id, target_id, mute=mute, deaf=deaf)
            if mute is not None or deaf is not None:
                # The member row changed: its readers (member lists) see it like any edit.
                member = member_store.get_member(conn, space_id, target_id)
                user = user_store.get_user(conn, target_id)
                if member is not None and user is not None:
                    flags_changed.append(member_updated(member, user))
            if moving and channel_id is not None:
                check = _check_join(conn, channel_id, target_principal)
                if check.space_id != space_id:
                    raise ValidationError("channel is not in this space", field="channel_id")
                return check
            return None

        check = await self.db.write(work)
        async with self._user_lock(target_id):
            # Published under the lock: the voice follower's recheck of this member.update
            # waits for it and finds the live state already matching.
            self.ctx.publish(*flags_changed)
            current = self.states.get(target_id)
            if current is None or current.space_id != space_id:
                if moving:
                    raise ValidationError("the member is not connected to voice in this space")
                return None
            if moving and check is None:
                self._end(target_id, reason="disconnected by a moderator")
                return None
            changed = dataclasses.replace(
                current,
                mute=current.mute if mute is None else mute,
                deaf=current.deaf if deaf is None else deaf,
            )
            if check is not None and check.channel_id != current.channel_id:
                self._check_open()
                if self.livekit is not None:
                    await self.livekit.create_room(room_name(check.channel_id))
                changed = dataclasses.replace(
                    changed, channel_id=check.channel_id, speak=check.speak
                )
                changed, update = self._assign_backend(changed)
                self._commit(changed)
                self._send_server_update(changed, update)
            else:
                self._restate(current, changed, always=True)
            return changed

    def _restate(self, current: VoiceState, changed: VoiceState, *, always: bool = False) -> None:
        """Store a server-side change to a live state on the same assignment (server mute or
        deafen, `speak`): a `voice.state_update` when what clients see changed, and a fresh
        `voice.server_update` (new join token, so the media side applies it) to the holding
        session. `always` sends both even when nothing changed (a moderator's PATCH)."""
        self.states.put(changed)
        if always or changed.to_wire() != current.to_wire():
            self._publish_state(changed)
        if always or changed != current:
            self._send_server_update(changed)
        if _rights(changed) != _rights(current):
            # The client's fresh token only matters when it reconnects: the media side must
            # apply the change to the live connection now (RT-33).
            speak, deaf = _rights(changed)
            self._queue(
                _Rights(
                    changed.node_id,
                    changed.node_session,
                    changed.channel_id,
                    str(changed.user_id),
                    speak,
                    deaf,
                )
            )

    def _send_server_update(self, state: VoiceState, update: dict[str, Any] | None = None) -> None:
        """`voice.server_update` to the gateway session holding `state` (none when REST-held)."""
        if state.owner_session is None:
            return
        payload = self._server_update(state) if update is None else update
        self.ctx.publish(Event("voice.server_update", payload, session_id=state.owner_session))

    # -- SFU nodes -----------------------------------------------------------------------------

    async def register_node(self, registration: NodeRegistration) -> SfuNode:
        """Register a node; sessions it held before (it restarted) are sent a fresh update."""
        node = await self.nodes.register(registration)
        self._rehome(node.id, reason="node re-registered", exclude=None)
        return self.nodes.get(node.id) or node

    async def node_heartbeat(
        self, node_id: str, current_load: int, sessions: list[str] | None
    ) -> None:
        """D15c: load and live sessions. A session the node stopped listing has left voice."""
        await self.nodes.heartbeat(node_id, current_load)
        if sessions is None:
            return
        reported = set(sessions)
        known: set[str] = set()
        for state in self.states.on_node(node_id):
            if state.node_session is None:
                continue
            known.add(state.node_session)
            if state.node_session in reported:
                if not state.node_reported:
                    self.states.put(dataclasses.replace(state, node_reported=True))
            elif state.node_reported:
                await self._end_if(
                    state.user_id, "left the SFU node", _holds_other_than(state.node_session)
                )
        for stale in sorted(reported - known):
            self._queue(_EndOnNode(node_id, stale))

    async def deregister_node(self, node_id: str) -> None:
        await self.nodes.deregister(node_id)
        self._rehome(node_id, reason="node deregistered", exclude=node_id)

    def list_nodes(self) -> list[SfuNode]:
        return self.nodes.online

    async def reap_nodes(self) -> list[str]:
        reaped = await self.nodes.reap()
        for node_id in reaped:
            self._rehome(node_id, reason="node reaped", exclude=node_id)
        return reaped

    def _rehome(self, node_id: str, *, reason: str, exclude: str | None) -> None:
        """Give every session of a gone (or restarted) node a new assignment and tell it."""
        for state in self.states.on_node(node_id):
            moved, update = self._assign_backend(state, exclude=exclude)
            self.states.put(moved)
            log.info("voice session of user %s re-homed (%s)", state.user_id, reason)
            if moved.owner_session is not None:
                self.ctx.publish(
                    Event("voice.server_update", update, session_id=moved.owner_session)
                )

    async def _reap_nodes(self) -> None:
        """VOICE.md 7.5 reaper, run with either backend (RT-40); first sweep at once."""
        while True:
            try:
                await self.reap_nodes()
            except sqlite3.Error as exc:
                log.error("stale node reaper error: %s", exc)
            await trio.sleep(self.settings.sfu_reaper_interval_s)

    # -- background work -----------------------------------------------------------------------

    def _queue(self, item: _Cleanup) -> None:
        try:
            self._cleanup_send.send_nowait(item)
        except trio.WouldBlock:
            log.warning("voice cleanup queue full: dropped %r", item)

    async def _serve_cleanups(self) -> None:
        async for item in self._cleanup_receive:
            await self._clean_up(item)

    async def _drain_cleanups(self) -> None:
        while True:
            try:
                item = self._cleanup_receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            await self._clean_up(item)

    async def _clean_up(self, item: _Cleanup) -> None:
        if isinstance(item, _Rights):
            await self._apply_rights(item)
            return
        if isinstance(item, _EndOnNode):
            node = self.nodes.get(item.node_id)
            if node is not None:
                await end_node_session(self.http, node, item.node_session, self.settings.sfu_secret)
            return
        livekit = self.livekit
        if livekit is None:
            return
        room = room_name(item.channel_id)
        try:
            await livekit.remove_participant(room, item.identity)
            if self.states.count_in_channel(item.channel_id):
                return  # someone is (re)joining: never delete a room in use (RT-32)
            if not await livekit.list_participants(room):
                await livekit.delete_room(room)
        except LiveKitError as exc:
            log.warning("LiveKit cleanup of room %s failed: %s", room, exc)

    async def _apply_rights(self, item: _Rights) -> None:
        if self.livekit is not None:
            try:
                await self.livekit.update_permissions(
                    room_name(item.channel_id),
                    item.identity,
                    can_publish=item.speak,
                    can_subscribe=not item.deaf,
                )
            except LiveKitError as exc:
                log.warning("LiveKit: updating %s's rights failed: %s", item.identity, exc)
            return
        node = None if item.node_id is None else self.nodes.get(item.node_id)
        if node is not None and item.node_session is not None:
            await set_node_session_rights(
                self.http,
                node,
                item.node_session,
                self.settings.sfu_secret,
                speak=item.speak,
                deaf=item.deaf,
            )

    def _set_deadline(self, user_id: int, deadline: _Deadline) -> None:
        self._deadlines[user_id] = deadline
        self._deadlines_changed.set()

    def _clear_deadline(self, user_id: int) -> None:
        if self._deadlines.pop(user_id, None) is not None:
            self._deadlines_changed.set()

    async def _serve_deadlines(self) -> None:
        while True:
            self._deadlines_changed = trio.Event()
            soonest = min((d.at for d in self._deadlines.values()), default=math.inf)
            with trio.move_on_at(soonest):
                await self._deadlines_changed.wait()
            now = trio.current_time()
            for user_id, deadline in list(self._deadlines.items()):
                if deadline.at <= now and self._deadlines.get(user_id) is deadline:
                    del self._deadlines[user_id]
                    await self._expire(user_id, deadline)

    async def _expire(self, user_id: int, deadline: _Deadline) -> None:
        if deadline.kind == "grace":
            session_id = deadline.session_id
            self._parked.discard(session_id or "")
            await self._end_if(
                user_id,
                "gateway session did not resume",
                lambda state: state.owner_session != session_id,
            )
            self._refresh_rest_deadline(user_id)
        else:
            await self._end_if(
                user_id,
                "REST voice session expired",
                lambda state: state.owner_session is not None or bool(self._live.get(user_id)),
            )

    async def _follow_bus(self, subscription: Subscription) -> None:
        """End states that membership, permission, channel or space changes invalidate."""
        while True:
            try:
                async for item in subscription.receive:
                    try:
                        await self._on_bus_item(item)
                    except (AccordError, sqlite3.Error):
                        log.exception("voice: handling %r failed", item)
            finally:
                subscription.close()
            # Overflowed: notices were lost, so re-check everyone before following again.
            subscription = self.ctx.bus.subscribe(4096)
            for state in self.states:
                await self._recheck(state.user_id)

    async def _on_bus_item(self, item: BusItem) -> None:
        if isinstance(item, SessionControl):
            if item.kind == "membership_changed" and item.user_id is not None:
                await self._recheck(item.user_id)
            elif item.kind in ("space_deleted", "permissions_changed") and item.space_id:
                for state in self.states.in_space(item.space_id):
                    await self._recheck(state.user_id)
            return
        if item.type == "channel.delete" or item.type == "channel.update":
            channel_id = parse_id(item.data.get("id"))
            if channel_id is not None:
                for state in self.states.in_channel(channel_id):
                    await self._recheck(state.user_id)
        elif item.type == "space.delete" and item.space_id is not None:
            for state in self.states.in_space(item.space_id):
                await self._recheck(state.user_id)
        elif item.type == "member.update" and item.space_id is not None:
            # PATCH /spaces/{id}/members/{uid}: server mute/deafen or a timeout (G-13, D-to).
            member_id = parse_id(item.data.get("user_id"))
            in_voice = None if member_id is None else self.states.get(member_id)
            if in_voice is not None and in_voice.space_id == item.space_id:
                await self._recheck(in_voice.user_id)

    async def _recheck(self, user_id: int) -> None:
        """End the user's state if they may no longer be there (a timeout too, D-to); else make
        it follow `speak` and the member's server mute/deafen (G-13)."""
        async with self._user_lock(user_id):
            # Read under the lock: a moderator's PATCH stores the flags first, then takes the
            # lock to apply them, so the live state always ends with the latest row.
            state = self.states.get(user_id)
            if state is None:
                return
            check = await self.db.read(_standing, state)
            current = self.states.get(user_id)
            if current is None or current.channel_id != state.channel_id:
                return
            if check is None:
                self._end(user_id, reason="no longer allowed in the channel")
                return
            changed = dataclasses.replace(
                current, speak=check.speak, mute=check.mute, deaf=check.deaf
            )
            self._restate(current, changed)


def _rights(state: VoiceState) -> tuple[bool, bool]:
    """(may publish, server-deafened) as the media side enforces them."""
    return state.speak and not state.mute, state.deaf


def _holds_other_than(node_session: str) -> Callable[[VoiceState], bool]:
    return lambda state: state.node_session != node_session


def _parse_voice_state(data: Any) -> tuple[int | None, int | None, VoiceFlags]:
    """Op 9 payload: channel_id (null/absent = leave), optional space_id, four flags."""
    if not isinstance(data, dict):
        raise ValidationError("op 9 data must be an object")
    raw_channel = data.get("channel_id")
    channel_id = None
    if raw_channel is not None:
        channel_id = parse_id(raw_channel)
        if channel_id is None:
            raise NotFoundError("unknown_channel")
    raw_space = data.get("space_id", data.get("guild_id"))
    space_id = None
    if raw_space is not None:
        space_id = parse_id(raw_space)
        if space_id is None:
            raise NotFoundError("unknown_space")
    values: dict[str, bool] = {}
    for name in ("self_mute", "self_deaf", "self_video", "self_stream"):
        value = data.get(name)
        if value is None:
            values[name] = False
        elif isinstance(value, bool):
            values[name] = value
        else:
            raise ValidationError("expected a boolean", field=name)
    return channel_id, space_id, VoiceFlags(**values)


def background_tasks(ctx: Context) -> list[Callable[..., Any]]:
    """Started and supervised by app.run_server (the voice service's background work)."""
    return [ctx.get(VoiceService).run]
