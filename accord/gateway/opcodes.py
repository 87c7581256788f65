"""Gateway opcodes (GATEWAY.md 3, CLIENT.md 6.1) and which side may send each one."""

from __future__ import annotations

import enum


class Op(enum.IntEnum):
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    RESUME = 3
    HEARTBEAT_ACK = 4
    HELLO = 5
    RECONNECT = 6
    INVALID_SESSION = 7
    PRESENCE_UPDATE = 8
    VOICE_STATE_UPDATE = 9
    REQUEST_MEMBERS = 10
    VOICE_SIGNAL = 11


# Opcodes only the server sends; a client sending one gets 4001 (GATEWAY.md 11).
SERVER_ONLY = frozenset({Op.DISPATCH, Op.HEARTBEAT_ACK, Op.HELLO, Op.RECONNECT, Op.INVALID_SESSION})

# Opcodes a client may send before READY without effect (D12a: ignored, never closed).
IGNORED_BEFORE_READY = frozenset(
    {Op.PRESENCE_UPDATE, Op.VOICE_STATE_UPDATE, Op.REQUEST_MEMBERS, Op.VOICE_SIGNAL}
)
