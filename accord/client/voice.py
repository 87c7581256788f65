"""Voice over an SFU node (MEDIA.md 2-3, `accord-rtp/1`): signaling, keys, SRTP over UDP.

`open_voice(server)` connects to the node's signaling socket with main's join token, takes the
SSRC and UDP address from `ready`, selects the preferred SRTP mode, installs the per-direction
keys from `session_description`, latches its UDP address with one SRTCP receiver report, and
then sends protected RTP frames and receives everyone else's. Received packets are checked
against the synthetic payload pattern of `make_payload`, so tests can prove payloads arrived
intact and in order.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import itertools
import struct
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pylibsrtp
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from accord.client.ws import open_ws

PROTOCOL = "accord-rtp/1"
OPUS_PAYLOAD_TYPE = 111
SAMPLES_PER_FRAME = 960  # 20 ms at 48 kHz
_PROFILES = {
    "AEAD_AES_128_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
}


class VoiceError(Exception):
    """The node refused or closed the voice session."""


@dataclasses.dataclass(frozen=True, slots=True)
class VoiceServer:
    """Where and how to connect: from `voice.server_update` or the REST join reply."""

    endpoint: str
    token: str
    space_id: str | None = None
    channel_id: str | None = None

    @classmethod
    def from_update(cls, data: dict[str, Any]) -> VoiceServer:
        endpoint = data.get("sfu_endpoint") or data.get("endpoint")
        token = data.get("token")
        if not endpoint or not token:
            raise VoiceError(f"no SFU endpoint or token in {data!r}")
        return cls(str(endpoint), str(token), data.get("space_id"), data.get("channel_id"))


def make_payload(ssrc: int, seq: int, size: int = 160) -> bytes:
    """A synthetic Opus-sized payload that names its sender and sequence number."""
    head = struct.pack("!4sIH", b"ACRD", ssrc, seq & 0xFFFF)
    body = hashlib.blake2b(head, digest_size=32).digest()
    filler = (body * (size // len(body) + 1))[: size - len(head)]
    return head + filler


def rtp_packet(ssrc: int, seq: int, timestamp: int, payload: bytes, marker: bool = False) -> bytes:
    """RFC 3550 5.1 fixed header (V=2, no padding, no extension, no CSRC) and payload."""
    return (
        struct.pack(
            "!BBHII",
            0x80,
            (0x80 if marker else 0) | OPUS_PAYLOAD_TYPE,
            seq & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
        + payload
    )


def rtcp_receiver_report(ssrc: int) -> bytes:
    """An empty RTCP receiver report (RFC 3550 6.4.2): V=2, RC=0, PT=201, length 1."""
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


@dataclasses.dataclass
class PeerStats:
    ssrc: int
    user_id: str | None = None
    packets: int = 0
    octets: int = 0
    lost: int = 0
    out_of_order: int = 0
    corrupted: int = 0
    last_seq: int | None = None
    sequences: list[int] = dataclasses.field(default_factory=list)

    def record(self, seq: int, payload: bytes, *, keep_sequences: bool) -> None:
        self.packets += 1
        self.octets += len(payload)
        if payload != make_payload(self.ssrc, seq, len(payload)):
            self.corrupted += 1
        if self.last_seq is not None:
            gap = (seq - self.last_seq) & 0xFFFF
            if gap == 0 or gap > 0x8000:
                self.out_of_order += 1
            elif gap > 1:
                self.lost += gap - 1
        if self.last_seq is None or 0 < ((seq - self.last_seq) & 0xFFFF) < 0x8000:
            self.last_seq = seq
        if keep_sequences:
            self.sequences.append(seq)


class VoiceConnection:
    """One participant's voice session on a node. Use `open_voice` to make one."""

    def __init__(self, ws: WebSocketConnection, ready: dict[str, Any]) -> None:
        self._ws = ws
        self.ready = ready
        self.ssrc = int(ready["ssrc"])
        self.udp_address = (str(ready["udp"]["ip"]), int(ready["udp"]["port"]))
        self.peers: dict[int, str] = {int(p["ssrc"]): str(p["user_id"]) for p in ready["peers"]}
        self.stats: dict[int, PeerStats] = {}
        self.mode = ""
        self.keep_sequences = True
        self.speaking: dict[str, bool] = {}
        self.closed = trio.Event()
        self.close_code: int | None = None
        self._seq = itertools.count(1)
        self._timestamp = 0
        self._tx: pylibsrtp.Session | None = None
        self._rx: pylibsrtp.Session | None = None
        self._sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        self._events_send, self.events = trio.open_memory_channel[dict[str, Any]](256)

    # -- sending -----------------------------------------------------------------------------

    async def send_frame(self, payload: bytes | None = None) -> int:
        """Protect and send one 20 ms frame; returns its sequence number."""
        assert self._tx is not None
        seq = next(self._seq) & 0xFFFF
        self._timestamp += SAMPLES_PER_FRAME
        data = payload if payload is not None else make_payload(self.ssrc, seq)
        packet = self._tx.protect(rtp_packet(self.ssrc, seq, self._timestamp, data))
        await self._sock.sendto(packet, self.udp_address)
        return seq

    async def send_raw(self, packet: bytes, address: tuple[str, int] | None = None) -> None:
        """Send bytes as they are (tests use this for forged or malformed packets)."""
        await self._sock.sendto(packet, address or self.udp_address)

    def protect(self, rtp: bytes) -> bytes:
        assert self._tx is not None
        return bytes(self._tx.protect(rtp))

    async def set_state(self, *, self_mute: bool, self_deaf: bool) -> None:
        await self._send("state", {"self_mute": self_mute, "self_deaf": self_deaf})

    async def rebind(self) -> None:
        """Move to a new local UDP port, as a NAT rebinding would."""
        old = self._sock
        new = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await new.bind((self._local_host(), 0))
        self._sock = new
        old.close()

    def _local_host(self) -> str:
        return "127.0.0.1" if self.udp_address[0].startswith("127.") else "0.0.0.0"

    # -- plumbing ----------------------------------------------------------------------------

    async def _send(self, op: str, data: dict[str, Any]) -> None:
        await self._ws.send_message(orjson.dumps({"op": op, "d": data}).decode())

    async def _next(self, op: str, timeout_s: float) -> dict[str, Any]:
        with trio.fail_after(timeout_s):
            while True:
                try:
                    frame = orjson.loads(await self._ws.get_message())
                except ConnectionClosed as exc:
                    code = exc.reason.code if exc.reason else None
                    raise VoiceError(f"node closed the socket ({code})") from exc
                if frame.get("op") == op:
                    data: dict[str, Any] = frame.get("d") or {}
                    return data
                await self._handle(frame)

    async def _handle(self, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        data = frame.get("d") or {}
        if op == "peer_joined":
            self.peers[int(data["ssrc"])] = str(data["user_id"])
        elif op == "peer_left":
            self.peers.pop(int(data["ssrc"]), None)
        elif op == "speaking":
            self.speaking[str(data["user_id"])] = bool(data.get("speaking"))
        with contextlib.suppress(trio.WouldBlock):
            self._events_send.send_nowait({"op": op, "d": data})

    async def _setup(self, mode: str | None, timeout_s: float) -> None:
        modes = list(self.ready.get("modes") or [])
        chosen = mode or (modes[0] if modes else "")
        if chosen not in modes or chosen not in _PROFILES:
            raise VoiceError(f"mode {chosen!r} not offered ({modes})")
        await self._send("select_protocol", {"mode": chosen})
        description = await self._next("session_description", timeout_s)
        self.mode = description["mode"]
        profile = _PROFILES[self.mode]
        send_key = base64.b64decode(description["send_key"])
        recv_key = base64.b64decode(description["recv_key"])
        self._tx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=send_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
            )
        )
        self._rx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=recv_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile
            )
        )
        await self._sock.bind((self._local_host(), 0))

    async def latch(self) -> None:
        """Tell the node our address with an authenticated SRTCP receiver report."""
        assert self._tx is not None
        await self._sock.sendto(
            self._tx.protect_rtcp(rtcp_receiver_report(self.ssrc)), self.udp_address
        )

    async def _heartbeats(self, interval_s: float) -> None:
        for nonce in itertools.count(1):
            await trio.sleep(interval_s)
            try:
                await self._send("heartbeat", {"nonce": nonce})
            except ConnectionClosed:
                return

    async def _signaling_reader(self) -> None:
        try:
            while True:
                frame = orjson.loads(await self._ws.get_message())
                await self._handle(frame)
        except ConnectionClosed as exc:
            self.close_code = exc.reason.code if exc.reason else None
            self.closed.set()

    async def _udp_reader(self) -> None:
        assert self._rx is not None
        while True:
            sock = self._sock
            try:
                packet = await sock.recv(2048)
            except (OSError, trio.ClosedResourceError):
                if sock is self._sock:
                    raise
                continue  # the socket was replaced by rebind()
            if len(packet) < 12 or not 128 <= packet[0] <= 191 or 192 <= packet[1] <= 223:
                continue  # not RTP (RTCP has payload types 200-204 with the marker bit set)
            try:
                plain = self._rx.unprotect(packet)
            except pylibsrtp.Error:
                continue
            seq, _, ssrc = struct.unpack_from("!HII", plain, 2)
            stats = self.stats.get(ssrc)
            if stats is None:
                stats = self.stats[ssrc] = PeerStats(ssrc)
            stats.user_id = self.peers.get(ssrc, stats.user_id)
            stats.record(seq, bytes(plain[12:]), keep_sequences=self.keep_sequences)

    def stats_by_user(self) -> dict[str, PeerStats]:
        return {(s.user_id or f"ssrc:{s.ssrc}"): s for s in self.stats.values()}

    async def aclose(self, code: int = 1000) -> None:
        with contextlib.suppress(Exception):
            await self._ws.aclose(code)
        self._sock.close()


