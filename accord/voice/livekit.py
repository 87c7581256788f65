"""The LiveKit boundary (VOICE.md 4.3, D16, D16a, RT-32): join tokens and RoomService calls.

Tokens are minted with livekit-api's `AccessToken` (sync, no event loop). Room calls go over
LiveKit's Twirp HTTP API directly, protobuf bodies from `livekit.protocol`, through one
`httpx.AsyncClient`; livekit-api's own service client is asyncio-only. Every call runs under a
deadline (`LIVEKIT_TIMEOUT_S`) and every failure (transport, timeout, Twirp error, a body that
does not parse) surfaces as `LiveKitError`, never as an httpx or protobuf exception.
Server-side calls use `LIVEKIT_INTERNAL_URL`; clients are handed `LIVEKIT_URL` /
`LIVEKIT_EXTERNAL_URL`.
"""

from __future__ import annotations

import datetime as dt
import logging
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import trio

if TYPE_CHECKING:
    import httpx
    from google.protobuf.message import Message
    from livekit.api.access_token import VideoGrants

from accord.config import LiveKitSettings
from accord.errors import UnavailableError

log = logging.getLogger("accord.voice.livekit")

TOKEN_TTL = dt.timedelta(hours=6)  # D16a
ROOM_EMPTY_TIMEOUT_S = 300  # rooms nobody rejoins are closed by LiveKit itself (RT-32)
_SERVICE = "/twirp/livekit.RoomService/"
M = TypeVar("M", bound="Message")


# livekit-api pulls in aiohttp and the protobuf runtime (~25 MiB resident): load it only when
# the LiveKit backend is actually used.
def _grants(**fields: Any) -> VideoGrants:
    from livekit.api.access_token import VideoGrants

    return VideoGrants(**fields)


def _access_token(key: str, secret: str) -> Any:
    from livekit.api.access_token import AccessToken

    return AccessToken(key, secret)


def _room() -> ModuleType:
    from livekit.protocol import room

    return room


def _models() -> ModuleType:
    from livekit.protocol import models

    return models


class LiveKitError(UnavailableError):
    """LiveKit could not be reached or answered something unusable (503 to REST callers)."""


class LiveKitNotFoundError(LiveKitError):
    """Twirp `not_found`: the room or participant does not exist."""


def room_name(channel_id: int) -> str:
    return f"channel_{channel_id}"


def api_base_url(url: str) -> str:
    """The HTTP base of a LiveKit URL (ws -> http, wss -> https)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class LiveKit:
    """Token minting and the four RoomService calls the voice service needs."""

    def __init__(self, settings: LiveKitSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client_url = settings.url
        self._base = api_base_url(settings.internal_url)
        self._http = http

    def join_token(
        self,
        *,
        identity: str,
        room: str,
        can_publish: bool,
        can_subscribe: bool = True,
        name: str | None = None,
    ) -> str:
        """A participant token: join `room`, publish data; publish only if allowed (speak, not
        server-muted), subscribe unless server-deafened."""
        grants = _grants(
            room_join=True,
            room=room,
            can_publish=can_publish,
            can_subscribe=can_subscribe,
            can_publish_data=True,
        )
        token = (
            _access_token(self.settings.api_key, self.settings.api_secret)
            .with_identity(identity)
            .with_grants(grants)
            .with_ttl(TOKEN_TTL)
        )
        if name:
            token = token.with_name(name)
        return str(token.to_jwt())

    async def check(self) -> int:
        """Reach the server API (ListRooms) with the configured key: the number of rooms.
        Raises LiveKitError when LiveKit can't be reached or refuses the credentials."""
        room = _room()
        request = room.ListRoomsRequest()
        reply = await self._call(
            "ListRooms", request, room.ListRoomsResponse, _grants(room_list=True)
        )
        return len(reply.rooms)

    async def create_room(self, name: str) -> None:
        request = _room().CreateRoomRequest(name=name, empty_timeout=ROOM_EMPTY_TIMEOUT_S)
        await self._call("CreateRoom", request, _models().Room, _grants(room_create=True))

    async def delete_room(self, name: str) -> None:
        room = _room()
        request = room.DeleteRoomRequest(room=name)
        await self._call("DeleteRoom", request, room.DeleteRoomResponse, _grants(room_create=True))

    async def list_participants(self, name: str) -> list[str]:
        """Identities of the participants in a room."""
        room = _room()
        request = room.ListParticipantsRequest(room=name)
        grants = _grants(room_admin=True, room=name)
        reply = await self._call("ListParticipants", request, room.ListParticipantsResponse, grants)
        return [participant.identity for participant in reply.participants]

    async def remove_participant(self, name: str, identity: str) -> bool:
        """Remove a participant; False when it was not in the room."""
        room = _room()
        request = room.RoomParticipantIdentity(room=name, identity=identity)
        grants = _grants(room_admin=True, room=name)
        try:
            await self._call("RemoveParticipant", request, room.RemoveParticipantResponse, grants)
        except LiveKitNotFoundError:
            return False
        return True

    async def update_permissions(
        self, name: str, identity: str, *, can_publish: bool, can_subscribe: bool
    ) -> bool:
        """Change a connected participant's rights at once (RT-33: server mute/deaf, speak);
        False when it is not in the room (its next token carries the rights)."""
        room = _room()
        permission = _models().ParticipantPermission(
            can_publish=can_publish, can_subscribe=can_subscribe, can_publish_data=True
        )
        request = room.UpdateParticipantRequest(room=name, identity=identity, permission=permission)
        grants = _grants(room_admin=True, room=name)
        try:
            await self._call("UpdateParticipant", request, _models().ParticipantInfo, grants)
        except LiveKitNotFoundError:
            return False
        return True

    async def _call(self, method: str, request: Message, reply: type[M], grants: VideoGrants) -> M:
        import httpx  # loaded with the first call, not at start-up (VoiceService.http)
        from google.protobuf.message import DecodeError

        token = _access_token(self.settings.api_key, self.settings.api_secret).with_grants(grants)
        headers = {
            "Authorization": f"Bearer {token.to_jwt()}",
            "Content-Type": "application/protobuf",
        }
        try:
            with trio.fail_after(self.settings.timeout_s):
                response = await self._http.post(
                    self._base + _SERVICE + method,
                    content=request.SerializeToString(),
                    headers=headers,
                )
        except trio.TooSlowError:
            raise LiveKitError(f"LiveKit {method} timed out") from None
        except httpx.HTTPError as exc:
            raise LiveKitError(f"LiveKit {method} failed: {type(exc).__name__}") from exc
        if response.status_code != 200:
            code, message = _twirp_error(response)
            if code == "not_found":
                raise LiveKitNotFoundError(f"LiveKit {method}: {message}")
            raise LiveKitError(f"LiveKit {method} answered {response.status_code} {code}")
        try:
            return reply.FromString(response.content)
        except (DecodeError, ValueError) as exc:
            raise LiveKitError(f"LiveKit {method} sent a malformed reply") from exc


def _twirp_error(response: httpx.Response) -> tuple[str, str]:
    try:
        body: Any = response.json()
    except ValueError:
        return "unknown", response.text[:200]
    if not isinstance(body, dict):
        return "unknown", ""
    return str(body.get("code", "unknown")), str(body.get("msg", ""))
