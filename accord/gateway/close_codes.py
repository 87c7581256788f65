"""WebSocket close codes the gateway sends (GATEWAY.md 11, D12, D12a, D12b).

The WebSocket counterpart of `http/errors.py`: every server-side end of a session maps to one
of these codes, sent in a close frame before the socket goes away. CLIENT.md 6.4: the client
reconnects after any code except 4003, 4004, 4012, 4013 and 4014, which it treats as fatal, so
those are used only when reconnecting cannot help.
"""

from __future__ import annotations

import enum


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001  # server shutdown, after op 6 RECONNECT (OPERATIONS.md 10)
    UNKNOWN_ERROR = 4000  # internal error, slow consumer (resumable, D12b)
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002  # undecodable frame, malformed payload, frame too large
    NOT_AUTHENTICATED = 4003  # identify timeout only (D12a)
    AUTHENTICATION_FAILED = 4004  # bad, expired or revoked credentials, after op 7 (D10a)
    ALREADY_AUTHENTICATED = 4005  # IDENTIFY or RESUME twice
    INVALID_SEQ = 4007  # reserved: D12a answers an unusable RESUME with op 7 instead
    RATE_LIMITED = 4008  # flood; too many connections per address or sessions per user (RT-48)
    SESSION_TIMED_OUT = 4009  # heartbeat silence; op 7 left unanswered for 10 s
    INVALID_VERSION = 4012  # `v` query parameter other than 1
    INVALID_INTENTS = 4013  # intents not an array of strings
    DISALLOWED_INTENTS = 4014  # privileged intents refused by policy (off by default)


REASONS: dict[CloseCode, str] = {
    CloseCode.NORMAL: "normal closure",
    CloseCode.GOING_AWAY: "server shutting down, reconnect",
    CloseCode.UNKNOWN_ERROR: "unknown error",
    CloseCode.UNKNOWN_OPCODE: "unknown opcode",
    CloseCode.DECODE_ERROR: "decode error",
    CloseCode.NOT_AUTHENTICATED: "not authenticated",
    CloseCode.AUTHENTICATION_FAILED: "authentication failed",
    CloseCode.ALREADY_AUTHENTICATED: "already authenticated",
    CloseCode.INVALID_SEQ: "invalid seq",
    CloseCode.RATE_LIMITED: "rate limited",
    CloseCode.SESSION_TIMED_OUT: "session timed out",
    CloseCode.INVALID_VERSION: "invalid version",
    CloseCode.INVALID_INTENTS: "invalid intents",
    CloseCode.DISALLOWED_INTENTS: "disallowed intents",
}

# Codes after which the client stops reconnecting (CLIENT.md 6.4).
FATAL = frozenset(
    {
        CloseCode.NOT_AUTHENTICATED,
        CloseCode.AUTHENTICATION_FAILED,
        CloseCode.INVALID_VERSION,
        CloseCode.INVALID_INTENTS,
        CloseCode.DISALLOWED_INTENTS,
    }
)

# Client close codes that end a session for good; anything else parks it for RESUME (D12b).
CLEAN_CLIENT_CLOSES = frozenset({1000, 1001})


def reason(code: CloseCode) -> str:
    return REASONS.get(code, "closed")
