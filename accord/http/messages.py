"""Message routes (API.md 3.7, CLIENT.md 4.5): list, send, upload, get, edit, delete, bulk
delete, typing, threads and search. Parsing and encoding only; rules live in MessageService.

`POST /channels/{id}/messages/upload` reads the multipart body as a stream (Werkzeug's
sans-I/O decoder over `request.body`), handing each file part to an UploadReceiver that
spools it to disk; the request's size limit is raised for that route only (`install`).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import trio
from quart import Blueprint, Quart, Response, request
from werkzeug.exceptions import MethodNotAllowed, RequestEntityTooLarge, RequestTimeout
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from accord.errors import (
    AccordError,
    NotFoundError,
    PayloadTooLargeError,
    ShapeError,
    UnsupportedMediaError,
    ValidationError,
)
from accord.http.body import Body, read_object
from accord.http.context import (
    audit_reason,
    get_ctx,
    message_path_ids,
    optional_principal,
    path_id,
    query_id,
    query_int,
    require_principal,
)
from accord.http.responses import ok
from accord.ids import parse_id
from accord.models.messages import ATTACHMENT_DESCRIPTION_MAX, normalize_embeds, validate_nonce
from accord.services.context import Context
from accord.services.messages import (
    SEARCH_LIMIT_MAX,
    THREADS_LIMIT_MAX,
    MessageDraft,
    MessageService,
)
from accord.services.uploads import UploadService

blueprint = Blueprint("messages", __name__, url_prefix="/api/v1")

MESSAGES_LIMIT_MAX = 100  # D23a
_UPLOAD_PATH = re.compile(r"^/api/v1/channels/[^/]+/messages/upload/?$")
_MULTIPART_OVERHEAD = 1024 * 1024  # boundaries, part headers and payload_json
_FIELD_MAX_BYTES = 64 * 1024


def install(app: Quart, ctx: Context) -> None:
    """Raise the body limit (2 MiB for JSON, D25) for the upload route only."""
    base = app.request_class
    limit = ctx.settings.max_upload_bytes + _MULTIPART_OVERHEAD

    class UploadAwareRequest(base):  # type: ignore[valid-type, misc]  # Quart's request class
        def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any):
            if method == "POST" and _UPLOAD_PATH.match(path):
                kwargs["max_content_length"] = limit
            super().__init__(method, scheme, path, *args, **kwargs)

    app.request_class = UploadAwareRequest


# -- query and body parsing ----------------------------------------------------------------


def _reference(body: Body) -> int | None:
    """`reply_to` (id string) or `message_reference.message_id`; ids that cannot name a
    message answer 404 like unknown ones (D27)."""
    raw: Any = body.data.get("reply_to")
    if isinstance(raw, dict):
        raw = raw.get("message_id")
    if raw is None:
        reference = body.data.get("message_reference")
        if isinstance(reference, dict):
            raw = reference.get("message_id")
        elif reference is not None:
            raise ShapeError("expected an object", field="message_reference")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ShapeError("expected an id string", field="reply_to")
    value = parse_id(raw)
    if value is None:
        raise NotFoundError("unknown_message")
    return value


def _descriptions(body: Body) -> dict[int, str]:
    items = body.array("attachments") or []
    found: dict[int, str] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ShapeError("expected an object", field=f"attachments[{index}]")
        key = item.get("id", index)
        description = item.get("description")
        if description is None:
            continue
        if not isinstance(description, str):
            raise ShapeError("expected a string", field=f"attachments[{index}].description")
        if len(description) > ATTACHMENT_DESCRIPTION_MAX:
            raise ValidationError(
                f"must be at most {ATTACHMENT_DESCRIPTION_MAX} characters",
                field=f"attachments[{index}].description",
            )
        position = parse_id(key) if isinstance(key, str) else key
        if isinstance(position, int) and not isinstance(position, bool) and position >= 0:
            found[position] = description
    return found


def draft_from(body: Body) -> MessageDraft:
    """A message body: content, embeds, tts, reply_to, thread_id, nonce (CLIENT.md 4.5)."""
    thread_raw = body.data.get("thread_id")
    thread_id = None
    if thread_raw is not None:
        if isinstance(thread_raw, bool) or not isinstance(thread_raw, str | int):
            raise ShapeError("expected an id string", field="thread_id")
        thread_id = parse_id(thread_raw)
        if thread_id is None:
            raise NotFoundError("unknown_message")
    return MessageDraft(
        content=body.text("content") or "",
        embeds=normalize_embeds(body.data.get("embeds")),
        tts=body.boolean("tts") or False,
        reply_to=_reference(body),
        thread_id=thread_id,
        nonce=validate_nonce(body.data.get("nonce")),
        attachment_descriptions=_descriptions(body),
    )


# -- routes ----------------------------------------------------------------------------------


@blueprint.get("/channels/<channel_id>/messages")
async def list_messages(channel_id: str) -> Response:
    """GET /api/v1/channels/{id}/messages — optional auth; view_channel + read_history."""
    cid = path_id(channel_id, "unknown_channel")
    page = (
        await get_ctx()
        .get(MessageService)
        .list_messages(
            optional_principal(),
            cid,
            limit=query_int("limit", 50, 1, MESSAGES_LIMIT_MAX),
            before=query_id("before"),
            after=query_id("after", zero=True),
            around=query_id("around"),
            thread_id=query_id("thread_id"),
        )
    )
    if page.cursor is None:
        return ok(page.messages)
    return ok(page.messages, cursor=page.cursor)


@blueprint.post("/channels/<channel_id>/messages")
async def create_message(channel_id: str) -> Response:
    """POST /api/v1/channels/{id}/messages — send_messages (+send_tts, embed_links)."""
    principal = require_principal()
    cid = path_id(channel_id, "unknown_channel")
    draft = draft_from(await read_object())
    return ok(await get_ctx().get(MessageService).create_message(principal, cid, draft))


def _boundary() -> bytes:
    mime = (request.mimetype or "").lower()
    if mime != "multipart/form-data":
        raise UnsupportedMediaError("expected request with Content-Type: multipart/form-data")
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise ValidationError("multipart body without a boundary")
    return boundary.encode("latin-1", "replace")


@blueprint.post("/channels/<channel_id>/messages/upload")
async def upload_message(channel_id: str) -> Response:
    """POST /api/v1/channels/{id}/messages/upload — multipart `payload_json` + `files[n]`;
    send_messages + attach_files. Files are streamed to disk (D25)."""
    principal = require_principal()
    cid = path_id(channel_id, "unknown_channel")
    ctx = get_ctx()
    uploads = ctx.get(UploadService)
    boundary = _boundary()
    await uploads.check_can_upload(principal, cid)
    timeout_s = float(ctx.settings.max_upload_bytes) / (64 * 1024) + 60.0
    payload = b""
    async with uploads.receive() as receiver:
        decoder = MultipartDecoder(boundary, max_parts=64)
        field: str | None = None
        in_file = False
        field_data = bytearray()
        done = False
        body = request.body.__aiter__()
        with trio.move_on_after(timeout_s) as deadline:
            while not done:
                try:
                    chunk = await body.__anext__()
                except StopAsyncIteration:
                    chunk = None
                except RequestEntityTooLarge:
                    raise PayloadTooLargeError("upload too large") from None
                if chunk is not None:
                    receiver.count_request_bytes(len(chunk))
                try:
                    decoder.receive_data(chunk)
                    event = decoder.next_event()
                    while not isinstance(event, NeedData):
                        if isinstance(event, File):
                            in_file = True
                            await receiver.begin_file(
                                event.filename, event.headers.get("Content-Type")
                            )
                        elif isinstance(event, Field):
                            in_file = False
                            field = event.name
                            field_data.clear()
                        elif isinstance(event, Data):
                            if in_file:
                                await receiver.write(event.data)
                                if not event.more_data:
                                    await receiver.end_file()
                            else:
                                field_data += event.data
                                limit = (
                                    ctx.settings.max_json_bytes
                                    if field == "payload_json"
                                    else _FIELD_MAX_BYTES
                                )
                                if len(field_data) > limit:
                                    raise PayloadTooLargeError(f"{field}: field too large")
                                if not event.more_data and field == "payload_json":
                                    payload = bytes(field_data)
                        elif isinstance(event, Epilogue):
                            done = True
                            break
                        event = decoder.next_event()
                except AccordError:
                    raise
                except ValueError as exc:
                    raise ValidationError(f"malformed multipart body: {exc}") from None
                if chunk is None and not done:
                    raise ValidationError("malformed multipart body: ended early")
        if deadline.cancelled_caught:
            raise RequestTimeout()  # 408 in the envelope, like any slow body
        draft = MessageDraft()
        if payload.strip():
            try:
                parsed = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise ValidationError(
                    "payload_json is not valid JSON", field="payload_json"
                ) from None
            if not isinstance(parsed, dict):
                raise ShapeError("expected a JSON object", field="payload_json")
            draft = draft_from(Body(parsed))
        message = await ctx.get(MessageService).create_message(
            principal, cid, draft, receiver.files
        )
    return ok(message)


@blueprint.get("/channels/<channel_id>/messages/<message_id>")
async def get_message(channel_id: str, message_id: str) -> Response:
    """GET /api/v1/channels/{c}/messages/{m} — optional auth; view_channel + read_history."""
    cid, mid = message_path_ids(channel_id, message_id)
    message = await get_ctx().get(MessageService).get_message(optional_principal(), cid, mid)
    return ok(message)


@blueprint.patch("/channels/<channel_id>/messages/<message_id>")
async def edit_message(channel_id: str, message_id: str) -> Response:
    """PATCH /api/v1/channels/{c}/messages/{m} — the author; view_channel + send_messages."""
    principal = require_principal()
    cid, mid = message_path_ids(channel_id, message_id)
    body = await read_object(required=False)
    embeds = normalize_embeds(body.data["embeds"]) if body.data.get("embeds") is not None else None
    message = (
        await get_ctx()
        .get(MessageService)
        .edit_message(principal, cid, mid, content=body.text("content"), embeds=embeds)
    )
    return ok(message)


@blueprint.delete("/channels/<channel_id>/messages/<message_id>")
async def delete_message(channel_id: str, message_id: str) -> Response:
    """DELETE /api/v1/channels/{c}/messages/{m} — the author, else manage_messages."""
    principal = require_principal()
    cid, mid = message_path_ids(channel_id, message_id)
    await get_ctx().get(MessageService).delete_message(principal, cid, mid, reason=audit_reason())
    return ok(None)


# Werkzeug tries `<message_id>` when a literal segment matches the path but not the method,
# so GET …/messages/bulk-delete would read as "message `bulk-delete`" (404). These literal
# segments are POST-only: the other methods answer 405 with `Allow: POST` (API.md 1.1).
_LITERAL_COLLISIONS = ["GET", "PUT", "PATCH", "DELETE"]


@blueprint.route("/channels/<channel_id>/messages/bulk-delete", methods=_LITERAL_COLLISIONS)
@blueprint.route("/channels/<channel_id>/messages/upload", methods=_LITERAL_COLLISIONS)
async def post_only(channel_id: str) -> Response:
    """Wrong method on a POST-only literal path under /messages: 405 with Allow: POST."""
    raise MethodNotAllowed(valid_methods=["POST"])


@blueprint.post("/channels/<channel_id>/messages/bulk-delete")
async def bulk_delete(channel_id: str) -> Response:
    """POST /api/v1/channels/{c}/messages/bulk-delete — manage_messages; ≤ 100 ids."""
    principal = require_principal()
    cid = path_id(channel_id, "unknown_channel")
    body = await read_object()
    raw = body.array("messages", required=True) or []
    ids: list[int] = []
    for index, value in enumerate(raw):
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ShapeError("expected an array of id strings", field=f"messages[{index}]")
        parsed = parse_id(value)
        if parsed is not None:  # malformed ids name nothing: skipped like unknown ones
            ids.append(parsed)
    await (
        get_ctx()
        .get(MessageService)
        .bulk_delete(principal, cid, ids, requested=len(raw), reason=audit_reason())
    )
    return ok(None)


@blueprint.post("/channels/<channel_id>/typing")
async def typing(channel_id: str) -> Response:
    """POST /api/v1/channels/{c}/typing — send_messages; body ignored."""
    principal = require_principal()
    cid = path_id(channel_id, "unknown_channel")
    await get_ctx().get(MessageService).typing(principal, cid)
    return ok(None)


@blueprint.get("/channels/<channel_id>/threads")
async def list_threads(channel_id: str) -> Response:
    """GET /api/v1/channels/{c}/threads — thread parents (D-thr)."""
    cid = path_id(channel_id, "unknown_channel")
    limit = query_int("limit", 50, 1, THREADS_LIMIT_MAX)
    threads = await get_ctx().get(MessageService).list_threads(optional_principal(), cid, limit)
    return ok(threads)


@blueprint.get("/channels/<channel_id>/messages/<message_id>/threads")
async def thread_info(channel_id: str, message_id: str) -> Response:
    """GET /api/v1/channels/{c}/messages/{m}/threads — reply count, last reply, participants."""
    cid, mid = message_path_ids(channel_id, message_id)
    info = await get_ctx().get(MessageService).thread_info(optional_principal(), cid, mid)
    return ok(info)


@blueprint.get("/spaces/<space_id>/messages/search")
async def search(space_id: str) -> Response:
    """GET /api/v1/spaces/{s}/messages/search?query= — member; readable channels only."""
    principal = require_principal()
    sid = path_id(space_id, "unknown_space")
    query = request.args.get("query", "")
    if not query.strip():
        raise ValidationError("must not be empty", field="query")
    if len(query) > 200:
        raise ValidationError("must be at most 200 characters", field="query")
    results = (
        await get_ctx()
        .get(MessageService)
        .search(
            principal,
            sid,
            query,
            limit=query_int("limit", 25, 1, SEARCH_LIMIT_MAX),
            offset=query_int("offset", 0, 0, 10_000),
        )
    )
    return ok(results)
