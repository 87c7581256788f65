"""The seam between the gateway and the voice service.

The gateway hands voice opcodes and session lifecycle to whatever implements `VoicePort`
(`ctx.voice`); the voice service answers by publishing events on the bus (a
`voice.server_update` carries `session_id` so it reaches only the joining session; a refused
op 9 is answered with a session-targeted `voice.error` {op, code, message, space_id,
channel_id}, an event type clients that do not know it ignore). Every method returns
normally: bad payloads and refusals never raise into the gateway. When no
voice service is wired (`ctx.voice is None`) the gateway answers as GATEWAY.md says for an
unavailable backend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, Protocol

from accord.auth.principal import Principal


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayVoiceSession:
    """The gateway session a voice opcode came from."""

    session_id: str
    user_id: int
    principal: Principal


class VoicePort(Protocol):
    async def gateway_voice_state(self, session: GatewayVoiceSession, data: dict[str, Any]) -> None:
        """Op 9 VOICE_STATE_UPDATE (join, move, flag change or leave)."""

    async def gateway_voice_signal(
        self, session: GatewayVoiceSession, data: dict[str, Any]
    ) -> None:
        """Op 11 VOICE_SIGNAL (D13, D13a)."""

    async def gateway_session_ended(self, session: GatewayVoiceSession, *, clean: bool) -> None:
        """The session closed: clean (1000/1001 from the client) ends voice now, else after
        the grace period unless the session resumes (D24)."""

    async def gateway_session_resumed(self, session: GatewayVoiceSession) -> None:
        """The session resumed within its window: keep its voice state (D24)."""

    def voice_states_in(self, space_ids: Iterable[int]) -> list[tuple[int, int, dict[str, Any]]]:
        """(space id, channel id, wire VoiceState) of everyone in voice in these spaces, for
        READY's `voice_states` (RT-15); the gateway filters by channel visibility."""

    async def gateway_session_opened(self, session: GatewayVoiceSession) -> None:
        """The session became READY. Call it so a voice state the user joined over REST is
        not expired while the user has a live gateway session (D24); without it such a state
        lives `ACCORD_REST_VOICE_TTL_S` unless an op 9/11 from the session claims it."""
