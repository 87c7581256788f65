"""The audit log (CLIENT.md 4.15): entries written with their action, filters, permission.

Moderation actions of every resource write entries; these tests drive it through the
soundboard, which is always present, and the resource test files cover their own actions.
"""

from __future__ import annotations

import httpx

from tests.audio_samples import data_uri, wav_bytes
from tests.support import assert_error


async def _seed(client: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str], str]:
    data = (await client.post("/test/seed")).json()["data"]
    owner = {"Authorization": f"Bearer {data['user']['token']}"}
    bot = {"Authorization": f"Bot {data['bot']['token']}"}
    return owner, bot, data["space"]["id"]


async def test_entries_follow_actions_with_reason_and_changes(client: httpx.AsyncClient) -> None:
    owner, bot, space = await _seed(client)
    base = f"/api/v1/spaces/{space}/soundboard"
    clip = data_uri(wav_bytes(), "audio/wav")
    headers = {**owner, "X-Audit-Log-Reason": "new%20sound%20for%20raids"}
    sound = (await client.post(base, headers=headers, json={"name": "horn", "audio": clip})).json()[
        "data"
    ]
    await client.patch(f"{base}/{sound['id']}", headers=owner, json={"volume": 0.25})
    await client.patch(f"{base}/{sound['id']}", headers=owner, json={"volume": 0.25})  # no-op
    await client.delete(f"{base}/{sound['id']}", headers=owner)
    # A failed action writes nothing.
    assert_error(await client.post(base, headers=owner, json={"name": "bad", "audio": "x"}), 400)

    log = f"/api/v1/spaces/{space}/audit-log"
    r = await client.get(log, headers=owner)
    assert r.status_code == 200
    entries = r.json()["data"]
    assert [e["action_type"] for e in entries] == [
        "soundboard_sound_delete",
        "soundboard_sound_update",
        "soundboard_sound_create",
    ]
    create = entries[2]
    assert create["reason"] == "new sound for raids"
    assert create["target_id"] == sound["id"]
    assert create["target_type"] == "soundboard_sound"
    assert {"key": "name", "old_value": None, "new_value": "horn"} in create["changes"]
    assert entries[1]["changes"] == [{"key": "volume", "old_value": 1.0, "new_value": 0.25}]
    assert set(create) >= {
        "id",
        "user_id",
        "action_type",
        "target_id",
        "reason",
        "changes",
        "created_at",
    }

    # Filters and paging.
    only = (
        await client.get(log, headers=owner, params={"action_type": "soundboard_sound_update"})
    ).json()
    assert [e["action_type"] for e in only["data"]] == ["soundboard_sound_update"]
    older = (
        await client.get(log, headers=owner, params={"before": entries[0]["id"], "limit": 1})
    ).json()
    assert [e["id"] for e in older["data"]] == [entries[1]["id"]]
    mine = (await client.get(log, headers=owner, params={"user_id": create["user_id"]})).json()
    assert len(mine["data"]) == 3
    nobody = (await client.get(log, headers=owner, params={"user_id": "12345"})).json()
    assert nobody["data"] == []
    # Errors.
    assert_error(await client.get(log, headers=bot), 403, "forbidden")
    assert_error(await client.get(log), 401)
    assert_error(await client.get(log, headers=owner, params={"limit": "many"}), 400)
    assert_error(await client.get(log, headers=owner, params={"before": "x"}), 400)
    assert_error(await client.get(log, headers=owner, params={"action_type": "explode"}), 400)
    assert_error(await client.get("/api/v1/spaces/999/audit-log", headers=owner), 404)
    long_reason = {**owner, "X-Audit-Log-Reason": "r" * 600}
    assert_error(
        await client.post(base, headers=long_reason, json={"name": "n", "audio": clip}), 400
    )
