"""One gateway WebSocket, served as a raw ASGI websocket on the main port (GATEWAY.md 1).

The loop only moves frames: the reader feeds each client message to the sans-I/O
`GatewayProtocol` and runs the commands it returns; the writer drains the session's `Outbox`;
slow operations (voice ops 9/11, REQUEST_MEMBERS) run one at a time in a helper task started
on first use, so heartbeats are answered while they wait. Every server-side end goes through
`close()`, which decides the session's fate at once (park for RESUME or end it) and lets the
writer send op 7/op 6 and the close frame; a client's end is reported by hypercorn as
`websocket.disconnect` with the code the client sent (see `_hypercorn.py`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import trio

from accord.errors import AccordError
from accord.gateway import protocol as proto
from accord.gateway._hypercorn import CLIENT_CLOSE_CODE
from accord.gateway.close_codes import CLEAN_CLIENT_CLOSES, CloseCode, reason
from accord.gateway.fanout import TooManySessionsError
from accord.gateway.outbox import Outbox
from accord.gateway.presence import PresenceError
from accord.services.gateway import GatewayStateService

if TYPE_CHECKING:
    from accord.gateway.fanout import Gateway, GatewaySession

log = logging.getLogger("accord.gateway")

ASGIMessage = dict[str, Any]
CLOSE_TIMEOUT_S = 2.0
SLOW_QUEUE_SIZE = 32
MEMBER_CHUNK_SIZE = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class _CloseRequest:
    code: CloseCode
    invalid_session: bool
    reconnect: bool


class Connection:
    __slots__ = (
        "_closing",
        "_drained",
        "_gateway",
        "_gone",
        "_lot",
        "_nursery",
        "_receive",
        "_scope",
        "_send",
        "_slow",
        "outbox",
        "protocol",
        "send_started",
        "session",
    )

    def __init__(self, gateway: Gateway, scope: ASGIMessage, receive: Any, send: Any) -> None:
        self._gateway = gateway
        self._scope = scope
        self._receive = receive
        self._send = send
        self.protocol = proto.GatewayProtocol(gateway.limits, trio.current_time())
        # Frames before READY (HELLO, op 4, op 7) go through a small outbox of the connection;
        # IDENTIFY or RESUME swaps in the session's.
        self.outbox = Outbox(max_pending=1, max_pending_chars=1, replay_frames=0, replay_age_s=0)
        self.session: GatewaySession | None = None
        self._closing: _CloseRequest | None = None
        self._lot = trio.lowlevel.ParkingLot()
        self._drained = trio.lowlevel.ParkingLot()
        self._nursery: trio.Nursery | None = None
        self._slow: trio.MemorySendChannel[proto.Command] | None = None
        self._gone: trio.Event | None = None  # made by close(): set when the reader ends
        self.send_started: float | None = None
        self.outbox.on_ready = self._wake

    # -- serving --------------------------------------------------------------------------------

    async def serve(self) -> None:
        first = await self._receive()
        if first.get("type") != "websocket.connect":
            return
        await self._send({"type": "websocket.accept"})
        refusal = self._refusal()
        if refusal is not None:
            with trio.move_on_after(CLOSE_TIMEOUT_S):
                await self._send(
                    {"type": "websocket.close", "code": refusal, "reason": reason(refusal)}
                )
            return
        gateway = self._gateway
        gateway.connections.add(self)
        self.outbox.push_direct(self.protocol.hello())
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._write)
                await self._read()
                nursery.cancel_scope.cancel()
        except Exception:
            log.exception("gateway connection failed")
            with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
                code = CloseCode.UNKNOWN_ERROR
                await self._send({"type": "websocket.close", "code": code, "reason": reason(code)})
        finally:
            gateway.connections.discard(self)
            if self.session is not None:  # ended without close() or a disconnect: park it
                session, self.session = self.session, None
                if session.connection is self:
                    gateway.release(session, park=True, clean=False)

    def _refusal(self) -> CloseCode | None:
        gateway = self._gateway
        if gateway.shutting_down:
            return CloseCode.GOING_AWAY
        query = dict(parse_qsl(self._scope.get("query_string", b"").decode("latin-1")))
        if not proto.is_supported_version(query):
            return CloseCode.INVALID_VERSION
        decision = gateway.connect_limiter.take(_peer_ip(self._scope, gateway), trio.current_time())
        return None if decision.allowed else CloseCode.RATE_LIMITED

    async def _read(self) -> None:
        while True:
            message = await self._receive()
            kind = message.get("type")
            if kind == "websocket.disconnect":
                self._client_gone(
                    int(self._scope.get(CLIENT_CLOSE_CODE, message.get("code", 1006)))
                )
                return
            if kind != "websocket.receive" or self._closing is not None:
                continue
            text = message.get("text")
            data: str | bytes = text if text is not None else (message.get("bytes") or b"")
            for command in self.protocol.receive(data, trio.current_time()):
                await self._run(command)

    async def _write(self) -> None:
        while True:
            if self._closing is not None:
                await self._finish_close(self._closing)
                return
            frame = self.outbox.pop(trio.current_time())
            if frame is None:
                await self._lot.park()
                continue
            self.send_started = trio.current_time()
            await self._send({"type": "websocket.send", "text": frame})
            self.send_started = None
            if len(self._drained):
                self._drained.unpark_all()

    def _wake(self) -> None:
        self._lot.unpark_all()

    # -- commands -------------------------------------------------------------------------------

    async def _run(self, command: proto.Command) -> None:
        if isinstance(command, proto.Heartbeat):
            self.outbox.push_direct(proto.HEARTBEAT_ACK)
        elif isinstance(command, proto.Send):
            self.outbox.push_direct(command.frame)
        elif isinstance(command, proto.Close):
            self.close(command.code, invalid_session=command.invalid_session, park=True)
        elif isinstance(command, proto.Identify):
            await self._identify(command)
        elif isinstance(command, proto.Resume):
            await self._resume(command)
        elif isinstance(command, proto.UpdatePresence):
            if self.session is not None:
                try:
                    self._gateway.update_presence(self.session, command.data)
                except PresenceError:
                    self.protocol.phase = proto.Phase.CLOSED
                    self.close(CloseCode.DECODE_ERROR, park=True)
        elif isinstance(command, proto.DeferVoiceState):
            if self._nursery is not None:
                self._nursery.start_soon(self._deferred_voice_state, command.wait_s)
        else:
            self._queue_slow(command)

    async def _deferred_voice_state(self, wait_s: float) -> None:
        """Apply an op 9 the rate limit held back, once it allows (the latest one wins)."""
        await trio.sleep(wait_s)
        if self._closing is not None:
            return
        for command in self.protocol.take_deferred_voice_state(trio.current_time()):
            await self._run(command)

    async def _identify(self, command: proto.Identify) -> None:
        gateway = self._gateway
        principal = await gateway.resolve(command.token)
        if principal is None:
            self._fail_auth()
            return
        if not gateway.intents_allowed(principal, command.intents):
            self.protocol.phase = proto.Phase.CLOSED
            self.close(CloseCode.DISALLOWED_INTENTS, invalid_session=True, park=False)
            return
        if self._closing is not None:
            return
        try:
            session = await gateway.identify(self, principal, command.intents, command.presence)
        except TooManySessionsError:
            # RT-48: 4008, the code for "a limit was hit, try later": the client reconnects
            # with backoff (CLIENT.md 6.4) and succeeds once a parked session expires or one
            # of its sockets closes. No op 7: there was no session to invalidate.
            log.info("user %s is at the gateway session cap; closing 4008", principal.user_id)
            self.protocol.phase = proto.Phase.CLOSED
            self.close(CloseCode.RATE_LIMITED, park=False)
            return
        if session is None:
            self._fail_auth()
            return
        self.protocol.authenticated(trio.current_time())

    async def _resume(self, command: proto.Resume) -> None:
        gateway = self._gateway
        principal = await gateway.resolve(command.token)
        if principal is None:
            self._fail_auth()
            return
        if self._closing is not None:
            return
        frames = gateway.resume(self, principal, command.session_id, command.seq)
        if frames is None:
            self._run_send(self.protocol.resume_failed(trio.current_time()))
            return
        for frame in frames:
            self.outbox._direct.append(frame)  # replay may exceed the usual cap; bounded above
        self._wake()
        self.protocol.authenticated(trio.current_time())

    def _run_send(self, command: proto.Send) -> None:
        self.outbox.push_direct(command.frame)

    def _fail_auth(self) -> None:
        self.close(self.protocol.authentication_failed().code, invalid_session=True, park=False)

    # -- slow operations ------------------------------------------------------------------------

    def _queue_slow(self, command: proto.Command) -> None:
        if self.session is None or self._nursery is None:
            return
        if self._slow is None:
            send, receive = trio.open_memory_channel[proto.Command](SLOW_QUEUE_SIZE)
            self._slow = send
            self._nursery.start_soon(self._run_slow, receive)
        try:
            self._slow.send_nowait(command)
        except trio.WouldBlock:
            log.debug("dropping %s: too many outstanding slow operations", type(command).__name__)

    async def _run_slow(self, receive: trio.MemoryReceiveChannel[proto.Command]) -> None:
        async for command in receive:
            session = self.session
            if session is None:
                continue
            try:
                if isinstance(command, proto.RequestMembers):
                    await self._request_members(session, command)
                elif isinstance(command, proto.VoiceStateUpdate):
                    await self._voice_state(session, command.data)
                elif isinstance(command, proto.VoiceSignal):
                    voice = self._gateway.ctx.voice
                    if voice is not None:  # without a voice service signals go nowhere
                        await voice.gateway_voice_signal(session.voice, command.data)
            except AccordError as exc:
                log.debug("gateway %s refused: %s", type(command).__name__, exc)
            except Exception:
                log.exception("gateway %s failed", type(command).__name__)

    async def _voice_state(self, session: GatewaySession, data: dict[str, Any]) -> None:
        gateway = self._gateway
        voice = gateway.ctx.voice
        if voice is not None:
            await voice.gateway_voice_state(session.voice, data)
            return
        # No voice service: answer a join like an unavailable backend (GATEWAY.md 9.2: custom
        # with no SFU node -> endpoint null; LiveKit that cannot mint a token -> error).
        space = data.get("space_id")
        channel = data.get("channel_id")
        if not isinstance(space, str) or not isinstance(channel, str):
            return
        if not space.isdigit() or int(space) not in session.user.spaces:
            return
        update: dict[str, Any] = {"space_id": space, "channel_id": channel}
        if gateway.ctx.settings.voice_backend == "livekit":
            update |= {"backend": "livekit", "error": "voice backend unavailable"}
        else:
            update |= {"backend": "custom", "endpoint": None, "sfu_endpoint": None}
        if not session.outbox.push_direct(proto.dispatch_frame("voice.server_update", update)):
            self.close(CloseCode.UNKNOWN_ERROR, park=True)

    async def _request_members(
        self, session: GatewaySession, command: proto.RequestMembers
    ) -> None:
        """Op 10 (D12f): member.chunk frames of at most 1000, only for a member space and only
        with the `members` intent (GATEWAY.md 8.3)."""
        if command.space_id not in session.user.spaces or "members" not in session.intents:
            return
        state = self._gateway.ctx.get(GatewayStateService)
        members, not_found = await state.list_members(
            command.space_id,
            query=command.query,
            limit=command.limit,
            user_ids=list(command.user_ids),
        )
        chunks = [
            members[i : i + MEMBER_CHUNK_SIZE] for i in range(0, len(members), MEMBER_CHUNK_SIZE)
        ]
        chunks = chunks or [[]]
        for index, chunk in enumerate(chunks):
            data = {
                "space_id": str(command.space_id),
                "members": [m.to_wire(u.to_wire(viewer_id=0)) for m, u in chunk],
                "chunk_index": index,
                "chunk_count": len(chunks),
                "not_found": [str(i) for i in not_found] if index == 0 else [],
                "nonce": command.nonce,
            }
            while session.outbox.pending > 8 and self.session is session:
                await self._drained.park()  # let the writer drain big chunks one by one
            if self.session is not session:
                return
            if not session.outbox.push_direct(proto.dispatch_frame("member.chunk", data)):
                self.close(CloseCode.UNKNOWN_ERROR, park=True)
                return

    # -- sessions -------------------------------------------------------------------------------

    def attach(self, session: GatewaySession) -> None:
        """This socket now writes `session` (after READY was queued or RESUME succeeded)."""
        self.session = session
        session.connection = self
        self.outbox.on_ready = None
        self.outbox = session.outbox
        self.outbox.on_ready = self._wake
        self._wake()

    def detach_session(self) -> None:
        """A RESUME on another socket took the session: close this one without touching it."""
        if self.session is not None:
            self.session.outbox.on_ready = None
            self.session = None
        self.outbox = Outbox(max_pending=1, max_pending_chars=1, replay_frames=0, replay_age_s=0)
        self.close(CloseCode.UNKNOWN_ERROR, park=False)

    @property
    def is_closing(self) -> bool:
        return self._closing is not None

    def close(
        self,
        code: CloseCode,
        *,
        invalid_session: bool = False,
        reconnect: bool = False,
        park: bool,
        clean: bool = False,
    ) -> None:
        """End this connection with `code`. The session is parked or ended now; the writer
        sends op 7 (`invalid_session`) or op 6 (`reconnect`) and the close frame."""
        if self._closing is not None:
            return
        self._closing = _CloseRequest(code, invalid_session, reconnect)
        self._gone = trio.Event()
        self.protocol.phase = proto.Phase.CLOSED
        session, self.session = self.session, None
        if session is not None and session.connection is self:
            session.outbox.on_ready = None
            self._gateway.release(session, park=park, clean=clean)
        self._wake()

    async def _finish_close(self, request: _CloseRequest) -> None:
        with trio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
            if request.invalid_session:
                await self._send({"type": "websocket.send", "text": proto.INVALID_SESSION})
            if request.reconnect:
                await self._send({"type": "websocket.send", "text": proto.RECONNECT})
            await self._send(
                {
                    "type": "websocket.close",
                    "code": int(request.code),
                    "reason": reason(request.code),
                }
            )
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _client_gone(self, code: int) -> None:
        """The client closed (or the socket dropped): a 1000/1001 close ends the session,
        anything else parks it (D12b); voice ends at once only on a clean close (D24)."""
        session, self.session = self.session, None
        clean = code in CLEAN_CLIENT_CLOSES
        if session is not None and session.connection is self:
            session.outbox.on_ready = None
            self._gateway.release(session, park=not clean, clean=clean)

    def check(self, now: float, write_timeout_s: float) -> None:
        """Called by the reaper: deadlines of the protocol, and a write stuck too long."""
        if self._closing is None:
            expired = self.protocol.check(now)
            if expired is not None:
                self.close(expired.code, invalid_session=expired.invalid_session, park=True)
                return
        started = self.send_started
        if started is not None and now - started > write_timeout_s and self._nursery is not None:
            # RT-07: a client that stopped reading pins a write; give up on the socket.
            log.info("gateway write stalled for %.0f s; dropping the connection", now - started)
            self.close(CloseCode.UNKNOWN_ERROR, park=True)
            self._nursery.cancel_scope.cancel()


def _peer_ip(scope: ASGIMessage, gateway: Gateway) -> str:
    """The client address; X-Forwarded-For counts only from ACCORD_TRUSTED_PROXIES."""
    client = scope.get("client") or ("unknown", 0)
    peer = str(client[0])
    trusted = gateway.ctx.settings.trusted_proxies
    if not trusted:
        return peer

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    if not is_trusted(peer):
        return peer
    forwarded = ""
    for name, value in scope.get("headers", []):
        if name.lower() == b"x-forwarded-for":
            forwarded = value.decode("latin-1")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return hops[0] if hops else peer
