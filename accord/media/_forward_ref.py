"""The pure-Python reference forwarder: same API and same counters as `_forward.pyx`.

It is the oracle the Cython loop is tested against (MEDIA.md 4) and the fallback selected by
`ACCORD_PURE_PYTHON=1`. One blocking UDP socket served by one OS thread; packets are parsed by
`rtp`, `rtcp` and `stun` and protected through pylibsrtp's Python API. Commands from other
threads take the same lock the loop holds while it handles a packet, so a libsrtp session is
only ever used by one thread at a time. Import it through `accord.media.forward`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, cast

import pylibsrtp

from accord.errors import MalformedPacketError
from accord.media import srtp
from accord.media.counters import (
    FORWARDER_COUNTERS,
    PARTICIPANT_COUNTERS,
    ForwarderStats,
    ParticipantStats,
)
from accord.media.rtcp import is_forwarded_rtcp, parse_rtcp_compound, rtcp_sender_ssrc
from accord.media.rtp import PacketKind, classify_packet, parse_rtp_header, rtp_payload
from accord.media.stun import build_binding_success, parse_stun_message
from accord.media.stun_limit import StunLimiter, address_key

__all__ = ["MAX_DATAGRAM_BYTES", "POLL_INTERVAL_S", "Forwarder"]

MAX_DATAGRAM_BYTES = 1500  # larger datagrams are dropped as malformed
_RECV_BYTES = 2048
POLL_INTERVAL_S = 0.05  # MEDIA.md 4: the loop notices stop requests at least every 50 ms
_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
_REPLAY_ERRORS = frozenset(
    {"replay check failed (bad index)", "replay check failed (index too old)"}
)


@dataclass(eq=False)
class _Participant:
    participant_id: int
    room_id: int
    ssrc: int
    rx: pylibsrtp.Session
    tx: pylibsrtp.Session
    muted: bool = False
    deafened: bool = False
    address: tuple[Any, ...] | None = None
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PARTICIPANT_COUNTERS, 0))


def open_media_socket(bind_host: str, port: int) -> socket.socket:
    """Bind the forwarder's UDP socket (blocking), with large kernel buffers where allowed."""
    family, _, _, _, address = socket.getaddrinfo(bind_host, port, type=socket.SOCK_DGRAM)[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER_BYTES)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


