"""Message routes end to end: send, read, page (D-page), edit, delete, bulk delete, threads
and search (D-thr), mentions, embeds, replies, permissions (G-06/G-07/G-08, D-to) and events.
Overwrites, extra channels, roles and timeouts are set through tests/api/messaging.py."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from tests.api.messaging import (
    add_channel,
    grant_role,
    next_event,
    seed_world,
    send,
    set_overwrite,
    time_out,
)
from tests.spaces_support import drain
from tests.support import ServerHandle, assert_error, register


async def test_send_get_and_list_round_trip(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    sent = await send(client, w.bot, w.general_id, "hello <b>world</b>", nonce="n-1")
    assert sent["content"] == "hello <b>world</b>"
    assert sent["channel_id"] == w.general_id
    assert sent["space_id"] == w.space_id
    assert sent["author_id"] == w.bot_id
    assert sent["author"]["id"] == w.bot_id
    assert sent["author"]["bot"] is True
    assert sent["nonce"] == "n-1"
    assert sent["type"] == "default"
    assert "T" in sent["timestamp"]
    assert sent["edited_at"] is None
    assert sent["reactions"] == []
    assert sent["attachments"] == []
    assert sent["embeds"] == []
    assert sent["reply_count"] == 0
    got = await client.get(
        f"/api/v1/channels/{w.general_id}/messages/{sent['id']}", headers=w.owner
    )
    assert got.status_code == 200
    assert got.json()["data"]["content"] == sent["content"]
    listed = await client.get(f"/api/v1/channels/{w.general_id}/messages", headers=w.owner)
    body = listed.json()
    assert [m["id"] for m in body["data"]] == [sent["id"]]
    assert body["cursor"] == {"after": sent["id"], "before": sent["id"], "has_more": False}


async def test_message_create_event_carries_space_and_channel(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    with server.ctx.bus.subscribed() as sub:
        sent = await send(client, w.bot, w.general_id, "event me")
        with trio.fail_after(2):
            event = await next_event(sub, "message.create")
    assert event.data["id"] == sent["id"]
    assert event.space_id == int(w.space_id)
    assert event.channel_id == int(w.general_id)


async def test_content_limits(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    url = f"/api/v1/channels/{w.general_id}/messages"
    assert_error(
        await client.post(url, json={"content": ""}, headers=w.bot), 400, "invalid_request"
    )
    assert_error(await client.post(url, json={"content": "  "}, headers=w.bot), 400)
    error = assert_error(await client.post(url, json={"content": "x" * 4001}, headers=w.bot), 400)
    assert error["details"] == {"field": "content"}
    assert_error(await client.post(url, json={"content": 5}, headers=w.bot), 422)
    assert_error(await client.post(url, json=["x"], headers=w.bot), 422)
    assert_error(
        await client.post(url, content=b"{", headers={**w.bot, "Content-Type": "application/json"}),
        400,
    )
    assert (await client.post(url, json={"content": "x" * 4000}, headers=w.bot)).status_code == 200


async def test_embeds_are_normalised_and_validated(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    url = f"/api/v1/channels/{w.general_id}/messages"
    sent = await send(client, w.bot, w.general_id, "", embeds=[{"title": "x", "junk": 1}])
    embed = sent["embeds"][0]
    assert set(embed) == {
        "title",
        "type",
        "description",
        "url",
        "timestamp",
        "color",
        "footer",
        "image",
        "thumbnail",
        "author",
        "fields",
    }
    assert embed["title"] == "x"
    assert embed["footer"] is None
    full = {
        "title": "t",
        "color": 0xFF0000,
        "footer": {"text": "f"},
        "image": {"url": "https://example.com/a.png"},
        "fields": [{"name": "n", "value": "v"}],
    }
    sent = await send(client, w.bot, w.general_id, "ok", embeds=[full])
    assert sent["embeds"][0]["footer"] == {"text": "f", "icon_url": None}
    assert sent["embeds"][0]["fields"] == [{"name": "n", "value": "v", "inline": False}]
    shape_errors: list[dict[str, Any]] = [
        {"embeds": "nope"},
        {"embeds": [5]},
        {"embeds": [{"footer": {}}]},
        {"embeds": [{"title": 5}]},
        {"embeds": [{"fields": [{"name": "only"}]}]},
    ]
    for body in shape_errors:
        assert_error(await client.post(url, json={"content": "c", **body}, headers=w.bot), 422)
    value_errors: list[dict[str, Any]] = [
        {"embeds": [{"title": "t"}] * 11},
        {"embeds": [{"color": -1}]},
        {"embeds": [{"title": "x" * 257}]},
        {"embeds": [{"url": "javascript:alert(1)"}]},
        {"embeds": [{}]},
        {"embeds": [{"timestamp": "yesterday"}]},
    ]
    for body in value_errors:
        assert_error(await client.post(url, json={"content": "c", **body}, headers=w.bot), 400)


async def test_reply_to_must_be_a_message_of_the_channel(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    url = f"/api/v1/channels/{w.general_id}/messages"
    first = await send(client, w.bot, w.general_id, "first")
    reply = await send(client, w.bot, w.general_id, "reply", reply_to=first["id"])
    assert reply["reply_to"] == first["id"]
    elsewhere = await send(client, w.bot, w.testing_id, "other channel")
    for target in ("99999999999999", "abc", elsewhere["id"]):
        r = await client.post(url, json={"content": "r", "reply_to": target}, headers=w.bot)
        assert_error(r, 404, "not_found")
    ref = await send(
        client, w.bot, w.general_id, "ref", message_reference={"message_id": first["id"]}
    )
    assert ref["reply_to"] == first["id"]


async def test_mentions_are_parsed_and_everyone_needs_permission(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    role_id = await grant_role(server, w.space_id, w.owner_id, ())
    content = (
        f"hi <@{w.owner_id}> <@!{w.bot_id}> <@123456789> <@&{role_id}> <@&{w.space_id}> @everyone"
    )
    sent = await send(client, w.bot, w.general_id, content)
    assert sent["mentions"] == [w.owner_id, w.bot_id]
    assert sent["mention_roles"] == [role_id]
    assert sent["mention_everyone"] is False
    owner_sent = await send(client, w.owner, w.general_id, "@everyone look")
    assert owner_sent["mention_everyone"] is True


async def test_paging_in_all_three_directions(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    ids = [(await send(client, w.bot, w.general_id, f"m{i}"))["id"] for i in range(7)]
    url = f"/api/v1/channels/{w.general_id}/messages"

    async def page(**params: Any) -> dict[str, Any]:
        r = await client.get(url, params=params, headers=w.bot)
        assert r.status_code == 200, r.text
        return dict(r.json())

    newest = await page(limit=3)
    assert [m["id"] for m in newest["data"]] == ids[:-4:-1]
    assert newest["cursor"]["has_more"] is True
    assert newest["cursor"]["before"] == ids[4]
    older = await page(limit=3, before=newest["cursor"]["before"])
    assert [m["id"] for m in older["data"]] == [ids[3], ids[2], ids[1]]
    oldest = await page(limit=3, before=ids[1])
    assert [m["id"] for m in oldest["data"]] == [ids[0]]
    assert oldest["cursor"]["has_more"] is False
    forward = await page(limit=3, after=ids[0])
    assert [m["id"] for m in forward["data"]] == ids[1:4]
    assert forward["cursor"]["after"] == ids[3]
    assert forward["cursor"]["has_more"] is True
    around = await page(limit=4, around=ids[3])
    assert [m["id"] for m in around["data"]] == [ids[5], ids[4], ids[3], ids[2]]
    # around beats before beats after (D-page).
    mixed = await page(limit=2, around=ids[3], before=ids[1], after=ids[5])
    assert [m["id"] for m in mixed["data"]] == [ids[4], ids[3]]
    empty = await page(after=ids[6])
    assert empty == {"data": []}
    assert len((await page(limit=0))["data"]) == 1
    assert len((await page(limit=1000))["data"]) == 7
    assert_error(await client.get(url, params={"limit": "abc"}, headers=w.bot), 400)
    assert_error(await client.get(url, params={"before": "x"}, headers=w.bot), 400)


async def test_after_zero_pages_from_the_oldest(client: httpx.AsyncClient) -> None:
    """`after=0` is present: the history from the start, oldest first (API.md 1.6/3.7); an
    empty `after=` and `before=0` still mean "no cursor" (the newest page)."""
    w = await seed_world(client)
    ids = [(await send(client, w.bot, w.general_id, f"m{i}"))["id"] for i in range(4)]
    url = f"/api/v1/channels/{w.general_id}/messages"
    r = await client.get(url, params={"after": "0", "limit": 3}, headers=w.bot)
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json()["data"]] == ids[:3]
    assert r.json()["cursor"]["has_more"] is True
    no_cursor: list[dict[str, str | int]] = [{"after": "", "limit": 3}, {"before": "0", "limit": 3}]
    for params in no_cursor:
        r = await client.get(url, params=params, headers=w.bot)
        assert [m["id"] for m in r.json()["data"]] == ids[:-4:-1], params


async def test_unknown_and_malformed_ids_are_404(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    for path in (
        "/api/v1/channels/99999999999999/messages",
        "/api/v1/channels/general/messages",
        f"/api/v1/channels/{w.general_id}/messages/99999999999999",
        f"/api/v1/channels/{w.general_id}/messages/nope",
    ):
        assert_error(await client.get(path, headers=w.bot), 404, "not_found")


async def test_wrong_method_on_post_only_message_paths_is_405(client: httpx.AsyncClient) -> None:
    """`bulk-delete` and `upload` are literal segments, never a message id (API.md 1.1)."""
    w = await seed_world(client)
    base = f"/api/v1/channels/{w.general_id}/messages"
    for literal in ("bulk-delete", "upload"):
        for method in ("GET", "PATCH", "DELETE", "PUT"):
            r = await client.request(method, f"{base}/{literal}", headers=w.owner)
            assert_error(r, 405, "method_not_allowed")
            assert r.headers["allow"] == "POST", (method, literal)
    # The message-id route itself is unchanged.
    sent = await send(client, w.bot, w.general_id, "still here")
    assert (await client.get(f"{base}/{sent['id']}", headers=w.bot)).status_code == 200


async def test_message_of_another_channel_is_not_found(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    sent = await send(client, w.bot, w.testing_id, "here")
    r = await client.get(f"/api/v1/channels/{w.general_id}/messages/{sent['id']}", headers=w.bot)
    assert_error(r, 404, "not_found")


async def test_edit_only_own_message_and_event(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    sent = await send(client, w.bot, w.general_id, "before")
    url = f"/api/v1/channels/{w.general_id}/messages/{sent['id']}"
    assert_error(
        await client.patch(url, json={"content": "hack"}, headers=w.owner), 403, "forbidden"
    )
    same = await client.patch(url, json={}, headers=w.bot)
    assert same.json()["data"]["edited_at"] is None
    with server.ctx.bus.subscribed() as sub:
        r = await client.patch(url, json={"content": f"after <@{w.owner_id}>"}, headers=w.bot)
        with trio.fail_after(2):
            event = await next_event(sub, "message.update")
    data = r.json()["data"]
    assert data["content"] == f"after <@{w.owner_id}>"
    assert data["edited_at"] is not None
    assert data["mentions"] == [w.owner_id]
    assert event.data["content"] == data["content"]
    assert_error(await client.patch(url, json={"content": ""}, headers=w.bot), 400)


async def test_edit_requires_send_messages(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    sent = await send(client, w.bot, w.general_id, "mine")
    await set_overwrite(server, w.general_id, w.space_id, deny=("send_messages",))
    url = f"/api/v1/channels/{w.general_id}/messages/{sent['id']}"
    r = await client.patch(url, json={"content": "x"}, headers=w.bot)
    assert r.json()["error"]["message"] == "missing permission: send_messages"
    assert_error(r, 403)


async def test_delete_message_rules_and_event(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    mine = await send(client, w.bot, w.general_id, "bot's")
    owners = await send(client, w.owner, w.general_id, "owner's")
    base = f"/api/v1/channels/{w.general_id}/messages"
    r = await client.delete(f"{base}/{owners['id']}", headers=w.bot)
    assert r.json()["error"]["message"] == "missing permission: manage_messages"
    with server.ctx.bus.subscribed() as sub:
        assert (await client.delete(f"{base}/{mine['id']}", headers=w.bot)).json() == {"data": None}
        with trio.fail_after(2):
            event = await next_event(sub, "message.delete")
    assert event.data == {"id": mine["id"], "channel_id": w.general_id, "space_id": w.space_id}
    assert (await client.delete(f"{base}/{owners['id']}", headers=w.owner)).status_code == 200
    assert_error(await client.get(f"{base}/{mine['id']}", headers=w.bot), 404, "not_found")
    assert_error(await client.delete(f"{base}/{mine['id']}", headers=w.bot), 404)

    def last_id(conn: object) -> object:
        return conn.execute(  # type: ignore[attr-defined]
            "SELECT last_message_id FROM channels WHERE id = ?", (int(w.general_id),)
        ).fetchone()[0]

    assert await server.ctx.db.read(last_id) is None  # G-23: never dangles


async def test_bulk_delete(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    ids = [(await send(client, w.bot, w.general_id, f"b{i}"))["id"] for i in range(3)]
    other = await send(client, w.bot, w.testing_id, "elsewhere")
    url = f"/api/v1/channels/{w.general_id}/messages/bulk-delete"
    assert_error(await client.post(url, json={"messages": ids}, headers=w.bot), 403, "forbidden")
    r = await client.post(url, json={"messages": [str(i) for i in range(1, 102)]}, headers=w.owner)
    assert r.json()["error"]["message"] == "messages: cannot bulk delete more than 100 messages"
    assert_error(r, 400)
    assert_error(
        await client.post(url, json={"messages": [ids[0], other["id"]]}, headers=w.owner), 400
    )
    assert_error(await client.post(url, json={}, headers=w.owner), 422)
    with server.ctx.bus.subscribed() as sub:
        r = await client.post(url, json={"messages": [*ids[:2], "99999999999"]}, headers=w.owner)
        assert r.json() == {"data": None}
        with trio.fail_after(2):
            event = await next_event(sub, "message.delete_bulk")
    assert sorted(event.data["ids"]) == sorted(ids[:2])
    left = await client.get(f"/api/v1/channels/{w.general_id}/messages", headers=w.bot)
    assert [m["id"] for m in left.json()["data"]] == [ids[2]]
    assert (
        await client.get(f"/api/v1/channels/{w.testing_id}/messages/{other['id']}", headers=w.bot)
    ).status_code == 200


async def test_send_permission_denials(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    await register(client, "admin0")  # the first user is an instance admin (D8)
    outsider = await register(client, "outsider")
    url = f"/api/v1/channels/{w.general_id}/messages"
    r = await client.post(url, json={"content": "x"}, headers=outsider.headers)
    assert r.json()["error"]["message"] == "you are not a member of this space"
    assert_error(r, 403)
    assert_error(await client.post(url, json={"content": "x"}), 401, "unauthorized")
    r = await client.post(url, json={"content": "x", "tts": True}, headers=w.bot)
    assert r.json()["error"]["message"] == "missing permission: send_tts"
    await set_overwrite(server, w.general_id, w.space_id, deny=("embed_links",))
    r = await client.post(url, json={"content": "x", "embeds": [{"title": "t"}]}, headers=w.bot)
    assert r.json()["error"]["message"] == "missing permission: embed_links"
    await set_overwrite(server, w.general_id, w.space_id, deny=("send_messages",))
    r = await client.post(url, json={"content": "x"}, headers=w.bot)
    assert r.json()["error"]["message"] == "missing permission: send_messages"
    # The owner is not affected by overwrites.
    assert (await client.post(url, json={"content": "x"}, headers=w.owner)).status_code == 200


async def test_timed_out_member_cannot_send(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    await time_out(server, w.space_id, w.bot_id)
    r = await client.post(
        f"/api/v1/channels/{w.general_id}/messages", json={"content": "x"}, headers=w.bot
    )
    assert_error(r, 403, "forbidden")
    assert "timed out" in r.json()["error"]["message"]
    # Reading still works.
    assert (
        await client.get(f"/api/v1/channels/{w.general_id}/messages", headers=w.bot)
    ).status_code == 200


async def test_reading_needs_view_channel_and_read_history(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    hidden = await add_channel(server, w.space_id, "hidden")
    await set_overwrite(server, hidden, w.space_id, deny=("view_channel",))
    r = await client.get(f"/api/v1/channels/{hidden}/messages", headers=w.bot)
    assert r.json()["error"]["message"] == "missing permission: view_channel"
    no_history = await add_channel(server, w.space_id, "nohistory")
    await set_overwrite(server, no_history, w.space_id, deny=("read_history",))
    r = await client.get(f"/api/v1/channels/{no_history}/messages", headers=w.bot)
    assert r.json()["error"]["message"] == "missing permission: read_history"
    # A member overwrite can grant it back.
    await set_overwrite(server, no_history, w.bot_id, allow=("read_history",), kind="member")
    assert (
        await client.get(f"/api/v1/channels/{no_history}/messages", headers=w.bot)
    ).status_code == 200


async def test_public_space_is_readable_anonymously_private_is_not(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    await register(client, "admin0")  # the first user is an instance admin (D8)
    user = await register(client, "reader")

    def general_of_default(conn: object) -> int:
        return int(
            conn.execute(  # type: ignore[attr-defined]
                "SELECT c.id FROM channels c JOIN spaces s ON s.id = c.space_id"
                " WHERE s.slug = 'general' AND c.name = 'general'"
            ).fetchone()[0]
        )

    public_channel = await server.ctx.db.read(general_of_default)
    await send(client, user.headers, str(public_channel), "public hello")
    r = await client.get(f"/api/v1/channels/{public_channel}/messages")
    assert r.status_code == 200
    assert r.json()["data"][0]["content"] == "public hello"
    assert_error(await client.get(f"/api/v1/channels/{w.general_id}/messages"), 401, "unauthorized")
    assert_error(
        await client.get(f"/api/v1/channels/{w.general_id}/messages", headers=user.headers), 403
    )


async def test_threads(client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    parent = await send(client, w.bot, w.general_id, "parent")
    r1 = await send(client, w.bot, w.general_id, "t1", thread_id=parent["id"])
    await send(client, w.owner, w.general_id, "t2", thread_id=parent["id"])
    assert r1["thread_id"] == parent["id"]
    url = f"/api/v1/channels/{w.general_id}/messages"
    main = (await client.get(url, headers=w.bot)).json()["data"]
    assert [m["id"] for m in main] == [parent["id"]]
    assert main[0]["reply_count"] == 2
    assert set(main[0]["thread_participants"]) == {w.bot_id, w.owner_id}
    assert main[0]["last_reply_at"] is not None
    thread = (await client.get(url, params={"thread_id": parent["id"]}, headers=w.bot)).json()
    assert [m["content"] for m in thread["data"]] == ["t2", "t1"]
    threads = (await client.get(f"/api/v1/channels/{w.general_id}/threads", headers=w.bot)).json()
    assert [m["id"] for m in threads["data"]] == [parent["id"]]
    info = await client.get(f"{url}/{parent['id']}/threads", headers=w.bot)
    assert info.json()["data"]["reply_count"] == 2
    r = await client.post(url, json={"content": "x", "thread_id": r1["id"]}, headers=w.bot)
    assert_error(r, 400)
    r = await client.post(url, json={"content": "x", "thread_id": "99999999999"}, headers=w.bot)
    assert_error(r, 404)


async def test_deleting_a_thread_parent_reports_its_replies(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    w = await seed_world(client)
    parent = await send(client, w.owner, w.general_id, "parent")
    replies = [
        await send(client, w.bot, w.general_id, f"t{i}", thread_id=parent["id"]) for i in range(2)
    ]
    url = f"/api/v1/channels/{w.general_id}/messages/{parent['id']}"
    with server.ctx.bus.subscribed() as sub:
        r = await client.delete(url, headers=w.owner)
        assert r.status_code == 200
        deleted = await next_event(sub, "message.delete")
        bulk = await next_event(sub, "message.delete_bulk")
    assert deleted.data["id"] == parent["id"]
    assert bulk.data["ids"] == [m["id"] for m in replies]
    assert bulk.data["channel_id"] == w.general_id
    for reply in replies:
        r = await client.get(
            f"/api/v1/channels/{w.general_id}/messages/{reply['id']}", headers=w.bot
        )
        assert_error(r, 404)
    # A message without replies sends no bulk event.
    lone = await send(client, w.owner, w.general_id, "lone")
    with server.ctx.bus.subscribed() as sub:
        r = await client.delete(
            f"/api/v1/channels/{w.general_id}/messages/{lone['id']}", headers=w.owner
        )
        await next_event(sub, "message.delete")
        await trio.sleep(0.05)
        assert not [e for e in drain(sub) if getattr(e, "type", "") == "message.delete_bulk"]


async def test_search(server: ServerHandle, client: httpx.AsyncClient) -> None:
    w = await seed_world(client)
    await send(client, w.owner, w.general_id, "the Quick brown fox")
    await send(client, w.owner, w.general_id, "100% sure")
    await send(client, w.owner, w.general_id, "nothing here")
    hidden = await add_channel(server, w.space_id, "secret")
    await set_overwrite(server, hidden, w.space_id, deny=("view_channel",))
    await send(client, w.owner, hidden, "quick secret")
    url = f"/api/v1/spaces/{w.space_id}/messages/search"
    bot_hits = (await client.get(url, params={"query": "quick"}, headers=w.bot)).json()["data"]
    assert [m["content"] for m in bot_hits] == ["the Quick brown fox"]
    owner_hits = (await client.get(url, params={"query": "quick"}, headers=w.owner)).json()["data"]
    assert [m["content"] for m in owner_hits] == ["quick secret", "the Quick brown fox"]
    paged = await client.get(
        url, params={"query": "quick", "limit": 1, "offset": 1}, headers=w.owner
    )
    assert [m["content"] for m in paged.json()["data"]] == ["the Quick brown fox"]
    percent = (await client.get(url, params={"query": "%"}, headers=w.bot)).json()["data"]
    assert [m["content"] for m in percent] == ["100% sure"]
    assert_error(await client.get(url, headers=w.bot), 400)
    await register(client, "admin0")
    outsider = await register(client, "nosy")
    assert_error(await client.get(url, params={"query": "q"}, headers=outsider.headers), 403)
