"""Names and shapes of the forwarder counters both forwarders report (MEDIA.md 4).

Owns the vocabulary `/health`, heartbeats and `/metrics` read: one TypedDict per scope and the
ordered tuples of counter names that `_forward.pyx` and `_forward_ref.py` both fill. No I/O.
"""

from __future__ import annotations

from typing import Final, TypedDict

__all__ = [
    "FORWARDER_COUNTERS",
    "PARTICIPANT_COUNTERS",
    "ForwarderStats",
    "ParticipantStats",
]

# Order matters: the Cython loop stores these in C arrays indexed by position.
FORWARDER_COUNTERS: Final = (
    "packets_in",  # every datagram received
    "bytes_in",
    "packets_out",  # every datagram sent: forwarded copies and STUN answers
    "bytes_out",
    "rtp_in",  # authenticated SRTP packets
    "rtcp_in",  # authenticated SRTCP packets
    "rtp_out",  # SRTP copies sent to receivers
    "rtcp_out",  # SRTCP copies (sender reports) sent to receivers
    "rtcp_consumed",  # authenticated compounds led by a receiver report: not forwarded
    "stun_answered",
    "latch_moves",  # an authenticated packet moved a participant's address (NAT rebinding)
    "drop_malformed",  # bad header, length, version, padding; truncated datagrams
    "drop_unsupported",  # DTLS, non-request STUN, first bytes nothing on this port speaks
    "drop_unknown_ssrc",
    "drop_auth_failed",  # failed SRTP/SRTCP authentication (wrong key, spoofed SSRC)
    "drop_replay",  # SRTP replay protection rejected a repeated or too-old index
    "drop_muted",  # authenticated packets of a muted sender
    "drop_unlatched",  # copies not made: the receiver has no latched address yet
    "drop_deafened",  # copies not made: the receiver is deafened
    "drop_protect_failed",  # protecting a copy for a receiver failed
    "drop_send_failed",  # the kernel refused a send
    "drop_rate_limited",  # STUN requests over their source IP's rate (stun_limit.py)
)

PARTICIPANT_COUNTERS: Final = (
    "packets_in",  # authenticated SRTP/SRTCP packets from this participant
    "bytes_in",
    "packets_out",  # packets sent to this participant
    "bytes_out",
    "rtcp_in",
    "rtcp_out",
    "drop_auth_failed",  # packets carrying its SSRC that failed authentication
    "drop_replay",
    "drop_muted",
    "latch_moves",
)


class ForwarderStats(TypedDict):
    """Counters of one forwarder since it was created, plus its current shape."""

    packets_in: int
    bytes_in: int
    packets_out: int
    bytes_out: int
    rtp_in: int
    rtcp_in: int
    rtp_out: int
    rtcp_out: int
    rtcp_consumed: int
    stun_answered: int
    latch_moves: int
    drop_malformed: int
    drop_unsupported: int
    drop_unknown_ssrc: int
    drop_auth_failed: int
    drop_replay: int
    drop_muted: int
    drop_unlatched: int
    drop_deafened: int
    drop_protect_failed: int
    drop_send_failed: int
    drop_rate_limited: int
    participants: int
    rooms: int
    busy_ratio: float  # share of wall time since start() spent handling packets, 0..1


class ParticipantStats(TypedDict):
    """Counters and state of one participant on its forwarder."""

    packets_in: int
    bytes_in: int
    packets_out: int
    bytes_out: int
    rtcp_in: int
    rtcp_out: int
    drop_auth_failed: int
    drop_replay: int
    drop_muted: int
    latch_moves: int
    room_id: int
    ssrc: int
    muted: bool
    deafened: bool
    address: tuple[str, int] | None  # the latched source address, None until authenticated