class Forwarder:
    """Forward SRTP between the participants of each room on one UDP socket (reference)."""

    def __init__(self, bind_host: str, port: int) -> None:
        self._sock = open_media_socket(bind_host, port)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._by_id: dict[int, _Participant] = {}
        self._by_ssrc: dict[int, _Participant] = {}
        self._rooms: dict[int, list[_Participant]] = {}
        self._counters = dict.fromkeys(FORWARDER_COUNTERS, 0)
        self._stun_limiter = StunLimiter()
        self._busy_ns = 0
        self._started_ns = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound UDP port (useful after binding port 0)."""
        port: int = self._sock.getsockname()[1]
        return port

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the loop thread. A forwarder starts once; `stop()` is final."""
        if self._thread is not None or self._closed:
            raise RuntimeError("a forwarder can only be started once")
        self._sock.settimeout(POLL_INTERVAL_S)
        self._started_ns = time.monotonic_ns()
        self._thread = threading.Thread(target=self._run, name="accord-forwarder-ref", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop, join its thread and close the socket. Idempotent."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        if not self._closed:
            self._closed = True
            self._sock.close()

    def __enter__(self) -> Forwarder:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- commands ----------------------------------------------------------------------------

    def add_participant(
        self,
        participant_id: int,
        room_id: int,
        ssrc: int,
        srtp_profile: str,
        rx_key: bytes,
        tx_key: bytes,
    ) -> None:
        """Add a participant; see `accord.media.forward` for the meaning of each argument."""
        _check_ids(participant_id, room_id, ssrc)
        rx = srtp.make_rx_session(srtp_profile, rx_key, ssrc)
        tx = srtp.make_tx_session(srtp_profile, tx_key)
        with self._lock:
            if participant_id in self._by_id:
                raise ValueError(f"participant {participant_id} is already on this forwarder")
            if ssrc in self._by_ssrc:
                raise ValueError(f"SSRC {ssrc} is already in use on this forwarder")
            participant = _Participant(participant_id, room_id, ssrc, rx, tx)
            self._by_id[participant_id] = participant
            self._by_ssrc[ssrc] = participant
            self._rooms.setdefault(room_id, []).append(participant)

    def remove_participant(self, participant_id: int) -> bool:
        """Remove a participant; False if it was not there."""
        with self._lock:
            participant = self._by_id.pop(participant_id, None)
            if participant is None:
                return False
            del self._by_ssrc[participant.ssrc]
            room = self._rooms[participant.room_id]
            room.remove(participant)
            if not room:
                del self._rooms[participant.room_id]
            for other in room:
                # Forget the outbound stream state for its SSRC in the room mates' sessions.
                # (pylibsrtp.Error: nothing was ever forwarded from it to this receiver.)
                with contextlib.suppress(pylibsrtp.Error):
                    other.tx.remove_stream(participant.ssrc)
            return True

    def set_state(self, participant_id: int, muted: bool, deafened: bool) -> None:
        """Set self mute (packets authenticate and latch, not forwarded) and deaf.

        Raises:
            KeyError: unknown participant.
        """
        with self._lock:
            participant = self._by_id[participant_id]
            participant.muted = muted
            participant.deafened = deafened

    # -- counters ----------------------------------------------------------------------------

    def stats(self) -> ForwarderStats:
        with self._lock:
            counters = dict(self._counters)
            participants = len(self._by_id)
            rooms = len(self._rooms)
            busy_ns = self._busy_ns
        elapsed_ns = time.monotonic_ns() - self._started_ns if self._started_ns else 0
        busy_ratio = min(1.0, busy_ns / elapsed_ns) if elapsed_ns > 0 else 0.0
        result: dict[str, object] = {
            **counters,
            "participants": participants,
            "rooms": rooms,
            "busy_ratio": busy_ratio,
        }
        return cast(ForwarderStats, result)

    def participant_stats(self, participant_id: int) -> ParticipantStats:
        """Counters and state of one participant.

        Raises:
            KeyError: unknown participant.
        """
        with self._lock:
            p = self._by_id[participant_id]
            address = None if p.address is None else (str(p.address[0]), int(p.address[1]))
            result: dict[str, object] = {
                **p.counters,
                "room_id": p.room_id,
                "ssrc": p.ssrc,
                "muted": p.muted,
                "deafened": p.deafened,
                "address": address,
            }
            return cast(ParticipantStats, result)

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        sock = self._sock
        while not self._stopping.is_set():
            try:
                data, _, flags, address = sock.recvmsg(_RECV_BYTES)
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                continue  # e.g. ICMP errors surfacing on the socket; nothing to do
            with self._lock:
                started = time.monotonic_ns()
                self._handle(data, bool(flags & socket.MSG_TRUNC), address)
                self._busy_ns += time.monotonic_ns() - started

    def _count(self, name: str, amount: int = 1) -> None:
        self._counters[name] += amount

    def _handle(self, data: bytes, truncated: bool, address: tuple[Any, ...]) -> None:
        self._count("packets_in")
        self._count("bytes_in", len(data))
        if truncated or len(data) > MAX_DATAGRAM_BYTES:
            self._count("drop_malformed")
            return
        kind = classify_packet(data)
        if kind is PacketKind.STUN:
            self._handle_stun(data, address)
        elif kind is PacketKind.RTP:
            self._handle_rtp(data, address)
        elif kind is PacketKind.RTCP:
            self._handle_rtcp(data, address)
        else:
            self._count("drop_unsupported")

    def _handle_stun(self, data: bytes, address: tuple[Any, ...]) -> None:
        try:
            message = parse_stun_message(data)
        except MalformedPacketError:
            self._count("drop_malformed")
            return
        if not message.is_binding_request:
            self._count("drop_unsupported")
            return
        if not self._stun_limiter.allow(address_key(str(address[0])), time.monotonic_ns()):
            self._count("drop_rate_limited")
            return
        reply = build_binding_success(message.transaction_id, str(address[0]), int(address[1]))
        if self._send(reply, address):
            self._count("stun_answered")

    def _authenticate(
        self, data: bytes, ssrc: int, address: tuple[Any, ...], *, rtcp: bool
    ) -> tuple[_Participant, bytes] | None:
        """Find the sender by SSRC, unprotect under its key and latch its address."""
        sender = self._by_ssrc.get(ssrc)
        if sender is None:
            self._count("drop_unknown_ssrc")
            return None
        try:
            plain = sender.rx.unprotect_rtcp(data) if rtcp else sender.rx.unprotect(data)
        except pylibsrtp.Error as exc:
            reason = "drop_replay" if str(exc) in _REPLAY_ERRORS else "drop_auth_failed"
            self._count(reason)
            sender.counters[reason] += 1
            return None
        if sender.address != address:
            if sender.address is not None:
                self._count("latch_moves")
                sender.counters["latch_moves"] += 1
            sender.address = address
        sender.counters["packets_in"] += 1
        sender.counters["bytes_in"] += len(data)
        if rtcp:
            sender.counters["rtcp_in"] += 1
        self._count("rtcp_in" if rtcp else "rtp_in")
        return sender, plain

    def _handle_rtp(self, data: bytes, address: tuple[Any, ...]) -> None:
        try:
            header = parse_rtp_header(data)
        except MalformedPacketError:
            self._count("drop_malformed")
            return
        found = self._authenticate(data, header.ssrc, address, rtcp=False)
        if found is None:
            return
        sender, plain = found
        try:
            rtp_payload(plain)  # checks the padding count, which SRTP kept encrypted
        except MalformedPacketError:
            self._count("drop_malformed")
            return
        if sender.muted:
            self._count("drop_muted")
            sender.counters["drop_muted"] += 1
            return
        self._fan_out(sender, plain, rtcp=False)

    def _handle_rtcp(self, data: bytes, address: tuple[Any, ...]) -> None:
        try:
            ssrc = rtcp_sender_ssrc(data)
        except MalformedPacketError:
            self._count("drop_malformed")
            return
        found = self._authenticate(data, ssrc, address, rtcp=True)
        if found is None:
            return
        sender, plain = found
        try:
            packets = parse_rtcp_compound(plain)
        except MalformedPacketError:
            self._count("drop_malformed")
            return
        if not is_forwarded_rtcp(packets):
            self._count("rtcp_consumed")
            return
        if sender.muted:
            self._count("drop_muted")
            sender.counters["drop_muted"] += 1
            return
        self._fan_out(sender, plain, rtcp=True)

    def _fan_out(self, sender: _Participant, plain: bytes, *, rtcp: bool) -> None:
        for receiver in self._rooms[sender.room_id]:
            if receiver is sender:
                continue
            if receiver.deafened:
                self._count("drop_deafened")
                continue
            if receiver.address is None:
                self._count("drop_unlatched")
                continue
            try:
                packet = receiver.tx.protect_rtcp(plain) if rtcp else receiver.tx.protect(plain)
            except pylibsrtp.Error:
                self._count("drop_protect_failed")
                continue
            if self._send(packet, receiver.address):
                self._count("rtcp_out" if rtcp else "rtp_out")
                receiver.counters["packets_out"] += 1
                receiver.counters["bytes_out"] += len(packet)
                if rtcp:
                    receiver.counters["rtcp_out"] += 1

    def _send(self, packet: bytes, address: tuple[Any, ...]) -> bool:
        try:
            self._sock.sendto(packet, address)
        except OSError:
            self._count("drop_send_failed")
            return False
        self._count("packets_out")
        self._count("bytes_out", len(packet))
        return True


def _check_ids(participant_id: int, room_id: int, ssrc: int) -> None:
    if not 0 <= participant_id < 2**64:
        raise ValueError("participant_id must fit in 64 bits")
    if not 0 <= room_id < 2**64:
        raise ValueError("room_id must fit in 64 bits")
    if not 0 <= ssrc < 2**32:
        raise ValueError("ssrc must fit in 32 bits")