@contextlib.asynccontextmanager
async def open_voice(
    server: VoiceServer, *, mode: str | None = None, timeout_s: float = 10.0, latch: bool = True
) -> AsyncIterator[VoiceConnection]:
    """Connect to the node, exchange keys, start heartbeats and the UDP receiver."""
    async with open_ws(server.endpoint) as ws, trio.open_nursery() as nursery:
        await ws.send_message(
            orjson.dumps(
                {"op": "identify", "d": {"token": server.token, "protocol": PROTOCOL}}
            ).decode()
        )
        with trio.fail_after(timeout_s):
            try:
                frame = orjson.loads(await ws.get_message())
            except ConnectionClosed as exc:
                code = exc.reason.code if exc.reason else None
                raise VoiceError(f"node refused the session ({code})") from exc
        if frame.get("op") != "ready":
            raise VoiceError(f"expected ready, got {frame!r}")
        voice = VoiceConnection(ws, frame["d"])
        await voice._setup(mode, timeout_s)
        interval_s = float(voice.ready.get("heartbeat_interval", 5000)) / 1000
        nursery.start_soon(voice._heartbeats, interval_s / 2)
        nursery.start_soon(voice._signaling_reader)
        nursery.start_soon(voice._udp_reader)
        if latch:
            await voice.latch()
        try:
            yield voice
        finally:
            nursery.cancel_scope.cancel()
            with trio.move_on_after(2, shield=True):
                await voice.aclose()
