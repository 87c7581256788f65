"""Voice states in memory (VOICE.md 2, D14, D14a, D14b): the model and the per-user table.

One state per user. Each state remembers which gateway session holds it (`owner_session`,
None when it was joined over REST and no gateway session has claimed it), which SFU node it
was sent to, and whether that node has reported it live. Pure data: no I/O, no trio; the voice
service decides when states change and publishes the events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class VoiceFlags:
    self_mute: bool = False
    self_deaf: bool = False
    self_video: bool = False
    self_stream: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class VoiceState:
    """A user's presence in a voice channel, as clients read it (CLIENT.md VoiceState)."""

    user_id: int
    space_id: int | None
    channel_id: int
    session_id: str
    flags: VoiceFlags = VoiceFlags()
    mute: bool = False  # server mute (moderator)
    deaf: bool = False  # server deafen (moderator)
    suppress: bool = False
    # Bookkeeping that never reaches the wire:
    owner_session: str | None = None  # gateway session holding it; None = REST-held
    node_id: str | None = None  # SFU node the session was sent to (custom backend)
    # The id the node knows this assignment by (join token `session_id`, heartbeat `sessions`,
    # /sessions/{id}/end). Fresh for every assignment, so ending an old assignment can never
    # hit the one that replaced it, even on the same node with the same gateway session.
    node_session: str | None = None
    node_reported: bool = False  # the node has listed node_session in a heartbeat
    speak: bool = True  # may publish (D14)

    def to_wire(self) -> dict[str, Any]:
        return {
            "user_id": str(self.user_id),
            "space_id": None if self.space_id is None else str(self.space_id),
            "channel_id": str(self.channel_id),
            "session_id": self.session_id,
            "deaf": self.deaf,
            "mute": self.mute,
            "self_deaf": self.flags.self_deaf,
            "self_mute": self.flags.self_mute,
            "self_stream": self.flags.self_stream,
            "self_video": self.flags.self_video,
            "suppress": self.suppress,
        }

    def left_wire(self) -> dict[str, Any]:
        """The "left" representation: channel_id null and every boolean false (VOICE.md 2)."""
        return {
            "user_id": str(self.user_id),
            "space_id": None if self.space_id is None else str(self.space_id),
            "channel_id": None,
            "session_id": self.session_id,
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": False,
            "self_stream": False,
            "self_video": False,
            "suppress": False,
        }


class VoiceStates:
    """The table of current voice states, by user, with a channel index."""

    def __init__(self) -> None:
        self._by_user: dict[int, VoiceState] = {}
        self._by_channel: dict[int, set[int]] = {}
        self._by_node_session: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._by_user)

    def __iter__(self) -> Iterator[VoiceState]:
        return iter(tuple(self._by_user.values()))

    def get(self, user_id: int) -> VoiceState | None:
        return self._by_user.get(user_id)

    def put(self, state: VoiceState) -> VoiceState | None:
        """Store `state` as the user's only state; returns the one it replaced."""
        previous = self._by_user.get(state.user_id)
        if previous is not None:
            self._unindex(previous)
        self._by_user[state.user_id] = state
        self._by_channel.setdefault(state.channel_id, set()).add(state.user_id)
        if state.node_session is not None:
            self._by_node_session[state.node_session] = state.user_id
        return previous

    def remove(self, user_id: int) -> VoiceState | None:
        state = self._by_user.pop(user_id, None)
        if state is not None:
            self._unindex(state)
        return state

    def in_channel(self, channel_id: int) -> list[VoiceState]:
        users = sorted(self._by_channel.get(channel_id, ()))
        return [self._by_user[user_id] for user_id in users]

    def count_in_channel(self, channel_id: int, *, excluding_user: int | None = None) -> int:
        users = self._by_channel.get(channel_id, set())
        return len(users) - (1 if excluding_user in users else 0)

    def in_space(self, space_id: int) -> list[VoiceState]:
        return [state for state in self._by_user.values() if state.space_id == space_id]

    def by_node_session(self, node_session: str) -> VoiceState | None:
        user_id = self._by_node_session.get(node_session)
        return None if user_id is None else self._by_user.get(user_id)

    def on_node(self, node_id: str) -> list[VoiceState]:
        return [state for state in self._by_user.values() if state.node_id == node_id]

    def _unindex(self, state: VoiceState) -> None:
        if state.node_session is not None:
            self._by_node_session.pop(state.node_session, None)
        users = self._by_channel.get(state.channel_id)
        if users is not None:
            users.discard(state.user_id)
            if not users:
                del self._by_channel[state.channel_id]
