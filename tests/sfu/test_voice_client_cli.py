"""`accord voice-client` end to end: two real CLI processes sign in, join a voice channel over
the gateway (op 9), connect to a real SFU node from `voice.server_update`, stream to each other
and report what they heard."""

from __future__ import annotations

import os
import re
import sys

import httpx
import pytest
import trio

from tests.sfu.support import REPO_ROOT
from tests.sfu.test_media_e2e import NODE, SECRET, start_node
from tests.spaces_support import create_space, join_by_invite
from tests.support import ServerHandle, register

pytestmark = pytest.mark.slow


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"ACCORD_SFU_SECRET": SECRET, "ACCORD_RATE_LIMIT": "1000/s"}


async def test_two_cli_clients_hear_each_other(
    nursery: trio.Nursery, server: ServerHandle, client: httpx.AsyncClient
) -> None:
    node = await start_node(nursery, server.url, "cython")
    try:
        await node.wait_for(r"registered with main server as 'media-1'")
        await register(client, "root")
        owner = await register(client, "owner", password="owner-password")
        ana = await register(client, "ana", password="ana-password")
        space = await create_space(client, owner, "Voice Space")
        await join_by_invite(client, owner, ana, space["id"])
        r = await client.post(
            f"/api/v1/spaces/{space['id']}/channels",
            json={"name": "Lounge", "type": "voice"},
            headers=owner.headers,
        )
        channel = r.json()["data"]["id"]

        async def run_cli(username: str, password: str) -> str:
            env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
            result = await trio.run_process(
                [
                    sys.executable,
                    "-m",
                    "accord",
                    "voice-client",
                    "--url",
                    server.url,
                    "--username",
                    username,
                    "--password",
                    password,
                    "--channel",
                    channel,
                    "--duration",
                    "3",
                ],
                capture_stdout=True,
                capture_stderr=True,
                env=env,
                cwd=REPO_ROOT,
                check=False,
            )
            output = result.stdout.decode() + result.stderr.decode()
            assert result.returncode == 0, output
            return output

        outputs: dict[str, str] = {}

        async def record(name: str, username: str, password: str) -> None:
            outputs[name] = await run_cli(username, password)

        with trio.fail_after(60):
            async with trio.open_nursery() as clients:
                clients.start_soon(record, "owner", "owner", "owner-password")
                clients.start_soon(record, "ana", "ana", "ana-password")
        for me, peer in (("owner", ana.id), ("ana", owner.id)):
            text = outputs[me]
            assert re.search(r"joined channel \d+ as ssrc \d+ \(AEAD_AES_128_GCM\)", text), text
            reports = re.findall(
                rf"from {peer}: (\d+) packets, \d+ bytes, lost (\d+), out of order (\d+),"
                r" corrupted (\d+)",
                text,
            )
            assert reports, text
            packets, lost, out_of_order, corrupted = map(int, reports[-1])
            assert packets >= 50  # two overlapping 3 s streams at 50 packets/s
            assert (lost, out_of_order, corrupted) == (0, 0, 0)
        # The node is still registered and serving after both clients left.
        listed = (await client.get("/api/v1/sfu/nodes", headers=NODE)).json()["data"]
        assert listed[0]["id"] == "media-1"
    finally:
        node.process.kill()
        await node.process.wait()
