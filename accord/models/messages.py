"""The Message resource and its parts (API.md 2.4-2.7, CLIENT.md 5 Message), as pure code.

Owns the wire shapes of messages, attachments and reaction summaries, and the pure rules
around them: content limits (D21), embed normalisation (API.md 2.5: wrong shape 422, bad
values 400), mention parsing, reaction emoji keys (CLIENT.md 4.11) and upload file names.
No I/O here; storage builds these objects and services decide who may see them.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import Any
from urllib.parse import quote, urlsplit

from accord.errors import ShapeError, ValidationError
from accord.times import parse_ts

CONTENT_MAX = 4000  # D21
EMBEDS_MAX = 10  # D21
NONCE_MAX = 64
FILES_PER_MESSAGE_MAX = 10
FILENAME_MAX_BYTES = 255
ATTACHMENT_DESCRIPTION_MAX = 1024
MENTIONS_MAX = 100
PINS_PER_CHANNEL_MAX = 50  # G-37
REACTIONS_PER_MESSAGE_MAX = 20  # distinct emojis on one message

# Discord-like embed limits (G-24).
_EMBED_TEXT_LIMITS = {
    "title": 256,
    "type": 32,
    "description": 4096,
    "url": 2048,
    "timestamp": 64,
}
_EMBED_TOTAL_MAX = 6000
_EMBED_FIELDS_MAX = 25
_URL_SCHEMES = ("http", "https", "attachment")


@dataclasses.dataclass(frozen=True, slots=True)
class Attachment:
    id: int
    message_id: int
    channel_id: int
    filename: str
    size: int
    storage_key: str
    content_type: str | None = None
    description: str | None = None
    width: int | None = None
    height: int | None = None

    def url(self, base: str) -> str:
        """CDN URL (CLIENT.md 8); `base` is ACCORD_PUBLIC_URL or "" for a root-relative path."""
        name = quote(self.filename, safe="")
        return f"{base}/cdn/attachments/{self.channel_id}/{self.id}/{name}"

    def to_wire(self, base: str) -> dict[str, Any]:
        url = self.url(base)
        return {
            "id": str(self.id),
            "filename": self.filename,
            "description": self.description,
            "content_type": self.content_type,
            "size": self.size,
            "url": url,
            "proxy_url": url,
            "width": self.width,
            "height": self.height,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class ReactionEmoji:
    """A reaction's emoji: `key` identifies it in storage (custom emojis by id)."""

    key: str
    name: str
    id: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"id": None if self.id is None else str(self.id), "name": self.name}


