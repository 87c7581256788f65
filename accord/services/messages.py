"""Messages: sending, reading (pages, threads, search), editing, deleting, pins and typing.

Every request does its permission check and its work in one database hop. Channel access
covers space channels (permissions and overwrites, G-06/G-07: reading needs `view_channel`
and `read_history`; public spaces let non-members read as @everyone) and DM channels (their
participants only). Events are published after commit with the payloads CLIENT.md 6.6
reads; space-channel events carry `space_id` and `channel_id` so the gateway can filter by
view permission, DM events go to the participants.

Slow mode (G-32): a channel's `rate_limit` (`rate_limit_per_user`) lets each user send one
message per that many seconds there; holders of manage_messages or manage_channels are exempt.
The check and the bookkeeping run inside the sending transaction (writes are serialized), so
two concurrent sends cannot both slip through. Moderator deletes (someone else's message) and
bulk deletes write audit entries in the same transaction.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from accord.auth.principal import Principal
from accord.errors import ForbiddenError, NotFoundError, RateLimitedError, ValidationError
from accord.events.types import Event
from accord.models.audit_log import AuditLogEntry
from accord.models.channels import Channel
from accord.models.messages import (
    PINS_PER_CHANNEL_MAX,
    Attachment,
    Message,
    MessageView,
    ThreadStats,
    parse_mentions,
    validate_content,
)
from accord.permissions import has_permission
from accord.ratelimit import SlowMode
from accord.services.audit_log import AuditLogService, audit
from accord.services.context import Context, Service
from accord.services.dms import MessageChannelAccess, audience_of, load_channel_access
from accord.services.file_cleanup import FileCleanup
from accord.services.permissions import channel_permissions_in, space_access
from accord.services.uploads import StagedFile
from accord.storage import attachments as attachment_store
from accord.storage import messages as message_store
from accord.storage.file_refs import StoredFile
from accord.storage.files import FileStore
from accord.storage.permissions import get_channel_and_space, load_overwrites_for_space
from accord.storage.spaces import list_space_channels
from accord.storage.users import get_user
from accord.times import now_ts

BULK_DELETE_MAX = 100
SEARCH_LIMIT_MAX = 100
THREADS_LIMIT_MAX = 100


@dataclasses.dataclass(frozen=True, slots=True)
class MessageDraft:
    """A validated message body (JSON or multipart `payload_json`)."""

    content: str = ""
    embeds: tuple[dict[str, Any], ...] = ()
    tts: bool = False
    reply_to: int | None = None
    thread_id: int | None = None
    nonce: str | None = None
    attachment_descriptions: dict[int, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    messages: list[dict[str, Any]]
    cursor: dict[str, Any] | None


def _build_message(
    conn: sqlite3.Connection,
    *,
    message_id: int,
    channel: Channel,
    author_id: int,
    draft: MessageDraft,
    can_mention_everyone: bool,
    now: str,
) -> Message:
    """Resolve mentions (existing users, roles of the space) and insert the message."""
    mentions = parse_mentions(draft.content)
    users = message_store.existing_user_ids(conn, mentions.users)
    roles = (
        message_store.space_role_ids(conn, channel.space_id, mentions.roles)
        if channel.space_id is not None
        else ()
    )
    message = Message(
        id=message_id,
        channel_id=channel.id,
        space_id=channel.space_id,
        author_id=author_id,
        content=draft.content,
        created_at=now,
        tts=draft.tts,
        mention_everyone=mentions.everyone and can_mention_everyone,
        mentions=users,
        mention_roles=roles,
        embeds=draft.embeds,
        reply_to=draft.reply_to,
        thread_id=draft.thread_id,
        nonce=draft.nonce,
    )
    message_store.insert_message(conn, message)
    return message


def _check_references(conn: sqlite3.Connection, channel_id: int, draft: MessageDraft) -> None:
    """Reply targets and thread parents must be messages of this channel (G-04, G-15)."""
    if draft.reply_to is not None and not message_store.message_exists_in(
        conn, channel_id, draft.reply_to
    ):
        raise NotFoundError("unknown_message")
    if draft.thread_id is not None:
        parent = message_store.get_channel_message(conn, channel_id, draft.thread_id)
        if parent is None:
            raise NotFoundError("unknown_message")
        if parent.thread_id is not None:
            raise ValidationError("a thread reply cannot start a thread", field="thread_id")


class MessageService(Service):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.files = FileStore(ctx.settings.storage_dir)
        self.base_url = (ctx.settings.public_url or "").rstrip("/")
        # Touched only inside write transactions, which run one at a time.
        self.slow_mode = SlowMode()

    def _check_slow_mode(self, access: MessageChannelAccess, user_id: int) -> tuple[int, int]:
        """Refuse (429) a send that comes too soon after the user's last one in a slow-mode
        channel; returns the key to record once the message is stored."""
        key = (access.channel.id, user_id)
        interval = access.channel.rate_limit
        if interval <= 0 or access.has("manage_messages") or access.has("manage_channels"):
            return key
        wait = self.slow_mode.retry_after(key, time.monotonic())
        if wait is not None:
            raise RateLimitedError(
                wait, f"slow mode is on in this channel: wait {math.ceil(wait)}s between messages"
            )
        return key

    def _wire(self, view: MessageView) -> dict[str, Any]:
        return view.to_wire(self.base_url)

    # -- reading -----------------------------------------------------------------------------

    async def list_messages(
        self,
        principal: Principal | None,
        channel_id: int,
        *,
        limit: int,
        before: int | None = None,
        after: int | None = None,
        around: int | None = None,
        thread_id: int | None = None,
    ) -> Page:
        """GET /channels/{id}/messages (D-page, D-thr)."""
        viewer = principal.user_id if principal else None

        def read(conn: sqlite3.Connection) -> tuple[list[MessageView], bool]:
            load_channel_access(conn, channel_id, principal).require_readable()
            if thread_id is not None and not message_store.message_exists_in(
                conn, channel_id, thread_id
            ):
                raise NotFoundError("unknown_message")
            messages, has_more = message_store.list_page(
                conn,
                channel_id,
                limit=limit,
                before=before,
                after=after,
                around=around,
                thread_id=thread_id,
            )
            return message_store.hydrate(conn, messages, viewer), has_more

        views, has_more = await self.db.read(read)
        data = [self._wire(v) for v in views]
        cursor = None
        if data or has_more:
            ids = [v.message.id for v in views]
            cursor = {
                "after": data[-1]["id"] if data else "",
                "before": str(min(ids)) if ids else "",
                "has_more": has_more,
            }
        return Page(data, cursor)

    async def get_message(
        self, principal: Principal | None, channel_id: int, message_id: int
    ) -> dict[str, Any]:
        viewer = principal.user_id if principal else None

        def read(conn: sqlite3.Connection) -> MessageView:
            load_channel_access(conn, channel_id, principal).require_readable()
            message = message_store.get_channel_message(conn, channel_id, message_id)
            if message is None:
                raise NotFoundError("unknown_message")
            return message_store.hydrate(conn, [message], viewer)[0]

        return self._wire(await self.db.read(read))

    # -- sending -------------------------------------------------------------------------------

    async def create_message(
        self,
        principal: Principal,
        channel_id: int,
        draft: MessageDraft,
        files: Sequence[StagedFile] = (),
    ) -> dict[str, Any]:
        """POST /channels/{id}/messages (and /upload): send_messages, plus send_tts,
        embed_links and attach_files when used; not while timed out (D-to)."""
        validate_content(draft.content, has_attachments=bool(files), has_embeds=bool(draft.embeds))
        message_id = self.ctx.new_id()
        attachment_ids = [self.ctx.new_id() for _ in files]
        now = now_ts()

        def write(conn: sqlite3.Connection) -> tuple[MessageView, MessageChannelAccess]:
            access = load_channel_access(conn, channel_id, principal)
            access.require("view_channel")
            access.require("send_messages")
            access.require_not_timed_out()
            if draft.tts:
                access.require("send_tts")
            if draft.embeds:
                access.require("embed_links")
            if files:
                access.require("attach_files")
            _check_references(conn, channel_id, draft)
            slow_key = self._check_slow_mode(access, principal.user_id)
            message = _build_message(
                conn,
                message_id=message_id,
                channel=access.channel,
                author_id=principal.user_id,
                draft=draft,
                can_mention_everyone=access.has("mention_everyone"),
                now=now,
            )
            attachments = []
            for index, (staged, attachment_id) in enumerate(
                zip(files, attachment_ids, strict=True)
            ):
                attachment = Attachment(
                    id=attachment_id,
                    message_id=message_id,
                    channel_id=channel_id,
                    filename=staged.filename,
                    size=staged.size,
                    storage_key=staged.key,
                    content_type=staged.content_type,
                    description=draft.attachment_descriptions.get(index),
                    width=staged.width,
                    height=staged.height,
                )
                attachment_store.insert_attachment(conn, attachment)
                attachments.append(attachment)
            # Files move into the store last, once every check has passed (no orphans).
            for staged in files:
                self.files.adopt("attachments", staged.path, staged.key)
            author = get_user(conn, principal.user_id)
            view = MessageView(
                message,
                author.to_wire(viewer_id=0) if author else None,
                attachments=tuple(attachments),
            )
            if access.channel.rate_limit > 0:
                self.slow_mode.record(slow_key, time.monotonic(), access.channel.rate_limit)
            return view, access

        view, access = await self.db.write(write)
        wire = self._wire(view)
        self.ctx.publish(Event(type="message.create", data=wire, **access.audience()))
        return wire

    async def post_as_application(
        self, channel_id: int, author_id: int, draft: MessageDraft
    ) -> tuple[dict[str, Any], int]:
        """A message from an application's bot answering an interaction (the interaction
        token is the capability; channel permissions are not consulted). Returns (wire, id)."""
        validate_content(draft.content, has_attachments=False, has_embeds=bool(draft.embeds))
        message_id = self.ctx.new_id()
        now = now_ts()

        def write(conn: sqlite3.Connection) -> tuple[MessageView, dict[str, Any]]:
            found = get_channel_and_space(conn, channel_id)
            if found is None:
                raise NotFoundError("unknown_channel")
            channel, _ = found
            _check_references(conn, channel_id, draft)
            message = _build_message(
                conn,
                message_id=message_id,
                channel=channel,
                author_id=author_id,
                draft=draft,
                can_mention_everyone=False,
                now=now,
            )
            author = get_user(conn, author_id)
            audience = audience_of(conn, channel)
            return MessageView(message, author.to_wire(viewer_id=0) if author else None), audience

        view, audience = await self.db.write(write)
        wire = self._wire(view)
        self.ctx.publish(Event(type="message.create", data=wire, **audience))
        return wire, message_id

    # -- editing and deleting --------------------------------------------------------------

    async def edit_message(
        self,
        principal: Principal | None,
        channel_id: int,
        message_id: int,
        *,
        content: str | None,
        embeds: tuple[dict[str, Any], ...] | None,
        as_author_id: int | None = None,
    ) -> dict[str, Any]:
        """PATCH /channels/{c}/messages/{m}: the author only, with view_channel and
        send_messages (G-08). `as_author_id` edits an application's message (no checks)."""
        now = now_ts()

        def write(conn: sqlite3.Connection) -> tuple[MessageView, dict[str, Any], bool]:
            if principal is not None:
                access = load_channel_access(conn, channel_id, principal)
                access.require("view_channel")
                access.require("send_messages")
                audience = access.audience()
                author_id = principal.user_id
            else:
                found = get_channel_and_space(conn, channel_id)
                if found is None:
                    raise NotFoundError("unknown_channel")
                audience = audience_of(conn, found[0])
                assert as_author_id is not None
                author_id = as_author_id
            message = message_store.get_channel_message(conn, channel_id, message_id)
            if message is None:
                raise NotFoundError("unknown_message")
            if message.author_id != author_id:
                raise ForbiddenError("you can only edit your own messages")
            if content is None and embeds is None:
                return message_store.hydrate(conn, [message], author_id)[0], audience, False
            new_content = message.content if content is None else content
            new_embeds = message.embeds if embeds is None else embeds
            has_files = bool(attachment_store.list_for_messages(conn, [message.id]))
            validate_content(new_content, has_attachments=has_files, has_embeds=bool(new_embeds))
            if embeds and principal is not None:
                access.require("embed_links")
            mentions = parse_mentions(new_content)
            can_everyone = principal is not None and access.has("mention_everyone")
            edited = dataclasses.replace(
                message,
                content=new_content,
                embeds=new_embeds,
                edited_at=now,
                mentions=message_store.existing_user_ids(conn, mentions.users),
                mention_roles=(
                    message_store.space_role_ids(conn, message.space_id, mentions.roles)
                    if message.space_id is not None
                    else ()
                ),
                mention_everyone=mentions.everyone and can_everyone,
            )
            message_store.update_message(conn, edited)
            return message_store.hydrate(conn, [edited], author_id)[0], audience, True

        view, audience, changed = await self.db.write(write)
        wire = self._wire(view)
        if changed:
            self.ctx.publish(Event(type="message.update", data=wire, **audience))
        return wire

    async def delete_message(
        self,
        principal: Principal | None,
        channel_id: int,
        message_id: int,
        *,
        as_author_id: int | None = None,
        reason: str | None = None,
    ) -> None:
        """DELETE /channels/{c}/messages/{m}: the author (still a member, G-08) or
        manage_messages (audited). `as_author_id` deletes an application's own message."""

        def write(
            conn: sqlite3.Connection,
        ) -> tuple[Message, dict[str, Any], AuditLogEntry | None, message_store.DeletedMessages]:
            if principal is not None:
                access = load_channel_access(conn, channel_id, principal)
                audience = access.audience()
            else:
                found = get_channel_and_space(conn, channel_id)
                if found is None:
                    raise NotFoundError("unknown_channel")
                audience = audience_of(conn, found[0])
            message = message_store.get_channel_message(conn, channel_id, message_id)
            if message is None:
                raise NotFoundError("unknown_message")
            entry = None
            if principal is not None:
                access.require("view_channel")
                if message.author_id != principal.user_id:
                    access.require("manage_messages")
                    if message.space_id is not None:
                        entry = audit(
                            conn,
                            self.ctx,
                            principal,
                            message.space_id,
                            "message_delete",
                            target_id=message.id,
                            target_type="message",
                            reason=reason,
                            before={
                                "author_id": str(message.author_id),
                                "channel_id": str(message.channel_id),
                            },
                        )
            elif message.author_id != as_author_id:
                raise ForbiddenError("you can only delete your own messages")
            return message, audience, entry, message_store.delete_message(conn, message)

        message, audience, entry, deleted = await self.db.write(write)
        self.ctx.get(AuditLogService).published(entry)
        space_id = None if message.space_id is None else str(message.space_id)
        data = {"id": str(message.id), "channel_id": str(message.channel_id), "space_id": space_id}
        self.ctx.publish(Event(type="message.delete", data=data, **audience))
        replies = [i for i in deleted.ids if i != message.id]
        if replies:
            # A thread parent takes its replies with it: say so, as bulk delete does.
            bulk = {"ids": [str(i) for i in replies], "channel_id": data["channel_id"]}
            self.ctx.publish(
                Event(type="message.delete_bulk", data={**bulk, "space_id": space_id}, **audience)
            )
        await self.ctx.get(FileCleanup).release(deleted.files)

    async def bulk_delete(
        self,
        principal: Principal,
        channel_id: int,
        message_ids: Sequence[int],
        *,
        requested: int | None = None,
        reason: str | None = None,
    ) -> None:
        """POST /channels/{c}/messages/bulk-delete: manage_messages; at most 100 ids, all
        of this channel (G-04); unknown ids are skipped. Audited with the count deleted."""

        def write(
            conn: sqlite3.Connection,
        ) -> tuple[list[int], list[StoredFile], MessageChannelAccess, AuditLogEntry | None]:
            access = load_channel_access(conn, channel_id, principal)
            access.require("view_channel")
            access.require("manage_messages")
            if max(len(message_ids), requested or 0) > BULK_DELETE_MAX:
                raise ValidationError(
                    f"cannot bulk delete more than {BULK_DELETE_MAX} messages", field="messages"
                )
            unique = list(dict.fromkeys(message_ids))
            found = message_store.existing_ids(conn, unique)
            foreign = [i for i, c in found.items() if c != channel_id]
            if foreign:
                raise ValidationError(
                    f"message {foreign[0]} is not in this channel", field="messages"
                )
            ids = [i for i in unique if i in found]
            deleted = message_store.delete_messages(conn, channel_id, ids)
            entry = None
            if ids and access.space_id is not None:
                entry = audit(
                    conn,
                    self.ctx,
                    principal,
                    access.space_id,
                    "message_bulk_delete",
                    target_id=channel_id,
                    target_type="channel",
                    reason=reason,
                    after={"count": len(ids)},
                )
            # The ids in the order asked, then the thread replies that went with their parents.
            listed = set(ids)
            ids += [i for i in deleted.ids if i not in listed]
            return ids, deleted.files, access, entry

        ids, files, access, entry = await self.db.write(write)
        self.ctx.get(AuditLogService).published(entry)
        if ids:
            data = {
                "ids": [str(i) for i in ids],
                "channel_id": str(channel_id),
                "space_id": None if access.space_id is None else str(access.space_id),
            }
            self.ctx.publish(Event(type="message.delete_bulk", data=data, **access.audience()))
        await self.ctx.get(FileCleanup).release(files)

    # -- pins -------------------------------------------------------------------------------

    async def list_pins(self, principal: Principal, channel_id: int) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[MessageView]:
            load_channel_access(conn, channel_id, principal).require_readable()
            return message_store.hydrate(
                conn, message_store.list_pins(conn, channel_id), principal.user_id
            )

        return [self._wire(v) for v in await self.db.read(read)]

    async def set_pin(
        self, principal: Principal, channel_id: int, message_id: int, *, pinned: bool
    ) -> None:
        """PUT/DELETE /channels/{c}/pins/{m}: manage_messages (DM participants may pin)."""
        now = now_ts()

        def write(conn: sqlite3.Connection) -> tuple[bool, str | None, MessageChannelAccess]:
            access = load_channel_access(conn, channel_id, principal)
            access.require("view_channel")
            if not access.is_dm:
                access.require("manage_messages")
            if pinned:
                if not message_store.message_exists_in(conn, channel_id, message_id):
                    raise NotFoundError("unknown_message")
                if message_store.count_pins(conn, channel_id) >= PINS_PER_CHANNEL_MAX:
                    already = conn.execute(
                        "SELECT 1 FROM pinned_messages WHERE channel_id = ? AND message_id = ?",
                        (channel_id, message_id),
                    ).fetchone()
                    if already is None:
                        raise ValidationError(
                            f"a channel can have at most {PINS_PER_CHANNEL_MAX} pins"
                        )
                changed = message_store.pin_message(conn, channel_id, message_id, now)
            else:
                changed = message_store.unpin_message(conn, channel_id, message_id)
            return changed, message_store.last_pin_timestamp(conn, channel_id), access

        changed, last_pin, access = await self.db.write(write)
        if changed:
            data = {
                "channel_id": str(channel_id),
                "space_id": None if access.space_id is None else str(access.space_id),
                "last_pin_timestamp": last_pin,
            }
            self.ctx.publish(Event(type="channel.pins_update", data=data, **access.audience()))

    # -- typing -------------------------------------------------------------------------------

    async def typing(self, principal: Principal, channel_id: int) -> None:
        """POST /channels/{c}/typing: send_messages, not timed out (D-to)."""

        def read(conn: sqlite3.Connection) -> MessageChannelAccess:
            access = load_channel_access(conn, channel_id, principal)
            access.require("view_channel")
            access.require("send_messages")
            access.require_not_timed_out()
            return access

        access = await self.db.read(read)
        data = {
            "channel_id": str(channel_id),
            "space_id": None if access.space_id is None else str(access.space_id),
            "user_id": str(principal.user_id),
            "timestamp": now_ts(),
        }
        self.ctx.publish(Event(type="typing.start", data=data, **access.audience()))

    # -- threads and search (D-thr) --------------------------------------------------------

    async def list_threads(
        self, principal: Principal | None, channel_id: int, limit: int
    ) -> list[dict[str, Any]]:
        """GET /channels/{c}/threads: thread parents, most recently active first."""
        viewer = principal.user_id if principal else None

        def read(conn: sqlite3.Connection) -> list[MessageView]:
            load_channel_access(conn, channel_id, principal).require_readable()
            parents = message_store.list_thread_parents(conn, channel_id, limit)
            return message_store.hydrate(conn, parents, viewer)

        return [self._wire(v) for v in await self.db.read(read)]

    async def thread_info(
        self, principal: Principal | None, channel_id: int, message_id: int
    ) -> dict[str, Any]:
        """GET /channels/{c}/messages/{m}/threads: reply count, last reply, participants."""

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            load_channel_access(conn, channel_id, principal).require_readable()
            if not message_store.message_exists_in(conn, channel_id, message_id):
                raise NotFoundError("unknown_message")
            stats = message_store.thread_stats(conn, [message_id]).get(message_id)
            return {
                "message_id": str(message_id),
                "channel_id": str(channel_id),
                **(stats.to_wire() if stats else ThreadStats().to_wire()),
            }

        return await self.db.read(read)

    async def search(
        self, principal: Principal, space_id: int, query: str, *, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """GET /spaces/{s}/messages/search: substring search over readable channels (D-thr)."""

        def read(conn: sqlite3.Connection) -> list[MessageView]:
            access = space_access(conn, space_id, principal)
            access.require_member()
            overwrites = load_overwrites_for_space(conn, space_id)
            readable = []
            for channel in list_space_channels(conn, space_id):
                channel = dataclasses.replace(
                    channel, permission_overwrites=overwrites.get(channel.id, ())
                )
                permissions = channel_permissions_in(access, channel)
                if has_permission(permissions, "view_channel") and has_permission(
                    permissions, "read_history"
                ):
                    readable.append(channel.id)
            found = message_store.search(
                conn, space_id, readable, query, limit=limit, offset=offset
            )
            return message_store.hydrate(conn, found, principal.user_id)

        return [self._wire(v) for v in await self.db.read(read)]
