"""The SFU node registry on the main server (VOICE.md 7, D15, D15b-d; RT-37..RT-40).

The `sfu_nodes` table is the source of truth; `SfuRegistry` keeps a cache of online nodes for
allocation and listing, refreshed from every successful register and heartbeat (so the cache
can never lose a node the table has online, RT-39). Allocation bumps the cached load of the
chosen node until its next heartbeat reports the real figure. `end_node_session` and
`set_node_session_rights` are main's calls to a node's `POST /sessions/{id}/end` and
`POST /sessions/{id}/rights`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import TYPE_CHECKING
from urllib.parse import quote

import trio

if TYPE_CHECKING:
    import httpx

from accord.errors import NotFoundError, ValidationError
from accord.models.sfu_nodes import SfuNode
from accord.services.context import Context, Service
from accord.storage import sfu_nodes as store
from accord.times import now_ts, utc_now
from accord.voice.allocation import (
    choose_node,
    control_url_for,
    normalize_endpoint,
    validate_node_id,
    validate_region,
)

log = logging.getLogger("accord.voice.nodes")

NODE_NOT_FOUND = "sfu_node_not_found"
MAX_CAPACITY = 1_000_000
NODE_CALL_TIMEOUT_S = 3.0


@dataclasses.dataclass(frozen=True, slots=True)
class NodeRegistration:
    id: str
    endpoint: str
    region: str
    capacity: int
    control_url: str | None = None


class SfuRegistry(Service):
    """Register, heartbeat, deregister, reap, list and allocate SFU nodes."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._online: dict[str, SfuNode] = {}

    @property
    def online(self) -> list[SfuNode]:
        return sorted(self._online.values(), key=lambda node: node.id)

    def get(self, node_id: str) -> SfuNode | None:
        return self._online.get(node_id)

    async def load(self) -> int:
        """Fill the cache with the nodes the table has online (startup, OPERATIONS.md 3.1)."""
        nodes = await self.db.read(store.online_nodes)
        self._online = {node.id: node for node in nodes}
        if nodes:
            log.info("loaded %d SFU node(s) from database", len(nodes))
        return len(nodes)

    async def register(self, registration: NodeRegistration) -> SfuNode:
        """Upsert a node as online with load 0 (VOICE.md 7.2 register; RT-37 validation)."""
        node_id = validate_node_id(registration.id)
        endpoint = normalize_endpoint(registration.endpoint)
        region = validate_region(registration.region)
        if not 1 <= registration.capacity <= MAX_CAPACITY:
            raise ValidationError(f"must be between 1 and {MAX_CAPACITY}", field="capacity")
        control_url = control_url_for(endpoint, registration.control_url)
        node = await self.db.write(
            lambda conn: store.upsert_node(
                conn,
                node_id=node_id,
                endpoint=endpoint,
                control_url=control_url,
                region=region,
                capacity=registration.capacity,
                now=now_ts(),
                heartbeat=store.heartbeat_ts(utc_now()),
            )
        )
        self._online[node.id] = node
        log.info("SFU node %r registered (%s, region %s)", node.id, node.endpoint, node.region)
        return node

    async def heartbeat(self, node_id: str, current_load: int) -> SfuNode:
        """Record a heartbeat; NotFoundError(sfu_node_not_found) if unknown or offline (D15d)."""
        load = max(0, current_load)
        node = await self.db.write(
            store.record_heartbeat, node_id, load, now_ts(), store.heartbeat_ts(utc_now())
        )
        if node is None:
            self._online.pop(node_id, None)
            raise NotFoundError(NODE_NOT_FOUND)
        self._online[node.id] = node
        return node

    async def deregister(self, node_id: str) -> None:
        found = await self.db.write(store.mark_offline, node_id, now_ts())
        self._online.pop(node_id, None)
        if not found:
            raise NotFoundError(NODE_NOT_FOUND)
        log.info("SFU node %r deregistered", node_id)

    async def reap(self) -> list[str]:
        """Mark nodes without a heartbeat for `sfu_stale_after_s` offline; their ids."""
        moment = utc_now()
        stale_before = store.heartbeat_ts(
            moment - dt.timedelta(seconds=self.settings.sfu_stale_after_s)
        )
        reaped = await self.db.write(store.reap_stale, stale_before, now_ts())
        for node_id in reaped:
            self._online.pop(node_id, None)
        if reaped:
            log.info("reaped %d stale SFU node(s)", len(reaped))
        return reaped

    def allocate(self, region: str | None = None, *, exclude: str | None = None) -> SfuNode | None:
        """Choose a node for a new session and count it against that node's load."""
        candidates = [node for node in self._online.values() if node.id != exclude]
        node = choose_node(candidates, region)
        if node is not None:
            node = dataclasses.replace(node, current_load=node.current_load + 1)
            self._online[node.id] = node
        return node

    def preview(self, region: str | None = None) -> SfuNode | None:
        """The node `allocate` would choose, without counting anything."""
        return choose_node(self._online.values(), region)


async def end_node_session(
    http: httpx.AsyncClient, node: SfuNode, node_session: str, secret: str | None
) -> bool:
    """Ask a node to drop a participant (MEDIA.md 1 "Leaving"); False if it could not be told."""
    return await _node_call(http, node, node_session, secret, "end", None)


async def set_node_session_rights(
    http: httpx.AsyncClient,
    node: SfuNode,
    node_session: str,
    secret: str | None,
    *,
    speak: bool,
    deaf: bool,
) -> bool:
    """Tell a node what a participant may do now (RT-33: server mute/deaf, speak permission);
    False if it could not be told."""
    body = {"speak": speak, "deaf": deaf}
    return await _node_call(http, node, node_session, secret, "rights", body)


async def _node_call(
    http: httpx.AsyncClient,
    node: SfuNode,
    node_session: str,
    secret: str | None,
    action: str,
    body: dict[str, bool] | None,
) -> bool:
    import httpx  # loaded with the first node call, not at start-up (VoiceService.http)

    url = f"{node.control_url}/sessions/{quote(node_session, safe='')}/{action}"
    # Rare calls: no idle keep-alive connection left for the node to wait on when it drains.
    headers = {"Connection": "close"}
    if secret:
        headers["Authorization"] = f"Node {secret}"
    try:
        with trio.fail_after(NODE_CALL_TIMEOUT_S):
            response = await http.post(url, headers=headers, json=body)
    except (trio.TooSlowError, httpx.HTTPError) as exc:
        log.warning("SFU node %r: %s for session %s failed: %r", node.id, action, node_session, exc)
        return False
    if response.status_code >= 300:
        log.warning(
            "SFU node %r refused %s for session %s: %d",
            node.id,
            action,
            node_session,
            response.status_code,
        )
        return False
    return True
