"""SRTP profiles, keys and sessions for the forwarders, over pylibsrtp (MEDIA.md 3, 5a).

Owns the mapping from the wire's profile names to libsrtp profiles and key sizes, key
generation for the node, and the two kinds of session a participant needs: an inbound session
that only accepts that participant's SSRC, and an outbound session that protects any SSRC the
room forwards to it. It also owns the only access to pylibsrtp's private C handles (STACK-NOTES
5): `c_handles()` and `session_pointer()`; a test checks they still exist. No I/O.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

import pylibsrtp

__all__ = [
    "PROFILES",
    "SRTCP_MAX_TRAILER_BYTES",
    "SRTP_MAX_TRAILER_BYTES",
    "CHandles",
    "SrtpProfile",
    "c_handles",
    "check_key",
    "generate_key",
    "make_rx_session",
    "make_tx_session",
    "session_pointer",
]

# libsrtp 2.x: SRTP_MAX_TAG_LEN + SRTP_MAX_MKI_LEN, and the SRTCP index word on top.
SRTP_MAX_TRAILER_BYTES: Final = 16 + 128
SRTCP_MAX_TRAILER_BYTES: Final = 4 + 16 + 128


@dataclass(frozen=True, slots=True)
class SrtpProfile:
    """One SRTP protection profile as MEDIA.md 5a names it."""

    name: str
    libsrtp_profile: int
    key_bytes: int  # master key ‖ master salt


PROFILES: Final[dict[str, SrtpProfile]] = {
    "AEAD_AES_128_GCM": SrtpProfile(
        "AEAD_AES_128_GCM", pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16 + 12
    ),
    "AES_CM_128_HMAC_SHA1_80": SrtpProfile(
        "AES_CM_128_HMAC_SHA1_80", pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16 + 14
    ),
}


def _profile(name: str) -> SrtpProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown SRTP profile {name!r}") from None


def check_key(profile_name: str, key: bytes) -> SrtpProfile:
    """Return the profile after checking `key` is exactly its master key ‖ salt length.

    Raises:
        ValueError: unknown profile or wrong key length.
    """
    profile = _profile(profile_name)
    if len(key) != profile.key_bytes:
        raise ValueError(
            f"{profile.name} needs a {profile.key_bytes}-byte key and salt, got {len(key)}"
        )
    return profile


def generate_key(profile_name: str) -> bytes:
    """Fresh random master key ‖ salt for one participant and direction (MEDIA.md 5a)."""
    return os.urandom(_profile(profile_name).key_bytes)


def make_rx_session(profile_name: str, key: bytes, ssrc: int) -> pylibsrtp.Session:
    """Session that unprotects what one participant sends: it only knows that SSRC.

    A packet carrying another SSRC finds no stream and fails, so a participant's key can
    never authenticate a packet that claims someone else's SSRC.
    """
    profile = check_key(profile_name, key)
    policy = pylibsrtp.Policy(
        key=key,
        ssrc_type=pylibsrtp.Policy.SSRC_SPECIFIC,
        ssrc_value=ssrc,
        srtp_profile=profile.libsrtp_profile,
    )
    return pylibsrtp.Session(policy)


def make_tx_session(profile_name: str, key: bytes) -> pylibsrtp.Session:
    """Session that protects everything forwarded to one participant, whatever the SSRC."""
    profile = check_key(profile_name, key)
    policy = pylibsrtp.Policy(
        key=key,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=profile.libsrtp_profile,
    )
    return pylibsrtp.Session(policy)


@dataclass(frozen=True, slots=True)
class CHandles:
    """Addresses of libsrtp 2.x functions inside pylibsrtp's bundled library.

    Each has the signature `int fn(srtp_t ctx, void *packet, int *len)` and works in place;
    the buffer needs `SRTP_MAX_TRAILER_BYTES` (RTP) or `SRTCP_MAX_TRAILER_BYTES` spare.
    """

    protect: int
    unprotect: int
    protect_rtcp: int
    unprotect_rtcp: int


def c_handles() -> CHandles:
    """Read the libsrtp function pointers from pylibsrtp's private cffi binding.

    Raises:
        RuntimeError: pylibsrtp no longer exposes `_binding.ffi`/`lib` the way 1.0.0 did.
    """
    try:
        from pylibsrtp._binding import ffi, lib
    except ImportError as exc:  # pragma: no cover - only when pylibsrtp changes
        raise RuntimeError("pylibsrtp._binding (ffi, lib) is gone; pin pylibsrtp==1.0.0") from exc

    def address(name: str) -> int:
        return int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))

    return CHandles(
        protect=address("srtp_protect"),
        unprotect=address("srtp_unprotect"),
        protect_rtcp=address("srtp_protect_rtcp"),
        unprotect_rtcp=address("srtp_unprotect_rtcp"),
    )


def session_pointer(session: pylibsrtp.Session) -> int:
    """Return the `srtp_t` inside a pylibsrtp Session (private `_srtp[0]`).

    The caller must keep `session` alive for as long as it uses the pointer: the srtp_t is
    freed when the Session is collected.

    Raises:
        RuntimeError: pylibsrtp no longer keeps the context in `Session._srtp`.
    """
    from pylibsrtp._binding import ffi

    try:
        handle = session._srtp
    except AttributeError as exc:
        raise RuntimeError("pylibsrtp.Session._srtp is gone; pin pylibsrtp==1.0.0") from exc
    pointer = int(ffi.cast("uintptr_t", handle[0]))
    if pointer == 0:
        raise RuntimeError("pylibsrtp.Session._srtp holds a null srtp_t")
    return pointer
