"""The node's signaling protocol, `accord-rtp/1` (MEDIA.md 2 and 5a), as pure functions.

Frames are JSON `{"op": "<name>", "d": {...}}`. This module decodes and validates client
frames, builds server frames and names the close codes; the socket loop lives in
`media_plane.py`. No I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

PROTOCOL = "accord-rtp/1"
MAX_FRAME_BYTES = 16 * 1024

# MEDIA.md 5a: node-only close codes.
CLOSE_INVALID_TOKEN = 4101
CLOSE_EXPIRED_TOKEN = 4102
CLOSE_NODE_FULL = 4103
CLOSE_SESSION_ENDED = 4104
CLOSE_PROTOCOL_ERROR = 4105
CLOSE_HEARTBEAT_TIMEOUT = 4106

CLOSE_FOR_TOKEN_FAILURE = {
    "invalid": CLOSE_INVALID_TOKEN,
    "wrong_node": CLOSE_INVALID_TOKEN,
    "reused": CLOSE_INVALID_TOKEN,
    "expired": CLOSE_EXPIRED_TOKEN,
}


class SignalingError(Exception):
    """A frame the protocol does not allow: closes the socket with 4105."""


@dataclasses.dataclass(frozen=True, slots=True)
class ClientFrame:
    op: str
    d: dict[str, Any]


def decode(message: str | bytes) -> ClientFrame:
    """Parse one client frame. Raises SignalingError for anything malformed."""
    if len(message) > MAX_FRAME_BYTES:
        raise SignalingError("frame too large")
    try:
        frame = orjson.loads(message)
    except orjson.JSONDecodeError:
        raise SignalingError("frame is not JSON") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("op"), str):
        raise SignalingError("frame has no op")
    data = frame.get("d", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SignalingError("frame data must be an object")
    return ClientFrame(frame["op"], data)


def identify_fields(frame: ClientFrame) -> tuple[str, str]:
    """(token, protocol) of an identify frame."""
    if frame.op != "identify":
        raise SignalingError("identify first")
    token, protocol = frame.d.get("token"), frame.d.get("protocol", PROTOCOL)
    if not isinstance(token, str) or not isinstance(protocol, str):
        raise SignalingError("identify needs a token and a protocol")
    return token, protocol


def selected_mode(frame: ClientFrame, offered: tuple[str, ...]) -> str:
    if frame.op != "select_protocol":
        raise SignalingError("select_protocol expected")
    mode = frame.d.get("mode")
    if mode not in offered:
        raise SignalingError(f"mode must be one of {', '.join(offered)}")
    assert isinstance(mode, str)
    return mode


def state_flags(frame: ClientFrame, current: tuple[bool, bool]) -> tuple[bool, bool]:
    """(self_mute, self_deaf) after a `state` frame; absent flags keep their value."""
    mute, deaf = current
    for name in ("self_mute", "self_deaf"):
        value = frame.d.get(name)
        if value is not None and not isinstance(value, bool):
            raise SignalingError(f"{name} must be a boolean")
    mute = frame.d.get("self_mute", mute) if frame.d.get("self_mute") is not None else mute
    deaf = frame.d.get("self_deaf", deaf) if frame.d.get("self_deaf") is not None else deaf
    return bool(mute), bool(deaf)


def heartbeat_nonce(frame: ClientFrame) -> Any:
    nonce = frame.d.get("nonce")
    if nonce is not None and not isinstance(nonce, int | str):
        raise SignalingError("nonce must be a number or string")
    return nonce


def encode(op: str, data: dict[str, Any]) -> str:
    return orjson.dumps({"op": op, "d": data}).decode()
