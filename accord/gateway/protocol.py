"""The gateway protocol for one connection, without I/O (GATEWAY.md 2-5, 11, 13; D12, D12a).

`GatewayProtocol.receive(message, now)` decodes one client frame, advances the handshake state
and returns commands; `check(now)` returns the close a deadline calls for (identify timeout,
heartbeat silence, unanswered op 7). The connection loop moves frames and runs commands; it
never decides protocol questions itself. Time comes in as `now` (seconds, monotonic).

Handshake states:

    AWAITING_IDENTIFY --IDENTIFY/RESUME--> AUTHENTICATING --authenticated()--> ACTIVE
          ^                                      |
          +------------- resume_failed() --------+   (op 7; the client may IDENTIFY again
                                                      on this socket, else 4009 after 10 s)

Bad input (D12a and the issue's list): an undecodable frame is op 7 + 4002 before READY and
4002 after; a server-only or unassigned opcode is 4001; a malformed payload is 4002 (op 7
first before READY); IDENTIFY/RESUME twice is 4005; a flood is 4008; intents that are not an
array of strings are 4013; binary frames and ops 1/8/9/10/11 before READY are ignored (op 1
is acknowledged). Heartbeats and op 11 are exempt from the inbound rate limit; op 11 has its
own bucket (D13a, 50/s, burst 200) and excess signals are dropped. Op 9 counts against the
inbound limit and also has its own, stricter bucket (RT-21); of the updates over it only the
latest is kept and applied when the bucket allows (`DeferVoiceState`), so a burst of toggles
ends on the state the user last asked for.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, TypeGuard

import orjson

from accord.gateway.close_codes import CloseCode
from accord.gateway.opcodes import IGNORED_BEFORE_READY, SERVER_ONLY, Op
from accord.gateway.presence import Presence, PresenceError, parse_presence
from accord.ids import parse_id

HEARTBEAT_ACK = '{"op":4}'
INVALID_SESSION = '{"op":7,"data":{"resumable":false}}'
RECONNECT = '{"op":6}'
RESUME_GRACE_S = 10.0  # D12a: after an unusable RESUME the client has 10 s to leave or IDENTIFY
SIGNAL_RATE_PER_S = 50.0
SIGNAL_BURST = 200.0
# Op 9 (RT-21): each update may create a LiveKit room or pick an SFU node, and is broadcast to
# the whole space, so it gets far less than the 120/min every op shares. A person joins,
# leaves, moves and toggles mute/deafen/video/stream by hand: 5 at once (say, a move plus a
# quick mute/deafen double toggle) then one every 2 s (5 per 10 s) is more than a hand does,
# while a script is held to 30/min instead of 120.
VOICE_STATE_RATE_PER_S = 0.5
VOICE_STATE_BURST = 5.0
MAX_REQUESTED_USER_IDS = 1000
MAX_NONCE_CHARS = 64


class Phase(enum.Enum):
    AWAITING_IDENTIFY = "awaiting_identify"
    AUTHENTICATING = "authenticating"
    ACTIVE = "active"
    CLOSED = "closed"


# -- commands -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Send:
    """Send a frame that carries no sequence number (HELLO, op 4, op 7)."""

    frame: str


@dataclasses.dataclass(frozen=True, slots=True)
class Close:
    """End the connection: op 7 first if `invalid_session`, then a close frame with `code`."""

    code: CloseCode
    invalid_session: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Identify:
    token: str
    intents: frozenset[str]
    presence: Presence | None


@dataclasses.dataclass(frozen=True, slots=True)
class Resume:
    token: str
    session_id: str
    seq: int


@dataclasses.dataclass(frozen=True, slots=True)
class Heartbeat:
    """Liveness refreshed; answer with op 4."""


@dataclasses.dataclass(frozen=True, slots=True)
class UpdatePresence:
    data: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class VoiceStateUpdate:
    data: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class DeferVoiceState:
    """Call `take_deferred_voice_state` after `wait_s`: an op 9 over the limit is kept (the
    latest one wins) and applied when the bucket allows, so the final intent is never lost."""

    wait_s: float


@dataclasses.dataclass(frozen=True, slots=True)
class VoiceSignal:
    data: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class RequestMembers:
    space_id: int
    query: str
    limit: int
    user_ids: tuple[int, ...]
    nonce: str | None


Command = (
    Send
    | Close
    | Identify
    | Resume
    | Heartbeat
    | UpdatePresence
    | VoiceStateUpdate
    | DeferVoiceState
    | VoiceSignal
    | RequestMembers
)


class PayloadError(ValueError):
    """A known opcode whose payload has the wrong shape."""


# -- frames -----------------------------------------------------------------------------------


def hello_frame(heartbeat_interval_ms: int) -> str:
    return f'{{"op":5,"data":{{"heartbeat_interval":{int(heartbeat_interval_ms)}}}}}'


def dispatch_prefix(event_type: str, data: Any) -> str:
    """`{"op":0,"type":..,"data":..,"seq":` for an event; the seq and `}` are appended per
    session, so the payload is encoded once however many sessions receive it."""
    encoded = orjson.dumps(data).decode()
    return f'{{"op":0,"type":{orjson.dumps(event_type).decode()},"data":{encoded},"seq":'


def stamp(prefix: str, seq: int) -> str:
    return f"{prefix}{seq}}}"


def dispatch_frame(event_type: str, data: Any, seq: int | None = None) -> str:
    """A whole dispatch; without `seq` for session-targeted frames (GATEWAY.md 5.3)."""
    if seq is not None:
        return stamp(dispatch_prefix(event_type, data), seq)
    encoded = orjson.dumps(data).decode()
    return f'{{"op":0,"type":{orjson.dumps(event_type).decode()},"data":{encoded}}}'


def is_supported_version(query: dict[str, str]) -> bool:
    """`v` (1) and `encoding` (json) are optional; anything else is 4012."""
    version = query.get("v")
    encoding = query.get("encoding")
    return version in (None, "1", "v1") and encoding in (None, "json")


def decode_envelope(message: str) -> tuple[int, Any] | None:
    """(op, data) of a client frame, or None if it is not a decodable envelope (GATEWAY.md 2)."""
    try:
        value = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    op = value.get("op")
    if not _is_int(op) or not 0 <= op <= 255:
        return None
    if "seq" in value and value["seq"] is not None:
        seq = value["seq"]
        if not _is_int(seq) or seq < 0:
            return None
    return op, value.get("data")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


# -- payload parsing ----------------------------------------------------------------------------


def parse_identify(data: object) -> Identify | Close:
    if not isinstance(data, dict):
        return Close(CloseCode.DECODE_ERROR, invalid_session=True)
    token = data.get("token")
    if not isinstance(token, str):
        return Close(CloseCode.DECODE_ERROR, invalid_session=True)
    raw_intents = data.get("intents")
    if raw_intents is None:
        intents: frozenset[str] = frozenset()  # RT-04: a missing list is treated as []
    elif isinstance(raw_intents, list) and all(isinstance(i, str) for i in raw_intents):
        intents = frozenset(raw_intents)  # unknown names are accepted (GATEWAY.md 6)
    else:
        return Close(CloseCode.INVALID_INTENTS, invalid_session=True)
    presence = None
    if data.get("presence") is not None:
        try:
            presence = parse_presence(data["presence"])
        except PresenceError:
            return Close(CloseCode.DECODE_ERROR, invalid_session=True)
    return Identify(token=token, intents=intents, presence=presence)


def parse_resume(data: object) -> Resume | Close:
    if not isinstance(data, dict):
        return Close(CloseCode.DECODE_ERROR, invalid_session=True)
    token = data.get("token")
    session_id = data.get("session_id")
    seq = data.get("seq", 0)
    if seq is None:
        seq = 0
    if not isinstance(token, str) or not isinstance(session_id, str):
        return Close(CloseCode.DECODE_ERROR, invalid_session=True)
    if not _is_int(seq) or seq < 0:
        return Close(CloseCode.DECODE_ERROR, invalid_session=True)
    return Resume(token=token, session_id=session_id, seq=seq)


def parse_request_members(data: object) -> RequestMembers:
    """Op 10 (GATEWAY.md 8.3, D12f). Raises PayloadError."""
    if not isinstance(data, dict):
        raise PayloadError("data must be an object")
    raw_space = data.get("space_id", data.get("guild_id"))
    if not isinstance(raw_space, str | int) or isinstance(raw_space, bool):
        raise PayloadError("space_id must be an id string")
    space_id = parse_id(str(raw_space))
    if space_id is None:
        raise PayloadError("space_id must be an id string")
    query = data.get("query")
    if query is None:
        query = ""
    if not isinstance(query, str):
        raise PayloadError("query must be a string")
    limit = data.get("limit")
    if limit is None:
        limit = 0
    if not _is_int(limit) or limit < 0:
        raise PayloadError("limit must be a non-negative integer")
    raw_ids = data.get("user_ids")
    if raw_ids is None:
        raw_ids = []
    if isinstance(raw_ids, str):
        raw_ids = [raw_ids]
    if not isinstance(raw_ids, list) or len(raw_ids) > MAX_REQUESTED_USER_IDS:
        raise PayloadError("user_ids must be an array of at most 1000 ids")
    user_ids: list[int] = []
    for raw in raw_ids:
        parsed = parse_id(raw) if isinstance(raw, str) else None
        if parsed is None:
            raise PayloadError("user_ids must hold id strings")
        user_ids.append(parsed)
    nonce = data.get("nonce")
    if nonce is not None and (not isinstance(nonce, str) or len(nonce) > MAX_NONCE_CHARS):
        raise PayloadError("nonce must be a short string")
    return RequestMembers(space_id, query[:100], limit, tuple(user_ids), nonce)


# -- the state machine --------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Limits:
    heartbeat_interval_ms: int = 45_000
    identify_timeout_s: float = 30.0
    max_frame_bytes: int = 64 * 1024
    inbound_per_minute: int = 120

    @property
    def heartbeat_timeout_s(self) -> float:
        # CLIENT.md 6.4: the first beat comes a full interval after HELLO; tolerate one miss.
        return 2 * self.heartbeat_interval_ms / 1000


class GatewayProtocol:
    """Protocol state of one gateway connection. Performs no I/O and never awaits."""

    __slots__ = (
        "_deadline",
        "_deadline_code",
        "_signal_tokens",
        "_signal_updated",
        "_voice_state_pending",
        "_voice_state_tokens",
        "_voice_state_updated",
        "_window_count",
        "_window_start",
        "last_heartbeat",
        "limits",
        "phase",
    )

    def __init__(self, limits: Limits, now: float) -> None:
        self.limits = limits
        self.phase = Phase.AWAITING_IDENTIFY
        self.last_heartbeat = now
        self._deadline = now + limits.identify_timeout_s
        self._deadline_code = CloseCode.NOT_AUTHENTICATED
        self._window_start = now
        self._window_count = 0
        self._signal_tokens = SIGNAL_BURST
        self._signal_updated = now
        self._voice_state_tokens = VOICE_STATE_BURST
        self._voice_state_updated = now
        self._voice_state_pending: dict[str, Any] | None = None

    def hello(self) -> str:
        return hello_frame(self.limits.heartbeat_interval_ms)

    # -- inbound --------------------------------------------------------------------------

    def receive(self, message: str | bytes, now: float) -> list[Command]:
        """Decode one client message and return what to do about it."""
        if self.phase is Phase.CLOSED:
            return []
        if len(message) > self.limits.max_frame_bytes or (
            isinstance(message, str)
            and len(message) * 4 > self.limits.max_frame_bytes
            and len(message.encode("utf-8", "surrogatepass")) > self.limits.max_frame_bytes
        ):
            return self._close(CloseCode.DECODE_ERROR)
        if isinstance(message, bytes):
            # Binary frames carry no protocol meaning (D12a) but still count as traffic.
            return self._close(CloseCode.RATE_LIMITED) if not self._count(now) else []
        envelope = decode_envelope(message)
        if envelope is None:
            if not self._count(now):
                return self._close(CloseCode.RATE_LIMITED)
            return self._close(CloseCode.DECODE_ERROR, invalid_session=not self.is_active)
        op, data = envelope
        if op == Op.HEARTBEAT:
            if self.is_active:
                self.last_heartbeat = now
            return [Heartbeat()]  # RT-04: acknowledged in every phase
        if op == Op.VOICE_SIGNAL:
            return self._voice_signal(data, now)
        if not self._count(now):
            return self._close(CloseCode.RATE_LIMITED)
        if op in (Op.IDENTIFY, Op.RESUME):
            return self._handshake(op, data)
        if op in SERVER_ONLY or op > max(Op):
            return self._close(CloseCode.UNKNOWN_OPCODE, invalid_session=not self.is_active)
        if not self.is_active and op in IGNORED_BEFORE_READY:
            return []  # D12a: ignored before READY, never closed
        return self._active_command(op, data, now)

    def _handshake(self, op: int, data: Any) -> list[Command]:
        if self.phase is not Phase.AWAITING_IDENTIFY:
            return self._close(CloseCode.ALREADY_AUTHENTICATED)
        parsed: Identify | Resume | Close = (
            parse_identify(data) if op == Op.IDENTIFY else parse_resume(data)
        )
        if isinstance(parsed, Close):
            self.phase = Phase.CLOSED
            return [parsed]
        self.phase = Phase.AUTHENTICATING
        return [parsed]

    def _active_command(self, op: int, data: Any, now: float) -> list[Command]:
        if op == Op.PRESENCE_UPDATE:
            if not isinstance(data, dict):
                return self._close(CloseCode.DECODE_ERROR)
            return [UpdatePresence(data)]
        if op == Op.VOICE_STATE_UPDATE:
            if not isinstance(data, dict):
                return self._close(CloseCode.DECODE_ERROR)
            self._refill_voice_state(now)
            if self._voice_state_pending is not None:
                self._voice_state_pending = data  # already deferred: the latest one wins
                return []
            if self._voice_state_tokens < 1:
                # RT-21: over the limit. Not closed (like op 11, D13a), and not forgotten
                # either: the latest update is applied once the bucket has a token again.
                self._voice_state_pending = data
                return [DeferVoiceState(self._voice_state_wait())]
            self._voice_state_tokens -= 1
            return [VoiceStateUpdate(data)]
        if op == Op.REQUEST_MEMBERS:
            try:
                return [parse_request_members(data)]
            except PayloadError:
                return self._close(CloseCode.DECODE_ERROR)
        return self._close(CloseCode.UNKNOWN_OPCODE)  # pragma: no cover - ops are exhaustive

    def take_deferred_voice_state(self, now: float) -> list[Command]:
        """The deferred op 9 once the bucket allows it (see `DeferVoiceState`)."""
        if self._voice_state_pending is None or not self.is_active:
            self._voice_state_pending = None
            return []
        self._refill_voice_state(now)
        if self._voice_state_tokens < 1:
            return [DeferVoiceState(self._voice_state_wait())]
        self._voice_state_tokens -= 1
        data, self._voice_state_pending = self._voice_state_pending, None
        return [VoiceStateUpdate(data)]

    def _refill_voice_state(self, now: float) -> None:
        elapsed = max(0.0, now - self._voice_state_updated)
        self._voice_state_updated = now
        self._voice_state_tokens = min(
            VOICE_STATE_BURST, self._voice_state_tokens + elapsed * VOICE_STATE_RATE_PER_S
        )

    def _voice_state_wait(self) -> float:
        return max(0.0, (1 - self._voice_state_tokens) / VOICE_STATE_RATE_PER_S)

    def _voice_signal(self, data: Any, now: float) -> list[Command]:
        if not self.is_active:
            return []
        if not isinstance(data, dict):
            return self._close(CloseCode.DECODE_ERROR)
        elapsed = max(0.0, now - self._signal_updated)
        self._signal_updated = now
        self._signal_tokens = min(SIGNAL_BURST, self._signal_tokens + elapsed * SIGNAL_RATE_PER_S)
        if self._signal_tokens < 1:
            return []  # D13a: excess signals are dropped, not closed
        self._signal_tokens -= 1
        return [VoiceSignal(data)]

    def _count(self, now: float) -> bool:
        """Fixed 60 s window of non-heartbeat messages (GATEWAY.md 13). False: over the limit."""
        if now - self._window_start >= 60.0:
            self._window_start = now
            self._window_count = 0
        self._window_count += 1
        return self._window_count <= self.limits.inbound_per_minute

    def _close(self, code: CloseCode, *, invalid_session: bool = False) -> list[Command]:
        self.phase = Phase.CLOSED
        return [Close(code, invalid_session=invalid_session)]

    # -- outcomes of IDENTIFY / RESUME ---------------------------------------------------------

    @property
    def is_active(self) -> bool:
        return self.phase is Phase.ACTIVE

    def authenticated(self, now: float) -> None:
        """READY or `resumed` was queued: the session is live, liveness starts now."""
        self.phase = Phase.ACTIVE
        self.last_heartbeat = now

    def authentication_failed(self) -> Close:
        """Bad, expired or revoked credentials: op 7 then 4004 (D12a)."""
        self.phase = Phase.CLOSED
        return Close(CloseCode.AUTHENTICATION_FAILED, invalid_session=True)

    def resume_failed(self, now: float) -> Send:
        """A RESUME that cannot be honoured: op 7, socket left open; IDENTIFY may follow on it,
        else close 4009 after 10 s (D12a; sooner if the identify timeout is shorter)."""
        self.phase = Phase.AWAITING_IDENTIFY
        self._deadline = now + min(RESUME_GRACE_S, self.limits.identify_timeout_s)
        self._deadline_code = CloseCode.SESSION_TIMED_OUT
        return Send(INVALID_SESSION)

    # -- deadlines ----------------------------------------------------------------------------

    def check(self, now: float) -> Close | None:
        """The close a passed deadline calls for, if any."""
        if self.phase is Phase.AWAITING_IDENTIFY and now >= self._deadline:
            self.phase = Phase.CLOSED
            if self._deadline_code is CloseCode.NOT_AUTHENTICATED:
                return Close(CloseCode.NOT_AUTHENTICATED, invalid_session=True)
            return Close(self._deadline_code)
        if (
            self.phase is Phase.ACTIVE
            and now - self.last_heartbeat > self.limits.heartbeat_timeout_s
        ):
            self.phase = Phase.CLOSED
            return Close(CloseCode.SESSION_TIMED_OUT)
        return None
