"""The SFU forwarder API: the only module that imports `_forward` or `_forward_ref`.

It picks the Cython hot loop (`_forward`) or, with `ACCORD_PURE_PYTHON=1` (or when the
extension is not built), the pure-Python reference (`_forward_ref`), and gives both one typed
interface, `ForwarderApi`. Everything here is synchronous and thread-safe; call it from trio
through plain calls (each command waits at most for the batch in flight, microseconds to a few
milliseconds) and never touch libsrtp sessions yourself.

How the node runtime drives a forwarder (MEDIA.md sections 2-4)::

    fwd = Forwarder("0.0.0.0", settings.sfu_udp_port)   # binds now; fwd.port is the real port
    fwd.start()                                          # its own OS thread, GIL released
    # on select_protocol: the node picks the SSRC and generates both keys
    send_key = generate_key(mode); recv_key = generate_key(mode)
    fwd.add_participant(session_id, room_id, ssrc, mode, rx_key=send_key, tx_key=recv_key)
    # -> session_description {"mode": mode, "send_key": b64(send_key), "recv_key": b64(recv_key)}
    fwd.set_state(session_id, muted=self_mute, deafened=self_deaf)   # on op "state"
    fwd.remove_participant(session_id)                   # on leave / end / socket closed
    fwd.stats(); fwd.participant_stats(session_id)       # /health, heartbeats, /metrics
    fwd.stop()                                           # joins the thread, closes the socket

API (identical on both implementations):

- `Forwarder(bind_host, port)`: binds one UDP socket now (port 0 = ephemeral); raises OSError.
  `.port` is the bound port, `.is_running` whether the loop thread is alive.
- `start()` once; `stop()` stops the loop (it polls with a 50 ms timeout and is also woken at
  once), joins the thread and closes the socket; idempotent. Also a context manager.
- `add_participant(participant_id, room_id, ssrc, srtp_profile, rx_key, tx_key)`:
  `participant_id` (the voice session id) and `room_id` are 64-bit; `ssrc` is the 32-bit SSRC
  the node assigned in `ready`, unique on the forwarder (ValueError otherwise) and never reused
  on the node while anyone who heard it remains; `srtp_profile` is "AEAD_AES_128_GCM" (28-byte
  keys) or "AES_CM_128_HMAC_SHA1_80" (30-byte keys); `rx_key` is the master key ‖ salt the
  client protects with (its `send_key`), `tx_key` what the node protects toward it (its
  `recv_key`). ValueError on a duplicate id or SSRC, an unknown profile or a wrong key size.
- `remove_participant(participant_id) -> bool`: False if unknown. Nothing more is forwarded
  from or to it once it returns.
- `set_state(participant_id, muted, deafened)`: a muted sender's packets still authenticate and
  latch but are not forwarded; a deafened receiver gets nothing. KeyError if unknown.
- `stats() -> ForwarderStats`, `participant_stats(participant_id) -> ParticipantStats`
  (KeyError if unknown): counters named in `accord.media.counters`, plus the latched address.

What the forwarder does with a datagram (MEDIA.md 3): STUN Binding requests are answered with
XOR-MAPPED-ADDRESS (no credential check in `accord-rtp/1`), at most 50/s per source IP after a
burst of 100 (`stun_limit.py`; the rest count as `drop_rate_limited`), and never latch;
SRTP/SRTCP is looked up by SSRC and must authenticate under that participant's key, which
latches (or, from a new address, moves) its address; SSRCs are forwarded unchanged,
re-protected per receiver to every other non-deafened, latched participant of the room; SRTCP
led by a sender report is forwarded, by a receiver report consumed. Everything else is
dropped and counted.

Sending: the Cython loop hands each receiver's copies of one batch to the kernel as UDP GSO
messages (Linux cuts them into datagrams; receivers see ordinary datagrams), which cuts the
kernel's cost per datagram about fourfold under load; `Forwarder(host, port, gso=False)` (Cython
only) sends one message per datagram, as the reference always does.

Cores (`ACCORD_SFU_WORKERS=N`): run N forwarders on N ports, pin each room to one and put new
rooms on the one with the fewest participants (`stats()["participants"]`).
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Protocol

from accord.media import _forward_ref
from accord.media.counters import ForwarderStats, ParticipantStats
from accord.media.srtp import PROFILES, generate_key

__all__ = [
    "IMPLEMENTATIONS",
    "PROFILES",
    "Forwarder",
    "ForwarderApi",
    "ForwarderFactory",
    "ForwarderStats",
    "ParticipantStats",
    "generate_key",
    "implementation_name",
]


class ForwarderApi(Protocol):
    """What both forwarders implement; see the module docstring for the semantics."""

    @property
    def port(self) -> int: ...
    @property
    def is_running(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def add_participant(
        self,
        participant_id: int,
        room_id: int,
        ssrc: int,
        srtp_profile: str,
        rx_key: bytes,
        tx_key: bytes,
    ) -> None: ...
    def remove_participant(self, participant_id: int) -> bool: ...
    def set_state(self, participant_id: int, muted: bool, deafened: bool) -> None: ...
    def stats(self) -> ForwarderStats: ...
    def participant_stats(self, participant_id: int) -> ParticipantStats: ...
    def __enter__(self) -> ForwarderApi: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class ForwarderFactory(Protocol):
    def __call__(self, bind_host: str, port: int) -> ForwarderApi: ...


def _implementations() -> dict[str, ForwarderFactory]:
    found: dict[str, ForwarderFactory] = {"reference": _forward_ref.Forwarder}
    try:
        from accord.media import _forward
    except ImportError:  # the extension is not built: only the reference is available
        return found
    return {"cython": _forward.Forwarder, **found}


IMPLEMENTATIONS: dict[str, ForwarderFactory] = _implementations()
"""Every forwarder importable here, by name; tests parametrize over it."""


def implementation_name() -> str:
    """ "reference" when `ACCORD_PURE_PYTHON=1` or the extension is missing, else "cython"."""
    if os.environ.get("ACCORD_PURE_PYTHON") == "1" or "cython" not in IMPLEMENTATIONS:
        return "reference"
    return "cython"


Forwarder: ForwarderFactory = IMPLEMENTATIONS[implementation_name()]
"""The forwarder the node should use: `Forwarder(bind_host, port) -> ForwarderApi`."""
