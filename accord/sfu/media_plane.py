"""The node's media plane: signaling at `/ws` (MEDIA.md 2) and the forwarders (MEDIA.md 3-4).

`MediaPlane` is a `NodePlugin` for `run_node`. It owns `ACCORD_SFU_WORKERS` forwarders (one UDP
port each; a room is pinned to one forwarder, new rooms go to the least loaded), the SSRC
allocator (unique on the node, never reused while its join tokens could still be live), the
rooms and their participants, and one signaling socket per participant:

    identify (join token, verified offline, single use) -> ready
    select_protocol -> session_description (fresh per-direction SRTP keys) -> media flows
    state (self mute/deaf), heartbeat/heartbeat_ack, peer_joined/peer_left/speaking

Main ending a session (`POST /sessions/{id}/end` -> SessionTable.end) closes that socket with
4104 within a second; a socket that closes for any reason removes the participant from its
forwarder and tells its room mates. `/metrics` serves the counters in Prometheus text format.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import trio
from quart import Blueprint, Response, websocket

from accord.config import Settings
from accord.media.forward import PROFILES, Forwarder, ForwarderApi, generate_key
from accord.sfu import signaling
from accord.sfu.node import NodeContext
from accord.sfu.sessions import NodeParticipant
from accord.voice.join_token import (
    JOIN_TOKEN_TTL_S,
    JoinTokenError,
    UsedTokenIds,
    verify_join_token,
)

log = logging.getLogger("accord.sfu.media")

MODES: tuple[str, ...] = ("AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80")
IDENTIFY_TIMEOUT_S = 10.0
SPEAKING_POLL_S = 0.1
SPEAKING_HOLD_S = 0.3
OUTBOX_SIZE = 256


def advertised_ip(settings: Settings) -> str:
    """ACCORD_SFU_PUBLIC_IP, else the endpoint's host (an IP literal or its first address).
    Never a wildcard address (MEDIA.md 5a)."""
    assert settings.sfu is not None
    if settings.sfu.public_ip:
        return settings.sfu.public_ip
    host = urlsplit(settings.sfu.endpoint).hostname or "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = ipaddress.ip_address(socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0])
    if address.is_unspecified:
        return "127.0.0.1"
    return str(address)


@dataclasses.dataclass(eq=False)
class Participant:
    """One identified signaling socket."""

    participant_id: int
    session_id: str
    user_id: str
    room_id: str
    ssrc: int
    may_speak: bool
    forwarder: ForwarderApi
    outbox: trio.MemorySendChannel[str]
    close_code: int | None = None
    self_mute: bool = False
    self_deaf: bool = False
    server_deaf: bool = False  # set by main (RT-33), like may_speak
    media_ready: bool = False
    speaking: bool = False
    last_packets: int = 0
    last_active: float = 0.0
    ended: trio.Event = dataclasses.field(default_factory=trio.Event)

    def push(self, op: str, data: dict[str, Any]) -> None:
        # A socket this far behind (or already closing) just misses the frame.
        with contextlib.suppress(
            trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError
        ):
            self.outbox.send_nowait(signaling.encode(op, data))

    def close(self, code: int) -> None:
        if self.close_code is None:
            self.close_code = code
        self.ended.set()

    def peer(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "ssrc": self.ssrc, "self_mute": self.self_mute}


class MediaPlane:
    """Forwarders, rooms and signaling for one node."""

    def __init__(self, settings: Settings) -> None:
        assert settings.sfu is not None
        self.settings = settings
        self.sfu = settings.sfu
        self.ip = advertised_ip(settings)
        bind = "0.0.0.0" if settings.bind_host in ("0.0.0.0", "::") else settings.bind_host
        self.forwarders: list[ForwarderApi] = []
        for index in range(self.sfu.workers):
            port = self.sfu.udp_port + index if self.sfu.udp_port else 0
            self.forwarders.append(Forwarder(bind, port))
        self.rooms: dict[str, list[Participant]] = {}
        self.room_forwarder: dict[str, ForwarderApi] = {}
        self._ssrcs_in_use: dict[int, float] = {}  # ssrc -> free again at (monotonic)
        self._used_tokens = UsedTokenIds()
        self._next_pid = 1

    # -- NodePlugin -----------------------------------------------------------------------------

    def blueprints(self, node: NodeContext) -> Sequence[Blueprint]:
        blueprint = Blueprint("media", __name__)
        plane = self

        @blueprint.websocket("/ws")
        async def signaling_socket() -> None:
            await plane.serve_socket(node)

        @blueprint.get("/metrics")
        async def metrics() -> Response:
            return Response(plane.metrics_text(node), content_type="text/plain; version=0.0.4")

        return [blueprint]

    async def run(
        self, node: NodeContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        for forwarder in self.forwarders:
            forwarder.start()
        try:
            self._publish_counters(node)
            task_status.started()
            while True:
                await trio.sleep(SPEAKING_POLL_S)
                self._poll_speaking(time.monotonic())
                self._publish_counters(node)
        finally:
            for room in list(self.rooms.values()):
                for participant in room:
                    participant.close(signaling.CLOSE_SESSION_ENDED)
            for forwarder in self.forwarders:
                forwarder.stop()

    # -- sockets -----------------------------------------------------------------------------

    async def serve_socket(self, node: NodeContext) -> None:
        await websocket.accept()
        try:
            participant = await self._identify(node)
        except RefusedError as refused:
            await _close(refused.code, refused.reason)
            return
        except trio.TooSlowError:
            await _close(signaling.CLOSE_PROTOCOL_ERROR, "identify timed out")
            return
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, participant)
                nursery.start_soon(self._reader, node, participant)
                await participant.ended.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._leave(node, participant)
            await _close(participant.close_code or 1000, "bye")

    async def _identify(self, node: NodeContext) -> Participant:
        with trio.fail_after(IDENTIFY_TIMEOUT_S):
            message = await websocket.receive()
        try:
            token, protocol = signaling.identify_fields(signaling.decode(message))
        except signaling.SignalingError as exc:
            raise RefusedError(signaling.CLOSE_PROTOCOL_ERROR, str(exc)) from None
        now = time.time()
        try:
            claims = verify_join_token(node.secret, token, node_id=self.sfu.node_id, now=now)
        except JoinTokenError as exc:
            raise RefusedError(signaling.CLOSE_FOR_TOKEN_FAILURE[exc.reason], str(exc)) from None
        if protocol != signaling.PROTOCOL:
            raise RefusedError(signaling.CLOSE_PROTOCOL_ERROR, f"protocol {protocol!r} not offered")
        if node.sessions.was_ended(claims.session_id, now):
            raise RefusedError(signaling.CLOSE_SESSION_ENDED, "session ended")
        replacing = node.sessions.get(claims.session_id)
        if replacing is None and node.sessions.load >= self.sfu.capacity:
            raise RefusedError(signaling.CLOSE_NODE_FULL, "node full")
        try:
            self._used_tokens.claim(claims, now)
        except JoinTokenError as exc:
            raise RefusedError(signaling.CLOSE_FOR_TOKEN_FAILURE[exc.reason], str(exc)) from None

        room_id = claims.channel_id
        forwarder = self.room_forwarder.get(room_id) or self._least_loaded()
        outbox_send, outbox_receive = trio.open_memory_channel[str](OUTBOX_SIZE)
        participant = Participant(
            participant_id=self._new_pid(),
            session_id=claims.session_id,
            user_id=claims.user_id,
            room_id=room_id,
            ssrc=self._new_ssrc(),
            may_speak=claims.speak,
            server_deaf=claims.deaf,
            forwarder=forwarder,
            outbox=outbox_send,
        )
        participant._outbox_receive = outbox_receive  # type: ignore[attr-defined]
        room = self.rooms.setdefault(room_id, [])
        self.room_forwarder[room_id] = forwarder
        participant.push(
            "ready",
            {
                "ssrc": participant.ssrc,
                "udp": {"ip": self.ip, "port": forwarder.port},
                "modes": list(MODES),
                "heartbeat_interval": self.sfu.signal_heartbeat_ms,
                "peers": [p.peer() for p in room],
            },
        )
        for mate in room:
            mate.push("peer_joined", participant.peer())
        room.append(participant)
        previous = node.sessions.add(
            NodeParticipant(
                claims.session_id,
                claims.user_id,
                claims.channel_id,
                on_end=lambda: participant.close(signaling.CLOSE_SESSION_ENDED),
                on_rights=lambda speak, deaf: self._set_rights(participant, speak, deaf),
            )
        )
        if previous is not None:
            previous.on_end()  # the same session reconnected: the old socket goes
        log.info("user %s joined room %s on %s", claims.user_id, room_id, self.sfu.node_id)
        return participant

    async def _writer(self, participant: Participant) -> None:
        receive: trio.MemoryReceiveChannel[str] = participant._outbox_receive  # type: ignore[attr-defined]
        async for message in receive:
            await websocket.send(message)

    async def _reader(self, node: NodeContext, participant: Participant) -> None:
        interval_s = self.sfu.signal_heartbeat_ms / 1000
        while True:
            with trio.move_on_after(2 * interval_s) as waited:
                message = await websocket.receive()
            if waited.cancelled_caught:
                participant.close(signaling.CLOSE_HEARTBEAT_TIMEOUT)
                return
            try:
                self._handle(participant, signaling.decode(message))
            except signaling.SignalingError as exc:
                log.info("protocol error from %s: %s", participant.user_id, exc)
                participant.close(signaling.CLOSE_PROTOCOL_ERROR)
                return
            except ValueError as exc:  # the forwarder refused (e.g. a key it cannot use)
                log.warning("forwarder refused participant %s: %s", participant.user_id, exc)
                participant.close(signaling.CLOSE_PROTOCOL_ERROR)
                return

    def _handle(self, participant: Participant, frame: signaling.ClientFrame) -> None:
        if frame.op == "heartbeat":
            participant.push("heartbeat_ack", {"nonce": signaling.heartbeat_nonce(frame)})
        elif frame.op == "select_protocol":
            if participant.media_ready:
                raise signaling.SignalingError("protocol already selected")
            mode = signaling.selected_mode(frame, MODES)
            send_key, recv_key = generate_key(mode), generate_key(mode)
            participant.forwarder.add_participant(
                participant.participant_id,
                _room_number(participant.room_id),
                participant.ssrc,
                mode,
                send_key,
                recv_key,
            )
            participant.media_ready = True
            self._apply_state(participant)
            participant.push(
                "session_description",
                {
                    "mode": mode,
                    "send_key": base64.b64encode(send_key).decode(),
                    "recv_key": base64.b64encode(recv_key).decode(),
                },
            )
        elif frame.op == "state":
            participant.self_mute, participant.self_deaf = signaling.state_flags(
                frame, (participant.self_mute, participant.self_deaf)
            )
            self._apply_state(participant)
        else:
            raise signaling.SignalingError(f"unknown op {frame.op!r}")

    def _set_rights(self, participant: Participant, speak: bool, deaf: bool) -> None:
        participant.may_speak = speak
        participant.server_deaf = deaf
        self._apply_state(participant)

    def _apply_state(self, participant: Participant) -> None:
        if participant.media_ready:
            participant.forwarder.set_state(
                participant.participant_id,
                muted=participant.self_mute or not participant.may_speak,
                deafened=participant.self_deaf or participant.server_deaf,
            )

    def _leave(self, node: NodeContext, participant: Participant) -> None:
        room = self.rooms.get(participant.room_id, [])
        if participant in room:
            room.remove(participant)
        if not room:
            self.rooms.pop(participant.room_id, None)
            self.room_forwarder.pop(participant.room_id, None)
        if participant.media_ready:
            participant.forwarder.remove_participant(participant.participant_id)
        current = node.sessions.get(participant.session_id)
        if (
            current is not None
            and current.user_id == participant.user_id
            and (participant.close_code != signaling.CLOSE_SESSION_ENDED or current.channel_id)
        ):
            # Only forget the session if this socket still owns it (not replaced by a reconnect).
            still_ours = not any(
                p.session_id == participant.session_id for r in self.rooms.values() for p in r
            )
            if still_ours:
                node.sessions.remove(current)
        # Keep the SSRC reserved while tokens naming this session could still be replayed.
        self._ssrcs_in_use[participant.ssrc] = time.monotonic() + JOIN_TOKEN_TTL_S
        for mate in room:
            mate.push("peer_left", {"user_id": participant.user_id, "ssrc": participant.ssrc})
        participant.outbox.close()

    # -- helpers -------------------------------------------------------------------------------

    def _least_loaded(self) -> ForwarderApi:
        return min(self.forwarders, key=lambda f: f.stats()["participants"])

    def _new_pid(self) -> int:
        pid = self._next_pid
        self._next_pid += 1
        return pid

    def _new_ssrc(self) -> int:
        now = time.monotonic()
        self._ssrcs_in_use = {s: t for s, t in self._ssrcs_in_use.items() if t == 0 or t > now}
        while True:
            ssrc = secrets.randbits(32)
            if ssrc and ssrc not in self._ssrcs_in_use:
                self._ssrcs_in_use[ssrc] = 0  # 0: in use until its participant leaves
                return ssrc

    def _poll_speaking(self, now: float) -> None:
        for room in self.rooms.values():
            for participant in room:
                if not participant.media_ready:
                    continue
                try:
                    stats = participant.forwarder.participant_stats(participant.participant_id)
                except KeyError:
                    continue
                packets = int(stats["packets_in"]) - int(stats["rtcp_in"])
                if packets > participant.last_packets:
                    participant.last_active = now
                participant.last_packets = packets
                speaking = (
                    now - participant.last_active < SPEAKING_HOLD_S
                    and not participant.self_mute
                    and participant.may_speak
                )
                if speaking != participant.speaking:
                    participant.speaking = speaking
                    for mate in room:
                        mate.push(
                            "speaking",
                            {
                                "user_id": participant.user_id,
                                "ssrc": participant.ssrc,
                                "speaking": speaking,
                            },
                        )

    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for forwarder in self.forwarders:
            for name, value in forwarder.stats().items():
                if isinstance(value, int):
                    totals[name] = totals.get(name, 0) + value
        return totals

    def _publish_counters(self, node: NodeContext) -> None:
        totals = self.totals()
        node.counters.update({f"media_{k}": v for k, v in totals.items()})
        node.counters["rooms"] = len(self.rooms)
        node.counters["udp_port"] = self.forwarders[0].port if self.forwarders else 0

    def metrics_text(self, node: NodeContext) -> str:
        """Prometheus text exposition of the node's counters (issue 7, Metrics)."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP accord_sfu_{name} {help_text}")
            lines.append(f"# TYPE accord_sfu_{name} {kind}")
            for labels, value in samples:
                lines.append(f"accord_sfu_{name}{labels} {value:g}")

        per: list[dict[str, Any]] = [dict(f.stats()) for f in self.forwarders]

        def per_worker(key: str) -> list[tuple[str, float]]:
            return [(f'{{worker="{i}"}}', float(s.get(key, 0))) for i, s in enumerate(per)]

        metric("packets_in_total", "counter", "Datagrams received.", per_worker("packets_in"))
        metric("packets_out_total", "counter", "Datagrams sent.", per_worker("packets_out"))
        metric("bytes_in_total", "counter", "Bytes received.", per_worker("bytes_in"))
        metric("bytes_out_total", "counter", "Bytes sent.", per_worker("bytes_out"))
        drops = [
            (f'{{worker="{i}",reason="{key[5:]}"}}', float(value))
            for i, stats in enumerate(per)
            for key, value in stats.items()
            if key.startswith("drop_")
        ]
        metric("dropped_packets_total", "counter", "Datagrams dropped, by reason.", drops)
        metric(
            "participants", "gauge", "Participants on this node.", [("", float(node.sessions.load))]
        )
        metric("rooms", "gauge", "Rooms on this node.", [("", float(len(self.rooms)))])
        # How datagrams left (Cython loop only): messages handed to the kernel, of which UDP
        # GSO messages carrying several datagrams.
        sends: list[dict[str, Any]] = [
            stats
            for stats in (getattr(f, "send_stats", None) for f in self.forwarders)
            if isinstance(stats, dict)
        ]
        if sends and len(sends) == len(self.forwarders):
            for key, help_text in (
                ("send_messages", "Send messages handed to the kernel."),
                ("gso_messages", "UDP GSO messages carrying several datagrams."),
            ):
                samples = [(f'{{worker="{i}"}}', float(st[key])) for i, st in enumerate(sends)]
                metric(f"{key}_total", "counter", help_text, samples)
        busy = [(f'{{worker="{i}"}}', float(s.get("busy_ratio", 0.0))) for i, s in enumerate(per)]
        metric("forwarder_busy_ratio", "gauge", "Share of time the loop spent working.", busy)
        return "\n".join(lines) + "\n"


class RefusedError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def _close(code: int, reason: str) -> None:
    with trio.move_on_after(2, shield=True):
        try:
            await websocket.close(code, reason[:120])
        except Exception:  # the peer may already be gone
            log.debug("closing a signaling socket failed", exc_info=True)


def _room_number(room_id: str) -> int:
    """Forwarder room ids are 64-bit integers; channel ids are decimal snowflakes."""
    return (
        int(room_id) if room_id.isdigit() and int(room_id) < 2**63 else hash(room_id) & (2**63 - 1)
    )


__all__ = ["PROFILES", "MediaPlane", "advertised_ip"]
