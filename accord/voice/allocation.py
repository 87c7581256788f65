"""SFU node records, allocation and region listing (VOICE.md 7.4, 3.2; RT-34, RT-37; D15b).

Pure: the registry service keeps the records; these functions only choose among them.
Allocation follows the recommended policy: online nodes with room (`current_load <
capacity`), the requested region first and every region as fallback, least loaded by
`current_load / capacity`, ties broken at random.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from accord.errors import ValidationError
from accord.models.sfu_nodes import SfuNode

_NODE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_REGION_LENGTH = 64
MAX_URL_LENGTH = 2048


def choose_node(
    nodes: Iterable[SfuNode], region: str | None = None, *, rng: random.Random | None = None
) -> SfuNode | None:
    """The node a new voice session goes to, or None when every node is full or offline."""
    candidates = [node for node in nodes if node.has_room]
    if region is not None:
        in_region = [node for node in candidates if node.region == region]
        candidates = in_region or candidates
    if not candidates:
        return None
    lowest = min(node.current_load / node.capacity for node in candidates)
    best = [node for node in candidates if node.current_load / node.capacity == lowest]
    return (rng or random).choice(best)


def voice_regions(nodes: Iterable[SfuNode], optimal: SfuNode | None) -> list[dict[str, Any]]:
    """One entry per region of an online node, deduplicated; the allocated one is optimal.

    With no node at all the original's default entry (API.md 3.14) is returned, since clients
    expect a non-empty list.
    """
    regions: dict[str, dict[str, Any]] = {}
    for node in nodes:
        if node.status != "online" or node.region in regions:
            continue
        is_optimal = optimal is not None and optimal.region == node.region
        regions[node.region] = {
            "id": node.region,
            "name": node.region,
            "optimal": is_optimal,
            "custom": False,
        }
    if not regions:
        return [{"id": "us-east", "name": "US East", "optimal": True, "custom": False}]
    return sorted(regions.values(), key=lambda region: (not region["optimal"], region["id"]))


def validate_node_id(raw: str) -> str:
    if not _NODE_ID_RE.match(raw):
        raise ValidationError("1-64 letters, digits, '.', '_' or '-'", field="id")
    return raw


def validate_region(raw: str) -> str:
    region = raw.strip()
    if not 1 <= len(region) <= MAX_REGION_LENGTH:
        raise ValidationError(f"must be 1-{MAX_REGION_LENGTH} characters", field="region")
    return region


def normalize_endpoint(raw: str) -> str:
    """D15b, MEDIA.md 5a: a ws/wss (or http/https) URL; a URL without a path means /ws."""
    parts = _url(raw, ("ws", "wss", "http", "https"), "endpoint")
    path = parts.path if parts.path not in ("", "/") else "/ws"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def control_url_for(endpoint: str, control_url: str | None) -> str:
    """Where main reaches the node's HTTP routes: given, or the endpoint's host with http(s)."""
    if control_url:
        parts = _url(control_url, ("http", "https"), "control_url")
        return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    parts = urlsplit(endpoint)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


def _url(raw: str, schemes: tuple[str, ...], field: str) -> SplitResult:
    text = raw.strip()
    if len(text) > MAX_URL_LENGTH:
        raise ValidationError("URL too long", field=field)
    parts = urlsplit(text)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in schemes or not parts.hostname or not port_ok:
        raise ValidationError(f"must be a {'/'.join(schemes)} URL with a host", field=field)
    return parts
