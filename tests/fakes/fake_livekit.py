"""A fake LiveKit RoomService: a real Twirp-over-HTTP server on 127.0.0.1:0 for tests.

It checks each call's HS256 JWT (issuer = API key, signed with the API secret) and the grant
the method needs (STACK-NOTES 4: CreateRoom/DeleteRoom `roomCreate`; ListParticipants and
RemoveParticipant `roomAdmin` plus `room`), parses the protobuf bodies, keeps rooms and
participants in memory, and records every call. Failure modes for tests: `fail[method] =
status` answers a Twirp error, `hang` never answers, `malformed` answers bytes that are not
the reply message.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import jwt
import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from livekit.protocol import models, room
from quart import Response, request
from quart_trio import QuartTrio

_GRANTS = {
    "CreateRoom": ("roomCreate", False),
    "DeleteRoom": ("roomCreate", False),
    "ListParticipants": ("roomAdmin", True),
    "RemoveParticipant": ("roomAdmin", True),
    "UpdateParticipant": ("roomAdmin", True),
    "ListRooms": ("roomList", False),
}


@dataclasses.dataclass
class Call:
    method: str
    room: str
    identity: str | None
    grants: dict[str, Any]


def _twirp_error(status: int, code: str, msg: str) -> Response:
    return Response(
        orjson.dumps({"code": code, "msg": msg}), status=status, content_type="application/json"
    )


class FakeLiveKit:
    def __init__(self, api_key: str, api_secret: str) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.rooms: dict[str, set[str]] = {}
        self.calls: list[Call] = []
        self.refused: list[str] = []
        self.fail: dict[str, int] = {}
        self.hang: set[str] = set()
        self.malformed: set[str] = set()
        # (room, identity) -> the last ParticipantPermission set by UpdateParticipant
        self.permissions: dict[tuple[str, str], Any] = {}
        self.url = ""
        self._shutdown = trio.Event()

    def methods(self) -> list[str]:
        """The methods called, in order, but the start-up check (ListRooms)."""
        return [call.method for call in self.calls if call.method != "ListRooms"]

    def add_participant(self, room_name: str, identity: str) -> None:
        self.rooms.setdefault(room_name, set()).add(identity)

    def app(self) -> QuartTrio:
        app = QuartTrio("fake_livekit")

        @app.post("/twirp/livekit.RoomService/<method>")
        async def twirp(method: str) -> Response:
            return await self._handle(method)

        return app

    async def start(self, nursery: trio.Nursery) -> str:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.graceful_timeout = 0.2
        binds = await nursery.start(
            partial(serve, self.app(), config, shutdown_trigger=self._shutdown.wait)
        )
        self.url = binds[0]
        return self.url

    def stop(self) -> None:
        self._shutdown.set()

    async def _handle(self, method: str) -> Response:
        if method not in _GRANTS:
            return _twirp_error(404, "bad_route", f"no such method {method}")
        grant_name, needs_room = _GRANTS[method]
        auth = request.headers.get("Authorization", "")
        try:
            claims = jwt.decode(auth.removeprefix("Bearer "), self.api_secret, algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            self.refused.append(f"{method}: {exc}")
            return _twirp_error(401, "unauthenticated", "bad token")
        if request.content_type != "application/protobuf":
            return _twirp_error(415, "malformed", "expected protobuf")
        data = await request.get_data(as_text=False)
        assert isinstance(data, bytes)
        grants = claims.get("video", {})
        if claims.get("iss") != self.api_key or not grants.get(grant_name):
            self.refused.append(f"{method}: missing {grant_name}")
            return _twirp_error(401, "unauthenticated", f"missing {grant_name}")
        if method in self.hang:
            await trio.sleep_forever()
        if method in self.fail:
            return _twirp_error(self.fail[method], "internal", "injected failure")
        reply: Any
        identity = None
        if method == "CreateRoom":
            create = room.CreateRoomRequest.FromString(data)
            name = create.name
            self.rooms.setdefault(name, set())
            reply = models.Room(name=name, empty_timeout=create.empty_timeout)
        elif method == "DeleteRoom":
            name = room.DeleteRoomRequest.FromString(data).room
            self.rooms.pop(name, None)
            reply = room.DeleteRoomResponse()
        elif method == "ListRooms":
            room.ListRoomsRequest.FromString(data)
            name = ""
            reply = room.ListRoomsResponse(rooms=[models.Room(name=n) for n in sorted(self.rooms)])
        elif method == "ListParticipants":
            name = room.ListParticipantsRequest.FromString(data).room
            reply = room.ListParticipantsResponse(
                participants=[
                    models.ParticipantInfo(identity=who) for who in sorted(self.rooms.get(name, ()))
                ]
            )
        elif method == "UpdateParticipant":
            update = room.UpdateParticipantRequest.FromString(data)
            name, identity = update.room, update.identity
            if identity not in self.rooms.get(name, set()):
                self._record(method, name, identity, grants)
                return _twirp_error(404, "not_found", "participant not found")
            self.permissions[(name, identity)] = update.permission
            reply = models.ParticipantInfo(
                identity=identity, permission=update.permission, name=update.name
            )
        else:
            target = room.RoomParticipantIdentity.FromString(data)
            name, identity = target.room, target.identity
            if identity not in self.rooms.get(name, set()):
                self._record(method, name, identity, grants)
                return _twirp_error(404, "not_found", "participant not found")
            self.rooms[name].discard(identity)
            reply = room.RemoveParticipantResponse()
        if needs_room and grants.get("room") != name:
            self.refused.append(f"{method}: token for room {grants.get('room')!r}")
            return _twirp_error(401, "unauthenticated", "token is for another room")
        self._record(method, name, identity, grants)
        if method in self.malformed:
            return Response(b"\xff\xff\xff\xff", content_type="application/protobuf")
        return Response(reply.SerializeToString(), content_type="application/protobuf")

    def _record(self, method: str, name: str, identity: str | None, grants: dict[str, Any]) -> None:
        self.calls.append(Call(method, name, identity, grants))
