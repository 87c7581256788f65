"""Interactions (API.md 3.17, CLIENT.md 4.13, G-09, G-34, D12d).

A member invokes an application's command in a channel (`POST /interactions`, additive);
the interaction is stored with a hashed one-time token and `interaction.create` (with the
raw token) goes to the application's bot sessions only. The bot answers with
`POST /interactions/{id}/{token}/callback` (no Authorization header: the token, valid for
15 minutes, is checked instead) and may follow up or edit its answer through
`/webhooks/{application_id}/{token}`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import sqlite3
from typing import Any

from accord.auth.principal import Principal
from accord.auth.tokens import hash_token, new_token
from accord.errors import ForbiddenError, NotFoundError, ValidationError
from accord.events.types import Event
from accord.models.interactions import INTERACTION_TOKEN_TTL_S, Interaction
from accord.models.messages import validate_content
from accord.services.context import Service
from accord.services.dms import load_channel_access
from accord.services.messages import MessageDraft, MessageService
from accord.storage import applications as app_store
from accord.storage import interactions as interaction_store
from accord.storage import spaces as space_store
from accord.storage.users import get_user
from accord.times import now_ts, parse_ts, utc_now

UNKNOWN_INTERACTION = "unknown_interaction"


def _is_live(interaction: Interaction) -> bool:
    created = parse_ts(interaction.created_at)
    return created is not None and utc_now() - created <= dt.timedelta(
        seconds=INTERACTION_TOKEN_TTL_S
    )


class InteractionService(Service):
    async def invoke(
        self,
        principal: Principal,
        *,
        application_id: int,
        channel_id: int,
        kind: str,
        command_name: str,
        options: list[Any],
    ) -> dict[str, Any]:
        """Run a command: the caller must be able to send in the channel, the application's
        bot must be in it (space member or DM participant), and the command must exist."""
        token = new_token()
        interaction_id = self.ctx.new_id()
        now = now_ts()

        def write(conn: sqlite3.Connection) -> tuple[Interaction, dict[str, Any]]:
            access = load_channel_access(conn, channel_id, principal)
            access.require("view_channel")
            access.require("send_messages")
            access.require_not_timed_out()
            app = app_store.get_application(conn, application_id)
            if app is None or app.bot_user_id is None:
                raise NotFoundError("application not found")
            if principal.user_id == app.bot_user_id:
                raise ForbiddenError("an application cannot invoke its own commands")
            bot_present = (
                app.bot_user_id in access.participants
                if access.is_dm
                else space_store.is_member(conn, access.space_id or 0, app.bot_user_id)
            )
            if not bot_present:
                raise ForbiddenError("the application's bot is not in this channel")
            command = app_store.find_invocable_command(
                conn, application_id, access.space_id, command_name
            )
            if command is None:
                raise NotFoundError("unknown_command")
            interaction = Interaction(
                id=interaction_id,
                application_id=application_id,
                type=kind,
                data={"id": str(command.id), "name": command.name, "options": options},
                user_id=principal.user_id,
                created_at=now,
                space_id=access.space_id,
                channel_id=channel_id,
            )
            interaction_store.insert_interaction(conn, interaction, hash_token(token))
            user = get_user(conn, principal.user_id)
            assert user is not None
            return interaction, user.to_wire(viewer_id=0)

        interaction, user = await self.db.write(write)
        self.ctx.publish(
            Event(
                type="interaction.create",
                data=interaction.to_wire(token=token, user=user),
                application_id=application_id,
            )
        )
        return interaction.to_wire(user=user)

    async def _by_id_and_token(self, interaction_id: int, token: str) -> Interaction:
        found = await self.db.read(interaction_store.get_with_token, interaction_id)
        if found is None:
            raise NotFoundError(UNKNOWN_INTERACTION)
        interaction, stored_hash = found
        if not hmac.compare_digest(stored_hash, hash_token(token)) or not _is_live(interaction):
            raise NotFoundError(UNKNOWN_INTERACTION)
        return interaction

    async def _by_app_token(self, application_id: int, token: str) -> Interaction:
        interaction = await self.db.read(
            interaction_store.get_by_token, application_id, hash_token(token)
        )
        if interaction is None or not _is_live(interaction):
            raise NotFoundError(UNKNOWN_INTERACTION)
        return interaction

    async def _bot_of(self, interaction: Interaction) -> int:
        app = await self.db.read(app_store.get_application, interaction.application_id)
        if app is None or app.bot_user_id is None:
            raise NotFoundError("application not found")
        return app.bot_user_id

    async def callback(
        self, interaction_id: int, token: str, kind: str, draft: MessageDraft | None
    ) -> None:
        """POST /interactions/{id}/{token}/callback: the first answer only."""
        interaction = await self._by_id_and_token(interaction_id, token)
        if interaction.responded:
            raise ValidationError("interaction has already been acknowledged")
        if kind in ("update_message", "deferred_update_message"):
            raise ValidationError(
                "only command interactions exist; there is no message to update", field="type"
            )
        message_id = None
        if kind == "channel_message":
            if draft is None:
                raise ValidationError("a channel message answer needs data", field="data")
            validate_content(draft.content, has_attachments=False, has_embeds=bool(draft.embeds))
            assert interaction.channel_id is not None
            bot_id = await self._bot_of(interaction)
            if not await self.db.write(
                interaction_store.mark_responded, interaction.id, kind, None
            ):
                raise ValidationError("interaction has already been acknowledged")
            _, message_id = await self.ctx.get(MessageService).post_as_application(
                interaction.channel_id, bot_id, draft
            )
            await self.db.write(interaction_store.set_response_message, interaction.id, message_id)
            return
        if not await self.db.write(interaction_store.mark_responded, interaction.id, kind, None):
            raise ValidationError("interaction has already been acknowledged")

    async def follow_up(
        self, application_id: int, token: str, draft: MessageDraft
    ) -> dict[str, Any]:
        """POST /webhooks/{app}/{token}: another message answering the interaction."""
        interaction = await self._by_app_token(application_id, token)
        assert interaction.channel_id is not None
        bot_id = await self._bot_of(interaction)
        wire, _ = await self.ctx.get(MessageService).post_as_application(
            interaction.channel_id, bot_id, draft
        )
        return wire

    async def edit_original(
        self,
        application_id: int,
        token: str,
        *,
        content: str | None,
        embeds: tuple[dict[str, Any], ...] | None,
    ) -> dict[str, Any]:
        """PATCH /webhooks/{app}/{token}/messages/@original: edit the answer, or post it
        after a deferred callback."""
        interaction = await self._by_app_token(application_id, token)
        assert interaction.channel_id is not None
        bot_id = await self._bot_of(interaction)
        messages = self.ctx.get(MessageService)
        if interaction.response_message_id is None:
            if not interaction.responded:
                raise NotFoundError("unknown_message")
            draft = MessageDraft(content=content or "", embeds=embeds or ())
            wire, message_id = await messages.post_as_application(
                interaction.channel_id, bot_id, draft
            )
            await self.db.write(interaction_store.set_response_message, interaction.id, message_id)
            return wire
        return await messages.edit_message(
            None,
            interaction.channel_id,
            interaction.response_message_id,
            content=content,
            embeds=embeds,
            as_author_id=bot_id,
        )

    async def delete_original(self, application_id: int, token: str) -> None:
        interaction = await self._by_app_token(application_id, token)
        if interaction.response_message_id is None or interaction.channel_id is None:
            raise NotFoundError("unknown_message")
        bot_id = await self._bot_of(interaction)
        await self.ctx.get(MessageService).delete_message(
            None, interaction.channel_id, interaction.response_message_id, as_author_id=bot_id
        )
