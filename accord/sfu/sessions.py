"""The participants a node is serving, by the session id of their join token.

Signaling (the media issue's `/ws`) adds a participant with the callbacks that end it (close
its socket with 4104 and drop it from its room) and change its rights; main ends one with
`POST /sessions/{id}/end` and changes what it may do with `POST /sessions/{id}/rights`;
heartbeats report `load` and `ids()`. Sync and trio-free: every method runs on the node's
event loop between awaits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from accord.voice.join_token import JOIN_TOKEN_TTL_S


@dataclasses.dataclass(eq=False)
class NodeParticipant:
    session_id: str
    user_id: str
    channel_id: str
    # Called once when main ends the session (MEDIA.md 5a "Ending"); closes the socket.
    on_end: Callable[[], None] = lambda: None
    # Called when main changes what the session may do (RT-33): may it speak, is it
    # server-deafened. Applied to the forwarder at once.
    on_rights: Callable[[bool, bool], None] = lambda speak, deaf: None


class SessionTable:
    def __init__(self) -> None:
        self._sessions: dict[str, NodeParticipant] = {}
        # Sessions main ended, remembered while their join token could still be presented,
        # so a client that connects after main ended its session is refused (4104).
        self._ended: dict[str, float] = {}
        self.ended_by_main = 0

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def load(self) -> int:
        """Participants on this node: what heartbeats and /health report (D15c)."""
        return len(self._sessions)

    def ids(self) -> list[str]:
        return sorted(self._sessions)

    def get(self, session_id: str) -> NodeParticipant | None:
        return self._sessions.get(session_id)

    def in_room(self, channel_id: str) -> list[NodeParticipant]:
        return [p for p in self._sessions.values() if p.channel_id == channel_id]

    def add(self, participant: NodeParticipant) -> NodeParticipant | None:
        """Add a participant; returns the one it replaced (same session reconnecting)."""
        previous = self._sessions.get(participant.session_id)
        self._sessions[participant.session_id] = participant
        return previous

    def remove(self, participant: NodeParticipant) -> bool:
        """Forget a participant that left by itself (only if it is still the current one)."""
        if self._sessions.get(participant.session_id) is participant:
            del self._sessions[participant.session_id]
            return True
        return False

    def was_ended(self, session_id: str, now: float) -> bool:
        expires = self._ended.get(session_id)
        return expires is not None and expires > now

    def set_rights(self, session_id: str, *, speak: bool, deaf: bool) -> bool:
        """Main changed the session's rights (server mute/deaf, speak permission). False if it
        is not on this node (yet): its next join token carries them."""
        participant = self._sessions.get(session_id)
        if participant is None:
            return False
        participant.on_rights(speak, deaf)
        return True

    def end(self, session_id: str, now: float) -> bool:
        """Main ended the session: drop it and tell its owner. False if it was not here."""
        self._ended = {sid: exp for sid, exp in self._ended.items() if exp > now}
        self._ended[session_id] = now + JOIN_TOKEN_TTL_S
        participant = self._sessions.pop(session_id, None)
        if participant is None:
            return False
        self.ended_by_main += 1
        participant.on_end()
        return True