@dataclasses.dataclass(frozen=True, slots=True)
class ReactionSummary:
    emoji: ReactionEmoji
    count: int
    includes_me: bool

    def to_wire(self) -> dict[str, Any]:
        return {
            "emoji": self.emoji.to_wire(),
            "count": self.count,
            "includes_me": self.includes_me,
            "me": self.includes_me,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class ThreadStats:
    reply_count: int = 0
    last_reply_at: str | None = None
    participants: tuple[int, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {
            "reply_count": self.reply_count,
            "last_reply_at": self.last_reply_at,
            "thread_participants": [str(p) for p in self.participants],
        }


NO_THREAD = ThreadStats()


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    id: int
    channel_id: int
    space_id: int | None
    author_id: int
    content: str
    created_at: str
    edited_at: str | None = None
    type: str = "default"
    tts: bool = False
    pinned: bool = False
    mention_everyone: bool = False
    mentions: tuple[int, ...] = ()
    mention_roles: tuple[int, ...] = ()
    embeds: tuple[dict[str, Any], ...] = ()
    reply_to: int | None = None
    thread_id: int | None = None
    flags: int = 0
    webhook_id: int | None = None
    nonce: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MessageView:
    """A message with everything the client reads next to it, for one viewer."""

    message: Message
    author: dict[str, Any] | None
    attachments: tuple[Attachment, ...] = ()
    reactions: tuple[ReactionSummary, ...] = ()
    thread: ThreadStats = NO_THREAD

    def to_wire(self, base_url: str = "") -> dict[str, Any]:
        m = self.message
        author = self.author or {"id": str(m.author_id)}
        return {
            "id": str(m.id),
            "channel_id": str(m.channel_id),
            "space_id": _sid(m.space_id),
            "author_id": str(m.author_id),
            "author": author,
            "content": m.content,
            "type": m.type,
            "timestamp": m.created_at,
            "edited_at": m.edited_at,
            "tts": m.tts,
            "pinned": m.pinned,
            "mention_everyone": m.mention_everyone,
            "mentions": [str(u) for u in m.mentions],
            "mention_roles": [str(r) for r in m.mention_roles],
            "attachments": [a.to_wire(base_url) for a in self.attachments],
            "embeds": list(m.embeds),
            "reactions": [r.to_wire() for r in self.reactions],
            "reply_to": _sid(m.reply_to),
            "thread_id": _sid(m.thread_id),
            "flags": m.flags,
            "webhook_id": _sid(m.webhook_id),
            "nonce": m.nonce,
            **self.thread.to_wire(),
        }


def _sid(value: int | None) -> str | None:
    return None if value is None else str(value)


# -- content and mentions ----------------------------------------------------------------------


def validate_content(content: str, *, has_attachments: bool, has_embeds: bool) -> str:
    """D21: at most 4,000 characters; empty only with attachments or embeds."""
    if len(content) > CONTENT_MAX:
        raise ValidationError(f"must be at most {CONTENT_MAX} characters", field="content")
    if not content.strip() and not (has_attachments or has_embeds):
        raise ValidationError(
            "must not be empty unless the message has attachments or embeds", field="content"
        )
    return content


def validate_nonce(nonce: object) -> str | None:
    """The client's nonce (string or integer), echoed back as a string."""
    if nonce is None:
        return None
    if isinstance(nonce, bool) or not isinstance(nonce, str | int):
        raise ShapeError("expected a string or an integer", field="nonce")
    text = str(nonce)
    if len(text) > NONCE_MAX:
        raise ValidationError(f"must be at most {NONCE_MAX} characters", field="nonce")
    return text


_USER_MENTION = re.compile(r"<@!?(\d{1,19})>")
_ROLE_MENTION = re.compile(r"<@&(\d{1,19})>")
_EVERYONE_MENTION = re.compile(r"@(?:everyone|here)\b")


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedMentions:
    users: tuple[int, ...]
    roles: tuple[int, ...]
    everyone: bool


def _unique_ids(matches: list[str]) -> tuple[int, ...]:
    seen: dict[int, None] = {}
    for raw in matches:
        value = int(raw)
        if 0 < value < 2**63:
            seen.setdefault(value, None)
        if len(seen) >= MENTIONS_MAX:
            break
    return tuple(seen)


def parse_mentions(content: str) -> ParsedMentions:
    """`<@id>`/`<@!id>` users, `<@&id>` roles and `@everyone`/`@here`, in order, deduplicated.

    Callers keep only ids that name existing users / roles of the space, and honour
    `everyone` only for authors holding `mention_everyone`.
    """
    return ParsedMentions(
        users=_unique_ids(_USER_MENTION.findall(content)),
        roles=_unique_ids(_ROLE_MENTION.findall(content)),
        everyone=_EVERYONE_MENTION.search(content) is not None,
    )


# -- embeds ----------------------------------------------------------------------------------


def _text(source: dict[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    value = source.get(key)
    if value is None:
        if required:
            raise ShapeError("missing required field", field=f"{path}.{key}")
        return None
    if not isinstance(value, str):
        raise ShapeError("expected a string", field=f"{path}.{key}")
    return value


def _int(source: dict[str, Any], key: str, path: str) -> int | None:
    value = source.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShapeError("expected an integer", field=f"{path}.{key}")
    return value


def _obj(source: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = source.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ShapeError("expected an object", field=f"{path}.{key}")
    return value


def _limit(value: str | None, maximum: int, field: str) -> None:
    if value is not None and len(value) > maximum:
        raise ValidationError(f"must be at most {maximum} characters", field=field)


def _url(value: str | None, field: str) -> None:
    if value is None:
        return
    _limit(value, 2048, field)
    parts = urlsplit(value)
    if parts.scheme.lower() not in _URL_SCHEMES or not (parts.netloc or parts.path):
        raise ValidationError("must be an http(s) or attachment:// URL", field=field)


def _media(source: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = _obj(source, key, path)
    if value is None:
        return None
    where = f"{path}.{key}"
    url = _text(value, "url", where, required=True)
    _url(url, f"{where}.url")
    width = _int(value, "width", where)
    height = _int(value, "height", where)
    for name, number in (("width", width), ("height", height)):
        if number is not None and not 0 <= number <= 65535:
            raise ValidationError("must be between 0 and 65535", field=f"{where}.{name}")
    return {"url": url, "width": width, "height": height}


def normalize_embed(raw: object, path: str) -> dict[str, Any]:
    """One embed with every key of API.md 2.5 present (absent → null, unknown keys dropped)."""
    if not isinstance(raw, dict):
        raise ShapeError("expected an object", field=path)
    out: dict[str, Any] = {}
    for key, maximum in _EMBED_TEXT_LIMITS.items():
        value = _text(raw, key, path)
        _limit(value, maximum, f"{path}.{key}")
        out[key] = value
    _url(out["url"], f"{path}.url")
    if out["timestamp"] is not None and parse_ts(out["timestamp"]) is None:
        raise ValidationError("must be an ISO-8601 timestamp", field=f"{path}.timestamp")
    color = _int(raw, "color", path)
    if color is not None and not 0 <= color <= 0xFFFFFF:
        raise ValidationError("must be between 0 and 16777215", field=f"{path}.color")
    out["color"] = color

    footer = _obj(raw, "footer", path)
    if footer is not None:
        where = f"{path}.footer"
        text = _text(footer, "text", where, required=True)
        _limit(text, 2048, f"{where}.text")
        icon_url = _text(footer, "icon_url", where)
        _url(icon_url, f"{where}.icon_url")
        out["footer"] = {"text": text, "icon_url": icon_url}
    else:
        out["footer"] = None
    out["image"] = _media(raw, "image", path)
    out["thumbnail"] = _media(raw, "thumbnail", path)

    author = _obj(raw, "author", path)
    if author is not None:
        where = f"{path}.author"
        name = _text(author, "name", where, required=True)
        _limit(name, 256, f"{where}.name")
        url = _text(author, "url", where)
        icon_url = _text(author, "icon_url", where)
        _url(url, f"{where}.url")
        _url(icon_url, f"{where}.icon_url")
        out["author"] = {"name": name, "url": url, "icon_url": icon_url}
    else:
        out["author"] = None

    fields = raw.get("fields")
    if fields is None:
        out["fields"] = None
    else:
        if not isinstance(fields, list):
            raise ShapeError("expected an array", field=f"{path}.fields")
        if len(fields) > _EMBED_FIELDS_MAX:
            raise ValidationError(
                f"at most {_EMBED_FIELDS_MAX} fields are allowed", field=f"{path}.fields"
            )
        normalized = []
        for index, field in enumerate(fields):
            where = f"{path}.fields[{index}]"
            if not isinstance(field, dict):
                raise ShapeError("expected an object", field=where)
            name = _text(field, "name", where, required=True)
            value = _text(field, "value", where, required=True)
            _limit(name, 256, f"{where}.name")
            _limit(value, 1024, f"{where}.value")
            inline = field.get("inline")
            if inline is not None and not isinstance(inline, bool):
                raise ShapeError("expected a boolean", field=f"{where}.inline")
            normalized.append({"name": name, "value": value, "inline": bool(inline)})
        out["fields"] = normalized

    if all(out[key] is None for key in out if key != "type"):
        raise ValidationError("an embed must have some content", field=path)
    total = sum(len(out[k] or "") for k in ("title", "description"))
    total += len(out["footer"]["text"]) if out["footer"] else 0
    total += len(out["author"]["name"]) if out["author"] else 0
    total += sum(len(f["name"]) + len(f["value"]) for f in out["fields"] or ())
    if total > _EMBED_TOTAL_MAX:
        raise ValidationError(
            f"the text of an embed must total at most {_EMBED_TOTAL_MAX} characters", field=path
        )
    return out


def normalize_embeds(raw: object) -> tuple[dict[str, Any], ...]:
    """The `embeds` field: an array of at most 10 embeds (D21), each normalised."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ShapeError("expected an array", field="embeds")
    if len(raw) > EMBEDS_MAX:
        raise ValidationError(f"at most {EMBEDS_MAX} embeds are allowed", field="embeds")
    return tuple(normalize_embed(item, f"embeds[{index}]") for index, item in enumerate(raw))


# -- reactions -------------------------------------------------------------------------------

_CUSTOM_EMOJI = re.compile(r"^<?a?:?([A-Za-z0-9_]{2,32}):(\d{1,19})>?$")
_UNICODE_EMOJI_MAX = 32


def parse_reaction_emoji(raw: str) -> ReactionEmoji:
    """The `{emoji}` path segment (already percent-decoded): a unicode emoji or `name:id`.

    Custom emojis are keyed by id (so a rename keeps the reactions together); unicode emojis
    by their text, which must contain a non-ASCII character and no spaces, controls or ':'.
    """
    match = _CUSTOM_EMOJI.match(raw)
    if match:
        emoji_id = int(match.group(2))
        if not 0 < emoji_id < 2**63:
            raise ValidationError("unknown emoji id", field="emoji")
        return ReactionEmoji(key=f":{emoji_id}", name=match.group(1), id=emoji_id)
    text = unicodedata.normalize("NFC", raw)
    if (
        not 1 <= len(text) <= _UNICODE_EMOJI_MAX
        or text.isascii()
        or ":" in text
        or any(c.isspace() or unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in text)
    ):
        raise ValidationError("must be a unicode emoji or name:id", field="emoji")
    return ReactionEmoji(key=text, name=text)


# -- uploads -----------------------------------------------------------------------------------


def validate_filename(raw: str, field: str) -> str:
    """An upload's file name: kept for display and the CDN URL, never used as a path.

    Names that try to leave a folder (`../x`, `a/b`, `C:\\x`), control characters and empty
    or overlong names are refused (400).
    """
    name = unicodedata.normalize("NFC", raw.strip())
    if not name or name in (".", ".."):
        raise ValidationError("file name must not be empty", field=field)
    if any(c in name for c in "/\\") or any(unicodedata.category(c) == "Cc" for c in name):
        raise ValidationError(
            "file name must not contain a path or control characters", field=field
        )
    if len(name.encode("utf-8", "surrogatepass")) > FILENAME_MAX_BYTES:
        raise ValidationError(f"file name must be at most {FILENAME_MAX_BYTES} bytes", field=field)
    return name


_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,127}$")


def clean_content_type(raw: str | None) -> str:
    """A declared part content type reduced to `type/subtype`, or application/octet-stream."""
    if not raw:
        return "application/octet-stream"
    mime = raw.split(";", 1)[0].strip().lower()
    return mime if _MIME.match(mime) else "application/octet-stream"
