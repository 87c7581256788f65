"""Soundboard sounds of a space (CLIENT.md 4.12; D7a, D12c, D23).

Managing sounds needs `manage_soundboard`; playing one needs `use_soundboard` and being in a
voice channel of that space. Audio arrives as a base64 data URI, is validated by content
(services/audio.py), stored content-addressed with the other files (D17) and served from
`/cdn/sounds/{id}.{ext}`. At most 100 sounds per space.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

import trio

from accord.auth.principal import Principal
from accord.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from accord.events.types import Event
from accord.models.audit_log import AuditLogEntry
from accord.models.sounds import Sound
from accord.services.audio import inspect_audio
from accord.services.audit_log import AuditLogService
from accord.services.context import Context, Service
from accord.services.file_cleanup import FileCleanup
from accord.services.images import decode_base64_payload
from accord.services.permissions import space_access
from accord.storage import audit_log as audit_store
from accord.storage import soundboard as sound_store
from accord.storage.files import FileStore
from accord.times import now_ts
from accord.voice.service import VoiceService

MAX_SOUNDS_PER_SPACE = 100
MAX_AUDIO_BYTES = 1024 * 1024
MAX_DURATION_S = 10.0
NAME_MAX = 32
FILE_KIND = "sounds"


def validate_sound_name(raw: str) -> str:
    name = raw.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise ValidationError(f"must be between 1 and {NAME_MAX} characters", field="name")
    return name


def validate_volume(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValidationError("must be between 0 and 1", field="volume")
    return value


def _audited(sound: Sound) -> dict[str, Any]:
    return {"name": sound.name, "volume": sound.volume}


class SoundboardService(Service):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.files = FileStore(ctx.settings.storage_dir)

    def cdn_base(self) -> str | None:
        public = self.settings.public_url
        return f"{public.rstrip('/')}/cdn" if public else None

    def wire(self, sound: Sound) -> dict[str, Any]:
        return sound.to_wire(self.cdn_base())

    async def list(self, principal: Principal, space_id: int) -> list[Sound]:
        def read(conn: sqlite3.Connection) -> list[Sound]:
            space_access(conn, space_id, principal).require_member()
            return sound_store.list_sounds(conn, space_id)

        return await self.db.read(read)

    async def get(self, principal: Principal, space_id: int, sound_id: int) -> Sound:
        def read(conn: sqlite3.Connection) -> Sound:
            space_access(conn, space_id, principal).require_member()
            sound = sound_store.get_sound(conn, space_id, sound_id)
            if sound is None:
                raise NotFoundError("unknown_sound")
            return sound

        return await self.db.read(read)

    async def create(
        self,
        principal: Principal,
        space_id: int,
        *,
        name: str,
        audio: str,
        volume: float | None,
        reason: str | None = None,
    ) -> Sound:
        name = validate_sound_name(name)
        volume = validate_volume(1.0 if volume is None else volume)

        def check(conn: sqlite3.Connection) -> None:
            space_access(conn, space_id, principal).require("manage_soundboard")

        await self.db.read(check)  # refuse before decoding a megabyte for nobody
        data = decode_base64_payload(audio, field="audio", max_bytes=MAX_AUDIO_BYTES)

        def inspect() -> tuple[str, str]:
            info = inspect_audio(data, field="audio", max_duration_s=MAX_DURATION_S)
            return hashlib.sha256(data).hexdigest(), info.content_type

        key, content_type = await trio.to_thread.run_sync(inspect, limiter=self.ctx.file_limiter)
        now = now_ts()
        sound = Sound(
            id=self.ctx.new_id(),
            space_id=space_id,
            name=name,
            volume=volume,
            creator_id=principal.user_id,
            audio_key=key,
            content_type=content_type,
            created_at=now,
            updated_at=now,
        )

        def write(conn: sqlite3.Connection) -> AuditLogEntry:
            space_access(conn, space_id, principal).require("manage_soundboard")
            if sound_store.count_sounds(conn, space_id) >= MAX_SOUNDS_PER_SPACE:
                raise ValidationError(f"a space can have at most {MAX_SOUNDS_PER_SPACE} sounds")
            if sound_store.name_taken(conn, space_id, name):
                raise ConflictError(
                    "a sound with this name already exists", details={"field": "name"}
                )
            # The file is written inside the transaction, once every check has passed (D17:
            # nothing left on refusal, and no cleanup can remove it before the row names it).
            self.files.save(FILE_KIND, data)
            sound_store.insert_sound(conn, sound)
            return self._audit(
                conn, principal, sound, "soundboard_sound_create", reason, None, _audited(sound)
            )

        entry = await self.db.write(write)
        self._publish("soundboard.create", space_id, self.wire(sound))
        self.ctx.get(AuditLogService).published(entry)
        return sound

    async def update(
        self,
        principal: Principal,
        space_id: int,
        sound_id: int,
        *,
        name: str | None,
        volume: float | None,
        reason: str | None = None,
    ) -> Sound:
        fields: dict[str, Any] = {}
        if name is not None:
            fields["name"] = validate_sound_name(name)
        if volume is not None:
            fields["volume"] = validate_volume(volume)

        def write(conn: sqlite3.Connection) -> tuple[Sound, AuditLogEntry | None]:
            space_access(conn, space_id, principal).require("manage_soundboard")
            old = sound_store.get_sound(conn, space_id, sound_id)
            if old is None:
                raise NotFoundError("unknown_sound")
            if "name" in fields and sound_store.name_taken(
                conn, space_id, fields["name"], sound_id
            ):
                raise ConflictError(
                    "a sound with this name already exists", details={"field": "name"}
                )
            sound_store.update_sound(conn, sound_id, fields, now_ts())
            updated = sound_store.get_sound(conn, space_id, sound_id)
            assert updated is not None
            if _audited(old) == _audited(updated):
                return updated, None
            entry = self._audit(
                conn,
                principal,
                updated,
                "soundboard_sound_update",
                reason,
                _audited(old),
                _audited(updated),
            )
            return updated, entry

        sound, entry = await self.db.write(write)
        if entry is not None:
            self._publish("soundboard.update", space_id, self.wire(sound))
            self.ctx.get(AuditLogService).published(entry)
        return sound

    async def delete(
        self, principal: Principal, space_id: int, sound_id: int, reason: str | None = None
    ) -> None:
        def write(conn: sqlite3.Connection) -> tuple[AuditLogEntry, str]:
            space_access(conn, space_id, principal).require("manage_soundboard")
            old = sound_store.get_sound(conn, space_id, sound_id)
            if old is None:
                raise NotFoundError("unknown_sound")
            sound_store.delete_sound(conn, sound_id)
            entry = self._audit(
                conn, principal, old, "soundboard_sound_delete", reason, _audited(old), None
            )
            return entry, old.audio_key

        entry, audio_key = await self.db.write(write)
        self.ctx.get(AuditLogService).published(entry)
        self._publish(
            "soundboard.delete",
            space_id,
            {"id": str(sound_id), "sound_id": str(sound_id), "space_id": str(space_id)},
        )
        await self.ctx.get(FileCleanup).release([(FILE_KIND, audio_key)])

    async def play(self, principal: Principal, space_id: int, sound_id: int) -> dict[str, Any]:
        """Broadcast `soundboard.play` to the space; the caller must be in one of its voice
        channels (and may not be timed out)."""
        voice_channel = self.voice_channel_of(principal.user_id, space_id)

        def read(conn: sqlite3.Connection) -> Sound:
            access = space_access(conn, space_id, principal)
            access.require("use_soundboard")
            access.require_not_timed_out()
            sound = sound_store.get_sound(conn, space_id, sound_id)
            if sound is None:
                raise NotFoundError("unknown_sound")
            return sound

        sound = await self.db.read(read)
        if voice_channel is None:
            raise ForbiddenError("you must be in a voice channel of this space to play sounds")
        payload = {
            **self.wire(sound),
            "sound_id": str(sound.id),
            "user_id": str(principal.user_id),
            "channel_id": str(voice_channel),
        }
        self._publish("soundboard.play", space_id, payload)
        return payload

    def voice_channel_of(self, user_id: int, space_id: int) -> int | None:
        """The voice channel of `space_id` the user is in, from the voice service's states."""
        state = self.ctx.get(VoiceService).state_of(user_id)
        if state is None or state.space_id != space_id:
            return None
        return state.channel_id

    def audio_file(self, sound: Sound) -> tuple[str, str] | None:
        path = self.files.path_of(FILE_KIND, sound.audio_key)
        return (str(path), sound.content_type) if path is not None and path.is_file() else None

    async def sound_for_cdn(self, sound_id: int) -> Sound | None:
        return await self.db.read(sound_store.get_sound_by_id, sound_id)

    def _audit(
        self,
        conn: sqlite3.Connection,
        principal: Principal,
        sound: Sound,
        action: str,
        reason: str | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> AuditLogEntry:
        return audit_store.record(
            conn,
            new_id=self.ctx.new_id,
            space_id=sound.space_id,
            user_id=principal.user_id,
            action_type=action,
            target_id=sound.id,
            target_type="soundboard_sound",
            reason=reason,
            before=before,
            after=after,
        )

    def _publish(self, type_: str, space_id: int, data: dict[str, Any]) -> None:
        self.ctx.publish(
            Event(type=type_, data={**data, "space_id": str(space_id)}, space_id=space_id)
        )
